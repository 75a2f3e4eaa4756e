"""Which async library runs the current task, and the few things hardy asks of it.

hardy's async code runs under asyncio (with any loop: the default one or
uvloop), under trio, and under anyio on either backend (anyio on asyncio *is*
asyncio to hardy, anyio on trio *is* trio). The library is detected at call
time, where a call needs it (a sleep, a deadline, a health probe), never at
import or decoration time: one process may run both.

asyncio is detected first and without sniffio: a running asyncio loop in this
thread is one C call away (``asyncio._get_running_loop``), and the only other
case where one is running is trio's guest mode on an asyncio host, which
sniffio's thread-local tells apart (trio sets it while its tasks run). Every
other library is asked of sniffio, which trio depends on: without sniffio,
no other library can be running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from types import ModuleType
from typing import Any

_sniffio: ModuleType | None
try:  # optional: installed with trio (and anyio); never a dependency of hardy
    import sniffio as _sniffio
except ImportError:  # pragma: no cover - the test extra installs it
    _sniffio = None

__all__ = ["ASYNCIO", "TRIO", "UnsupportedLibraryError", "gather", "library", "sleep", "thread_waiter"]

ASYNCIO = "asyncio"
TRIO = "trio"
_get_running_loop = asyncio._get_running_loop
_sniffio_local = _sniffio.thread_local if _sniffio is not None else None


class UnsupportedLibraryError(RuntimeError):
    """The running async library is none hardy supports (or none runs at all)."""


def library() -> str:
    """``"asyncio"`` or ``"trio"``: the library running the current task.

    Raises :class:`UnsupportedLibraryError` (a ``RuntimeError``, as asyncio's
    "no running event loop") outside any, or under a library hardy does not
    support (curio), naming it.

    Example::

        if _aio.library() == _aio.TRIO:
            ...
    """
    if _get_running_loop() is not None and (_sniffio_local is None or _sniffio_local.name is None):
        return ASYNCIO
    if _sniffio is not None:
        try:
            name: str | None = _sniffio.current_async_library()
        except _sniffio.AsyncLibraryNotFoundError:
            name = None
        if name in (ASYNCIO, TRIO):
            return name
        if name is not None:
            raise UnsupportedLibraryError(
                f"hardy's async features run under asyncio (any loop, uvloop included), trio and anyio; "
                f"the running async library is {name!r}"
            )
    raise UnsupportedLibraryError("no running event loop: hardy's async features need asyncio, trio or anyio")


async def sleep(delay: float) -> None:
    """Sleep ``delay`` seconds on the running library's clock."""
    if library() == TRIO:
        import trio

        await trio.sleep(delay)
    else:
        await asyncio.sleep(delay)


async def gather(coroutines: list[Coroutine[Any, Any, Any]]) -> list[Any]:
    """Await ``coroutines`` concurrently; their results in order.

    The coroutines must not raise (health probes turn every error into a
    result): under trio an error would cancel the others, under asyncio it
    would be raised while the others go on.
    """
    if library() != TRIO:
        return list(await asyncio.gather(*coroutines))
    import trio

    results: list[Any] = [None] * len(coroutines)

    async def one(index: int, coroutine: Coroutine[Any, Any, Any]) -> None:
        results[index] = await coroutine

    async with trio.open_nursery() as nursery:
        for index, coroutine in enumerate(coroutines):
            nursery.start_soon(one, index, coroutine)
    return results


def _wake_future(future: asyncio.Future[None]) -> None:
    if not future.done():  # cancelled by its waiter's timeout meanwhile
        future.set_result(None)


def thread_waiter() -> tuple[Awaitable[Any], Callable[[], None]]:
    """``(wait, wake)``: awaiting ``wait`` returns once another thread has called ``wake()``.

    ``wake`` raises ``RuntimeError`` when the waiting loop (or trio run) is
    closed already.
    """
    if library() == TRIO:
        import trio

        token = trio.lowlevel.current_trio_token()
        event = trio.Event()
        run_sync_soon = token.run_sync_soon
        set_event = event.set

        def wake_trio() -> None:
            run_sync_soon(set_event)

        return event.wait(), wake_trio
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()

    def wake_asyncio() -> None:
        loop.call_soon_threadsafe(_wake_future, future)

    return future, wake_asyncio
