"""Bulkheads by name: the ``bulkhead`` decorator and its registry.

The bulkhead itself (:class:`~hardy.Bulkhead`) lives in the core; this module
keeps the process-wide registry that lets functions share one by name, and
the decorator that uses it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import _core, _descriptors, _validate
from ._registry import NamedRegistry, default_name

if TYPE_CHECKING:
    from ._core import Bulkhead

__all__ = ["BulkheadRegistry", "bulkhead", "bulkheads", "get_bulkhead"]


def _settings(pool: Bulkhead) -> tuple[int, float]:
    return (pool.max_concurrent, pool.max_wait)


class BulkheadRegistry(NamedRegistry["Bulkhead"]):
    """The named bulkheads of a process (as :class:`~hardy.BreakerRegistry` is for breakers).

    Example::

        pool = hardy.bulkheads.get_or_create("db", max_concurrent=8)
        assert hardy.get_bulkhead("db") is pool
    """

    def __init__(self) -> None:
        super().__init__("bulkhead", _settings, "max_concurrent, max_wait")

    def get_or_create(self, name: str, max_concurrent: int = 10, max_wait: float = 0.0) -> Bulkhead:
        """Return the bulkhead named ``name``, creating it with these settings.

        Asking for an existing name with other settings raises :class:`ValueError`.
        """
        checked = _validate.bulkhead_settings(name, max_concurrent, max_wait, time.monotonic)
        wanted = (checked.max_concurrent, checked.max_wait)
        return self.get_or_make(name, wanted, lambda: _core.Bulkhead(name, max_concurrent, max_wait))


bulkheads: BulkheadRegistry = BulkheadRegistry()
"""The process-wide :class:`BulkheadRegistry` that :func:`bulkhead` and :func:`get_bulkhead` use."""


def get_bulkhead(name: str) -> Bulkhead | None:
    """The bulkhead registered under ``name``, or ``None``.

    Example::

        @hardy.bulkhead("reports", max_concurrent=2)
        def build(day: str) -> bytes: ...

        hardy.get_bulkhead("reports").get_stats()
    """
    return bulkheads.get(name)


def bulkhead(
    name: str | Callable[..., Any] | None = None,
    max_concurrent: int = 10,
    max_wait: float = 0.0,
) -> Any:
    """Let at most ``max_concurrent`` calls of a function run at once.

    A call over the limit waits up to ``max_wait`` seconds for a slot (first
    come, first served), then raises :class:`~hardy.BulkheadFullError`. The
    name defaults to the function's ``module.qualname``; functions that use
    the same name share one bulkhead (from :data:`hardy.bulkheads`). The
    wrapper exposes it as ``.bulkhead``. Works bare and called, on functions,
    ``async def`` functions (the slot is held until the coroutine finishes),
    methods, static and class methods.

    Example::

        @hardy.bulkhead(max_concurrent=4, max_wait=0.25)
        async def render(page: str) -> bytes: ...

        render.bulkhead.get_stats()
    """
    if isinstance(name, (staticmethod, classmethod)) or (callable(name) and not isinstance(name, str)):
        bare: Callable[[Any], Any] = bulkhead()
        return bare(name)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a str or None, got {name!r} ({type(name).__name__})")
    if name == "":
        raise ValueError("name must not be empty (pass None, or leave it out, for the function's module.qualname)")
    _validate.bulkhead_settings("unnamed" if name is None else name, max_concurrent, max_wait, time.monotonic)

    def decorate(func: Callable[..., Any]) -> Any:
        rewrapped = _descriptors.rewrap(func, decorate)
        if rewrapped is not None:
            return rewrapped
        _validate.callable_arg("func", func)
        pool = bulkheads.get_or_create(default_name(func) if name is None else name, max_concurrent, max_wait)
        return _core.guard_bulkhead(pool, func)

    return decorate
