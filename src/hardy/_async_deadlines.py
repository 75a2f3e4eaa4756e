"""Async deadlines on an asyncio loop without a loop timer per call.

``asyncio.timeout()`` schedules a timer handle per call and cancels it when
the call leaves: tens of times the cost of the ``await`` it guards. Here
each loop keeps its pending deadlines in one registry, and one loop timer is
armed for the earliest of them:

- **Lanes.** Deadlines of the same duration expire in the order they were
  entered, so each duration has a FIFO lane (a deque). Entering a deadline
  appends a node ``[task, when, cancelling, state]`` to its lane; leaving it
  marks the node left and, when it is the lane's head (the usual case: calls
  of one duration finish roughly in order), pops it with every left node
  behind it. A left node stuck behind one still running is dropped when that
  one leaves or expires, so a lane holds at most the calls entered during one
  period of its duration.
- **One timer.** The registry remembers when its timer is armed; entering a
  deadline earlier than that (a shorter duration) re-arms it, anything else
  writes nothing but the node. The timer callback (``_fire``) expires every
  due node, then arms the timer for the earliest pending one. A timer that
  fires for a deadline that has left meanwhile finds nothing due and moves
  on: a deadline that does not fire costs no loop operation at all, and a
  steady stream of calls of one duration costs one timer per period.
- **Expiry** cancels the task, as ``asyncio.timeout`` does, and the call
  turns that cancellation into :class:`~hardy.TimeoutError` only when it is
  its own: its node is expired and (3.11+) ``task.uncancel()`` brings the
  task's cancel count back to what it was on entry; a cancellation from
  outside stays a cancellation. When several due deadlines belong to one
  task (nested calls, found late), the tightest is expired first and the
  others on the next turn of the loop, so the innermost deadline that passed
  is the one reported, and an outer one that passed too still fires after.

Deadlines are read on ``time.monotonic()`` and the timer armed with
``loop.call_later``, which any loop provides (uvloop included). A call that
does not run inside an asyncio task (a coroutine driven by hand) is refused
as ``asyncio.timeout`` refuses it. Under trio (and anyio on trio) a deadline
is trio's own cancel scope instead (:func:`_await_in_trio`).
"""

from __future__ import annotations

import asyncio
import sys
import time
import types
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from . import _aio

__all__ = ["Elapsed", "await_within", "registry_of"]

T = TypeVar("T")

PENDING = 0
EXPIRED = 1
LEFT = 2
# node fields
TASK = 0
WHEN = 1
CANCELLING = 2
STATE = 3

_monotonic = time.monotonic
_get_running_loop = asyncio._get_running_loop
# 3.10 and 3.11 define current_task() in Python over this dict; 3.12+ in C.
_current_task: Callable[[Any], Any] = (
    asyncio.current_task
    if isinstance(asyncio.current_task, types.BuiltinFunctionType)
    else getattr(asyncio.tasks, "_current_tasks").get  # noqa: B009 - private, not in the stubs
)
_CancelledError = asyncio.CancelledError
_INF = float("inf")
_UNCANCEL = sys.version_info >= (3, 11)
_ATTRIBUTE = "_hardy_deadlines"
_sniffio_local = _aio._sniffio_local


class Elapsed(Exception):
    """Internal: the deadline of :func:`await_within` passed."""


class Registry:
    """The pending deadlines of one loop, in lanes by duration, and its one timer.

    Example::

        registry = registry_of(asyncio.get_running_loop())
        registry.lanes  # {seconds: deque of nodes}
    """

    __slots__ = ("armed", "handle", "lanes", "loop_ref")

    def __init__(self) -> None:
        self.lanes: dict[float, deque[list[Any]]] = {}
        self.armed = _INF  # when the timer fires; inf: no timer
        self.handle: asyncio.TimerHandle | None = None

    def lane(self, seconds: float) -> deque[list[Any]]:
        lane = self.lanes.get(seconds)
        if lane is None:
            lane = self.lanes[seconds] = deque()
        return lane

    def arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        """Arm the timer for ``when`` (monotonic seconds), replacing a later one."""
        if self.handle is not None:
            self.handle.cancel()
        self.armed = when
        self.handle = loop.call_later(max(0.0, when - _monotonic()), self._fire, loop)

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self.handle = None
        self.armed = _INF
        now = _monotonic()
        due: list[list[Any]] = []
        earliest = _INF
        for seconds, lane in list(self.lanes.items()):
            while lane and lane[0][STATE] != PENDING:
                lane.popleft()
            if not lane:
                del self.lanes[seconds]  # a duration no call uses now: forget it
                continue
            for node in lane:
                if node[STATE] != PENDING:
                    continue
                if node[WHEN] > now:
                    earliest = min(earliest, node[WHEN])
                    break
                due.append(node)
        if due:
            # The tightest deadline of a task first: one cancellation per task
            # per turn, so the one reported is the innermost that passed.
            due.sort(key=_when)
            hit: set[int] = set()
            for node in due:
                task = node[TASK]
                if id(task) in hit:
                    earliest = now  # its turn comes next
                    continue
                hit.add(id(task))
                node[STATE] = EXPIRED
                task.cancel()
            for lane in self.lanes.values():
                while lane and lane[0][STATE] != PENDING:
                    lane.popleft()
        if earliest < _INF:
            self.arm(loop, earliest)


