"""Retry with backoff and jitter, on both cores."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import math
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest

import hardy
from hardy import Jitter, _sleep

from .conftest import FakeClock


class Flaky(Exception):
    pass


class Fatal(Exception):
    pass


def failing(times: int, exc: type[BaseException] = Flaky, value: Any = "ok") -> Any:
    """A function that raises ``exc`` on its first ``times`` calls; ``.calls`` counts them."""
    calls = 0

    def func(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        func.calls = calls  # type: ignore[attr-defined]
        if calls <= times:
            raise exc(calls)
        return value

    func.calls = 0  # type: ignore[attr-defined]
    return func


@pytest.fixture(autouse=True)
def instant() -> Any:
    with hardy.testing.instant_retries() as sleeps:
        yield sleeps


@contextlib.contextmanager
def real_sleeps() -> Iterator[None]:
    """Leave the autouse instant-retries block for a moment: sleeps are real inside."""
    saved = list(_sleep._records)
    _sleep._records.clear()
    try:
        yield
    finally:
        _sleep._records[:] = saved


# -- attempts and outcomes ---------------------------------------------------


def test_success_on_first_attempt_makes_one_call(instant: Any) -> None:
    func = failing(0)
    assert hardy.retry(func)(1, k=2) == "ok"
    assert func.calls == 1
    assert instant.count == 0


def test_retries_until_success(instant: Any) -> None:
    func = failing(2)
    wrapped = hardy.retry(max_attempts=3, initial_delay=1.0, jitter=False)(func)
    assert wrapped() == "ok"
    assert func.calls == 3
    assert instant.delays == [1.0, 2.0]


def test_gives_up_after_max_attempts_with_the_very_same_exception() -> None:
    raised: list[BaseException] = []

    def func() -> None:
        exc = Flaky(len(raised))
        raised.append(exc)
        raise exc

    wrapped = hardy.retry(max_attempts=4, jitter=False, initial_delay=0)(func)
    with pytest.raises(Flaky) as info:
        wrapped()
    assert len(raised) == 4
    assert info.value is raised[-1]
    assert info.traceback[-1].name == "func"


def test_non_retryable_exceptions_propagate_at_once() -> None:
    func = failing(5, Fatal)
    wrapped = hardy.retry(max_attempts=5, retryable_exceptions=(Flaky,))(func)
    with pytest.raises(Fatal):
        wrapped()
    assert func.calls == 1


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit, GeneratorExit])
def test_base_exceptions_are_never_retried(exc: type[BaseException]) -> None:
    func = failing(5, exc)
    with pytest.raises(exc):
        hardy.retry(max_attempts=5, retryable_exceptions=(BaseException,))(func)()
    assert func.calls == 1


def test_single_exception_class_is_accepted() -> None:
    func = failing(1, KeyError)
    assert hardy.retry(retryable_exceptions=LookupError, initial_delay=0)(func)() == "ok"


def test_on_retry_runs_before_each_sleep_never_after_the_last_failure(instant: Any) -> None:
    events: list[tuple[str, Any, int | float]] = []
    func = failing(5)

    def on_retry(exc: BaseException | None, attempt: int) -> None:
        events.append(("on_retry", exc, attempt))
        assert instant.count == attempt - 1  # the sleep for this attempt comes after

    wrapped = hardy.retry(max_attempts=3, jitter=False, on_retry=on_retry)(func)
    with pytest.raises(Flaky):
        wrapped()
    assert [(name, type(exc), attempt) for name, exc, attempt in events] == [
        ("on_retry", Flaky, 1),
        ("on_retry", Flaky, 2),
    ]
    assert [exc.args for _, exc, _ in events] == [(1,), (2,)]
    assert instant.delays == [1.0, 2.0]


def test_on_retry_error_propagates_with_the_attempt_error_as_context() -> None:
    def on_retry(exc: BaseException | None, attempt: int) -> None:
        raise RuntimeError("hook")

    with pytest.raises(RuntimeError, match="hook") as info:
        hardy.retry(on_retry=on_retry)(failing(3))()
    assert isinstance(info.value.__context__, Flaky)


def test_zero_delays_never_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(delay: float) -> None:
        raise AssertionError(f"slept {delay}")

    monkeypatch.setattr(time, "sleep", forbidden)
    with hardy.testing.instant_retries() as sleeps:
        pass
    func = failing(3)
    assert hardy.retry(max_attempts=4, initial_delay=0, max_delay=0)(func)() == "ok"
    assert sleeps.count == 0


def test_real_sleeps_happen_outside_testing_mode() -> None:
    func = failing(1)
    wrapped = hardy.retry(initial_delay=0.02, jitter=False)(func)
    started = time.monotonic()
    with real_sleeps():
        assert wrapped() == "ok"
    assert time.monotonic() - started >= 0.02


def test_keyboard_interrupt_during_sleep_is_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(delay: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(time, "sleep", interrupted)
    func = failing(2)
    with real_sleeps(), pytest.raises(KeyboardInterrupt):
        hardy.retry(initial_delay=1, jitter=False)(func)()
    assert func.calls == 1


def test_circuit_open_error_is_not_retried_unless_named(clock: FakeClock) -> None:
    breaker = hardy.CircuitBreaker("dep", failure_threshold=1, reset_timeout=60, clock=clock)
    func = failing(10, ConnectionError)
    guarded = breaker(func)
    wrapped = hardy.retry(max_attempts=5, initial_delay=0)(guarded)
    with pytest.raises(hardy.CircuitOpenError):
        wrapped()
    assert func.calls == 1  # the breaker opened; the retry gave up on the rejection
    named = hardy.retry(max_attempts=3, initial_delay=0, retryable_exceptions=(hardy.CircuitOpenError,))(guarded)
    with pytest.raises(hardy.CircuitOpenError):
        named()
    assert breaker.get_stats()["rejections"] == 1 + 3


def test_stacking_retry_over_breaker_counts_each_attempt(clock: FakeClock) -> None:
    @hardy.retry(max_attempts=3, initial_delay=0)
    @hardy.circuit_breaker("stack", failure_threshold=5)
    def fetch() -> str:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        fetch()
    assert hardy.get_circuit_breaker("stack").get_stats()["failures"] == 3


# -- retry_on_result and deadline ----------------------------------------------


def test_retry_on_result_retries_then_returns_the_last_result(instant: Any) -> None:
    results = iter([None, None, None, None])
    seen: list[tuple[Any, int]] = []
    wrapped = hardy.retry(
        max_attempts=3,
        jitter=False,
        retry_on_result=lambda r: r is None,
        on_retry=lambda exc, attempt: seen.append((exc, attempt)),
    )(lambda: next(results))
    assert wrapped() is None
    assert seen == [(None, 1), (None, 2)]
    assert instant.count == 2
    values = iter([None, "ready"])
    assert hardy.retry(retry_on_result=lambda r: r is None)(lambda: next(values))() == "ready"


def test_retry_on_result_predicate_error_propagates() -> None:
    def predicate(result: Any) -> bool:
        raise ValueError("bad predicate")

    with pytest.raises(ValueError, match="bad predicate"):
        hardy.retry(retry_on_result=predicate)(lambda: 1)()


def test_deadline_stops_before_a_sleep_that_would_end_past_it(instant: Any, clock: FakeClock) -> None:
    func = failing(10)

    def tick(*args: Any) -> Any:
        clock.advance(1.0)  # every attempt takes one second
        return func()

    wrapped = hardy.retry(max_attempts=10, initial_delay=1.0, jitter=False, deadline=6.0, clock=clock)(tick)
    with pytest.raises(Flaky) as info:
        wrapped()
    # attempt 1 ends at 1s, sleeps 1 -> attempt 2 ends at 3s, sleeps 2 -> attempt 3 ends at 6s;
    # sleeping 4 more would end at 10s > 6s: give up with the third error.
    assert info.value.args == (3,)
    assert instant.delays == [1.0, 2.0]


def test_deadline_returns_the_last_result_for_result_retries(clock: FakeClock) -> None:
    wrapped = hardy.retry(
        max_attempts=10, initial_delay=5.0, jitter=False, deadline=4.0, retry_on_result=bool, clock=clock
    )(lambda: "still bad")
    assert wrapped() == "still bad"


# -- delays ---------------------------------------------------------------------


def test_exponential_base_delay_is_capped() -> None:
    config = hardy.RetryConfig(initial_delay=0.5, backoff_factor=3.0, max_delay=10.0, jitter=False)
    assert [config.get_delay(n) for n in range(1, 6)] == [0.5, 1.5, 4.5, 10.0, 10.0]
    assert config.get_delay(2**31 - 1) == 10.0  # no overflow
    assert hardy.RetryConfig(initial_delay=0, max_delay=0, jitter=False).get_delay(50) == 0.0


@pytest.mark.parametrize("jitter", list(Jitter))
def test_every_jitter_stays_in_bounds(jitter: Jitter) -> None:
    rng = random.Random(3)
    config = hardy.RetryConfig(initial_delay=0.1, max_delay=5.0, backoff_factor=2.5, jitter=jitter, random=rng.random)
    previous = None
    for attempt in range(1, 200):
        delay = config.get_delay(attempt % 12 + 1, previous)
        assert 0.0 <= delay <= 5.0
        previous = delay


def _uniformity(samples: list[float], low: float, high: float, bins: int = 10) -> float:
    """Pearson's chi-square statistic of ``samples`` against uniform on [low, high]."""
    counts = [0] * bins
    for value in samples:
        index = min(int((value - low) / (high - low) * bins), bins - 1)
        counts[index] += 1
    expected = len(samples) / bins
    return sum((count - expected) ** 2 / expected for count in counts)


