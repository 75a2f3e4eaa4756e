"""Circuit breakers by name: the ``circuit_breaker`` decorator and its registry.

The breaker itself (:class:`~hardy.CircuitBreaker`) lives in the core; this
module keeps the process-wide registry that lets functions share a breaker by
name, and the decorator that uses it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

from . import _core, _descriptors, _validate
from ._types import (
    BreakerDecorator,
    ExceptionsArg,
    P,
    ProtectedCallable,
    ProtectedClassMethod,
    ProtectedStaticMethod,
    R,
)

if TYPE_CHECKING:
    from ._core import CircuitBreaker
    from .store import BreakerStore
    from .window import CountWindow, TimeWindow

__all__ = ["BreakerRegistry", "ProtectedCallable", "circuit_breaker", "get_circuit_breaker", "registry"]


def _settings(breaker: CircuitBreaker) -> tuple[Any, ...]:
    failures = breaker.failure_exceptions
    return (
        breaker.failure_threshold,
        breaker.reset_timeout,
        breaker.half_open_max_calls,
        frozenset(breaker.excluded_exceptions),
        breaker.store,
        None if failures is None else frozenset(failures),
        breaker.failure_on_result,
        breaker.success_threshold,
        breaker.half_open_max_wait,
        breaker.reset_backoff,
        breaker.max_reset_timeout,
        breaker.window,
    )


class BreakerRegistry:
    """The named circuit breakers of a process.

    Example::

        breaker = hardy.registry.get_or_create("db", failure_threshold=3)
        assert hardy.get_circuit_breaker("db") is breaker
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, name: str) -> CircuitBreaker | None:
        """The breaker registered under ``name``, or ``None``."""
        return self._breakers.get(name)

    def get_or_create(
        self,
        name: str,
        failure_threshold: int = 5,
        reset_timeout: float = 60.0,
        half_open_max_calls: int = 3,
        excluded_exceptions: ExceptionsArg | None = None,
        store: BreakerStore | None = None,
        *,
        failure_exceptions: ExceptionsArg | None = None,
        failure_on_result: Callable[[Any], object] | None = None,
        success_threshold: int | None = None,
        half_open_max_wait: float | None = None,
        reset_backoff: float = 1.0,
        max_reset_timeout: float | None = None,
        window: CountWindow | TimeWindow | None = None,
    ) -> CircuitBreaker:
        """Return the breaker named ``name``, creating it with these settings.

        Asking for an existing name with different settings raises
        :class:`ValueError`: two call sites that disagree on a breaker's
        configuration are a bug, not something to settle silently.
        """
        checked = _validate.breaker_settings(
            name,
            failure_threshold,
            reset_timeout,
            half_open_max_calls,
            excluded_exceptions,
            time.monotonic,
            failure_exceptions=failure_exceptions,
            failure_on_result=failure_on_result,
            success_threshold=success_threshold,
            half_open_max_wait=half_open_max_wait,
            reset_backoff=reset_backoff,
            max_reset_timeout=max_reset_timeout,
            window=window,
        )
        threshold, timeout_s, max_calls = checked.failure_threshold, checked.reset_timeout, checked.half_open_max_calls
        excluded = checked.excluded_exceptions
        if store is not None:
            _validate.breaker_store(store)
        failures = checked.failure_exceptions
        wanted = (
            threshold,
            timeout_s,
            max_calls,
            frozenset(excluded),
            store,
            None if failures is None else frozenset(failures),
            checked.failure_on_result,
            checked.success_threshold,
            None if checked.half_open_max_wait == 0.0 else checked.half_open_max_wait,
            checked.reset_backoff,
            None if checked.max_reset_timeout == _validate.NO_CAP else checked.max_reset_timeout,
            checked.window,
        )
        with self._lock:
            existing = self._breakers.get(name)
            if existing is None:
                # Made under the lock: a breaker with a store binds to it, and
                # a discarded duplicate would stay bound.
                created = _core.CircuitBreaker(
                    name,
                    failure_threshold,
                    reset_timeout,
                    half_open_max_calls,
                    excluded_exceptions,
                    store=store,
                    failure_exceptions=failure_exceptions,
                    failure_on_result=failure_on_result,
                    success_threshold=success_threshold,
                    half_open_max_wait=half_open_max_wait,
                    reset_backoff=reset_backoff,
                    max_reset_timeout=max_reset_timeout,
                    window=window,
                )
                self._breakers[name] = created
                return created
        if _settings(existing) != wanted:
            raise ValueError(
                f"circuit breaker {name!r} already exists with other settings: "
                f"(failure_threshold, reset_timeout, half_open_max_calls, excluded_exceptions, store, "
                f"failure_exceptions, failure_on_result, success_threshold, half_open_max_wait, "
                f"reset_backoff, max_reset_timeout, window) "
                f"= {_settings(existing)}, asked for {wanted}"
            )
        return existing

    def register(self, breaker: CircuitBreaker) -> CircuitBreaker:
        """Add a breaker made by hand; a :class:`ValueError` if the name is taken."""
        with self._lock:
            if breaker.name in self._breakers and self._breakers[breaker.name] is not breaker:
                raise ValueError(f"a circuit breaker named {breaker.name!r} is already registered")
            self._breakers[breaker.name] = breaker
        return breaker

    def all(self) -> dict[str, CircuitBreaker]:
        """A snapshot of every registered breaker, by name."""
        with self._lock:
            return dict(self._breakers)

    def remove(self, name: str) -> CircuitBreaker | None:
        """Forget the breaker named ``name`` and return it (``None`` if absent)."""
        with self._lock:
            return self._breakers.pop(name, None)

    def clear(self) -> None:
        """Forget every breaker."""
        with self._lock:
            self._breakers.clear()


