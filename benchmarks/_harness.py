"""Shared pieces of the benchmarks: unrolled call loops, floors, peers.

Each benchmarked callable runs ``CALLS`` calls through an unrolled loop, so
the loop's own cost (about 1 ns a call here) hardly dilutes the ratios.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
from collections.abc import Callable, Coroutine
from typing import Any

from hardy import _core

CALLS = 1000
UNROLL = 10
IMPLEMENTATIONS = ("c", "py")


def load_core(name: str) -> Any:
    return _core.load(name)


def peer(module: str) -> Any:
    """Import a peer library, or None when it is not installed (bench extra)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def unrolled(fn: Callable[[int], Any], argument: int = 1) -> Callable[[], None]:
    """``CALLS`` calls of ``fn(argument)``, ten to a loop iteration."""
    body = "\n".join([f"        fn({argument!r})"] * UNROLL)
    source = f"def run():\n    for _ in range({CALLS // UNROLL}):\n{body}\n"
    namespace: dict[str, Any] = {"fn": fn}
    exec(source, namespace)
    return namespace["run"]  # type: ignore[no-any-return]


def unrolled_catching(fn: Callable[[int], Any], exc: type[BaseException]) -> Callable[[], None]:
    """``CALLS`` calls of ``fn(1)``, each expected to raise ``exc``."""
    body = "\n".join(["        try:\n            fn(1)\n        except exc:\n            pass"] * UNROLL)
    source = f"def run():\n    for _ in range({CALLS // UNROLL}):\n{body}\n"
    namespace: dict[str, Any] = {"fn": fn, "exc": exc}
    exec(source, namespace)
    return namespace["run"]  # type: ignore[no-any-return]


def unrolled_raise_same_frame() -> Callable[[], None]:
    """``CALLS`` times ``raise ValueError("x")`` caught in the same frame: the floor."""
    body = "\n".join(
        ['        try:\n            raise ValueError("x")\n        except ValueError:\n            pass'] * UNROLL
    )
    source = f"def run():\n    for _ in range({CALLS // UNROLL}):\n{body}\n"
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    return namespace["run"]  # type: ignore[no-any-return]


def unrolled_await(
    fn: Callable[[int], Coroutine[Any, Any, Any]], loop: asyncio.AbstractEventLoop
) -> Callable[[], None]:
    """``CALLS`` awaits of ``fn(1)`` inside one run of ``loop``."""
    body = "\n".join(["        await fn(1)"] * UNROLL)
    source = f"async def many():\n    for _ in range({CALLS // UNROLL}):\n{body}\n"
    namespace: dict[str, Any] = {"fn": fn}
    exec(source, namespace)
    many = namespace["many"]
    return lambda: loop.run_until_complete(many())


def work(x: int) -> int:
    return x


async def async_work(x: int) -> int:
    return x


def raise_value_error(x: int) -> None:
    raise ValueError("x")


class MinimalWrapper:
    """The floor for the pure-Python twin: a class wrapper that counts failures."""

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        self.failures = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.func(*args, **kwargs)
        except Exception:
            self.failures += 1
            raise


PARTIAL = functools.partial(work)
