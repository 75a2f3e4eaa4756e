"""The reference's own unit tests, run against hardy through its drop-in names.

hardy keeps the names, parameters and defaults of ``attune.resilience`` (the
reference it was specified from). These are that package's unit tests for
its circuit breaker, retry, timeout, fallback and health modules, ported
test for test with their names and assertions, and run on both cores like
every test here. Changes made in porting:

- imports come from ``hardy`` (``hardy.retry``, ``hardy.timeout``,
  ``hardy.fallback`` and ``hardy.health`` also hold the names of the
  reference's modules of the same name);
- ``async`` tests run through ``asyncio.run`` (no pytest plugin needed);
- where the reference slept past a breaker's reset timeout, a fake clock is
  moved instead;
- where hardy differs on purpose, the test asserts hardy's behaviour and
  says ``differs:`` with the reason (each such difference is in
  ``docs/migrating.md``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

import pytest

import hardy
from hardy import CircuitOpenError, CircuitState, circuit_breaker, get_circuit_breaker
from hardy.fallback import EmptyChainError, Fallback, fallback, with_fallback
from hardy.health import HealthCheck, HealthCheckResult, HealthStatus, SystemHealth, get_health_check
from hardy.retry import retry, retry_with_backoff
from hardy.timeout import TimeoutError, timeout, with_timeout  # noqa: A004 - the reference's name

from .conftest import FakeClock


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def breaker(**settings: Any) -> Any:
    # Looked up per test: the core fixture swaps hardy.CircuitBreaker between the cores.
    return hardy.CircuitBreaker(**settings)


def config(**settings: Any) -> Any:
    return hardy.RetryConfig(**settings)


def busy_sleep(seconds: float) -> None:
    """``time.sleep(seconds)`` in short naps: a deadline lands between two of them.

    differs: hardy interrupts a sync call from a timer thread, so one long
    C call (a single ``time.sleep(2.0)``) finishes before the deadline is
    raised; the reference's SIGALRM cut the sleep short, in the main thread
    only. See docs/fallback-and-timeout.md.
    """
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.005)


# == circuit breaker (tests/unit/resilience/test_circuit_breaker.py) ==========================


class TestCircuitBreakerStates:
    def test_initial_state_is_closed(self) -> None:
        cb = breaker(name="test")
        assert cb.state == CircuitState.CLOSED
        assert cb.is_closed is True
        assert cb.is_open is False

    def test_opens_after_failure_threshold(self) -> None:
        cb = breaker(name="test_threshold", failure_threshold=3)
        for _ in range(3):
            cb.record_failure(Exception("test"))
        assert cb.state == CircuitState.OPEN
        assert cb.is_open is True

    def test_stays_closed_below_threshold(self) -> None:
        cb = breaker(name="test_below", failure_threshold=5)
        for _ in range(4):
            cb.record_failure(Exception("test"))
        assert cb.state == CircuitState.CLOSED

    def test_success_resets_failure_count(self) -> None:
        cb = breaker(name="test_reset", failure_threshold=3)
        cb.record_failure(Exception("test"))
        cb.record_failure(Exception("test"))
        cb.record_success()
        cb.record_failure(Exception("test"))
        assert cb.state == CircuitState.CLOSED

    def test_transitions_to_half_open_after_timeout(self, clock: FakeClock) -> None:
        cb = breaker(name="test_halfopen", failure_threshold=1, reset_timeout=0.1, clock=clock)
        cb.record_failure(Exception("test"))
        assert cb.state == CircuitState.OPEN
        clock.advance(0.15)
        assert cb.state == CircuitState.HALF_OPEN

    def test_closes_after_successful_half_open_calls(self, clock: FakeClock) -> None:
        # Issue 13: manual recording past the reset timeout follows the effective state.
        cb = breaker(name="test_recovery", failure_threshold=1, reset_timeout=0.1, half_open_max_calls=2, clock=clock)
        cb.record_failure(Exception("test"))
        clock.advance(0.15)
        assert cb.state == CircuitState.HALF_OPEN
        cb.record_success()
        cb.record_success()
        assert cb.state == CircuitState.CLOSED

    def test_reopens_on_failure_in_half_open(self, clock: FakeClock) -> None:
        cb = breaker(name="test_reopen", failure_threshold=1, reset_timeout=0.1, clock=clock)
        cb.record_failure(Exception("test"))
        clock.advance(0.15)
        assert cb.state == CircuitState.HALF_OPEN
        cb.record_failure(Exception("test"))
        assert cb.state == CircuitState.OPEN
        assert cb.get_time_until_reset() == 0.1  # a full reset timeout again

    def test_reopens_with_the_real_clock(self) -> None:
        # The reference's own form of the test above, sleeping on the default clock.
        cb = breaker(name="test_reopen_real", failure_threshold=1, reset_timeout=0.05)
        cb.record_failure(Exception("test"))
        time.sleep(0.07)
        assert cb.state == CircuitState.HALF_OPEN
        cb.record_failure(Exception("test"))
        assert cb.state == CircuitState.OPEN
        assert cb.get_time_until_reset() > 0.0


class TestCircuitBreakerExcludedExceptions:
    def test_excluded_exception_does_not_count(self) -> None:
        cb = breaker(name="test_excluded", failure_threshold=2, excluded_exceptions=(ValueError,))
        cb.record_failure(ValueError("excluded"))
        cb.record_failure(ValueError("excluded"))
        cb.record_failure(ValueError("excluded"))
        assert cb.state == CircuitState.CLOSED

    def test_non_excluded_exception_counts(self) -> None:
        cb = breaker(name="test_included", failure_threshold=2, excluded_exceptions=(ValueError,))
        cb.record_failure(TypeError("included"))
        cb.record_failure(TypeError("included"))
        assert cb.state == CircuitState.OPEN


class TestCircuitBreakerTimingMethods:
    def test_get_time_until_reset_when_open(self) -> None:
        cb = breaker(name="test_time", failure_threshold=1, reset_timeout=60)
        cb.record_failure(Exception("test"))
        remaining = cb.get_time_until_reset()
        assert remaining > 0
        assert remaining <= 60

    def test_get_time_until_reset_when_closed(self) -> None:
        cb = breaker(name="test_time_closed", failure_threshold=1)
        assert cb.get_time_until_reset() == 0

    def test_manual_reset(self) -> None:
        cb = breaker(name="test_manual_reset", failure_threshold=1)
        cb.record_failure(Exception("test"))
        assert cb.state == CircuitState.OPEN
        cb.reset()
        assert cb.state == CircuitState.CLOSED


class TestCircuitBreakerStats:
    def test_get_stats_returns_dict(self) -> None:
        cb = breaker(name="test_stats", failure_threshold=5)
        cb.record_failure(Exception("test"))
        cb.record_failure(Exception("test"))
        cb.record_success()
        stats = cb.get_stats()
        assert "state" in stats
        assert "failure_count" in stats
        assert "success_count" in stats
        assert stats["state"] == "closed"
        assert {"name", "time_until_reset"} <= stats.keys()


class TestCircuitBreakerDecorator:
    def test_decorator_wraps_sync_function(self) -> None:
        call_count = 0

        @circuit_breaker(name="test_sync_dec", failure_threshold=3)
        def my_func() -> str:
            nonlocal call_count
            call_count += 1
            return "success"

        assert my_func() == "success"
        assert call_count == 1

    def test_decorator_wraps_async_function(self) -> None:
        call_count = 0

        @circuit_breaker(name="test_async_dec", failure_threshold=3)
        async def my_async_func() -> str:
            nonlocal call_count
            call_count += 1
            return "async success"

        assert run(my_async_func()) == "async success"
        assert call_count == 1

    def test_decorator_raises_circuit_open_error(self) -> None:
        @circuit_breaker(name="test_open_dec", failure_threshold=1, reset_timeout=60)
        def failing_func() -> None:
            raise ValueError("always fails")

        with pytest.raises(ValueError, match="always fails"):
            failing_func()
        with pytest.raises(CircuitOpenError):
            failing_func()

    def test_decorator_with_fallback(self) -> None:
        def fallback_func() -> str:
            return "fallback result"

        @circuit_breaker(name="test_fallback_dec", failure_threshold=1, reset_timeout=60, fallback=fallback_func)
        def failing_func() -> str:
            raise ValueError("always fails")

        with pytest.raises(ValueError, match="always fails"):
            failing_func()
        assert failing_func() == "fallback result"


class TestCircuitBreakerRegistry:
    def test_get_circuit_breaker_returns_same_instance(self) -> None:
        @circuit_breaker(name="registry_test", failure_threshold=5)
        def test_func() -> str:
            return "test"

        test_func()
        cb = get_circuit_breaker("registry_test")
        assert cb is not None
        assert cb.name == "registry_test"

    def test_get_nonexistent_returns_none(self) -> None:
        assert get_circuit_breaker("nonexistent_circuit") is None

    def test_the_same_name_with_other_settings_is_refused(self) -> None:
        # differs: the reference silently reused the first breaker's settings.
        circuit_breaker(name="shared", failure_threshold=5)(lambda: None)
        circuit_breaker(name="shared", failure_threshold=5)(lambda: None)  # same settings: shared
        with pytest.raises(ValueError, match="'shared' already exists with other settings"):
            circuit_breaker(name="shared", failure_threshold=3)(lambda: None)

    def test_the_default_name_is_qualified(self) -> None:
        # differs: the reference named a breaker after the bare function name.
        @circuit_breaker
        def fetch() -> str:
            return "ok"

        where = "TestCircuitBreakerRegistry.test_the_default_name_is_qualified.<locals>"
        assert fetch.breaker.name == f"{__name__}.{where}.fetch"


class TestCircuitOpenError:
    def test_error_contains_name_and_reset_time(self) -> None:
        error = CircuitOpenError("test_circuit", 30.5)
        assert "test_circuit" in str(error)
        assert error.name == "test_circuit"
        assert error.reset_time == 30.5

    def test_message_reads_as_in_the_reference(self) -> None:
        assert str(CircuitOpenError("test_circuit", 30.5)) == "Circuit breaker 'test_circuit' is open. Resets in 30.5s"
        # Half-open with every trial slot taken: nothing to wait for but the trials.
        assert str(CircuitOpenError("test_circuit", 0.0)) == (
            "Circuit breaker 'test_circuit' is open. Resets in 0.0s: its trial calls are in progress"
        )


# == retry (tests/unit/resilience/test_retry.py) ===============================================


class TestRetryConfig:
    def test_default_values(self) -> None:
        cfg = config()
        assert cfg.max_attempts == 3
        assert cfg.backoff_factor == 2.0
        assert cfg.initial_delay == 1.0
        assert cfg.max_delay == 60.0
        assert cfg.jitter is True

    def test_custom_values(self) -> None:
        cfg = config(max_attempts=5, backoff_factor=3.0, initial_delay=0.5, max_delay=30.0, jitter=False)
        assert cfg.max_attempts == 5
        assert cfg.backoff_factor == 3.0
        assert cfg.initial_delay == 0.5
        assert cfg.max_delay == 30.0
        assert cfg.jitter is False

    def test_jitter_reads_back_as_given(self) -> None:
        # Issue 13: a Jitter member reads back as itself, and Jitter.NONE is falsy like False.
        for member in hardy.Jitter:
            assert config(jitter=member).jitter is member
        assert not hardy.Jitter.NONE
        assert all(member for member in hardy.Jitter if member is not hardy.Jitter.NONE)
        assert not config(jitter=False).jitter

    def test_retry_config_is_importable_from_hardy_retry(self) -> None:
        from hardy.retry import RetryConfig

        assert RetryConfig is hardy.RetryConfig  # the core in use


class TestRetryConfigDelay:
    def test_get_delay_first_attempt(self) -> None:
        assert config(initial_delay=1.0, jitter=False).get_delay(attempt=1) == 1.0

    def test_get_delay_exponential_growth(self) -> None:
        cfg = config(initial_delay=1.0, backoff_factor=2.0, jitter=False, max_delay=100)
        assert [cfg.get_delay(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]

    def test_get_delay_capped_at_max(self) -> None:
        cfg = config(initial_delay=1.0, backoff_factor=10.0, max_delay=5.0, jitter=False)
        assert cfg.get_delay(10) == 5.0

    def test_get_delay_with_jitter(self) -> None:
        cfg = config(initial_delay=1.0, jitter=True)
        delays = [cfg.get_delay(1) for _ in range(10)]
        assert len(set(delays)) > 1
        # differs: full jitter, drawn from [0, base]; the reference drew from [0.75, 1.25] x base.
        for d in delays:
            assert 0.0 <= d <= 1.0


class TestRetryDecorator:
    def test_succeeds_on_first_attempt(self) -> None:
        call_count = 0

        @retry(max_attempts=3)
        def always_succeeds() -> str:
            nonlocal call_count
            call_count += 1
            return "success"

        assert always_succeeds() == "success"
        assert call_count == 1

    def test_succeeds_after_transient_failures(self) -> None:
        call_count = 0

        @retry(max_attempts=5, initial_delay=0.01)
        def fails_twice() -> str:
            nonlocal call_count
            call_count += 1
            if call_count < 3:
                raise ValueError("transient error")
            return "success"

        assert fails_twice() == "success"
        assert call_count == 3

    def test_raises_after_max_attempts(self) -> None:
        call_count = 0

        @retry(max_attempts=3, initial_delay=0.01)
        def always_fails() -> None:
            nonlocal call_count
            call_count += 1
            raise ValueError("always fails")

        with pytest.raises(ValueError, match="always fails"):
            always_fails()
        assert call_count == 3

    def test_retryable_exceptions_filter(self) -> None:
        call_count = 0

        @retry(max_attempts=3, retryable_exceptions=(ValueError,), initial_delay=0.01)
        def raises_type_error() -> None:
            nonlocal call_count
            call_count += 1
            raise TypeError("not retryable")

        with pytest.raises(TypeError):
            raises_type_error()
        assert call_count == 1

    def test_on_retry_callback_called(self) -> None:
        retry_events: list[tuple[str, int]] = []

        def on_retry_handler(exception: BaseException | None, attempt: int) -> None:
            retry_events.append((str(exception), attempt))

        call_count = 0

        @retry(max_attempts=3, initial_delay=0.01, on_retry=on_retry_handler)
        def fails_twice() -> str:
            nonlocal call_count
            call_count += 1
            if call_count < 3:
                raise ValueError(f"attempt {call_count}")
            return "success"

        fails_twice()
        assert len(retry_events) == 2
        assert "attempt 1" in retry_events[0][0]
        assert retry_events[0][1] == 1

    def test_circuit_open_error_is_not_retried(self) -> None:
        # differs: the reference retried every Exception, CircuitOpenError included.
        calls = 0

        @retry(max_attempts=3, initial_delay=0.01)
        def rejected() -> None:
            nonlocal calls
            calls += 1
            raise CircuitOpenError("dep", 1.0)

        with pytest.raises(CircuitOpenError):
            rejected()
        assert calls == 1


class TestRetryDecoratorAsync:
    def test_async_succeeds_on_first_attempt(self) -> None:
        call_count = 0

        @retry(max_attempts=3)
        async def async_success() -> str:
            nonlocal call_count
            call_count += 1
            return "async success"

        assert run(async_success()) == "async success"
        assert call_count == 1

    def test_async_succeeds_after_failures(self) -> None:
        call_count = 0

        @retry(max_attempts=5, initial_delay=0.01)
        async def async_fails_twice() -> str:
            nonlocal call_count
            call_count += 1
            if call_count < 3:
                raise ValueError("transient")
            return "success"

        assert run(async_fails_twice()) == "success"
        assert call_count == 3

    def test_async_raises_after_max_attempts(self) -> None:
        call_count = 0

        @retry(max_attempts=3, initial_delay=0.01)
        async def async_always_fails() -> None:
            nonlocal call_count
            call_count += 1
            raise ValueError("always fails")

        with pytest.raises(ValueError, match="always fails"):
            run(async_always_fails())
        assert call_count == 3


class TestRetryWithBackoff:
    def test_retry_with_backoff_success(self) -> None:
        call_count = 0

        async def my_func() -> str:
            nonlocal call_count
            call_count += 1
            return "result"

        assert run(retry_with_backoff(my_func, config=config(max_attempts=3))) == "result"
        assert call_count == 1

    def test_retry_with_backoff_transient_failure(self) -> None:
        call_count = 0

        async def my_func() -> str:
            nonlocal call_count
            call_count += 1
            if call_count < 2:
                raise ValueError("fail")
            return "success"

        assert run(retry_with_backoff(my_func, config=config(max_attempts=3, initial_delay=0.01))) == "success"
        assert call_count == 2

    def test_retry_with_backoff_sync_function(self) -> None:
        call_count = 0

        def sync_func() -> str:
            nonlocal call_count
            call_count += 1
            return "sync result"

        # differs: synchronous for a sync function (the reference was async only):
        # `await retry_with_backoff(f)` becomes `retry_with_backoff(f)`.
        assert retry_with_backoff(sync_func, config=config(max_attempts=3)) == "sync result"
        assert call_count == 1


class TestRetryCoverageGapFillers:
    def test_async_on_retry_callback_called(self) -> None:
        retry_events: list[tuple[str, int]] = []

        def on_retry_handler(exception: BaseException | None, attempt: int) -> None:
            retry_events.append((str(exception), attempt))

        call_count = 0

        @retry(max_attempts=3, initial_delay=0.01, on_retry=on_retry_handler)
        async def async_fails_twice() -> str:
            nonlocal call_count
            call_count += 1
            if call_count < 3:
                raise ValueError(f"async-attempt {call_count}")
            return "ok"

        assert run(async_fails_twice()) == "ok"
        assert [attempt for _, attempt in retry_events] == [1, 2]

    def test_retry_with_backoff_uses_default_config_when_none(self) -> None:
        async def my_func() -> str:
            return "default-config"

        assert run(retry_with_backoff(my_func)) == "default-config"

    def test_retry_with_backoff_raises_after_max_attempts(self) -> None:
        call_count = 0

        async def always_fails() -> None:
            nonlocal call_count
            call_count += 1
            raise ValueError("permanent")

        with pytest.raises(ValueError, match="permanent"):
            run(retry_with_backoff(always_fails, config=config(max_attempts=2, initial_delay=0.01)))
        assert call_count == 2

    # differs: max_attempts=0 is refused where it is written, with a ValueError, instead
    # of a RuntimeError('Unexpected retry loop exit') at the first call.

    def test_retry_with_backoff_max_attempts_zero_raises_runtime_error(self) -> None:
        with pytest.raises(ValueError, match="max_attempts"):
            config(max_attempts=0)

    def test_retry_decorator_sync_max_attempts_zero_raises_runtime_error(self) -> None:
        with pytest.raises(ValueError, match="max_attempts"):
            retry(max_attempts=0)

    def test_retry_decorator_async_max_attempts_zero_raises_runtime_error(self) -> None:
        with pytest.raises(ValueError, match="max_attempts"):
            retry(max_attempts=0)


# == timeout (tests/unit/resilience/test_timeout.py) ===========================================


class TestTimeoutError:
    def test_create_timeout_error(self) -> None:
        error = TimeoutError("fetch_data", 30.0)
        assert error.operation == "fetch_data"
        assert error.timeout == 30.0

    def test_timeout_error_message(self) -> None:
        assert str(TimeoutError("api_call", 10.5)) == "Operation 'api_call' timed out after 10.5s"

    def test_timeout_error_is_exception(self) -> None:
        assert isinstance(TimeoutError("test", 5.0), Exception)
        # differs: it also subclasses the builtin TimeoutError.
        assert isinstance(TimeoutError("test", 5.0), builtins_timeout_error())

    def test_can_raise_timeout_error(self) -> None:
        with pytest.raises(TimeoutError) as exc_info:
            raise TimeoutError("slow_op", 1.0)
        assert exc_info.value.operation == "slow_op"
        assert exc_info.value.timeout == 1.0


def builtins_timeout_error() -> type[BaseException]:
    import builtins

    return builtins.TimeoutError


class TestTimeoutDecoratorAsync:
    def test_decorated_async_completes_in_time(self) -> None:
        @timeout(1.0)
        async def fast_func() -> str:
            await asyncio.sleep(0.01)
            return "success"

        assert run(fast_func()) == "success"

    def test_decorated_async_times_out(self) -> None:
        @timeout(0.05)
        async def slow_func() -> str:
            await asyncio.sleep(1.0)
            return "never_returned"

        with pytest.raises(TimeoutError) as exc_info:
            run(slow_func())
        assert exc_info.value.operation == "slow_func"
        assert exc_info.value.timeout == 0.05

    def test_custom_error_message(self) -> None:
        @timeout(0.05, error_message="Custom operation description")
        async def slow_func() -> None:
            await asyncio.sleep(1.0)

        with pytest.raises(TimeoutError) as exc_info:
            run(slow_func())
        assert exc_info.value.operation == "Custom operation description"

    def test_fallback_on_timeout(self) -> None:
        @timeout(0.05, fallback=lambda: "fallback_value")
        async def slow_func() -> str:
            await asyncio.sleep(1.0)
            return "never_returned"

        assert run(slow_func()) == "fallback_value"

    def test_async_fallback_on_timeout(self) -> None:
        async def async_fallback() -> str:
            await asyncio.sleep(0.01)
            return "async_fallback_value"

        @timeout(0.05, fallback=async_fallback)
        async def slow_func() -> str:
            await asyncio.sleep(1.0)
            return "never_returned"

        assert run(slow_func()) == "async_fallback_value"

    def test_preserves_function_name(self) -> None:
        @timeout(1.0)
        async def my_async_function() -> str:
            return "value"

        assert my_async_function.__name__ == "my_async_function"

    def test_passes_arguments(self) -> None:
        @timeout(1.0)
        async def func_with_args(x: str, y: str, z: str | None = None) -> str:
            return f"{x}-{y}-{z}"

        assert run(func_with_args("a", "b", z="c")) == "a-b-c"

    def test_fallback_receives_arguments(self) -> None:
        def fallback_func(x: str, y: str) -> str:
            return f"fallback-{x}-{y}"

        @timeout(0.05, fallback=fallback_func)
        async def slow_func(x: str, y: str) -> str:
            await asyncio.sleep(1.0)
            return f"primary-{x}-{y}"

        assert run(slow_func("a", "b")) == "fallback-a-b"

    def test_zero_timeout_immediately_times_out(self) -> None:
        # differs: timeout(0) is refused at decoration instead of timing out every call.
        with pytest.raises(ValueError, match="seconds"):
            timeout(0)

    def test_return_value_preserved(self) -> None:
        @timeout(1.0)
        async def get_dict() -> dict[str, Any]:
            return {"key": "value", "number": 42}

        assert run(get_dict()) == {"key": "value", "number": 42}


class TestTimeoutLogs:
    # Issue 13: one WARNING when a timeout fires and one INFO when its fallback answers, as the reference logged.

    def test_async_timeouts_log(self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.INFO, logger="hardy")

        async def slow() -> str:
            await asyncio.sleep(1.0)
            return "never"

        with pytest.raises(TimeoutError):
            run(timeout(0.01)(slow)())
        assert run(timeout(0.01, fallback=lambda: "cached")(slow)()) == "cached"
        # differs: on hardy's component loggers (children of "hardy"), not the reference's module logger.
        assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
            ("hardy.timeout", "WARNING", "Operation 'slow' timed out after 0.01s"),
            ("hardy.timeout", "WARNING", "Operation 'slow' timed out after 0.01s"),
            ("hardy.fallback", "INFO", "Operation 'slow' timed out; its fallback answered"),
        ]

    def test_thread_mode_and_with_timeout_log(self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.INFO, logger="hardy")

        def blocked() -> None:
            time.sleep(0.5)

        with pytest.raises(TimeoutError):
            timeout(0.01, mode="thread")(blocked)()
        assert run(with_timeout(asyncio.sleep(1.0), 0.01, fallback_value="late")) == "late"
        assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
            ("WARNING", "Operation 'blocked' timed out after 0.01s"),
            ("WARNING", "Operation 'coroutine' timed out after 0.01s"),
            ("INFO", "Operation 'coroutine' timed out; its fallback answered"),
        ]


class Client:
    @timeout(0.05)
    def fetch(self) -> None:
        busy_sleep(1.0)


class TestTimeoutDecoratorSync:
    def test_decorated_sync_completes_in_time(self) -> None:
        @timeout(1.0)
        def fast_func() -> str:
            time.sleep(0.01)
            return "success"

        assert fast_func() == "success"

    def test_decorated_sync_times_out(self) -> None:
        @timeout(0.1)
        def slow_func() -> str:
            busy_sleep(2.0)
            return "never_returned"

        with pytest.raises(TimeoutError) as exc_info:
            slow_func()
        assert exc_info.value.timeout == 0.1
        assert exc_info.value.operation == "slow_func"

    def test_a_method_is_named_by_its_qualified_name(self) -> None:
        with pytest.raises(TimeoutError) as exc_info:
            Client().fetch()
        assert exc_info.value.operation == "Client.fetch"
        assert str(exc_info.value) == "Operation 'Client.fetch' timed out after 0.05s"

    def test_sync_fallback_on_timeout(self) -> None:
        @timeout(0.1, fallback=lambda: "fallback_value")
        def slow_func() -> str:
            busy_sleep(2.0)
            return "never_returned"

        assert slow_func() == "fallback_value"

    def test_preserves_sync_function_name(self) -> None:
        @timeout(1.0)
        def my_sync_function() -> str:
            return "value"

        assert my_sync_function.__name__ == "my_sync_function"


class TestWithTimeout:
    def test_coroutine_completes_in_time(self) -> None:
        async def fast_coro() -> str:
            await asyncio.sleep(0.01)
            return "success"

        assert run(with_timeout(fast_coro(), 1.0)) == "success"

    def test_coroutine_times_out(self) -> None:
        async def slow_coro() -> str:
            await asyncio.sleep(1.0)
            return "never_returned"

        with pytest.raises(TimeoutError) as exc_info:
            run(with_timeout(slow_coro(), 0.05))
        assert exc_info.value.operation == "coroutine"
        assert exc_info.value.timeout == 0.05

    def test_fallback_value_on_timeout(self) -> None:
        async def slow_coro() -> str:
            await asyncio.sleep(1.0)
            return "never_returned"

        assert run(with_timeout(slow_coro(), 0.05, fallback_value="fallback")) == "fallback"

    def test_fallback_none_raises(self) -> None:
        async def slow_coro() -> None:
            await asyncio.sleep(1.0)

        # differs: None is a valid fallback value; leave fallback_value out to get the error.
        assert run(with_timeout(slow_coro(), 0.05, fallback_value=None)) is None
        with pytest.raises(TimeoutError):
            run(with_timeout(slow_coro(), 0.05))

    def test_fallback_value_types(self) -> None:
        async def slow_coro() -> None:
            await asyncio.sleep(1.0)

        values: list[object] = [{}, [], 0, ""]
        for value in values:
            assert run(with_timeout(slow_coro(), 0.05, fallback_value=value)) == value

    def test_return_value_preserved(self) -> None:
        async def complex_result() -> dict[str, Any]:
            return {"data": [1, 2, 3], "status": "ok"}

        assert run(with_timeout(complex_result(), 1.0)) == {"data": [1, 2, 3], "status": "ok"}

    def test_zero_timeout(self) -> None:
        async def coro() -> str:
            return "value"

        # differs: a limit of 0 is refused with a ValueError instead of timing out at once.
        with pytest.raises(ValueError, match="seconds"):
            run(with_timeout(coro(), 0))


class TestTimeoutEdgeCases:
    def test_very_small_timeout(self) -> None:
        @timeout(0.001)
        async def func() -> None:
            await asyncio.sleep(0.1)

        with pytest.raises(TimeoutError):
            run(func())

    def test_large_timeout(self) -> None:
        @timeout(3600)
        async def func() -> str:
            return "success"

        assert run(func()) == "success"

    def test_exception_propagation(self) -> None:
        @timeout(1.0)
        async def failing_func() -> None:
            raise ValueError("Function error")

        with pytest.raises(ValueError, match="Function error"):
            run(failing_func())

    def test_multiple_decorated_calls(self) -> None:
        call_count = [0]

        @timeout(1.0)
        async def counter() -> int:
            call_count[0] += 1
            return call_count[0]

        assert [run(counter()) for _ in range(3)] == [1, 2, 3]

    def test_concurrent_timeout_calls(self) -> None:
        @timeout(1.0)
        async def slow_func(value: str) -> str:
            await asyncio.sleep(0.05)
            return value

        async def gather() -> list[str]:
            return list(await asyncio.gather(slow_func("a"), slow_func("b"), slow_func("c")))

        assert set(run(gather())) == {"a", "b", "c"}

    def test_nested_timeouts(self) -> None:
        @timeout(1.0)
        async def inner() -> str:
            await asyncio.sleep(0.01)
            return "inner"

        @timeout(2.0)
        async def outer() -> str:
            return await inner()

        assert run(outer()) == "inner"

    def test_cancellation_cleanup(self) -> None:
        cleanup_called = [False]

        @timeout(0.05)
        async def func_with_cleanup() -> None:
            try:
                await asyncio.sleep(1.0)
            finally:
                cleanup_called[0] = True

        with pytest.raises(TimeoutError):
            run(func_with_cleanup())
        assert cleanup_called[0] is True  # cancelled at the deadline, so its finally ran

    def test_fallback_exception_propagates(self) -> None:
        def failing_fallback() -> None:
            raise ValueError("Fallback error")

        @timeout(0.05, fallback=failing_fallback)
        async def slow_func() -> None:
            await asyncio.sleep(1.0)

        with pytest.raises(ValueError, match="Fallback error"):
            run(slow_func())

    def test_decorator_with_no_args_uses_default(self) -> None:
        @timeout(1.0)
        async def func() -> str:
            return "value"

        assert func.__name__ == "func"

    def test_seconds_by_keyword(self) -> None:
        @timeout(seconds=5)
        def fast_function() -> str:
            return "done"

        assert fast_function() == "done"


# == fallback (the reference's behavioural tests, and its module's documented use) ==============


class TestFallbackDecorator:
    def test_fallback_decorator_applies_to_function(self) -> None:
        async def primary() -> str:
            return "primary"

        async def fallback_fn() -> str:
            return "fallback_value"

        wrapped = with_fallback(primary, [fallback_fn], default="fallback_value")
        assert run(wrapped()) in ("primary", "fallback_value")

    def test_fallback_decorator_has_default_parameter(self) -> None:
        async def primary() -> None:
            pass

        assert with_fallback(primary, [], default=None) is not None

    def test_sync_decorator_tries_each_then_the_default(self) -> None:
        def from_cache() -> str:
            raise KeyError("cold")

        @fallback(from_cache, lambda: "from-fallback")
        def risky() -> str:
            raise RuntimeError("primary failed")

        assert risky() == "from-fallback"

        @fallback(from_cache, default={"data": "fallback"})
        def all_fail() -> dict[str, str]:
            raise RuntimeError("primary failed")

        assert all_fail() == {"data": "fallback"}

    def test_mixed_chains_are_async(self) -> None:
        # Issue 13: any async member makes the chain async, as the reference's async wrapper was.
        async def from_remote() -> str:
            return "remote"

        def primary() -> str:
            raise ValueError("boom")

        safe = with_fallback(primary, [from_remote])
        assert asyncio.iscoroutinefunction(safe)
        assert run(safe()) == "remote"

        @fallback(from_remote)
        def decorated() -> str:
            raise ValueError("boom")

        assert asyncio.iscoroutinefunction(decorated)
        assert run(decorated()) == "remote"

    def test_with_fallback_of_sync_functions_is_sync(self) -> None:
        # differs: the reference always returned an async function.
        def primary() -> str:
            raise ValueError("boom")

        safe = with_fallback(primary, [lambda: "backup"])
        assert safe() == "backup"

    def test_all_failing_without_a_default_raises_all_fallbacks_failed(self) -> None:
        # differs: AllFallbacksFailedError (a RuntimeError) carrying every error, raised from the last.
        first, last = ValueError("first"), KeyError("last")

        def primary() -> None:
            raise first

        def second() -> None:
            raise last

        with pytest.raises(hardy.AllFallbacksFailedError) as info:
            with_fallback(primary, [second])()
        assert isinstance(info.value, RuntimeError)
        assert info.value.errors == [first, last]
        assert info.value.__cause__ is last


class TestFallbackChain:
    def test_fields_as_in_the_reference(self) -> None:
        chain = Fallback(name="data_source")
        assert chain.name == "data_source"
        assert chain.functions == []
        assert isinstance(chain.functions, list)
        assert chain.default_value is None
        assert chain.has_default is False

    def test_add_and_execute(self) -> None:
        def live() -> str:
            raise ConnectionError("down")

        chain = Fallback(name="data_source", default_value="offline_mode")
        assert chain.add(live) is chain
        chain.functions.append(lambda: "cached")
        assert chain.execute() == "cached"

    def test_the_default_when_all_fail(self) -> None:
        def live() -> str:
            raise ConnectionError("down")

        assert Fallback("data_source", [live], default_value="offline_mode").execute() == "offline_mode"

    def test_none_is_a_valid_default(self) -> None:
        # differs: the reference treated default_value=None as "no default" and re-raised.
        def live() -> str:
            raise ConnectionError("down")

        chain = Fallback("data_source", [live], default_value=None)
        assert chain.has_default is True
        assert chain.execute() is None

    def test_an_empty_chain_says_it_has_no_functions(self) -> None:
        with pytest.raises(RuntimeError, match="no functions to execute"):
            Fallback("empty").execute()
        with pytest.raises(ValueError, match="no functions to execute"):
            run(Fallback("empty").execute_async())
        assert issubclass(EmptyChainError, ValueError)

    def test_execute_of_an_async_chain_is_awaited(self) -> None:
        async def remote() -> str:
            return "remote"

        def live() -> str:
            raise ConnectionError("down")

        chain = Fallback("mixed", [live, remote])
        assert run(chain.execute()) == "remote"  # as `await fb.execute()` in the reference
        assert run(chain.execute_async()) == "remote"

    def test_execute_of_an_all_sync_chain_is_sync(self) -> None:
        # differs: `await fb.execute()` becomes `fb.execute()` (or `await fb.execute_async()`).
        chain = Fallback("sync", [lambda: "value"])
        assert chain.execute() == "value"
        assert run(chain.execute_async()) == "value"


# == health (tests/unit/resilience/test_health.py) =============================================


class TestHealthStatus:
    def test_statuses(self) -> None:
        assert HealthStatus.HEALTHY.value == "healthy"
        assert HealthStatus.DEGRADED.value == "degraded"
        assert HealthStatus.UNHEALTHY.value == "unhealthy"
        assert HealthStatus.UNKNOWN.value == "unknown"


class TestHealthCheckResult:
    def test_create_healthy_result(self) -> None:
        result = HealthCheckResult(name="test_check", status=HealthStatus.HEALTHY, message="All good")
        assert result.name == "test_check"
        assert result.status == HealthStatus.HEALTHY
        assert result.message == "All good"

    def test_create_result_with_details(self) -> None:
        result = HealthCheckResult(
            name="db_check",
            status=HealthStatus.HEALTHY,
            message="Connected",
            latency_ms=5.2,
            details={"connections": 10, "pool_size": 20},
        )
        assert result.latency_ms == 5.2
        assert result.details["connections"] == 10

    def test_result_has_timestamp(self) -> None:
        result = HealthCheckResult(name="test", status=HealthStatus.HEALTHY)
        assert isinstance(result.timestamp, datetime)


class TestSystemHealth:
    def test_create_system_health(self) -> None:
        checks = [
            HealthCheckResult(name="check1", status=HealthStatus.HEALTHY),
            HealthCheckResult(name="check2", status=HealthStatus.HEALTHY),
        ]
        health = SystemHealth(status=HealthStatus.HEALTHY, checks=checks, version="1.0.0", uptime_seconds=3600)
        assert health.status == HealthStatus.HEALTHY
        assert len(health.checks) == 2
        assert health.version == "1.0.0"
        assert health.uptime_seconds == 3600

    def test_to_dict(self) -> None:
        checks = [HealthCheckResult(name="check1", status=HealthStatus.HEALTHY)]
        result = SystemHealth(status=HealthStatus.HEALTHY, checks=checks, version="1.0.0").to_dict()
        assert {"status", "checks", "version", "timestamp"} <= result.keys()


class TestHealthCheckClass:
    @pytest.fixture
    def health(self) -> HealthCheck:
        return HealthCheck(version="test-1.0")

    def test_register_check_as_decorator(self, health: HealthCheck) -> None:
        @health.register("my_check")
        def check_func() -> bool:
            return True

        assert "my_check" in health._checks

    def test_register_check_with_timeout(self, health: HealthCheck) -> None:
        @health.register("slow_check", timeout=30.0)
        def slow_check() -> bool:
            return True

        assert "slow_check" in health._checks
        assert health._timeouts["slow_check"] == 30.0

    def test_register_critical_check(self, health: HealthCheck) -> None:
        @health.register("critical_check", critical=True)
        def critical_func() -> bool:
            return True

        assert "critical_check" in health._checks

    def test_run_check_returns_healthy(self, health: HealthCheck) -> None:
        health.register("healthy_check")(lambda: True)
        assert run(health.run_check("healthy_check")).status == HealthStatus.HEALTHY

    def test_run_check_returns_unhealthy(self, health: HealthCheck) -> None:
        health.register("unhealthy_check")(lambda: False)
        assert run(health.run_check("unhealthy_check")).status == HealthStatus.UNHEALTHY

    def test_run_check_with_dict_response(self, health: HealthCheck) -> None:
        health.register("dict_check")(lambda: {"healthy": True, "connections": 5})
        result = run(health.run_check("dict_check"))
        assert result.status == HealthStatus.HEALTHY
        assert result.details["connections"] == 5

    def test_run_check_handles_exception(self, health: HealthCheck) -> None:
        @health.register("error_check")
        def raises_error() -> None:
            raise ValueError("Something went wrong")

        result = run(health.run_check("error_check"))
        assert result.status == HealthStatus.UNHEALTHY
        assert "Something went wrong" in result.message

    def test_run_check_tracks_latency(self, health: HealthCheck) -> None:
        @health.register("latency_check")
        async def slow_check() -> bool:
            await asyncio.sleep(0.05)
            return True

        assert run(health.run_check("latency_check")).latency_ms >= 30

    def test_run_all_checks(self, health: HealthCheck) -> None:
        health.register("check1")(lambda: True)
        health.register("check2")(lambda: True)
        system_health = run(health.run_all())
        assert system_health.status == HealthStatus.HEALTHY
        assert len(system_health.checks) == 2

    def test_run_all_with_unhealthy_check(self, health: HealthCheck) -> None:
        health.register("healthy")(lambda: True)
        health.register("unhealthy")(lambda: False)
        assert run(health.run_all()).status != HealthStatus.HEALTHY

    def test_run_all_sync(self, health: HealthCheck) -> None:
        health.register("sync_check")(lambda: True)
        system_health = health.run_all_sync()
        assert len(system_health.checks) >= 1


class TestHealthCheckAsync:
    def test_async_check_function(self) -> None:
        health = HealthCheck(version="test-async")

        @health.register("async_check")
        async def async_healthy() -> bool:
            await asyncio.sleep(0.01)
            return True

        assert run(health.run_check("async_check")).status == HealthStatus.HEALTHY

    def test_run_all_parallel(self) -> None:
        health = HealthCheck(version="test-async")
        running: list[str] = []
        overlapped = []

        def slow(name: str) -> Callable[[], Coroutine[Any, Any, bool]]:
            async def check() -> bool:
                running.append(name)
                await asyncio.sleep(0.05)
                overlapped.append(len(running) == 2)  # both started before either finished
                return True

            return check

        health.register("slow1")(slow("slow1"))
        health.register("slow2")(slow("slow2"))
        assert len(run(health.run_all()).checks) == 2
        assert overlapped == [True, True]


class TestGlobalHealthCheck:
    def test_get_health_check_returns_instance(self) -> None:
        assert isinstance(get_health_check(), HealthCheck)

    def test_get_health_check_returns_same_instance(self) -> None:
        assert get_health_check() is get_health_check()


class TestRunCheckEdgeCases:
    def test_unknown_check_returns_unknown_status(self) -> None:
        result = run(HealthCheck(version="1.0").run_check("does_not_exist"))
        assert result.status == HealthStatus.UNKNOWN
        assert "not found" in result.message

    def test_non_bool_non_dict_result_is_healthy(self) -> None:
        h = HealthCheck()
        h.register("returns_int")(lambda: 42)
        result = run(h.run_check("returns_int"))
        assert result.status == HealthStatus.HEALTHY
        assert result.details == {"value": 42}

    def test_a_false_value_is_unhealthy(self) -> None:
        # Issue 13: judged by its truth value (the reference called 0 and "" healthy too).
        h = HealthCheck()
        h.register("returns_zero")(lambda: 0)
        h.register("returns_empty")(lambda: "")
        assert run(h.run_check("returns_zero")).status == HealthStatus.UNHEALTHY
        assert run(h.run_check("returns_empty")).status == HealthStatus.UNHEALTHY

    def test_timeout_returns_unhealthy(self) -> None:
        h = HealthCheck()

        @h.register("slow", timeout=0.05)
        async def slow() -> bool:
            await asyncio.sleep(1)
            return True

        result = run(h.run_check("slow"))
        assert result.status == HealthStatus.UNHEALTHY
        assert "timed out" in result.message

    def test_a_sync_check_has_a_timeout_too(self) -> None:
        # differs: the reference ran a sync check inline, with no timeout.
        h = HealthCheck()
        h.register("slow", timeout=0.05)(lambda: time.sleep(0.5))
        result = run(h.run_check("slow"))
        assert result.status == HealthStatus.UNHEALTHY
        assert "timed out" in result.message


class TestRunAllOverallStatus:
    def test_unhealthy_when_any_unhealthy(self) -> None:
        h = HealthCheck()
        h.register("ok")(lambda: True)
        h.register("bad")(lambda: False)
        # differs: a non-critical UNHEALTHY check makes the system DEGRADED; a critical one UNHEALTHY.
        assert run(h.run_all()).status == HealthStatus.DEGRADED
        h.register("vital", critical=True)(lambda: False)
        assert run(h.run_all()).status == HealthStatus.UNHEALTHY

    def test_degraded_when_any_degraded(self) -> None:
        h = HealthCheck()
        original = h.run_check

        async def patched_run_check(name: str) -> HealthCheckResult:
            if name == "degraded":
                return HealthCheckResult(name=name, status=HealthStatus.DEGRADED)
            return await original(name)

        # The reference's test fills the private tables by hand; hardy keeps them usable.
        h._checks["degraded"] = lambda: True  # type: ignore[assignment]
        h._checks["healthy"] = lambda: True  # type: ignore[assignment]
        h._timeouts["degraded"] = 5.0
        h._timeouts["healthy"] = 5.0
        h.run_check = patched_run_check  # type: ignore[method-assign]
        assert run(h.run_all()).status == HealthStatus.DEGRADED

    def test_unknown_when_only_unknown(self) -> None:
        h = HealthCheck()

        async def patched_run_check(name: str) -> HealthCheckResult:
            return HealthCheckResult(name=name, status=HealthStatus.UNKNOWN)

        h._checks["x"] = lambda: True  # type: ignore[assignment]
        h._timeouts["x"] = 5.0
        h.run_check = patched_run_check  # type: ignore[method-assign]
        # differs: any UNKNOWN check makes the system DEGRADED (the reference: UNKNOWN when all are).
        assert run(h.run_all()).status == HealthStatus.DEGRADED

    def test_a_bare_function_in_checks_runs_with_its_timeout(self) -> None:
        h = HealthCheck()
        h._checks["by_hand"] = lambda: time.sleep(0.5)  # type: ignore[assignment]
        h._timeouts["by_hand"] = 0.05
        result = run(h.run_check("by_hand"))
        assert result.status == HealthStatus.UNHEALTHY
        assert "timed out after 0.05s" in result.message
        assert result.critical is False


class TestRegisterDefaultChecks:
    def test_default_checks_registered(self) -> None:
        from hardy.health import register_default_checks

        h = HealthCheck()
        register_default_checks(h)
        # differs: hardy's own checks, not the reference's application checks
        # (workflow_registry, smart_router, chain_executor, memory_graph).
        assert set(h._checks) == {"circuit_breakers", "bulkheads", "rate_limiters", "process"}

    def test_an_open_breaker_made_directly_is_seen(self) -> None:
        # Issue 13: every live breaker, registered or not.
        from hardy.health import register_default_checks

        h = register_default_checks(HealthCheck())
        # Other tests' breakers may still be alive: look only at this one's entry.
        assert "compat-payments" not in run(h.run_check("circuit_breakers")).details["breakers"]
        payments = breaker(name="compat-payments", failure_threshold=1)
        payments.record_failure(Exception("down"))
        result = run(h.run_check("circuit_breakers"))
        assert result.status == HealthStatus.DEGRADED
        assert "compat-payments (open)" in result.message
        assert result.details["breakers"]["compat-payments"]["registered"] is False