# 99.9th percentile of chi-square with 9 degrees of freedom.
CHI2_9_999 = 27.88


@pytest.mark.parametrize(
    ("jitter", "low", "high"),
    [(Jitter.FULL, 0.0, 4.0), (Jitter.EQUAL, 2.0, 4.0), (Jitter.NONE, 4.0, 4.0)],
)
def test_jitter_distributions(jitter: Jitter, low: float, high: float) -> None:
    rng = random.Random(12345)
    config = hardy.RetryConfig(initial_delay=1.0, backoff_factor=2.0, max_delay=60.0, jitter=jitter, random=rng.random)
    samples = [config.get_delay(3) for _ in range(20_000)]  # base = 4
    assert min(samples) >= low
    assert max(samples) <= high
    if low == high:
        assert set(samples) == {4.0}
        return
    assert math.isclose(sum(samples) / len(samples), (low + high) / 2, rel_tol=0.02)
    assert _uniformity(samples, low, high) < CHI2_9_999


def test_decorrelated_jitter_distribution() -> None:
    rng = random.Random(99)
    config = hardy.RetryConfig(initial_delay=1.0, max_delay=100.0, jitter=Jitter.DECORRELATED, random=rng.random)
    first = [config.get_delay(1) for _ in range(20_000)]  # uniform(1, 3)
    assert min(first) >= 1.0
    assert max(first) <= 3.0
    assert _uniformity(first, 1.0, 3.0) < CHI2_9_999
    later = [config.get_delay(5, 10.0) for _ in range(20_000)]  # uniform(1, 30)
    assert min(later) >= 1.0
    assert max(later) <= 30.0
    assert _uniformity(later, 1.0, 30.0) < CHI2_9_999
    capped = hardy.RetryConfig(initial_delay=1.0, max_delay=5.0, jitter=Jitter.DECORRELATED, random=lambda: 0.999)
    assert capped.get_delay(2, 100.0) == 5.0


