"""Unrolled call loops for the benchmarks.

Each runner makes ``calls`` calls (a multiple of ten) through a loop unrolled
ten times, so the loop's own cost (about 1 ns a call here) hardly dilutes the
ratios.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from hardy import _core

CALLS = 1000
UNROLL = 10


def load_core(name: str) -> Any:
    return _core.load(name)


def _compile(body_line: str, calls: int, namespace: dict[str, Any], is_async: bool = False) -> Any:
    if calls % UNROLL:
        raise ValueError(f"calls must be a multiple of {UNROLL}, got {calls}")
    body = "\n".join([body_line] * UNROLL)
    header = "async def run():" if is_async else "def run():"
    exec(f"{header}\n    for _ in range({calls // UNROLL}):\n{body}\n", namespace)
    return namespace["run"]


def unrolled(fn: Callable[[int], Any], argument: int = 1, *, calls: int = CALLS) -> Callable[[], None]:
    """``calls`` calls of ``fn(argument)``."""
    return _compile(f"        fn({argument!r})", calls, {"fn": fn})  # type: ignore[no-any-return]


def unrolled_catching(fn: Callable[[int], Any], exc: type[BaseException], *, calls: int = CALLS) -> Callable[[], None]:
    """``calls`` calls of ``fn(1)``, each expected to raise ``exc``."""
    line = "        try:\n            fn(1)\n        except exc:\n            pass"
    return _compile(line, calls, {"fn": fn, "exc": exc})  # type: ignore[no-any-return]


def unrolled_raise_same_frame(calls: int = CALLS) -> Callable[[], None]:
    """``calls`` times ``raise ValueError("x")`` caught in the same frame: the floor."""
    line = '        try:\n            raise ValueError("x")\n        except ValueError:\n            pass'
    return _compile(line, calls, {})  # type: ignore[no-any-return]


def unrolled_await(
    fn: Callable[[int], Any], loop: asyncio.AbstractEventLoop, *, calls: int = CALLS
) -> Callable[[], None]:
    """``calls`` awaits of ``fn(1)`` inside one run of ``loop``."""
    many = _compile("        await fn(1)", calls, {"fn": fn}, is_async=True)
    return lambda: loop.run_until_complete(many())


def unrolled_await_catching(
    fn: Callable[[int], Any], loop: asyncio.AbstractEventLoop, *, calls: int = CALLS
) -> Callable[[], None]:
    """``calls`` awaits of ``fn(1)``, each expected to raise an ``Exception``."""
    line = "        try:\n            await fn(1)\n        except Exception:\n            pass"
    many = _compile(line, calls, {"fn": fn}, is_async=True)
    return lambda: loop.run_until_complete(many())
