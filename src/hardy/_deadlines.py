"""Deadlines for sync calls, enforced from one shared timer thread.

Each thread that runs a call under ``hardy.timeout`` has a stack of active
deadlines (calls nest; the tightest deadline wins). One timer thread sleeps
until the earliest deadline of all threads; when a deadline passes, it raises
the private :class:`Expired` in the calling thread with
``PyThreadState_SetAsyncExc``. ``Expired`` is a ``BaseException``, so
``except Exception`` cannot catch it. The wrapper turns it into
``hardy.TimeoutError`` on every way out, so it never reaches the caller.

* **Safe points.** The exception is delivered only while the thread runs
  code outside the standard library's lock-handling modules and hardy's own
  (:mod:`hardy._safe_points`); otherwise the timer looks again after
  ``DEFER`` seconds.
* **Re-delivery.** A call that swallowed the exception (a bare ``except:``)
  and keeps running gets it again every ``REDELIVER`` seconds; a call that is
  still handling it (its ``except``, ``finally`` or ``__exit__``) does not,
  so cleanup runs to its end.
* **No late results.** On the way out the wrapper reads the clock: a call
  that ends after its deadline raises ``hardy.TimeoutError`` even if the
  timer could not interrupt it (a long C call; a timer starved of the GIL),
  and its result is dropped.
* **Cancellation.** When a call leaves, a delivery still pending for it is
  cancelled, so a call that finishes before its deadline is never hit later.
* **Lifetime.** The timer thread exits after ``IDLE_EXIT`` seconds without
  deadlines and starts again with the next one; a forked child starts its
  own.

What it can interrupt: Python code, including ``time.sleep`` (the exception
is raised when the sleep returns, after at most the sleep's length). It
cannot interrupt a single blocking C call (``socket.recv`` without a
timeout, a long C extension routine): the exception is raised when that call
returns to Python. Use ``mode="thread"`` for those.

The compiled core keeps its own registry of deadlines (in C, so that every
operation on it is atomic under the GIL) and registers it here: the timer
thread serves every registry in ``_registries``.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import _safe_points
from .policies.deadlines import DEFER, DELIVER, HOLD, IDLE_EXIT, LATER, REDELIVER, TICK, due_at, next_look, on_due

__all__ = [
    "DEFER",
    "IDLE_EXIT",
    "REDELIVER",
    "TICK",
    "Entry",
    "Expired",
    "Registry",
    "add_registry",
    "claimed_elsewhere",
    "enter",
    "leave",
    "noop",
    "prepare",
    "timer_thread",
    "wake",
]

# REDELIVER, DEFER, TICK and IDLE_EXIT are hardy.policies.deadlines'. A new
# deadline at least TICK away needs no wake-up call (``_next_wake`` says when
# the timer looks next), so a busy caller never hands the GIL to the timer
# per call.

# Two prototypes of one C function: raise an exception class in a thread,
# or (NULL) cancel one set there but not yet raised. PYFUNCTYPE keeps the GIL.
_set_async_exc = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.py_object)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
)
_clear_async_exc = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
)


class Expired(BaseException):
    """Raised into a thread whose deadline passed; the decorator turns it into TimeoutError."""


# Before 3.12, cancelling a pending asynchronous exception (SetAsyncExc with
# NULL) leaves the interpreter's "async exception" signal set for good: every
# later eval-breaker check takes the slow path, and on 3.11 a traced or
# profiled function then loops for ever at its first instruction. There a
# pending delivery is taken instead: it raises in a no-op call, and is caught.
_CANCEL_BY_RAISING = sys.version_info < (3, 12)


def noop() -> None:
    """Does nothing; calling it lets a pending asynchronous exception raise."""


@dataclass(eq=False, slots=True)
class Entry:
    deadline: float
    thread: int
    state: int  # the thread's PyThreadState address (see _safe_points.verdict)
    active: bool = True
    fired: bool = False
    next_delivery: float = field(default=0.0)


_lock = threading.Lock()
_wake = threading.Condition(_lock)
_stacks: dict[int, list[Entry]] = {}
_timer: threading.Thread | None = None
_next_wake = float("inf")


class Registry(Protocol):
    """What the timer thread needs from a set of deadlines (the compiled core has one)."""

    def fire_due(self, now: float) -> float:
        """Raise in the threads whose deadline passed; return the next time to look."""
        ...

    def is_empty(self) -> bool:
        """True when no deadline is active."""
        ...

    def retire(self) -> bool:
        """If no deadline is active, forget the timer (the next deadline wakes a new one): True then."""
        ...

    def after_fork(self, thread: int) -> None:
        """In a forked child: keep only the deadlines of ``thread``, the one that survived."""
        ...


class _PythonRegistry:
    """The twin's deadlines: per-thread stacks, guarded by ``_lock``."""

    def fire_due(self, now: float) -> float:
        # Called by the timer thread with _lock held; the compiled core's
        # _dl_fire_due takes the same decisions (hardy.policies.deadlines) in
        # the same order: each thread's deadlines innermost first.
        soonest = float("inf")
        seen: Any = None
        for thread, stack in _stacks.items():
            verdict = -1
            delivered = False
            for entry in reversed(stack):
                if not entry.active:
                    continue
                due = due_at(entry.fired, entry.deadline, entry.next_delivery)
                if due <= now:
                    if delivered:
                        action = LATER
                    else:
                        if verdict < 0:  # looked at once per thread, and only when needed
                            if seen is None:
                                seen = _safe_points.snapshot()
                            verdict = _safe_points.verdict(thread, seen, Expired, entry.state)
                        action = on_due(entry.fired, verdict, False)
                    due = next_look(action, now)
                    if action == DELIVER:
                        entry.fired = True
                        _set_async_exc(thread, Expired)
                        delivered = True
                    if action in (DELIVER, HOLD):
                        entry.next_delivery = due
                soonest = min(soonest, due)
        return min(soonest, now + TICK)

    def is_empty(self) -> bool:
        return not _stacks

    def retire(self) -> bool:
        return not _stacks

    def after_fork(self, thread: int) -> None:
        survivor = _stacks.get(thread)
        _stacks.clear()
        if survivor:
            _stacks[thread] = survivor


