"""The types of the compiled core, ``hardy._core_c``, and so of ``hardy._core``.

Both cores behave the same (``tests/test_parity.py``), and ``hardy._core``
imports these names from here for type checkers, whichever core runs: this
stub is what users' type checkers see of ``hardy.CircuitBreaker`` and
``hardy.RetryConfig``. ``tests/test_core_stub.py`` checks that it names what
both cores define (names, bases, members), with the same parameters.
"""

from collections.abc import Awaitable, Callable
from typing import Any, overload

from ._settings import RetryBudgetSettings
from ._types import ExceptionsArg, P, ProtectedCallable, ProtectedClassMethod, ProtectedStaticMethod, R
from .budget import RetryBudget
from .jitter import Jitter
from .policies.async_deadlines import DeadlineRegistry
from .redis_store import RedisStore
from .state import CircuitState
from .store import BreakerStore
from .window import CountWindow, TimeWindow

__all__ = ["IMPLEMENTATION", "Bulkhead", "CircuitBreaker", "RateLimiter", "RetryConfig", "chain", "guard_bulkhead", "guard_rate_limit", "protect", "retrying", "timed", "timed_async", "async_deadlines", "await_within"]  # noqa: E501 - one line: tests/test_core_stub.py edits it

IMPLEMENTATION: str

class BreakerState:
    """What a breaker decides from: :class:`hardy.policies.breaker.BreakerState`, compiled (C fields only)."""

