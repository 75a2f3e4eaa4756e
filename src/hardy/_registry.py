"""A process-wide registry of named objects of one kind (bulkheads, rate limiters).

It follows the breakers' registry (:class:`hardy.BreakerRegistry`): one
object per name, ``get_or_create`` makes it on first use, and asking again
with other settings is a :class:`ValueError` (two call sites that disagree
on a limit are a bug, not something to settle silently).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["NamedRegistry", "default_name"]

T = TypeVar("T")


def default_name(func: Callable[..., Any]) -> str:
    """The name a decorator gives an unnamed object: the function's ``module.qualname`` (as breakers)."""
    target: Any = func
    while hasattr(target, "func") and not hasattr(target, "__qualname__"):  # functools.partial
        target = target.func
    module = getattr(target, "__module__", None) or "<unknown>"
    qualname = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
    if qualname is None:
        qualname = type(target).__qualname__
    return f"{module}.{qualname}"


class NamedRegistry(Generic[T]):
    """The named objects of one kind in a process.

    Example::

        pool = hardy.bulkheads.get_or_create("db", max_concurrent=8)
        assert hardy.bulkheads.get("db") is pool
    """

    def __init__(self, kind: str, settings: Callable[[T], tuple[Any, ...]], fields: str) -> None:
        self._kind = kind
        self._settings = settings
        self._fields = fields
        self._lock = threading.Lock()
        self._objects: dict[str, T] = {}

    def get(self, name: str) -> T | None:
        """The object registered under ``name``, or ``None``."""
        return self._objects.get(name)

    def get_or_make(self, name: str, wanted: tuple[Any, ...], make: Callable[[], T]) -> T:
        """The object named ``name``, made by ``make()`` if there is none; ``wanted``: the settings asked for."""
        with self._lock:
            existing = self._objects.get(name)
            if existing is None:
                created = make()
                self._objects[name] = created
                return created
        if self._settings(existing) != wanted:
            raise ValueError(
                f"{self._kind} {name!r} already exists with other settings: ({self._fields}) "
                f"= {self._settings(existing)}, asked for {wanted}"
            )
        return existing

    def register(self, obj: T) -> T:
        """Add an object made by hand; a :class:`ValueError` if the name is taken."""
        name = getattr(obj, "name")  # noqa: B009 - T is any named object
        if not isinstance(name, str):
            raise TypeError(f"a {self._kind} must have a str name, got {name!r}")
        with self._lock:
            if name in self._objects and self._objects[name] is not obj:
                raise ValueError(f"a {self._kind} named {name!r} is already registered")
            self._objects[name] = obj
        return obj

    def all(self) -> dict[str, T]:
        """A snapshot of every registered object, by name."""
        with self._lock:
            return dict(self._objects)

    def remove(self, name: str) -> T | None:
        """Forget the object named ``name`` and return it (``None`` if absent)."""
        with self._lock:
            return self._objects.pop(name, None)

    def clear(self) -> None:
        """Forget every object."""
        with self._lock:
            self._objects.clear()
