"""Deadlines for sync calls, enforced from one shared timer thread.

Each thread that runs a call under ``hardy.timeout`` has a stack of active
deadlines (calls nest; the tightest deadline wins). One timer thread sleeps
until the earliest deadline of all threads; when a deadline passes, it raises
the private :class:`Expired` in the calling thread with
``PyThreadState_SetAsyncExc``. ``Expired`` is a ``BaseException``, so
``except Exception`` cannot catch it, and the timer raises it again every
``REDELIVER`` seconds until the call ends, so even a bare ``except:`` loop
is interrupted. When a call leaves, a delivery still pending for it is
cancelled, so a call that finishes just before its deadline is never hit
later. The timer thread exits after ``IDLE_EXIT`` seconds without deadlines.

What it can interrupt: Python code, including ``time.sleep`` on Python 3.x
(the exception is raised when the sleep returns, after at most the sleep's
length). It cannot interrupt a single blocking C call (``socket.recv``
without a timeout, a long C extension routine): the exception is raised
when that call returns to Python. Use ``mode="thread"`` for those.
"""

from __future__ import annotations

import ctypes
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "IDLE_EXIT",
    "REDELIVER",
    "TICK",
    "Expired",
    "Registry",
    "add_registry",
    "enter",
    "leave",
    "prepare",
    "timer_thread",
    "wake",
]

REDELIVER = 0.02
IDLE_EXIT = 0.5
# The timer never sleeps longer than this while it runs, and says so in
# ``_next_wake``: a new deadline at least this far away then needs no wake-up
# call, so a busy caller never hands the GIL to the timer thread per call.
TICK = 0.01

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


@dataclass(eq=False, slots=True)
class Entry:
    deadline: float
    thread: int
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

    def is_empty(self) -> bool:
        """True when no deadline is active."""


class _PythonRegistry:
    """The twin's deadlines: per-thread stacks, guarded by ``_lock``."""

    def fire_due(self, now: float) -> float:
        # Called by the timer thread with _lock held.
        soonest = float("inf")
        for thread, stack in _stacks.items():
            delivered = False
            for entry in stack:
                if not entry.active:
                    continue
                due = entry.next_delivery if entry.fired else entry.deadline
                if due <= now and not delivered:
                    entry.fired = True
                    entry.next_delivery = now + REDELIVER
                    _set_async_exc(thread, Expired)
                    delivered = True  # one exception at a time per thread
                    due = entry.next_delivery
                soonest = min(soonest, due if due > now else now + REDELIVER)
        return min(soonest, now + TICK)

    def is_empty(self) -> bool:
        return not _stacks


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
    return Entry(time.monotonic() + seconds, threading.get_ident())


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
        if entry.fired:
            # Nothing else can fire while we hold the lock: clear what the
            # timer set but the interpreter has not raised yet. (If that was
            # an outer deadline's, the timer delivers it again shortly.)
            _clear_async_exc(entry.thread, None)


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
                elif now - idle_since >= IDLE_EXIT:
                    _timer = None
                    _next_wake = float("inf")
                    return
            else:
                idle_since = None
            _wake.wait(max(0.0, soonest - now))