_registries: list[Registry] = [_PythonRegistry()]


def add_registry(registry: Registry) -> None:
    """Let the timer thread serve another registry (the compiled core's)."""
    with _lock:
        _registries.append(registry)


def wake(deadline: float) -> None:
    """A deadline at ``deadline`` was added: make sure the timer looks by then."""
    global _next_wake, _timer
    with _lock:
        if deadline < _next_wake:
            _next_wake = deadline
            if _timer is None:
                _timer = threading.Thread(target=_run, name="hardy-deadlines", daemon=True)
                _timer.start()
            else:
                _wake.notify()


def prepare(seconds: float) -> Entry:
    """A deadline ``seconds`` from now for the calling thread, not yet active.

    Registration is a separate step (:func:`enter`) so that the caller holds
    the entry *before* it can fire: a delivery that interrupts ``enter``
    itself is then still cleaned up by the caller's ``leave``.
    """
    return Entry(time.monotonic() + seconds, threading.get_ident(), _safe_points.thread_state())


def enter(entry: Entry) -> None:
    """Make ``entry`` active: the timer thread will raise at its deadline."""
    with _lock:
        if not entry.active:
            return
        stack = _stacks.get(entry.thread)
        if stack is None:
            stack = _stacks[entry.thread] = []
        stack.append(entry)
        early = entry.deadline < _next_wake
    if early:
        wake(entry.deadline)


def leave(entry: Entry) -> None:
    """End ``entry``; cancel a delivery that is still pending for it.

    Safe to run again after a delivery interrupted it halfway: every step
    can be repeated, and the entry stops firing at the first one.
    """
    with _lock:
        entry.active = False
        stack = _stacks.get(entry.thread)
        if stack is not None:
            for index in range(len(stack) - 1, -1, -1):
                if stack[index] is entry:
                    del stack[index]
                    break
            if not stack:
                del _stacks[entry.thread]
        if entry.fired and not _CANCEL_BY_RAISING:
            # Nothing else can fire while we hold the lock: clear what the
            # timer set but the interpreter has not raised yet. (If that was
            # an outer deadline's, the timer delivers it again shortly.)
            _clear_async_exc(entry.thread, None)
    if entry.fired and _CANCEL_BY_RAISING:
        try:  # noqa: SIM105 - costs nothing when nothing is pending; suppress() would call into contextlib
            noop()
        except Expired:
            pass


def claimed_elsewhere(entry: Entry) -> bool:
    """Whether an ``Expired`` that ``entry``'s call raised belongs to an outer deadline.

    True when an active deadline of the same thread has fired or passed;
    that deadline's own wrapper converts it. Otherwise it is ``entry``'s.
    """
    now = time.monotonic()
    with _lock:
        return any(other.fired or other.deadline <= now for other in _stacks.get(entry.thread, ()) if other.active)


def timer_thread() -> threading.Thread | None:
    """The timer thread while it runs (for tests)."""
    return _timer


def _run() -> None:
    global _next_wake, _timer
    idle_since: float | None = None
    with _lock:
        while True:
            now = time.monotonic()
            soonest = min(now + TICK, *(registry.fire_due(now) for registry in _registries))
            _next_wake = soonest
            if all(registry.is_empty() for registry in _registries):
                if idle_since is None:
                    idle_since = now
                elif now - idle_since >= IDLE_EXIT and all(registry.retire() for registry in _registries):
                    # The twin's registry comes first and cannot change while
                    # we hold the lock; the compiled one retires atomically, so
                    # a deadline it takes from now on wakes a new timer.
                    _timer = None
                    _next_wake = float("inf")
                    return
            else:
                idle_since = None
            _wake.wait(max(0.0, soonest - now))


def _after_fork_in_child() -> None:
    # Only the forking thread lives on in the child: the timer thread is
    # gone (and may have held the lock), the other threads' deadlines too.
    global _lock, _wake, _timer, _next_wake
    _lock = threading.Lock()
    _wake = threading.Condition(_lock)
    _timer = None
    _next_wake = float("inf")
    survivor = threading.get_ident()
    for registry in _registries:
        registry.after_fork(survivor)
    if not all(registry.is_empty() for registry in _registries):
        wake(time.monotonic())


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