def test_jitter_reads_back_as_given_and_none_is_falsy() -> None:
    # As in the reference: `if config.jitter:` is false with jitter off.
    assert hardy.RetryConfig().jitter is True
    assert hardy.RetryConfig(jitter=True).jitter is True
    assert hardy.RetryConfig(jitter=False).jitter is False
    assert hardy.RetryConfig(jitter=Jitter.EQUAL).jitter is Jitter.EQUAL
    assert not Jitter.NONE
    assert all(member for member in Jitter if member is not Jitter.NONE)
    # jitter=True is full jitter and False none, whatever they read back as.
    assert hardy.RetryConfig(jitter=False, initial_delay=2.0).get_delay(1) == 2.0
    assert 0.0 <= hardy.RetryConfig(jitter=True, initial_delay=2.0, random=lambda: 0.25).get_delay(1) == 0.5


def test_config_exposes_its_settings() -> None:
    config = hardy.RetryConfig(5, 3.0, 0.5, 30.0, Jitter.EQUAL, (OSError,), deadline=9.0)
    assert (config.max_attempts, config.backoff_factor, config.initial_delay, config.max_delay) == (5, 3.0, 0.5, 30.0)
    assert config.jitter is Jitter.EQUAL
    assert config.retryable_exceptions == (OSError,)
    assert config.deadline == 9.0
    assert config.retry_on_result is None
    assert "max_attempts=5" in repr(config)


