"""Timeouts that really interrupt: ``timeout`` and ``with_timeout``.

Async functions are cancelled at the deadline. Sync functions are
interrupted from a shared timer thread (see :mod:`hardy._deadlines`): in any
thread, on every platform, with nested deadlines where the tightest wins, and
``except Exception`` in the wrapped code cannot swallow the deadline. A sync
call blocked inside one C function (a socket read without its own timeout)
is interrupted only when that function returns; ``mode="thread"`` runs the
call in a worker thread instead and abandons it at the deadline.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

from . import _async_deadlines, _core, _descriptors, _timeout_log, _validate, _wrapping
from ._sentinel import NO_DEFAULT, NoDefault
from ._types import Decorator
from .errors import TimeoutError as TimeoutError  # noqa: A004 - re-exported, see below

# TimeoutError is importable from here as from the reference's timeout module,
# and kept out of __all__ (as in hardy itself) so that a star import does not
# replace the builtin.
__all__ = ["timeout", "with_timeout"]

T = TypeVar("T")
D = TypeVar("D")
MODES = ("interrupt", "thread")


# The async deadline (one registry per asyncio loop, trio's cancel scopes
# under trio) and the exception that says it passed; the health manager uses
# them too.
_Elapsed = _async_deadlines.Elapsed


def _await_with_deadline(awaitable: Awaitable[T], seconds: float) -> Awaitable[T]:
    """``awaitable`` under a deadline of the running core, whose registry its ``@timeout`` functions use
    too: nested in or around them, the tightest deadline fires first."""
    return _core.await_within(awaitable, seconds)


def _run_in_thread(func: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any], seconds: float) -> T:
    """Run ``func`` in a daemon thread; give up waiting (and abandon it) after ``seconds``."""
    done = threading.Event()
    outcome: list[Any] = []

    def work() -> None:
        try:
            outcome.append((True, func(*args, **kwargs)))
        except BaseException as exc:  # handed back to the caller below
            outcome.append((False, exc))
        finally:
            done.set()

    threading.Thread(target=work, name="hardy-timeout-worker", daemon=True).start()
    if not done.wait(seconds):
        raise _Elapsed
    ok, value = outcome[0]
    if ok:
        return value  # type: ignore[no-any-return]
    raise value


def _refuse_generators(func: Callable[..., Any], operation: str) -> None:
    # A generator function returns at once; its body runs later, one step
    # per next(), outside any deadline the wrapper could set. Bounding each
    # step would be a different promise from bounding the call, so refuse.
    if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
        kind = "an async generator" if inspect.isasyncgenfunction(func) else "a generator"
        raise TypeError(
            f"timeout cannot bound {operation}: it is {kind} function, whose body runs after the call "
            "returns, one item at a time; put the timeout around the code that consumes it instead"
        )


def _operation(func: object) -> str:
    """The name a timeout gives ``func``: its ``__qualname__`` from the innermost enclosing function.

    ``Class.method`` stays qualified, but the ``outer.<locals>.`` path of a
    function defined inside another is dropped: it names where the function
    was defined, not what timed out, and the reference named such a function
    by its bare name (``slow_func``).
    """
    return _wrapping.qualname(func).rpartition("<locals>.")[2]


def timeout(
    seconds: float,
    error_message: str | None = None,
    fallback: Callable[..., Any] | None = None,
    *,
    mode: str = "interrupt",
) -> Decorator:
    """Give a function ``seconds`` to finish, then raise :class:`hardy.TimeoutError`.

    ``error_message`` names the operation in the error (default: the
    function's qualified name). With ``fallback``, its result for the same
    arguments is returned instead (awaited if async). ``mode`` applies to
    sync functions: ``"interrupt"`` (default) raises inside the running call;
    ``"thread"`` runs the call in a worker thread and abandons it at the
    deadline, for calls blocked in C. Works on functions, ``async def``
    functions, methods, static and class methods (above or below
    ``@staticmethod`` / ``@classmethod``) and other callables.

    Example::

        @hardy.timeout(2.0, fallback=lambda user_id: None)
        async def load_user(user_id: int) -> dict[str, str] | None: ...

        @hardy.timeout(0.5)
        def render(report: Report) -> bytes: ...
    """
    limit = _validate.seconds("seconds", seconds, allow_zero=False)
    if error_message is not None and not isinstance(error_message, str):
        raise TypeError(f"error_message must be a str or None, got {error_message!r}")
    if fallback is not None:
        _validate.callable_arg("fallback", fallback)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    fallback_is_async = fallback is not None and _wrapping.is_async_callable(fallback)

    def decorate(func: Any) -> Any:  # a callable, a staticmethod or a classmethod
        rewrapped = _descriptors.rewrap(func, decorate)
        if rewrapped is not None:
            return rewrapped
        _validate.callable_arg("func", func)
        operation = error_message or _operation(func)
        _refuse_generators(func, operation)
        if _wrapping.is_async_callable(func):
            if mode != "interrupt":
                raise ValueError(f"mode={mode!r} is for sync functions; {operation} is async")

            return _core.timed_async(func, limit, operation, fallback, fallback_is_async)
        if fallback_is_async:
            raise TypeError(f"fallback {fallback!r} is async but {operation} is not: it could not be awaited")

        if mode == "thread":

            def timed_in_thread(*args: Any, **kwargs: Any) -> Any:
                try:
                    return _run_in_thread(func, args, kwargs, limit)
                except _Elapsed:
                    pass
                error = _timeout_log.timed_out(operation, limit)
                if fallback is None:
                    raise error
                result = fallback(*args, **kwargs)
                _timeout_log.fallback_answered(operation)
                return result

            return _wrapping.copy_metadata(timed_in_thread, func, is_async=False)

        return _core.timed(func, limit, operation, fallback)

    return decorate


# Without a fallback value the result is the awaitable's; with one (None
# included) the fallback's type is added to it.
@overload
async def with_timeout(awaitable: Awaitable[T], seconds: float) -> T: ...


@overload
async def with_timeout(awaitable: Awaitable[T], seconds: float, fallback_value: D) -> T | D: ...


async def with_timeout(awaitable: Awaitable[T], seconds: float, fallback_value: object = NO_DEFAULT) -> object:
    """Await ``awaitable`` for at most ``seconds``; it is cancelled at the deadline.

    Then return ``fallback_value`` if one was given (``None`` included), else
    raise ``hardy.TimeoutError("coroutine", seconds)``. For type checkers a
    fallback value widens the result: ``fallback_value=None`` over an
    ``Awaitable[str]`` gives ``str | None``.

    Example::

        page = await hardy.with_timeout(fetch(url), 5.0, fallback_value=None)
    """
    if not hasattr(awaitable, "__await__"):
        raise TypeError(f"awaitable must be awaitable, got {awaitable!r}")
    try:
        limit = _validate.seconds("seconds", seconds, allow_zero=False)
    except (TypeError, ValueError):
        close = getattr(awaitable, "close", None)
        if close is not None:
            close()  # it will never run: do not let it warn that it was never awaited
        raise
    try:
        return await _await_with_deadline(awaitable, limit)
    except _Elapsed:
        pass
    error = _timeout_log.timed_out("coroutine", limit)
    if isinstance(fallback_value, NoDefault):
        raise error
    _timeout_log.fallback_answered("coroutine")
    return fallback_value
