"""hardy: resilience for Python calls at close to zero cost.

Circuit breakers guard calls to dependencies that fail; their hot path is a
compiled core (``hardy.IMPLEMENTATION == "c"``) with a pure-Python twin of
identical behaviour (``"py"``), chosen at import. ``HARDY_NO_EXTENSIONS=1``
forces the twin.

Example::

    import hardy

    @hardy.circuit_breaker(failure_threshold=3, reset_timeout=30)
    def fetch(url: str) -> bytes: ...

    print(hardy.IMPLEMENTATION)  # "c" when the compiled core is active
"""

from __future__ import annotations

from . import events, testing
from ._core import IMPLEMENTATION, Bulkhead, CircuitBreaker, RateLimiter, RetryConfig
from ._retry_state import RetryState, RetryStatistics
from ._safe_points import defer_timeouts_in
from .attempts import attempts
from .breaker import BreakerRegistry, circuit_breaker, get_circuit_breaker, registry
from .budget import RetryBudget, RetryBudgetStatistics
from .bulkhead import BulkheadRegistry, bulkhead, bulkheads, get_bulkhead
from .errors import AllFallbacksFailedError, BulkheadFullError, CircuitOpenError, HardyError, RateLimitExceededError
from .errors import TimeoutError as TimeoutError  # noqa: A004 - hardy.TimeoutError, kept out of __all__
from .fallback import Fallback, fallback, with_fallback
from .health import (
    HealthCheck,
    HealthCheckResult,
    HealthStatus,
    SystemHealth,
    get_health_check,
    register_default_checks,
)
from .jitter import Jitter
from .ratelimit import RateLimiterRegistry, get_rate_limiter, rate_limit, rate_limiters
from .redis_store import RedisStore
from .retry import retry, retry_with_backoff
from .state import CircuitState
from .store import BreakerStore
from .timeout import timeout, with_timeout
from .window import CountWindow, TimeWindow

__version__ = "0.1.0"

# hardy.TimeoutError stays out of __all__: ``from hardy import *`` must not
# replace the builtin, which also catches socket.timeout and asyncio's.
__all__ = [
    "IMPLEMENTATION",
    "AllFallbacksFailedError",
    "BreakerRegistry",
    "BreakerStore",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "Fallback",
    "HardyError",
    "HealthCheck",
    "HealthCheckResult",
    "HealthStatus",
    "Jitter",
    "RedisStore",
    "RetryConfig",
    "SystemHealth",
    "__version__",
    "circuit_breaker",
    "defer_timeouts_in",
    "events",
    "fallback",
    "get_circuit_breaker",
    "get_health_check",
    "register_default_checks",
    "registry",
    "retry",
    "retry_with_backoff",
    "testing",
    "timeout",
    "with_fallback",
    "with_timeout",
    "RetryState",
    "RetryStatistics",
    "attempts",
    "Bulkhead",
    "BulkheadFullError",
    "BulkheadRegistry",
    "bulkhead",
    "bulkheads",
    "get_bulkhead",
    "RateLimiter",
    "RateLimitExceededError",
    "RateLimiterRegistry",
    "rate_limit",
    "rate_limiters",
    "get_rate_limiter",
    "RetryBudget",
    "RetryBudgetStatistics",
    "CountWindow",
    "TimeWindow",
]