class CircuitBreaker(BreakerState):
    """A circuit breaker: stop calling a dependency that keeps failing.

    Example::

        breaker = hardy.CircuitBreaker("payments", failure_threshold=3, reset_timeout=10)

        @breaker
        def charge(order_id: int) -> str: ...
    """

    def __init__(
        self,
        name: str,
        failure_threshold: int = 5,
        reset_timeout: float = 60.0,
        half_open_max_calls: int = 3,
        excluded_exceptions: ExceptionsArg | None = (),
        *,
        clock: Callable[[], float] = ...,
        store: BreakerStore | None = None,
        failure_exceptions: ExceptionsArg | None = None,
        failure_on_result: Callable[[Any], object] | None = None,
        success_threshold: int | None = None,
        half_open_max_wait: float | None = None,
        reset_backoff: float = 1.0,
        max_reset_timeout: float | None = None,
        window: CountWindow | TimeWindow | None = None,
    ) -> None: ...
    @property
    def name(self) -> str:
        """The breaker's name."""
    @property
    def failure_threshold(self) -> int:
        """Consecutive failures that open the breaker."""
    @property
    def reset_timeout(self) -> float:
        """Seconds the breaker stays open before admitting trial calls."""
    @property
    def half_open_max_calls(self) -> int:
        """Trial calls admitted while half-open, and successes needed to close."""
    @property
    def excluded_exceptions(self) -> tuple[Any, ...]:
        """Exception classes and predicates that count as neither success nor failure."""
    @property
    def failure_exceptions(self) -> tuple[Any, ...] | None:
        """The exception classes and predicates that are failures; ``None``: every ``Exception``."""
    @property
    def failure_on_result(self) -> Callable[[Any], object] | None:
        """The predicate on a returned value that makes it a failure, or ``None``."""
    @property
    def success_threshold(self) -> int:
        """Trial successes that close a half-open breaker (all ``half_open_max_calls`` unless given)."""
    @property
    def _trials_by_rate(self) -> bool:
        """Whether a window's rates judge the half-open trials (no success_threshold given)."""
    @property
    def half_open_max_wait(self) -> float | None:
        """Seconds after which trials that hold every slot count as a failure; ``None``: no limit."""
    @property
    def reset_backoff(self) -> float:
        """What the reset timeout is multiplied by each time a half-open period fails."""
    @property
    def max_reset_timeout(self) -> float | None:
        """The cap of the backed-off reset timeout; ``None``: no cap."""
    @property
    def window(self) -> CountWindow | TimeWindow | None:
        """The :class:`~hardy.CountWindow` or :class:`~hardy.TimeWindow` that decides when it opens, or ``None``."""
    @property
    def last_failure(self) -> BaseException | None:
        """The exception that last opened the circuit, or ``None``."""
    @property
    def store(self) -> BreakerStore | None:
        """The store that shares this breaker's state between processes, or ``None``."""
    @property
    def state(self) -> CircuitState:
        """The current state, taking the time spent open into account."""
    @property
    def is_open(self) -> bool:
        """True while calls are rejected for the reset timeout."""
    @property
    def is_closed(self) -> bool:
        """True while calls pass freely."""
    def get_time_until_reset(self) -> float:
        """Seconds until an open breaker admits trial calls; ``0.0`` in any other state."""
    def get_stats(self) -> dict[str, Any]:
        """A snapshot of the state, the counts and the lifetime totals."""
    def reset(self) -> None:
        """Close the breaker and clear its failure and trial counts."""
    def force_open(self) -> None:
        """Reject every call (``CircuitState.FORCED_OPEN``) until :meth:`reset`."""
    def disable(self) -> None:
        """Admit every call and record nothing (``CircuitState.DISABLED``) until :meth:`reset`."""
    def record_success(self) -> None:
        """Record a success of a call made without the breaker's help."""
    def record_failure(self, exception: BaseException) -> None:
        """Record the outcome of a call that raised ``exception``, classified as a call's error is."""
    def add_listener(self, callback: Callable[[Any, CircuitState, CircuitState], object]) -> None:
        """Call ``callback(breaker, old_state, new_state)`` after every state change."""
    def remove_listener(self, callback: Callable[[Any, CircuitState, CircuitState], object]) -> None:
        """Stop calling ``callback``; a :class:`ValueError` if it was not added."""
    def call(self, func: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call ``func(*args, **kwargs)`` through the breaker (checked against ``func``'s signature)."""
    # Above @staticmethod / @classmethod the breaker wraps the function inside
    # and keeps the descriptor, as @hardy.circuit_breaker does.
    @overload
    def __call__(self, func: staticmethod[P, R]) -> ProtectedStaticMethod[P, R]: ...  # type: ignore[overload-overlap]  # pyright: ignore[reportOverlappingOverload]
    @overload
    def __call__(self, func: classmethod[Any, P, R]) -> ProtectedClassMethod[P, R]: ...
    @overload
    def __call__(self, func: Callable[P, R]) -> ProtectedCallable[P, R]:
        """Decorate ``func`` so that every call goes through the breaker (above ``@staticmethod`` too)."""
    def __enter__(self) -> CircuitBreaker: ...
    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None: ...
    async def __aenter__(self) -> CircuitBreaker: ...
    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None: ...

class RetryPolicy:
    """What a retry decides from: :class:`hardy.policies.retry.RetryPolicy`, compiled (C fields only)."""

class RetryConfig(RetryPolicy):
    """How to retry: how many attempts, which errors, and how long to wait between them.

    Example::

        config = hardy.RetryConfig(max_attempts=5, initial_delay=0.1, max_delay=2.0)
    """

    def __init__(
        self,
        max_attempts: int = 3,
        backoff_factor: float = 2.0,
        initial_delay: float = 1.0,
        max_delay: float = 60.0,
        jitter: bool | Jitter = True,
        retryable_exceptions: ExceptionsArg = (Exception,),
        *,
        retry_on_result: Callable[[Any], object] | None = None,
        deadline: float | None = None,
        random: Callable[[], float] = ...,
        clock: Callable[[], float] = ...,
        retry_after: Callable[[Any], float | None] | None = None,
        sleep: Callable[[float], object] | None = None,
        budget: RetryBudget | None = None,
    ) -> None: ...
    @property
    def budget(self) -> RetryBudget | None:
        """The retry budget every retry draws on, if any."""
    @staticmethod
    def _budget_ledger(settings: RetryBudgetSettings) -> Any: ...
    @property
    def max_attempts(self) -> int:
        """Calls in all, the first one included."""
    @property
    def backoff_factor(self) -> float:
        """The multiplier of the delay from one retry to the next."""
    @property
    def initial_delay(self) -> float:
        """Seconds to wait after the first failed attempt, before jitter."""
    @property
    def max_delay(self) -> float:
        """The longest wait between two attempts, in seconds."""
    @property
    def jitter(self) -> bool | Jitter:
        """The jitter as given."""
    @property
    def retryable_exceptions(self) -> tuple[type[BaseException], ...]:
        """The exception types that are retried."""
    @property
    def retry_on_result(self) -> Callable[[Any], object] | None:
        """The predicate that makes a result count as a failure, if any."""
    @property
    def deadline(self) -> float | None:
        """The time budget for all attempts and sleeps, in seconds, if any."""
    @property
    def retry_after(self) -> Callable[[Any], float | None] | None:
        """The callable that asks for a delay from the outcome, if any."""
    @property
    def sleep(self) -> Callable[[float], object] | None:
        """The injected sleep between attempts, if any."""
    def get_delay(self, attempt: int, previous_delay: float | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based)."""

def protect(
    breaker: CircuitBreaker, func: Callable[P, R], fallback: Callable[..., Any] | None = None
) -> ProtectedCallable[P, R]: ...
def retrying(
    config: RetryConfig,
    func: Callable[P, R],
    on_retry: Callable[[BaseException | None, int], object] | None = None,
    *,
    before_sleep: Callable[[Any], object] | None = None,
    on_giveup: Callable[[Any], object] | None = None,
) -> Callable[P, R]: ...
def chain(
    name: str,
    funcs: tuple[Callable[..., Any], ...],
    default: object,
    exceptions: tuple[Any, ...],
    log: bool,
    on_result: Callable[[Any], object] | None = None,
) -> Callable[..., Any]: ...
def timed(
    func: Callable[P, R], seconds: float, operation: str, fallback: Callable[..., Any] | None = None
) -> Callable[P, R]: ...
def timed_async(
    func: Callable[..., Any],
    seconds: float,
    operation: str,
    fallback: Callable[..., Any] | None,
    fallback_is_async: bool,
) -> Callable[..., Any]: ...
def async_deadlines(loop: Any) -> DeadlineRegistry: ...
def await_within(awaitable: Awaitable[R], seconds: float) -> Awaitable[R]: ...

class BulkheadState:
    """What a bulkhead decides from: :class:`hardy.policies.bulkhead.BulkheadState`, compiled (C fields only)."""

class Bulkhead(BulkheadState):
    """A bulkhead: at most ``max_concurrent`` calls inside at once.

    Example::

        pool = hardy.Bulkhead("reports", max_concurrent=4, max_wait=0.5)

        with pool:
            build_report()
    """

    def __init__(
        self, name: str, max_concurrent: int, max_wait: float = 0.0, *, clock: Callable[[], float] = ...
    ) -> None: ...
    @property
    def name(self) -> str:
        """The bulkhead's name."""
    @property
    def max_concurrent(self) -> int:
        """How many calls may be inside at once."""
    @property
    def max_wait(self) -> float:
        """Seconds a call over the limit waits for a slot before it is rejected."""
    @property
    def active(self) -> int:
        """How many calls are inside now."""
    @property
    def waiting(self) -> int:
        """How many calls wait for a slot now."""
    @property
    def available(self) -> int:
        """Free slots now."""
    def get_stats(self) -> dict[str, Any]:
        """A snapshot of the slots, the waiters and the lifetime totals."""
    def try_acquire(self) -> bool:
        """Take a slot if one is free now (never waits)."""
    def acquire(self) -> None:
        """Take a slot, waiting up to ``max_wait``; :class:`~hardy.BulkheadFullError` if none frees up."""
    async def acquire_async(self) -> None:
        """Take a slot, awaiting up to ``max_wait``; :class:`~hardy.BulkheadFullError` if none frees up."""
    def release(self) -> None:
        """Give a slot back (to the first waiter, if any)."""
    def __enter__(self) -> Bulkhead: ...
    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None: ...
    async def __aenter__(self) -> Bulkhead: ...
    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None: ...
    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        """Decorate ``func``: every call takes a slot for its duration."""

def guard_bulkhead(bulkhead: Bulkhead, func: Callable[P, R]) -> Callable[P, R]:
    """Wrap ``func`` so that every call holds a slot of ``bulkhead`` while it runs."""

class RateLimiterState:
    """What a rate limiter decides from: :class:`hardy.policies.ratelimit.RateLimiterState`, compiled."""

class RateLimiter(RateLimiterState):
    """A rate limiter: at most ``rate`` calls per ``period`` seconds, ``burst`` at once after a quiet spell.

    Example::

        api = hardy.RateLimiter("api", rate=10, period=1.0, max_wait=0.5)

        with api:
            call_api()
    """

    def __init__(
        self,
        name: str,
        rate: float,
        period: float = 1.0,
        burst: int | None = None,
        max_wait: float = 0.0,
        store: RedisStore | None = None,
        *,
        clock: Callable[[], float] = ...,
    ) -> None: ...
    @property
    def name(self) -> str:
        """The limiter's name."""
    @property
    def store(self) -> RedisStore | None:
        """The store the rate is shared through, or ``None`` (this process's own limit)."""
    @property
    def rate(self) -> float:
        """Permits per ``period`` at steady state."""
    @property
    def period(self) -> float:
        """The period ``rate`` is counted over, in seconds."""
    @property
    def burst(self) -> int:
        """Permits that may be taken at once after a quiet period."""
    @property
    def max_wait(self) -> float:
        """Seconds a call over the rate waits for a permit before it is rejected."""
    @property
    def available(self) -> int:
        """Permits that could be taken now without waiting."""
    def get_stats(self) -> dict[str, Any]:
        """A snapshot of the settings, the permits available now and the lifetime totals."""
    def try_acquire(self) -> bool:
        """Take a permit if one is free now (never waits)."""
    def acquire(self) -> None:
        """Take a permit, sleeping up to ``max_wait``; :class:`~hardy.RateLimitExceededError` if none frees up."""
    async def acquire_async(self) -> None:
        """Take a permit, awaiting up to ``max_wait``; :class:`~hardy.RateLimitExceededError` if none frees up."""
    def __enter__(self) -> RateLimiter: ...
    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None: ...
    async def __aenter__(self) -> RateLimiter: ...
    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None: ...
    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        """Decorate ``func``: every call takes a permit first."""

def guard_rate_limit(limiter: RateLimiter, func: Callable[P, R]) -> Callable[P, R]:
    """Wrap ``func`` so that every call takes a permit of ``limiter`` first."""
