"""Async deadlines: the twin's dispatch over the shared registry, and the paths off asyncio.

The registry (one per asyncio loop, one loop timer for all its pending
deadlines) and its decisions are :mod:`hardy.policies.async_deadlines`,
which both cores run; this module is the twin's way into it
(:func:`await_within`) and what both cores share around it: the answer
after a timeout (:func:`timed_out_answer`) and the paths for a call that
does not run inside an asyncio task (:func:`answer_outside_a_task`).

Deadlines are read on ``time.monotonic()`` and the timer armed with
``loop.call_later``, which any loop provides (uvloop included). A call that
does not run inside an asyncio task (a coroutine driven by hand) is refused
as ``asyncio.timeout`` refuses it. Under trio (and anyio on trio) a deadline
is trio's own cancel scope instead (:func:`_await_in_trio`).
"""

from __future__ import annotations

import asyncio
import time
import types
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from . import _aio, _timeout_log
from .policies.async_deadlines import UNCANCEL, DeadlineRegistry, deadline_enter, deadline_settle, new_registry

__all__ = ["Elapsed", "answer_outside_a_task", "await_within", "registry_of", "timed_out_answer"]

T = TypeVar("T")

_monotonic = time.monotonic
_get_running_loop = asyncio._get_running_loop
# 3.10 and 3.11 define current_task() in Python over this dict; 3.12+ in C.
current_task: Callable[[Any], Any] = (
    asyncio.current_task
    if isinstance(asyncio.current_task, types.BuiltinFunctionType)
    else getattr(asyncio.tasks, "_current_tasks").get  # noqa: B009 - private, not in the stubs
)
_CancelledError = asyncio.CancelledError
_ATTRIBUTE = "_hardy_deadlines"  # the compiled core keeps its own registry under another name
_sniffio_local = _aio._sniffio_local


class Elapsed(Exception):
    """Internal: the deadline of :func:`await_within` passed."""


def registry_of(loop: asyncio.AbstractEventLoop) -> DeadlineRegistry:
    """The twin's deadline registry of ``loop``, made on first use (kept on the loop itself).

    Example::

        registry_of(asyncio.get_running_loop()).lane_sizes()  # {seconds: pending calls}
    """
    registry: DeadlineRegistry | None = getattr(loop, _ATTRIBUTE, None)
    if registry is None:
        registry = new_registry()
        setattr(loop, _ATTRIBUTE, registry)
    return registry


async def await_within(awaitable: Awaitable[T], seconds: float) -> T:
    """Await ``awaitable`` on the running loop; raise :class:`Elapsed` at the deadline."""
    # Any: cancelling()/uncancel() are 3.11+, and the registry rides on the loop.
    loop: Any = _get_running_loop()
    task: Any = None if loop is None else current_task(loop)
    if loop is None or task is None:
        return await await_outside_a_task(awaitable, seconds, loop)
    try:
        registry = loop._hardy_deadlines
    except AttributeError:
        registry = registry_of(loop)
    lane = registry.lane(seconds)
    node = deadline_enter(
        registry, lane, loop, None, task, task.cancelling() if UNCANCEL else 0, _monotonic() + seconds
    )
    try:
        result = await awaitable
    except _CancelledError:
        if deadline_settle(lane, node, task, True):
            raise Elapsed from None
        raise
    except BaseException:
        deadline_settle(lane, node, task, False)
        raise
    deadline_settle(lane, node, task, False)
    return result


async def timed_out_answer(
    operation: str | None,
    limit: float,
    fallback: Callable[..., Any] | None,
    fallback_is_async: bool,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """After a timed call's own deadline passed: raise ``hardy.TimeoutError``, or answer with the fallback.

    With no ``operation`` (a core's ``await_within``), raise :class:`Elapsed`: the caller reports it.
    """
    if operation is None:
        raise Elapsed
    error = _timeout_log.timed_out(operation, limit)
    if fallback is None:
        raise error
    result = fallback(*args, **kwargs)
    if fallback_is_async:
        result = await result
    _timeout_log.fallback_answered(operation)
    return result


async def answer_outside_a_task(
    awaitable: Awaitable[Any],
    seconds: float,
    loop: Any,
    operation: str | None,
    fallback: Callable[..., Any] | None,
    fallback_is_async: bool,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """A timed call's ``awaitable`` where no asyncio task runs it (the compiled core hands it over here)."""
    try:
        return await await_outside_a_task(awaitable, seconds, loop)
    except Elapsed:
        pass
    return await timed_out_answer(operation, seconds, fallback, fallback_is_async, args, kwargs)


async def await_outside_a_task(awaitable: Awaitable[T], seconds: float, loop: Any) -> T:
    """Under trio (sniffio says so), trio's own deadline; on an asyncio loop outside a task, refused."""
    if loop is not None and (_sniffio_local is None or _sniffio_local.name in (None, "asyncio")):
        # A coroutine driven by hand: refused as asyncio.timeout refuses it.
        _close(awaitable)
        raise RuntimeError("a hardy timeout must be used inside an asyncio task")
    return await _await_elsewhere(awaitable, seconds)


def _close(awaitable: object) -> None:
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()  # it will never run: do not let it warn that it was never awaited


async def _await_elsewhere(awaitable: Awaitable[T], seconds: float) -> T:
    try:
        name = _aio.library()
    except RuntimeError:
        _close(awaitable)
        raise
    if name != _aio.TRIO:  # sniffio says asyncio, but no asyncio loop runs in this thread
        _close(awaitable)
        raise _aio.UnsupportedLibraryError("no running asyncio loop in this thread, though sniffio reports asyncio")
    return await _await_in_trio(awaitable, seconds)


async def _await_in_trio(awaitable: Awaitable[T], seconds: float) -> T:
    # trio's own deadline: its cancel scope catches the Cancelled it caused
    # and nothing else, so a cancellation from outside (an enclosing scope,
    # anyio's included) passes through as it is, and nested scopes honour
    # the tightest deadline.
    import trio

    with trio.move_on_after(seconds):
        return await awaitable
    raise Elapsed  # only the scope's own cancellation, caught, leaves it without a result