# -- async -----------------------------------------------------------------------


def test_async_function_stays_a_coroutine_function_and_retries(instant: Any) -> None:
    calls = 0
    hooks: list[int] = []

    async def fetch(x: int) -> int:
        """Fetch."""
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        if calls < 3:
            raise Flaky(calls)
        return x

    async def on_retry(exc: BaseException | None, attempt: int) -> None:
        await asyncio.sleep(0)
        hooks.append(attempt)

    wrapped = hardy.retry(max_attempts=3, jitter=False, on_retry=on_retry)(fetch)
    assert inspect.iscoroutinefunction(wrapped)
    assert wrapped.__name__ == "fetch"
    assert wrapped.__doc__ == "Fetch."
    assert inspect.signature(wrapped) == inspect.signature(fetch)
    assert asyncio.run(wrapped(9)) == 9
    assert hooks == [1, 2]
    assert instant.delays == [1.0, 2.0]


def test_async_give_up_non_retryable_and_result_retries() -> None:
    async def always(kind: str) -> Any:
        if kind == "flaky":
            raise Flaky()
        if kind == "fatal":
            raise Fatal()
        return None

    wrapped = hardy.retry(max_attempts=2, retryable_exceptions=Flaky, retry_on_result=lambda r: r is None)(always)

    async def scenario() -> None:
        with pytest.raises(Flaky):
            await wrapped("flaky")
        with pytest.raises(Fatal):
            await wrapped("fatal")
        assert await wrapped("none") is None

    asyncio.run(scenario())


def test_async_cancellation_during_sleep_propagates_at_once() -> None:
    started = asyncio.Event()

    async def down() -> None:
        raise Flaky()

    wrapped = hardy.retry(max_attempts=5, initial_delay=30, jitter=False, on_retry=lambda e, a: started.set())(down)

    async def scenario() -> None:
        task = asyncio.ensure_future(wrapped())
        await started.wait()
        await asyncio.sleep(0)
        task.cancel()
        begin = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - begin < 5

    with real_sleeps():
        asyncio.run(scenario())


def test_async_on_retry_needs_an_async_function() -> None:
    async def hook(exc: BaseException | None, attempt: int) -> None:
        pass

    with pytest.raises(TypeError, match=r"on_retry .* is async but"):
        hardy.retry(on_retry=hook)(lambda: None)


def test_async_deadline(clock: FakeClock) -> None:
    async def slow() -> None:
        clock.advance(2.0)
        raise Flaky()

    wrapped = hardy.retry(max_attempts=9, initial_delay=1.0, jitter=False, deadline=4.0, clock=clock)(slow)
    with pytest.raises(Flaky):
        asyncio.run(wrapped())
    assert clock.now == 1000.0 + 4.0  # two attempts: 2s + sleep 1 would pass 4s after the second


# -- ways of using it -------------------------------------------------------------


def test_bare_and_called_forms_methods_and_partials() -> None:
    class Service:
        def __init__(self) -> None:
            self.calls = 0

        @hardy.retry
        def method(self, x: int) -> int:
            self.calls += 1
            if self.calls < 2:
                raise Flaky()
            return x * 2

    service = Service()
    assert service.method(4) == 8
    assert service.calls == 2
    wrapped = hardy.retry(initial_delay=0)(functools.partial(failing(1), 1))
    assert wrapped() == "ok"
    assert wrapped.retry_config.max_attempts == 3


