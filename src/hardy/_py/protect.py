"""The wrapper of a protected function in the twin (the compiled one is ``hardy/_c/protect.pxi``).

A closed breaker's call touches two fields and no lock; every other state
goes through the breaker's dispatch (:mod:`hardy._py.breaker`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from .. import _retry_gen, _validate, _wrapping
from ..policies import breaker as policy
from ..policies.breaker import FLAG_SLOW, FLAG_WINDOW
from .breaker import GIL_ENABLED, CircuitBreaker

if TYPE_CHECKING:
    from .._types import P, ProtectedCallable, R

__all__ = ["protect"]


def protect(
    breaker: CircuitBreaker,
    func: Callable[P, R],
    fallback: Callable[..., Any] | None = None,
) -> ProtectedCallable[P, R]:
    """Wrap ``func`` so that every call goes through ``breaker``.

    A rejected call returns ``fallback(*args, **kwargs)`` (awaited when the
    fallback is async) when one is given, else raises ``CircuitOpenError``.
    """
    if not isinstance(breaker, CircuitBreaker):
        raise TypeError(f"breaker must be a CircuitBreaker, got {breaker!r}")
    _validate.initialised(breaker, getattr(breaker, "_name", None) is not None)
    _validate.callable_arg("func", func)
    if fallback is not None:
        _validate.callable_arg("fallback", fallback)
    if _retry_gen.is_generator_function(func):
        return _retry_gen.protect_generator(breaker, func, fallback)  # type: ignore[no-any-return]
    b = breaker
    plain: Callable[..., Any] = func  # called with positional arguments only
    if b._flags & FLAG_SLOW:
        return _protect_slow_tracked(b, func, fallback)
    if b._flags == FLAG_WINDOW and not _wrapping.is_async_callable(func):
        window = policy.window_of(b)
        if window and not policy.window_timed(window):
            return _protect_count_windowed(b, func, fallback)
    # Every success goes through the policy when the GIL does not make the
    # closed-state count atomic, or when the breaker judges results (its
    # flags are set once, at construction).
    judged = not GIL_ENABLED or bool(b._flags)
    if _wrapping.is_async_callable(func):
        fallback_is_async = fallback is not None and _wrapping.is_async_callable(fallback)
        async_func = cast("Callable[..., Awaitable[Any]]", func)

        async def protected_async(*args: Any, **kwargs: Any) -> Any:
            if b._state:
                epoch = b._admit()
                if epoch < 0:
                    if fallback is None:
                        raise b._rejection()
                    if fallback_is_async:
                        return await fallback(*args, **kwargs)
                    return fallback(*args, **kwargs)
            else:
                epoch = b._epoch
            try:
                # Without keywords, f(*args): a call through ** costs a mapping more.
                result = await (async_func(*args, **kwargs) if kwargs else async_func(*args))
            except BaseException as exc:
                b._on_exception(exc, epoch)
                raise
            if b._state or b._failure_count or judged:
                b._on_result(epoch, result)
            else:
                b._successes += 1
            return result

        wrapper = _wrapping.copy_metadata(protected_async, func, is_async=True)
        wrapper.breaker = breaker
        return wrapper  # type: ignore[no-any-return]

    def protected(*args: Any, **kwargs: Any) -> Any:
        if b._state:
            epoch = b._admit()
            if epoch < 0:
                if fallback is None:
                    raise b._rejection()
                return fallback(*args, **kwargs)
        else:
            epoch = b._epoch
        try:
            # Without keywords, f(*args): a call through ** costs a mapping more.
            result = func(*args, **kwargs) if kwargs else plain(*args)
        except BaseException as exc:
            b._on_exception(exc, epoch)
            raise
        # The closed-state success needs no lock under the GIL: adding one to
        # an int attribute runs no Python code, so it cannot be interleaved.
        if b._state or b._failure_count or judged:
            b._on_result(epoch, result)
        else:
            b._successes += 1
        return result

    wrapper = _wrapping.copy_metadata(protected, func, is_async=False)
    wrapper.breaker = breaker
    return wrapper  # type: ignore[no-any-return]


def _protect_slow_tracked(
    b: CircuitBreaker, func: Callable[P, R], fallback: Callable[..., Any] | None
) -> ProtectedCallable[P, R]:
    """``protect`` for a breaker whose window tracks slow calls: each call's duration is measured, from
    the admission to the end of the call (of the awaited call, for an async function)."""
    plain: Callable[..., Any] = func  # called with positional arguments only
    if _wrapping.is_async_callable(func):
        fallback_is_async = fallback is not None and _wrapping.is_async_callable(fallback)
        async_func = cast("Callable[..., Awaitable[Any]]", func)

        async def protected_async(*args: Any, **kwargs: Any) -> Any:
            epoch = b._admit()
            if epoch < 0:
                if fallback is None:
                    raise b._rejection()
                if fallback_is_async:
                    return await fallback(*args, **kwargs)
                return fallback(*args, **kwargs)
            start = b._call_start(epoch)
            try:
                result = await async_func(*args, **kwargs)
            except BaseException as exc:
                b._on_exception(exc, epoch, start)
                raise
            b._on_result(epoch, result, start)
            return result

        wrapper = _wrapping.copy_metadata(protected_async, func, is_async=True)
        wrapper.breaker = b
        return wrapper  # type: ignore[no-any-return]

    def protected(*args: Any, **kwargs: Any) -> Any:
        epoch = b._admit()
        if epoch < 0:
            if fallback is None:
                raise b._rejection()
            return fallback(*args, **kwargs)
        start = b._call_start(epoch)
        try:
            # Without keywords, f(*args): a call through ** costs a mapping more.
            result = func(*args, **kwargs) if kwargs else plain(*args)
        except BaseException as exc:
            b._on_exception(exc, epoch, start)
            raise
        b._on_result(epoch, result, start)
        return result

    wrapper = _wrapping.copy_metadata(protected, func, is_async=False)
    wrapper.breaker = b
    return wrapper  # type: ignore[no-any-return]


def _protect_count_windowed(
    b: CircuitBreaker, func: Callable[P, R], fallback: Callable[..., Any] | None
) -> ProtectedCallable[P, R]:
    """``protect`` for a sync function under a breaker whose only flag is a count window: a success
    that only needs recording is recorded here (``record_window_success``), anything else goes
    through the breaker's dispatch."""
    plain: Callable[..., Any] = func  # called with positional arguments only
    lock = b._lock
    record = policy.record_window_success
    w = policy.window_of(b)
    assert w is not None  # a count window's breaker
    unlocked = GIL_ENABLED  # without the GIL every success takes the lock

    def protected(*args: Any, **kwargs: Any) -> Any:
        if b._state:
            epoch = b._admit()
            if epoch < 0:
                if fallback is None:
                    raise b._rejection()
                return fallback(*args, **kwargs)
        else:
            epoch = b._epoch
        try:
            # Without keywords, f(*args): a call through ** costs a mapping more.
            result = func(*args, **kwargs) if kwargs else plain(*args)
        except BaseException as exc:
            b._on_exception(exc, epoch)
            raise
        if w._settled and not b._state and epoch == b._epoch and unlocked:
            # record_window_success's two adds, made here: under the GIL no
            # other thread runs between these reads and adds (no Python code
            # runs in them), as for the plain closed-state success above.
            b._successes += 1
            w._pending += 1
            return result
        with lock:
            done = record(b, epoch)
        if not done:
            b._on_result(epoch, result)
        return result

    wrapper = _wrapping.copy_metadata(protected, func, is_async=False)
    wrapper.breaker = b
    return wrapper  # type: ignore[no-any-return]
