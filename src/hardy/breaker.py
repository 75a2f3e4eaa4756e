"""Circuit breakers by name: the ``circuit_breaker`` decorator and its registry.

The breaker itself (:class:`~hardy.CircuitBreaker`) lives in the core; this
module keeps the process-wide registry that lets functions share a breaker by
name, and the decorator that uses it.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, overload

from . import _core, _descriptors, _keyed, _validate
from ._keyed import KeyedBreakerDecorator, KeyedBreakers, KeyedCallable, KeyedClassMethod, KeyedStaticMethod
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

__all__ = [
    "BreakerRegistry",
    "KeyedBreakerDecorator",
    "KeyedBreakers",
    "KeyedCallable",
    "KeyedClassMethod",
    "KeyedStaticMethod",
    "ProtectedCallable",
    "circuit_breaker",
    "get_circuit_breaker",
    "registry",
]

#: How many keys a keyed ``circuit_breaker(key=...)`` keeps when ``max_keys`` is not given.
DEFAULT_MAX_KEYS = 1024


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
        breaker._trials_by_rate,  # a window's rates, or success_threshold, judge the trials
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
        # The keyed names (circuit_breaker(key=...)): their per-key breakers
        # are in _breakers, as f"{name}[{key!r}]".
        self._groups: dict[str, _keyed.BreakerGroup] = {}

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
            checked.success_threshold or max_calls,  # 0: not given
            None if checked.half_open_max_wait == 0.0 else checked.half_open_max_wait,
            checked.reset_backoff,
            None if checked.max_reset_timeout == _validate.NO_CAP else checked.max_reset_timeout,
            checked.window,
            checked.window is not None and checked.success_threshold == 0,
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
                f"reset_backoff, max_reset_timeout, window, trials judged by rate) "
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
            self._groups.clear()

    def _group(self, name: str, identity: object, make: Callable[[], _keyed.BreakerGroup]) -> _keyed.BreakerGroup:
        """The keyed breakers named ``name``, made by ``make()`` on first use; other settings: a ValueError."""
        with self._lock:
            group = self._groups.get(name)
            if group is None:
                group = self._groups[name] = make()
                return group
        if group.identity != identity:
            raise ValueError(
                f"keyed circuit breaker {name!r} already exists with other settings (or another max_keys): "
                f"{group.identity}, asked for {identity}"
            )
        return group

    def _discard(self, breaker: CircuitBreaker) -> None:
        """Forget ``breaker`` if it is the one registered under its name (an evicted keyed breaker)."""
        with self._lock:
            if self._breakers.get(breaker.name) is breaker:
                del self._breakers[breaker.name]


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
    key: Callable[..., Hashable],
    max_keys: int | None = None,
) -> KeyedBreakerDecorator: ...


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
    key: None = None,
    max_keys: None = None,
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
    key: Callable[..., Hashable] | None = None,
    max_keys: int | None = None,
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

    With ``key=``, each call goes through the breaker of
    ``key(*args, **kwargs)``: one breaker per key, all with these settings,
    made on first use, registered as ``f"{name}[{key!r}]"`` and kept for at
    most ``max_keys`` keys (default 1024; the least recently used closed
    one is evicted first). The wrapper then exposes them as ``.breakers``
    (a read-only mapping, key -> breaker) instead of ``.breaker``.

    Example::

        @hardy.circuit_breaker(failure_threshold=3, reset_timeout=30, fallback=lambda user_id: None)
        async def fetch_profile(user_id: int) -> dict[str, str]: ...

        fetch_profile.breaker.get_stats()

        @hardy.circuit_breaker(key=lambda url, **_: urlsplit(url).netloc, max_keys=1024)
        def fetch(url: str, timeout: float = 5.0) -> bytes: ...

        fetch.breakers["example.org"].state   # one dead host trips its own breaker only
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
    keys = DEFAULT_MAX_KEYS
    if key is not None:
        _validate.callable_arg("key", key)
        keys = DEFAULT_MAX_KEYS if max_keys is None else _validate.positive_int("max_keys", max_keys)
    elif max_keys is not None:
        _validate.positive_int("max_keys", max_keys)
        raise ValueError(f"max_keys applies only with key= (one breaker per key), got max_keys={max_keys!r}")
    # Check the settings now, at the point of the mistake, not at decoration.
    checked = _validate.breaker_settings(
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
        if key is not None:
            return _keyed_function(_default_name(func) if name is None else name, func, key, keys)
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

    def _keyed_function(group_name: str, func: Callable[..., Any], key: Callable[..., Hashable], keys: int) -> Any:
        def make_breaker(breaker_name: str) -> CircuitBreaker:
            return registry.get_or_create(
                breaker_name,
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

        # The settings as checked (the name aside), the store and the bound:
        # two functions asking for one keyed name must agree on all three.
        identity = (_replace_name(checked), store, keys)
        group = registry._group(
            group_name,
            identity,
            lambda: _keyed.BreakerGroup(
                group_name,
                keys,
                make_breaker,
                registry._discard,
                identity=identity,
            ),
        )
        return _keyed.protect_keyed(group, func, key, fallback, _core.protect)

    return decorate


def _replace_name(checked: Any) -> Any:
    """``checked`` settings with a neutral name, for comparing the settings alone."""
    return dataclasses.replace(checked, name="")
