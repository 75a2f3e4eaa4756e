"""Retry in the twin (the compiled one is ``hardy/_c/retry.pxi``).

The delays and the loop's decisions are :mod:`hardy.policies.retry`; this is
the first attempt around them; the rest of a call (the predicate, the hooks,
the random source, the clock and the sleep) is :mod:`hardy._retry_run`, which
the compiled core's async functions share.
"""

from __future__ import annotations

import random as _random_module
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from .. import _match, _retry_gen, _retry_run, _sleep, _validate, _wrapping
from .._retry_state import Counters, RetryState, RetryStatistics
from ..errors import CircuitOpenError
from ..jitter import Jitter
from ..policies import budget as budget_policy
from ..policies import retry as policy
from ..policies.budget import BudgetState
from ..policies.retry import RetryPolicy

if TYPE_CHECKING:
    from .._types import ExceptionsArg, P, R

__all__ = ["BudgetLedger", "RetryConfig", "retrying"]


class BudgetLedger(BudgetState):
    """The twin's state of a :class:`hardy.RetryBudget` (the compiled one is in hardy/_c/retry.pxi).

    Calls are counted by a plain add (``_calls``, made atomic by the GIL as
    the breaker's closed-state count is); the window is brought up to date
    under ``_lock`` on the retry path only (hardy/policies/budget.py).
    """

    __slots__ = ("__weakref__", "_clock", "_lock", "_shared")

    def __init__(self, settings: Any) -> None:
        self._clock: Callable[[], float] = settings.clock
        self._lock = threading.Lock()
        self._shared: Any = None  # a hardy._budget_store.SharedBudget, or None: process-local
        budget_policy.budget_configure(self, settings.ratio, settings.min_per_second, settings.window, self._now())

    def _now(self) -> float:
        return _validate.clock_reading(self._clock, self._clock())

    def _add_call(self) -> None:
        budget_policy.budget_deposit(self)

    def _deposit_units(self) -> int:
        return self._deposit

    def _amounts(self) -> tuple[int, int, int]:
        return self._deposit, self._withdrawal, self._reserve

    def _share(self, shared: Any) -> None:
        self._shared = shared

    def _withdraw(self) -> bool:
        now = self._now()  # user code: before the lock
        if self._shared is not None:
            answer = self._shared.ask(self, now, True)
            if answer is not None:
                with self._lock:
                    return budget_policy.budget_record(self, now, bool(answer[0]))
        with self._lock:
            return budget_policy.budget_withdraw(self, now)

    def _balance(self) -> int:
        now = self._now()
        if self._shared is not None:
            answer = self._shared.ask(self, now, False)
            if answer is not None:
                return max(0, (self._reserve + int(answer[1])) // self._withdrawal)
        with self._lock:
            return budget_policy.budget_balance(self, now)

    def _counts(self) -> tuple[int, int, int]:
        return self._calls, self._withdrawn, self._exhausted


class RetryConfig(RetryPolicy):
    """How to retry: how many attempts, which errors, and how long to wait between them.

    The wait after failed attempt ``n`` (1-based) starts from
    ``base = min(max_delay, initial_delay * backoff_factor ** (n - 1))`` and
    is then jittered (see :class:`~hardy.Jitter`; ``jitter=True`` is full
    jitter, uniform in ``[0, base]``). It always lies in ``[0, max_delay]``.
    Keyword-only: ``retry_on_result`` (a predicate that makes a returned value
    count as a failure), ``deadline`` (a budget in seconds for all attempts
    and sleeps), ``random`` (returns floats in ``[0, 1)``) and ``clock``
    (monotonic seconds), injectable for reproducible tests, and ``budget``
    (a :class:`~hardy.RetryBudget` every retry draws on).

    Example::

        config = hardy.RetryConfig(max_attempts=5, initial_delay=0.1, max_delay=2.0,
                                   retryable_exceptions=(ConnectionError,))
        config.get_delay(3)   # somewhere in [0, 0.4]
    """

    __slots__ = (
        "__weakref__",
        "_budget",
        "_clock",
        "_jitter_given",
        "_ledger",
        "_random",
        "_retry_after",
        "_retry_on_result",
        "_retryable",
        "_sleep",
    )

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
        random: Callable[[], float] = _random_module.random,
        clock: Callable[[], float] = time.monotonic,
        retry_after: Callable[[Any], float | None] | None = None,
        sleep: Callable[[float], object] | None = None,
        budget: Any = None,
    ) -> None:
        if getattr(self, "_retryable", None) is not None:
            raise RuntimeError(_validate.ALREADY_INITIALISED.format(kind=type(self).__name__, obj=self))
        settings = _validate.retry_settings(
            max_attempts,
            backoff_factor,
            initial_delay,
            max_delay,
            jitter,
            retryable_exceptions,
            retry_on_result,
            deadline,
            random,
            clock,
            retry_after,
            sleep,
            budget,
        )
        policy.configure_retry(
            self,
            settings.max_attempts,
            settings.backoff_factor,
            settings.initial_delay,
            settings.max_delay,
            settings.jitter,
            settings.retry_circuit_open,
            settings.deadline is not None,
            0.0 if settings.deadline is None else settings.deadline,
        )
        self._retryable = settings.retryable_exceptions
        self._retry_on_result = settings.retry_on_result
        self._random = settings.random
        self._clock = settings.clock
        self._jitter_given: bool | Jitter = settings.jitter_given
        self._retry_after = settings.retry_after
        self._sleep = settings.sleep
        self._budget: Any = settings.budget
        self._ledger: BudgetLedger | None = None
        if settings.budget is not None:
            ledger = settings.budget._ledger
            if not isinstance(ledger, BudgetLedger):
                raise TypeError(f"budget {settings.budget!r} was made with the other core (hardy._core)")
            self._ledger = ledger

    @property
    def max_attempts(self) -> int:
        """Calls in all, the first one included."""
        return self._max_attempts

    @property
    def backoff_factor(self) -> float:
        """How much the base delay grows after each failure."""
        return self._factor

    @property
    def initial_delay(self) -> float:
        """The base delay after the first failure, in seconds."""
        return self._initial

    @property
    def max_delay(self) -> float:
        """The longest delay, in seconds."""
        return self._max_delay

    @property
    def jitter(self) -> bool | Jitter:
        """How delays are randomised, as given: ``True``, ``False`` or a :class:`~hardy.Jitter` member."""
        return self._jitter_given

    @property
    def retryable_exceptions(self) -> tuple[type[BaseException], ...]:
        """The exception types that are retried."""
        return self._retryable

    @property
    def retry_on_result(self) -> Callable[[Any], object] | None:
        """The predicate that makes a returned value count as a failure, if any."""
        return self._retry_on_result

    @property
    def deadline(self) -> float | None:
        """The time budget for all attempts and sleeps, in seconds, if any."""
        return self._deadline if self._has_deadline else None

    @property
    def retry_after(self) -> Callable[[Any], float | None] | None:
        """The callable that asks for a delay from the outcome (``None``: the backoff), if any."""
        return self._retry_after

    @property
    def sleep(self) -> Callable[[float], object] | None:
        """The injected sleep between attempts, if any (``None``: ``time.sleep`` / ``asyncio.sleep``)."""
        return self._sleep

    @property
    def budget(self) -> Any:
        """The :class:`~hardy.RetryBudget` every retry draws on, if any."""
        return self._budget

    @staticmethod
    def _budget_ledger(settings: Any) -> BudgetLedger:
        # hardy.RetryBudget makes its state with the core its configs will use.
        return BudgetLedger(settings)

    def get_delay(self, attempt: int, previous_delay: float | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based).

        ``previous_delay`` matters only for decorrelated jitter.

        Example::

            >>> hardy.RetryConfig(jitter=False).get_delay(3)
            4.0
        """
        attempt = _validate.positive_int("attempt", attempt)
        previous = -1.0 if previous_delay is None else _validate.seconds("previous_delay", previous_delay)
        return self._delay(attempt, previous)

    def _delay(self, attempt: int, previous: float) -> float:
        r = self._draw() if policy.draws(self) else 0.0
        return policy.delay(self, previous, r, policy.base_delay(self, attempt))

    def _draw(self) -> float:
        r = self._random()
        if type(r) is not float or not 0.0 <= r < 1.0:
            r = _validate.random_reading(self._random, r)
        return r

    def _now(self) -> float:
        return _validate.clock_reading(self._clock, self._clock())

    def _next_wait(self, attempt: int, previous: float, outcome: object, started: float) -> float:
        """The wait before attempt ``attempt + 1``, or -1 to give up (attempts or deadline ran out)."""
        if policy.attempts_exhausted(self, attempt, _sleep.attempt_cap()):
            return -1.0
        asked = -1.0
        if self._retry_after is not None:
            value = self._retry_after(outcome)
            if value is not None:
                asked = _validate.asked_delay(self._retry_after, value)
        wait = policy.retry_wait(asked, self._delay(attempt, previous) if policy.needs_backoff(asked) else 0.0)
        if self._has_deadline and policy.out_of_time(self, self._now() - started, wait):
            return -1.0
        if self._ledger is not None and not self._ledger._withdraw():
            return -2.0  # the budget said no (hardy._retry_run reports it)
        return wait

    def _retries(self, exc: BaseException) -> bool:
        # Classes, then predicates (hardy._match): isinstance() refuses a predicate in the tuple.
        retried = _match.matches(exc, self._retryable, "retryable_exceptions", self)
        return retried and (self._retry_circuit_open or not isinstance(exc, CircuitOpenError))

    def __reduce__(self) -> tuple[Any, ...]:
        return _validate.rebuild, (type(self), self._settings())

    def _settings(self) -> dict[str, Any]:
        """The keyword arguments that make this configuration again."""
        return {
            "max_attempts": self._max_attempts,
            "backoff_factor": self._factor,
            "initial_delay": self._initial,
            "max_delay": self._max_delay,
            "jitter": self._jitter_given,
            "retryable_exceptions": self._retryable,
            "retry_on_result": self._retry_on_result,
            "deadline": self.deadline,
            "random": self._random,
            "clock": self._clock,
            "retry_after": self._retry_after,
            "sleep": self._sleep,
            "budget": self._budget,
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(max_attempts={self._max_attempts}, backoff_factor={self._factor}, "
            f"initial_delay={self._initial}, max_delay={self._max_delay}, jitter={self._jitter_given!r})"
        )


def retrying(
    config: RetryConfig,
    func: Callable[P, R],
    on_retry: Callable[[BaseException | None, int], object] | None = None,
    *,
    before_sleep: Callable[[RetryState], object] | None = None,
    on_giveup: Callable[[RetryState], object] | None = None,
) -> Callable[P, R]:
    """Wrap ``func`` so that failed calls are retried as ``config`` says.

    ``on_retry(exception, attempt)`` runs before each sleep (``exception`` is
    ``None`` when ``retry_on_result`` asked for the retry), then
    ``before_sleep(state)``; ``on_giveup(state)`` when attempts or the
    deadline run out. Async hooks are awaited for an async ``func``.
    """
    if not isinstance(config, RetryConfig):
        raise TypeError(f"config must be a RetryConfig, got {config!r}")
    _validate.callable_arg("func", func)
    hooks = _retry_run.Hooks(on_retry, before_sleep, on_giveup)
    if _retry_gen.is_generator_function(func):
        return _retry_gen.retry_generator(retrying, config, func, hooks)  # type: ignore[no-any-return]
    c = config
    counters = Counters()
    retry_on_result = c._retry_on_result
    reads_clock = c._has_deadline or hooks.reads_clock
    now = c._now
    finish_sync = _retry_run.finish_sync
    finish_async = _retry_run.finish_async
    Run = _retry_run.Run
    plain: Callable[..., Any] = func  # called with positional arguments only
    ledger = c._ledger
    if ledger is not None:
        return _budgeted(config, func, hooks, counters, ledger)  # type: ignore[no-any-return]
    if _wrapping.is_async_callable(func):
        async_func = cast("Callable[..., Awaitable[Any]]", func)

        async def retried_async(*args: Any, **kwargs: Any) -> Any:
            started = now() if reads_clock else 0.0
            try:
                # Without keywords, f(*args): a call through ** costs a mapping more.
                result = await (async_func(*args, **kwargs) if kwargs else async_func(*args))
            except Exception as exc:
                error: BaseException | None = exc
                result = None
            else:
                if retry_on_result is None:
                    counters.first_ok += 1
                    return result
                error = None
            return await finish_async(Run(c, hooks, func, args, kwargs, counters, started), async_func, error, result)

        wrapper = _wrapping.copy_metadata(retried_async, func, is_async=True)
    else:
        hooks.check_sync(func)

        def retried(*args: Any, **kwargs: Any) -> Any:
            started = now() if reads_clock else 0.0
            try:
                # Without keywords, f(*args): a call through ** costs a mapping more.
                result = func(*args, **kwargs) if kwargs else plain(*args)
            except Exception as exc:
                error: BaseException | None = exc
                result = None
            else:
                if retry_on_result is None:
                    counters.first_ok += 1
                    return result
                error = None
            return finish_sync(Run(c, hooks, func, args, kwargs, counters, started), func, error, result)

        wrapper = _wrapping.copy_metadata(retried, func, is_async=False)
    return _finish_wrapper(wrapper, config, func, hooks, counters)  # type: ignore[no-any-return]


def _finish_wrapper(wrapper: Any, config: RetryConfig, func: Any, hooks: _retry_run.Hooks, counters: Counters) -> Any:
    wrapper.retry_config = config
    wrapper.statistics = RetryStatistics(counters._counters)
    wrapper.retry_with = _retry_run.bind_retry_with(retrying, config, func, hooks)
    return wrapper


def _budgeted(config: RetryConfig, func: Any, hooks: _retry_run.Hooks, counters: Counters, ledger: BudgetLedger) -> Any:
    """``retrying`` for a config with a budget: every call deposits first (apart, so the rest pay nothing)."""
    c = config
    retry_on_result = c._retry_on_result
    reads_clock = c._has_deadline or hooks.reads_clock
    now = c._now
    finish_sync = _retry_run.finish_sync
    finish_async = _retry_run.finish_async
    Run = _retry_run.Run
    plain = func  # called with positional arguments only
    if _wrapping.is_async_callable(func):
        async_func = cast("Callable[..., Awaitable[Any]]", func)

        async def retried_async(*args: Any, **kwargs: Any) -> Any:
            ledger._calls += 1  # budget_deposit, inlined as the compiled dispatch does: a call costs 70 ns less
            started = now() if reads_clock else 0.0
            try:
                # Without keywords, f(*args): a call through ** costs a mapping more.
                result = await (async_func(*args, **kwargs) if kwargs else async_func(*args))
            except Exception as exc:
                error: BaseException | None = exc
                result = None
            else:
                if retry_on_result is None:
                    counters.first_ok += 1
                    return result
                error = None
            return await finish_async(Run(c, hooks, func, args, kwargs, counters, started), async_func, error, result)

        wrapper = _wrapping.copy_metadata(retried_async, func, is_async=True)
    else:
        hooks.check_sync(func)

        def retried(*args: Any, **kwargs: Any) -> Any:
            ledger._calls += 1  # budget_deposit, inlined as the compiled dispatch does: a call costs 70 ns less
            started = now() if reads_clock else 0.0
            try:
                # Without keywords, f(*args): a call through ** costs a mapping more.
                result = func(*args, **kwargs) if kwargs else plain(*args)
            except Exception as exc:
                error: BaseException | None = exc
                result = None
            else:
                if retry_on_result is None:
                    counters.first_ok += 1
                    return result
                error = None
            return finish_sync(Run(c, hooks, func, args, kwargs, counters, started), func, error, result)

        wrapper = _wrapping.copy_metadata(retried, func, is_async=False)
    return _finish_wrapper(wrapper, config, func, hooks, counters)