registry: BreakerRegistry = BreakerRegistry()
"""The process-wide :class:`BreakerRegistry` that :func:`circuit_breaker` and :func:`get_circuit_breaker` use."""


def get_circuit_breaker(name: str) -> CircuitBreaker | None:
    """The breaker registered under ``name``, or ``None``.

    Example::

        @hardy.circuit_breaker(name="inventory")
        def stock(sku: str) -> int: ...

        hardy.get_circuit_breaker("inventory").get_stats()
    """
    return registry.get(name)


def _default_name(func: Callable[..., Any]) -> str:
    target: Any = func
    while hasattr(target, "func") and not hasattr(target, "__qualname__"):  # functools.partial
        target = target.func
    module = getattr(target, "__module__", None) or "<unknown>"
    qualname = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
    if qualname is None:
        qualname = type(target).__qualname__
    return f"{module}.{qualname}"


# Bare use first: on a static or class method (hardy above @staticmethod /
# @classmethod), then on any callable; then the called form.
@overload
def circuit_breaker(name: staticmethod[P, R], /) -> ProtectedStaticMethod[P, R]: ...  # type: ignore[overload-overlap]  # pyright: ignore[reportOverlappingOverload]


@overload
def circuit_breaker(name: classmethod[Any, P, R], /) -> ProtectedClassMethod[P, R]: ...


@overload
def circuit_breaker(name: Callable[P, R], /) -> ProtectedCallable[P, R]: ...


@overload
def circuit_breaker(
    name: str | None = None,
    failure_threshold: int = 5,
    reset_timeout: float = 60.0,
    half_open_max_calls: int = 3,
    excluded_exceptions: ExceptionsArg | None = None,
    fallback: Callable[..., Any] | None = None,
    store: BreakerStore | None = None,
    *,
    failure_exceptions: ExceptionsArg | None = None,
    failure_on_result: Callable[[Any], object] | None = None,
    success_threshold: int | None = None,
    half_open_max_wait: float | None = None,
    reset_backoff: float = 1.0,
    max_reset_timeout: float | None = None,
    window: CountWindow | TimeWindow | None = None,
) -> BreakerDecorator: ...


