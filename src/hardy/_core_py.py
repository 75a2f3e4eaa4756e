"""The pure-Python twin of ``hardy._core_c``: the names the rest of hardy uses.

It behaves exactly as the compiled core and is used when the extension is
not built or when ``HARDY_NO_EXTENSIONS=1`` is set. Both run the same
decisions (``hardy.policies``); the twin's dispatch is ``hardy._py``, one
module per concern. ``tests/test_parity.py`` drives both cores with the same
random sequences and compares their state and statistics after every step.
"""

from __future__ import annotations

from ._async_deadlines import await_within
from ._py.async_deadlines import async_deadlines, timed_async
from ._py.breaker import CircuitBreaker
from ._py.bulkhead import Bulkhead, guard_bulkhead
from ._py.chain import chain
from ._py.deadlines import timed
from ._py.protect import protect
from ._py.ratelimit import RateLimiter, guard_rate_limit
from ._py.retry import RetryConfig, retrying
from ._scrape import ScrapeSeries as ScrapeSeries  # hardy.metrics reads the builder from the core
from ._scrape import scrape_breakers as scrape_breakers
from ._scrape import scrape_series as scrape_series

__all__ = [
    "IMPLEMENTATION",
    "Bulkhead",
    "CircuitBreaker",
    "RateLimiter",
    "RetryConfig",
    "chain",
    "guard_bulkhead",
    "guard_rate_limit",
    "protect",
    "retrying",
    "async_deadlines",
    "await_within",
    "timed",
    "timed_async",
]

IMPLEMENTATION = "py"