def test_retry_with_backoff_sync_and_async() -> None:
    func = failing(2)
    config = hardy.RetryConfig(max_attempts=3, initial_delay=0)
    assert hardy.retry_with_backoff(func, 1, config=config, key="v") == "ok"
    assert func.calls == 3

    async def afunc(x: int) -> int:
        return x + 1

    awaitable = hardy.retry_with_backoff(afunc, 1)
    assert inspect.isawaitable(awaitable)
    assert asyncio.run(awaitable) == 2


def test_decorated_function_keeps_metadata() -> None:
    def original(a: int, b: str = "x") -> str:
        """Doc."""
        return b * a

    wrapped = hardy.retry(original)
    assert wrapped.__name__ == "original"
    assert wrapped.__doc__ == "Doc."
    assert wrapped.__wrapped__ is original
    assert inspect.signature(wrapped) == inspect.signature(original)
    assert wrapped(2, b="y") == "yy"


# -- testing helpers -------------------------------------------------------------


def test_instant_retries_are_seen_by_other_threads() -> None:
    import threading

    results: list[str] = []

    def worker() -> None:
        results.append(hardy.retry(max_attempts=3, initial_delay=100, max_delay=1000, jitter=False)(failing(2))())

    with hardy.testing.instant_retries() as sleeps:
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join(timeout=10)
    assert results == ["ok"]
    assert sleeps.delays == [100.0, 200.0]
    assert sleeps.total == 300.0
    sleeps.clear()
    assert sleeps.count == 0


def test_set_instant_retries_switch() -> None:
    record = hardy.testing.set_instant_retries(True)
    try:
        assert record is not None
        assert hardy.testing.set_instant_retries(True) is record
        hardy.retry(max_attempts=2, initial_delay=50, jitter=False)(failing(1))()
        # The autouse block is the innermost here; the switch was pushed after it.
        assert record.delays == [50.0]
    finally:
        assert hardy.testing.set_instant_retries(False) is None
    with pytest.raises(TypeError, match="enabled must be a bool"):
        hardy.testing.set_instant_retries("yes")  # type: ignore[arg-type]


# -- validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_attempts": 0}, ValueError, "max_attempts must be between 1"),
        ({"max_attempts": 1.5}, TypeError, "max_attempts must be an int, got 1.5"),
        ({"backoff_factor": 0.5}, ValueError, "backoff_factor must be >= 1, got 0.5"),
        ({"backoff_factor": float("inf")}, ValueError, "backoff_factor must be finite"),
        ({"backoff_factor": "2"}, TypeError, "backoff_factor must be a number"),
        ({"initial_delay": -1}, ValueError, "initial_delay must be a finite number >= 0, got -1"),
        ({"max_delay": -0.5}, ValueError, "max_delay must be a finite number >= 0"),
        ({"initial_delay": 5, "max_delay": 1}, ValueError, "max_delay must be >= initial_delay"),
        ({"jitter": "full"}, TypeError, "jitter must be a bool or a hardy.Jitter, got 'full'"),
        ({"retryable_exceptions": [int]}, TypeError, "retryable_exceptions must hold exception classes"),
        ({"retry_on_result": 3}, TypeError, "retry_on_result must be callable, got 3"),
        ({"deadline": 0}, ValueError, "deadline must be a finite number > 0, got 0"),
        ({"random": 0.5}, TypeError, "random must be callable"),
        ({"clock": None}, TypeError, "clock must be callable"),
    ],
)
def test_bad_configuration_is_rejected_with_its_name(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        hardy.RetryConfig(**kwargs)
    with pytest.raises(error, match=match):
        hardy.retry(**kwargs)


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((0,), ValueError, "attempt must be between 1 and 2147483647, got 0"),
        ((2**40,), ValueError, "attempt must be between 1"),
        ((1.0,), TypeError, "attempt must be an int, got 1.0"),
        ((True,), TypeError, "attempt must be an int, got True"),
        ((1, -2.0), ValueError, "previous_delay must be a finite number >= 0, got -2.0"),
    ],
)
def test_get_delay_rejects_bad_arguments(args: tuple[Any, ...], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        hardy.RetryConfig().get_delay(*args)


def test_on_retry_must_be_callable() -> None:
    with pytest.raises(TypeError, match="on_retry must be callable, got 5"):
        hardy.retry(on_retry=5)