def _when(node: list[Any]) -> float:
    return node[WHEN]  # type: ignore[no-any-return]


def registry_of(loop: asyncio.AbstractEventLoop) -> Registry:
    """The deadline registry of ``loop``, made on first use (kept on the loop itself)."""
    registry: Registry | None = getattr(loop, _ATTRIBUTE, None)
    if registry is None:
        registry = Registry()
        setattr(loop, _ATTRIBUTE, registry)
    return registry


async def await_within(awaitable: Awaitable[T], seconds: float) -> T:
    """Await ``awaitable`` on the running asyncio loop; raise :class:`Elapsed` at the deadline."""
    # Any: cancelling()/uncancel() are 3.11+, and the registry rides on the loop.
    loop: Any = _get_running_loop()
    if loop is None or (_sniffio_local is not None and _sniffio_local.name not in (None, "asyncio")):
        return await _await_elsewhere(awaitable, seconds)
    task: Any = _current_task(loop)
    if task is None:
        # Not in a task (a coroutine driven by hand): refused as asyncio.timeout refuses it.
        close = getattr(awaitable, "close", None)
        if close is not None:
            close()
        raise RuntimeError("a hardy timeout must be used inside an asyncio task")
    try:
        registry = loop._hardy_deadlines
    except AttributeError:
        registry = registry_of(loop)
    lane = registry.lanes.get(seconds)
    if lane is None:
        lane = registry.lane(seconds)
    when = _monotonic() + seconds
    node: list[Any] = [task, when, task.cancelling() if _UNCANCEL else 0, PENDING]
    lane.append(node)
    if when < registry.armed:
        registry.arm(loop, when)
    try:
        result = await awaitable
    except _CancelledError:
        if node[STATE] == EXPIRED:
            node[TASK] = None
            if not _UNCANCEL or task.uncancel() <= node[CANCELLING]:
                raise Elapsed from None
            raise
        _leave(lane, node)
        raise
    except BaseException:
        _leave_or_uncancel(lane, node, task)
        raise
    if node[STATE] == PENDING:
        node[TASK] = None
        node[STATE] = LEFT
        if lane[0] is node:
            lane.popleft()
            while lane and lane[0][STATE]:
                lane.popleft()
    else:
        _leave_or_uncancel(lane, node, task)
    return result


def _leave(lane: deque[list[Any]], node: list[Any]) -> None:
    node[TASK] = None
    node[STATE] = LEFT
    if lane and lane[0] is node:
        lane.popleft()
        while lane and lane[0][STATE]:
            lane.popleft()


def _leave_or_uncancel(lane: deque[list[Any]], node: list[Any], task: Any) -> None:
    # Expired, but the call ended another way (it returned a value or raised
    # its own error after the cancellation): that is its outcome, and the
    # cancellation we asked for is taken back, as asyncio.timeout does.
    if node[STATE] == EXPIRED:
        node[TASK] = None
        if _UNCANCEL:
            task.uncancel()
        return
    _leave(lane, node)


async def _await_elsewhere(awaitable: Awaitable[T], seconds: float) -> T:
    try:
        name = _aio.library()
    except RuntimeError:
        close = getattr(awaitable, "close", None)
        if close is not None:
            close()  # it will never run: do not let it warn that it was never awaited
        raise
    if name != _aio.TRIO:  # sniffio says asyncio, but no asyncio loop runs in this thread
        close = getattr(awaitable, "close", None)
        if close is not None:
            close()
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
