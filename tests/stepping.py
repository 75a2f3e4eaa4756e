"""Drive an awaitable by hand, one step at a time, as an event loop would (for the awaiter tests)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

__all__ = ["Suspend", "step", "step_throw"]


class Suspend:
    """An awaitable that suspends once (yielding None, which asyncio reads as ``sleep(0)``)."""

    def __await__(self) -> Generator[None, Any, None]:
        yield None


def step(awaitable: Any, value: Any = None) -> Any:
    """Send ``value``; the value returned, as ``("return", v)``, or what it yielded."""
    try:
        return awaitable.send(value)
    except StopIteration as stop:
        return ("return", stop.value)


def step_throw(awaitable: Any, error: BaseException) -> Any:
    """``throw(error)``; the value returned, as ``("return", v)``, or what it yielded."""
    try:
        return awaitable.throw(error)
    except StopIteration as stop:
        return ("return", stop.value)
