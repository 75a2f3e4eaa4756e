"""The bulkhead in the twin (the compiled one is ``hardy/_c/bulkhead.pxi``).

Its decisions are ``hardy/policies/bulkhead.py``; this is the dispatch: the
lock, the queue of waiters, waking them, and the Python-facing class. Every
transition runs under ``_lock``; nothing else (no user code) does.

A waiter is a :class:`_Waiter`: a thread waits on a lock that is released to
wake it, a task on a future of its loop. A leaving call that hands its slot
over sets ``granted`` under the lock, so a waiter that times out, is
cancelled or interrupted at the same moment sees, under the same lock,
whether it owns a slot: then it passes the slot on, else it withdraws. No
slot is ever lost or doubled.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, cast

from .. import _aio, _live, _validate, _wrapping
from ..errors import BulkheadFullError
from ..policies.bulkhead import (
    HAND_OFF,
    NOT_INSIDE,
    BulkheadState,
    bulkhead_configure,
    bulkhead_enter,
    bulkhead_enter_or_queue,
    bulkhead_leave,
    bulkhead_leave_alone,
    bulkhead_reject,
    bulkhead_withdraw,
)
from . import breaker as _breaker  # its rejection hook (hardy._rejections)

__all__ = ["Bulkhead", "guard_bulkhead"]

_monotonic = time.monotonic
# With a clock of its own (a test's), a waiter looks at it this often: the
# clock may be moved by hand while it waits.
_CLOCK_POLL = 0.005
_OTHER_LOOP_POLL = 0.001  # a waiter outside asyncio (trio) looks whether it was handed a slot this often
_get_running_loop = asyncio._get_running_loop  # None outside asyncio (under trio), where get_running_loop() raises
NOT_HELD = "release() of bulkhead {name!r} without a matching acquire(): nothing is inside"


class _Waiter:
    """One call waiting for a slot: a thread's lock, or a task's future and loop."""

    __slots__ = ("future", "granted", "lock", "loop")

    def __init__(self, lock: Any, loop: Any) -> None:
        self.granted = False
        self.lock = lock
        self.loop = loop
        self.future: Any = None


def _wake_future(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def wake(waiter: _Waiter) -> None:
    """Tell ``waiter`` it was handed a slot (called under the bulkhead's lock; runs no user code)."""
    waiter.granted = True
    if waiter.lock is not None:
        waiter.lock.release()
        return
    future = waiter.future
    if future is None:
        return
    loop = waiter.loop
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        _wake_future(future)
    else:
        with contextlib.suppress(RuntimeError):  # its loop is closed: the waiter is gone, and so is its task
            loop.call_soon_threadsafe(_wake_future, future)


class Bulkhead(BulkheadState):
    """A bulkhead: at most ``max_concurrent`` calls inside at once.

    Example::

        pool = hardy.Bulkhead("reports", max_concurrent=4, max_wait=0.5)

        with pool:
            build_report()
    """

    def __init__(
        self,
        name: str,
        max_concurrent: int,
        max_wait: float = 0.0,
        *,
        clock: Callable[[], float] = _monotonic,
    ) -> None:
        if getattr(self, "_name", None) is not None:
            raise RuntimeError(_validate.ALREADY_INITIALISED.format(kind=type(self).__name__, obj=self))
        settings = _validate.bulkhead_settings(name, max_concurrent, max_wait, clock)
        self._lock = threading.Lock()
        self._queue: deque[_Waiter] = deque()
        bulkhead_configure(self, settings.max_concurrent)
        self._max_wait = settings.max_wait
        self._clock = settings.clock
        self._name: str | None = settings.name
        _live.bulkheads.track(self)  # for hardy.metrics

    def __reduce__(self) -> Any:
        raise TypeError(f"cannot pickle {self!r}: a bulkhead's slots belong to its process")

    def __repr__(self) -> str:
        return f"<Bulkhead {self._name!r} max_concurrent={self._max} active={self._active}>"

    def _ready(self) -> None:
        _validate.initialised(self, getattr(self, "_name", None) is not None)

    # -- reading ---------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The bulkhead's name."""
        self._ready()
        return cast("str", self._name)

    @property
    def max_concurrent(self) -> int:
        """How many calls may be inside at once."""
        return self._max

    @property
    def max_wait(self) -> float:
        """Seconds a call over the limit waits for a slot before it is rejected."""
        return self._max_wait

    @property
    def active(self) -> int:
        """How many calls are inside now."""
        return self._active

    @property
    def waiting(self) -> int:
        """How many calls wait for a slot now."""
        return self._waiting

    @property
    def available(self) -> int:
        """Free slots now (0 while anyone waits)."""
        return max(0, self._max - self._active)

    def get_stats(self) -> dict[str, Any]:
        """A snapshot of the slots, the waiters and the lifetime totals.

        Example::

            >>> hardy.Bulkhead("pool", 2).get_stats()["available"]
            2
        """
        self._ready()
        with self._lock:
            return {
                "name": self._name,
                "max_concurrent": self._max,
                "max_wait": self._max_wait,
                "active": self._active,
                "waiting": self._waiting,
                "available": max(0, self._max - self._active),
                "peak": self._peak,
                "admitted": self._admitted,
                "waited": self._waited,
                "rejections": self._rejected,
            }

    # -- by hand ---------------------------------------------------------------------

    def try_acquire(self) -> bool:
        """Take a slot if one is free now (never waits); ``False`` (counted as a rejection) if not."""
        self._ready()
        with self._lock:
            if bulkhead_enter(self):
                return True
            bulkhead_reject(self)
            return False

    def acquire(self) -> None:
        """Take a slot, waiting up to ``max_wait``; :class:`~hardy.BulkheadFullError` if none frees up."""
        self._ready()
        with self._lock:
            if self._max_wait <= 0.0:
                if bulkhead_enter(self):
                    return
                bulkhead_reject(self)
                waiter = None
            elif bulkhead_enter_or_queue(self):
                return
            else:
                waiter = _Waiter(threading.Lock(), None)
                waiter.lock.acquire()
                self._queue.append(waiter)
        if waiter is None:
            raise self._refused(0.0)
        self._wait(waiter)

    def _refused(self, waited: float) -> BulkheadFullError:
        """The error of a rejection (counted), told to the rejection hook if one is set; never under ``_lock``."""
        error = BulkheadFullError(cast("str", self._name), self._max, waited)
        hook = _breaker._rejection_hook
        if hook is not None:
            hook(self, error)
        return error

    def _wait(self, waiter: _Waiter) -> None:
        clock = self._clock
        deadline = clock() + self._max_wait
        try:
            while True:
                remaining = deadline - clock()
                if remaining <= 0.0:
                    break
                if waiter.lock.acquire(timeout=remaining if clock is _monotonic else min(remaining, _CLOCK_POLL)):
                    return
        except BaseException:
            self._abandon(waiter)
            raise
        with self._lock:
            if waiter.granted:  # handed a slot as the wait ran out: take it
                return
            self._queue.remove(waiter)
            bulkhead_withdraw(self)
            bulkhead_reject(self)
        raise self._refused(self._max_wait)

    def _abandon(self, waiter: _Waiter) -> None:
        """A waiter leaves (cancelled or interrupted): pass on a slot it was handed, or withdraw."""
        with self._lock:
            if not waiter.granted:
                self._queue.remove(waiter)
                bulkhead_withdraw(self)
                return
        self.release()

    async def acquire_async(self) -> None:
        """Take a slot, awaiting up to ``max_wait``; :class:`~hardy.BulkheadFullError` if none frees up."""
        self._ready()
        loop: Any = None
        with self._lock:
            if self._max_wait <= 0.0:
                if bulkhead_enter(self):
                    return
                bulkhead_reject(self)
                waiter = None
            elif bulkhead_enter_or_queue(self):
                return
            else:
                # On asyncio the waiter is woken through a future of its
                # loop; under another library (trio) it looks at its place in
                # the queue every _OTHER_LOOP_POLL seconds.
                loop = _get_running_loop()
                waiter = _Waiter(None, loop)
                if loop is not None:
                    waiter.future = loop.create_future()
                self._queue.append(waiter)
        if waiter is None:
            raise self._refused(0.0)
        clock = self._clock
        deadline = clock() + self._max_wait
        try:
            while True:
                remaining = deadline - clock()
                if remaining <= 0.0:
                    break
                if loop is None:
                    await _aio.sleep(min(remaining, _OTHER_LOOP_POLL))
                    with self._lock:
                        if waiter.granted:
                            return
                    continue
                step = remaining if clock is _monotonic else min(remaining, _CLOCK_POLL)
                timer = loop.call_later(step, _wake_future, waiter.future)
                try:
                    await waiter.future
                finally:
                    timer.cancel()
                with self._lock:
                    if waiter.granted:
                        return
                    waiter.future = loop.create_future()
        except BaseException:
            self._abandon(waiter)
            raise
        with self._lock:
            if waiter.granted:
                return
            self._queue.remove(waiter)
            bulkhead_withdraw(self)
            bulkhead_reject(self)
        raise self._refused(self._max_wait)

    def release(self) -> None:
        """Give a slot back (to the first waiter, if any); a :class:`RuntimeError` if none is held."""
        self._ready()
        with self._lock:
            action = bulkhead_leave(self)
            if action == HAND_OFF:
                wake(self._queue.popleft())
            elif action == NOT_INSIDE:
                raise RuntimeError(NOT_HELD.format(name=self._name))

    # -- as a context manager and a decorator -----------------------------------------

    def __enter__(self) -> Bulkhead:
        self.acquire()
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self.release()

    async def __aenter__(self) -> Bulkhead:
        await self.acquire_async()
        return self

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self.release()

    def __call__(self, func: Callable[..., Any]) -> Any:
        """Decorate ``func``: every call takes a slot for its duration."""
        return guard_bulkhead(self, func)


def guard_bulkhead(bulkhead: Bulkhead, func: Callable[..., Any]) -> Any:
    """Wrap ``func`` so that every call holds a slot of ``bulkhead`` while it runs."""
    if not isinstance(bulkhead, Bulkhead):
        raise TypeError(f"bulkhead must be a Bulkhead, got {bulkhead!r}")
    bulkhead._ready()
    _validate.callable_arg("func", func)
    b = bulkhead
    lock = b._lock
    if _wrapping.is_async_callable(func):
        async_func = cast("Callable[..., Awaitable[Any]]", func)

        async def guarded_async(*args: Any, **kwargs: Any) -> Any:
            await b.acquire_async()
            try:
                return await async_func(*args, **kwargs)
            finally:
                b.release()

        wrapper = _wrapping.copy_metadata(guarded_async, func, is_async=True)
        wrapper.bulkhead = bulkhead
        return wrapper

    # Under the GIL the two policy calls need no lock: a policy function
    # calls nothing, so no other thread runs between its reads and writes
    # (as for the breaker's closed-state count, hardy/_py/protect.py). The
    # lock guards the queue, which they never touch: with waiters both
    # answer False and the call goes the locked way. Free-threaded builds
    # take the lock for them too.
    enter = bulkhead_enter if _breaker.GIL_ENABLED else _locked(bulkhead_enter, lock)
    leave = bulkhead_leave_alone if _breaker.GIL_ENABLED else _locked(bulkhead_leave_alone, lock)

    def guarded(*args: Any, **kwargs: Any) -> Any:
        if not enter(b):
            b.acquire()
        try:
            # Without keywords, f(*args): a call through ** costs a mapping more.
            return func(*args, **kwargs) if kwargs else func(*args)
        finally:
            if not leave(b):
                b.release()

    wrapper = _wrapping.copy_metadata(guarded, func, is_async=False)
    wrapper.bulkhead = bulkhead
    return wrapper


def _locked(decide: Callable[[Bulkhead], bool], lock: Any) -> Callable[[Bulkhead], bool]:
    """``decide`` under ``lock``."""

    def locked(bulkhead: Bulkhead) -> bool:
        with lock:
            return decide(bulkhead)

    return locked
