"""Choose the core: the compiled ``_core_c`` when it is built, else the pure twin.

``HARDY_NO_EXTENSIONS=1`` (or any non-CPython interpreter) selects the pure
twin. ``IMPLEMENTATION`` says which one won: ``"c"`` or ``"py"``.

Public modules look names up on this module when they build an object, never
per call, so the test suite can swap implementations by patching it.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import TYPE_CHECKING

__all__ = [
    "IMPLEMENTATION",
    "NO_EXTENSIONS",
    "Bulkhead",
    "CircuitBreaker",
    "RateLimiter",
    "RetryConfig",
    "chain",
    "guard_bulkhead",
    "guard_rate_limit",
    "load",
    "protect",
    "retrying",
    "async_deadlines",
    "await_within",
    "timed",
    "timed_async",
]

# Any non-CPython interpreter gets the twin too (CPython is what we test).
NO_EXTENSIONS = (
    os.environ.get("HARDY_NO_EXTENSIONS", "").strip().lower() not in ("", "0", "false", "no")
    or sys.implementation.name != "cpython"
)


def load(implementation: str) -> ModuleType:
    """Import one core by name: ``"c"`` (compiled) or ``"py"`` (pure Python).

    Example::

        pure = hardy._core.load("py")
        breaker = pure.CircuitBreaker("db")
    """
    if implementation not in ("c", "py"):
        raise ValueError(f"implementation must be 'c' or 'py', got {implementation!r}")
    return importlib.import_module(f"hardy._core_{implementation}")


if TYPE_CHECKING:
    # The stub _core_c.pyi gives type checkers the public types of both cores.
    from ._core_c import (
        IMPLEMENTATION,
        Bulkhead,
        CircuitBreaker,
        RateLimiter,
        RetryConfig,
        async_deadlines,
        await_within,
        chain,
        guard_bulkhead,
        guard_rate_limit,
        protect,
        retrying,
        timed,
        timed_async,
    )
elif NO_EXTENSIONS:
    from ._core_py import (
        IMPLEMENTATION,
        Bulkhead,
        CircuitBreaker,
        RateLimiter,
        RetryConfig,
        async_deadlines,
        await_within,
        chain,
        guard_bulkhead,
        guard_rate_limit,
        protect,
        retrying,
        timed,
        timed_async,
    )
else:
    try:
        from ._core_c import (
            IMPLEMENTATION,
            Bulkhead,
            CircuitBreaker,
            RateLimiter,
            RetryConfig,
            async_deadlines,
            await_within,
            chain,
            guard_bulkhead,
            guard_rate_limit,
            protect,
            retrying,
            timed,
            timed_async,
        )
    except ImportError:  # pragma: no cover - depends on the build
        # Not built (no compiler at install time): the twin behaves the same,
        # only slower; ``hardy.IMPLEMENTATION`` tells which one is active.
        from ._core_py import (
            IMPLEMENTATION,
            Bulkhead,
            CircuitBreaker,
            RateLimiter,
            RetryConfig,
            async_deadlines,
            await_within,
            chain,
            guard_bulkhead,
            guard_rate_limit,
            protect,
            retrying,
            timed,
            timed_async,
        )
