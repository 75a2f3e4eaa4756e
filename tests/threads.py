"""Threads for the concurrency tests: started together, and switching as often as the interpreter can."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator


def run_threads(target: Callable[[], object], count: int = 8) -> list[BaseException]:
    """Run ``target`` in ``count`` threads released together; what they raised (none may be stuck)."""
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def run() -> None:
        try:
            start.wait(10)
            target()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck (deadlock?)"
    return errors


@contextlib.contextmanager
def switching_often() -> Iterator[None]:
    """Switch threads as often as the interpreter can (``sys.setswitchinterval(1e-6)``), then as before."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