def circuit_breaker(
    name: str | Callable[..., Any] | staticmethod[Any, Any] | classmethod[Any, Any, Any] | None = None,
    failure_threshold: int = 5,
    reset_timeout: float = 60.0,
    half_open_max_calls: int = 3,
    excluded_exceptions: ExceptionsArg | None = None,
    fallback: Callable[..., Any] | None = None,
    store: BreakerStore | None = None,
    *,
    failure_exceptions: ExceptionsArg | None = None,
    failure_on_result: Callable[[Any], object] | None = None,
    success_threshold: int | None = None,
    half_open_max_wait: float | None = None,
    reset_backoff: float = 1.0,
    max_reset_timeout: float | None = None,
    window: CountWindow | TimeWindow | None = None,
) -> Any:
    """Protect a function with a named circuit breaker from the registry.

    The name defaults to the function's ``module.qualname``; functions that
    use the same name share one breaker. ``fallback``, when given, is called
    with the same arguments instead of raising :class:`~hardy.CircuitOpenError`
    when the breaker rejects a call (and awaited if it is async). The wrapper
    exposes its breaker as ``.breaker``. Works bare (``@circuit_breaker``) and
    called (``@circuit_breaker(...)``), on functions, ``async def`` functions,
    methods, static and class methods (above or below ``@staticmethod`` /
    ``@classmethod``) and other callables. With ``store=`` (a :class:`~hardy.RedisStore`)
    the breaker's circuit is shared by every process that uses the store. With
    ``window=`` (a :class:`~hardy.CountWindow` or :class:`~hardy.TimeWindow`)
    the breaker opens on a failure or slow-call rate instead of
    ``failure_threshold`` consecutive failures.

    Example::

        @hardy.circuit_breaker(failure_threshold=3, reset_timeout=30, fallback=lambda user_id: None)
        async def fetch_profile(user_id: int) -> dict[str, str]: ...

        fetch_profile.breaker.get_stats()
    """
    if isinstance(name, (staticmethod, classmethod)) or (callable(name) and not isinstance(name, str)):
        bare: Callable[[Any], Any] = circuit_breaker()
        return bare(name)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a str or None, got {name!r} ({type(name).__name__})")
    if name == "":
        # Not "no name": an empty name must not quietly become the default one.
        raise ValueError("name must not be empty (pass None, or leave it out, for the function's module.qualname)")
    if fallback is not None:
        _validate.callable_arg("fallback", fallback)
    if store is not None:
        _validate.breaker_store(store)
    # Check the settings now, at the point of the mistake, not at decoration.
    _validate.breaker_settings(
        "unnamed" if name is None else name,
        failure_threshold,
        reset_timeout,
        half_open_max_calls,
        excluded_exceptions,
        time.monotonic,
        failure_exceptions=failure_exceptions,
        failure_on_result=failure_on_result,
        success_threshold=success_threshold,
        half_open_max_wait=half_open_max_wait,
        reset_backoff=reset_backoff,
        max_reset_timeout=max_reset_timeout,
        window=window,
    )

    def decorate(func: Callable[..., Any]) -> Any:
        rewrapped = _descriptors.rewrap(func, decorate)
        if rewrapped is not None:
            return rewrapped
        _validate.callable_arg("func", func)
        breaker = registry.get_or_create(
            _default_name(func) if name is None else name,
            failure_threshold,
            reset_timeout,
            half_open_max_calls,
            excluded_exceptions,
            store,
            failure_exceptions=failure_exceptions,
            failure_on_result=failure_on_result,
            success_threshold=success_threshold,
            half_open_max_wait=half_open_max_wait,
            reset_backoff=reset_backoff,
            max_reset_timeout=max_reset_timeout,
            window=window,
        )
        return _core.protect(breaker, func, fallback)

    return decorate
