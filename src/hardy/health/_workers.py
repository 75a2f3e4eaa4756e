"""Threads for sync health checks that never hold the caller, or the process, past a timeout.

``concurrent.futures`` joins its worker threads when the interpreter exits,
so one check abandoned at its timeout, still sleeping in a worker, kept
``python -m hardy health`` alive until it returned. These workers are daemon
threads: nothing waits for them. And each check runs at most once at a time:
a probe that finds the previous run of a check still going waits for that run
(under its own timeout) instead of starting another, so a check that hangs
holds one thread, not one per probe. A worker with nothing to do for
``idle_timeout`` seconds exits (a new one starts with the next job), so an
idle manager, or one dropped, holds no threads for ever.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

from .. import _aio

__all__ = ["Run", "Workers"]

Outcome = tuple[bool, Any]  # (True, value) or (False, the exception raised)


class Workers:
    """Up to ``size`` daemon threads, started on demand, running jobs from a queue.

    Example::

        workers = Workers(8, "hardy-health")
        workers.submit(run.execute)
    """

    def __init__(self, size: int, name: str, idle_timeout: float = 60.0) -> None:
        self._size = size
        self._name = name
        self._idle_timeout = idle_timeout
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._started = 0
        self._idle = 0

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` (which must not raise) on a worker; raises if no thread can be started."""
        if self._pid != os.getpid():
            self._reset()  # a forked child: the parent's threads do not exist here
        with self._lock:
            if self._idle:
                self._idle -= 1
            elif self._started < self._size:
                thread = threading.Thread(
                    target=self._work,
                    args=(self._queue,),
                    name=f"{self._name}-{self._started + 1}",
                    daemon=True,
                )
                thread.start()  # may raise (no more threads): nothing queued yet
                self._started += 1
            self._queue.put(job)

    @property
    def threads(self) -> int:
        """How many workers are running now."""
        return self._started

    def _work(self, jobs: queue.SimpleQueue[Callable[[], None]]) -> None:
        while True:
            try:
                job = jobs.get(timeout=self._idle_timeout)
            except queue.Empty:
                # Under the lock that submit() holds while it counts on an
                # idle worker and queues: a job queued meanwhile is taken.
                with self._lock:
                    if jobs is not self._queue:
                        return  # the pool was reset (fork): not ours to count
                    if not jobs.empty():
                        continue
                    self._idle -= 1
                    self._started -= 1
                    return
            job()
            with self._lock:
                self._idle += 1


class Run:
    """One call of a sync check in a worker, awaited by any number of probes on any loops.

    Example::

        run = Run(check)
        workers.submit(run.execute)
        value = await run.result()
    """

    def __init__(self, func: Callable[[], Any]) -> None:
        self._func = func
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._outcome: Outcome | None = None
        self._waiters: list[Callable[[], None]] = []  # wakes a probe waiting on some loop or trio run

    @property
    def finished(self) -> bool:
        """Whether the check has returned or raised."""
        return self._outcome is not None

    def execute(self) -> None:
        """Call the check (in a worker thread) and hand its outcome to every waiting probe."""
        outcome: Outcome
        try:
            outcome = (True, self._func())
        except BaseException as exc:  # handed to the probes, as concurrent.futures does
            outcome = (False, exc)
        with self._lock:
            self._outcome = outcome
            waiters, self._waiters = self._waiters, []
        for wake in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed: its probe has given up
                wake()

    async def result(self) -> Any:
        """The check's return value (or its exception, raised) once it finishes (asyncio or trio)."""
        outcome = self._outcome
        if outcome is None:
            wait, wake = _aio.thread_waiter()
            with self._lock:
                outcome = self._outcome
                if outcome is None:
                    self._waiters.append(wake)
            if outcome is None:
                try:
                    await wait
                finally:
                    # A probe that times out leaves: a hung check must not collect one waiter per probe.
                    with self._lock:
                        if wake in self._waiters:
                            self._waiters.remove(wake)
                outcome = self._outcome
                assert outcome is not None  # set before any waiter is woken
            else:
                close = getattr(wait, "close", None)
                if close is not None:
                    close()  # trio's event.wait() coroutine, never awaited
        ok, value = outcome
        if ok:
            return value
        raise value
