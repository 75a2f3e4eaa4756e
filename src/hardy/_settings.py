"""The checked settings of a breaker and of a retry, as the cores receive them.

``hardy._validate`` makes them from what a user passed; each core reads its
fields by name when it builds a breaker or a config, so no one counts the
positions of a long tuple.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["BreakerSettings", "BulkheadSettings", "RateLimiterSettings", "RetryBudgetSettings", "RetrySettings"]


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    """A circuit breaker's settings, checked and normalised."""

    name: str
    failure_threshold: int
    reset_timeout: float
    half_open_max_calls: int
    excluded_exceptions: tuple[Any, ...]  # classes and predicates (hardy._match)
    clock: Callable[[], float]
    failure_exceptions: tuple[Any, ...] | None = None  # None: every Exception is a failure
    failure_on_result: Callable[[Any], object] | None = None
    success_threshold: int = 0  # trial successes that close; 0: not given (half_open_max_calls, or by rate)
    half_open_max_wait: float = 0.0  # 0.0: no limit
    reset_backoff: float = 1.0
    max_reset_timeout: float = 0.0  # _validate.NO_CAP: no cap
    tuned: bool = False  # any of the four above differs from a plain breaker's
    window: Any = None  # a hardy.CountWindow or hardy.TimeWindow; None: consecutive failures


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """A retry configuration's settings, checked and normalised.

    ``jitter`` is the code the cores keep (``hardy.policies.retry``'s
    ``JITTER_*``); ``jitter_given`` what the user passed,
    which ``RetryConfig.jitter`` reads back. ``retry_circuit_open`` says
    whether ``CircuitOpenError`` is named among the retryable exceptions (it
    is never retried otherwise: retrying into an open breaker defeats it).
    ``retry_after`` asks for a delay from the outcome; ``sleep`` replaces the
    sleep between attempts (``None``: ``time.sleep`` / ``asyncio.sleep``).
    """

    max_attempts: int
    backoff_factor: float
    initial_delay: float
    max_delay: float
    jitter: int
    jitter_given: Any
    retryable_exceptions: tuple[Any, ...]  # classes and predicates (hardy._match)
    retry_circuit_open: bool
    retry_on_result: Callable[[Any], object] | None
    deadline: float | None
    random: Callable[[], float]
    clock: Callable[[], float]
    retry_after: Callable[[Any], float | None] | None = None
    sleep: Callable[[float], object] | None = None
    budget: Any = None  # a hardy.RetryBudget, or None


@dataclass(frozen=True, slots=True)
class BulkheadSettings:
    """A bulkhead's settings, checked and normalised."""

    name: str
    max_concurrent: int
    max_wait: float
    clock: Callable[[], float]


@dataclass(frozen=True, slots=True)
class RateLimiterSettings:
    """A rate limiter's settings, checked and normalised."""

    name: str
    rate: float
    period: float
    burst: int
    max_wait: float
    clock: Callable[[], float]


@dataclass(frozen=True, slots=True)
class RetryBudgetSettings:
    """A retry budget's settings, checked and normalised."""

    ratio: float
    min_per_second: float
    window: float
    clock: Callable[[], float]
