"""Issue 18 on both cores: retry_after, hooks with RetryState, blocks, generators, statistics,
retry_with, the injected sleep, the testing cap and the pytest plugin."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import hardy
from hardy import RetryState
from hardy.attempts import Attempts

from .conftest import FakeClock

pytest_plugins = ["pytester"]


class Flaky(Exception):
    pass


class Fatal(Exception):
    pass


def failing(times: int, exc: type[BaseException] = Flaky, value: Any = "ok") -> Any:
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


# -- retry_after -----------------------------------------------------------------


def test_retry_after_delay_is_used_as_is_beyond_max_delay(instant: Any) -> None:
    asked: list[Any] = []

    def retry_after(exc: BaseException) -> float | None:
        asked.append(exc)
        return 120.0 if exc.args[0] == 1 else None

    func = failing(2)
    wrapped = hardy.retry(max_attempts=3, jitter=False, initial_delay=1.0, max_delay=10.0, retry_after=retry_after)(
        func
    )
    assert wrapped() == "ok"
    assert instant.delays == [120.0, 2.0]
    assert [a.args[0] for a in asked] == [1, 2]


def test_retry_after_gets_the_result_for_result_retries(instant: Any) -> None:
    results = iter([429, 429, 200])
    seen: list[Any] = []

    def retry_after(outcome: Any) -> float:
        seen.append(outcome)
        return 3

    wrapped = hardy.retry(max_attempts=5, jitter=False, retry_on_result=lambda r: r == 429, retry_after=retry_after)(
        lambda: next(results)
    )
    assert wrapped() == 200
    assert seen == [429, 429]
    assert instant.delays == [3.0, 3.0]


def test_retry_after_is_bounded_by_the_deadline(instant: Any, clock: FakeClock) -> None:
    func = failing(5)
    wrapped = hardy.retry(max_attempts=5, deadline=10.0, clock=clock, retry_after=lambda e: 11.0)(func)
    with pytest.raises(Flaky):
        wrapped()
    assert func.calls == 1
    assert instant.count == 0


def test_retry_after_draws_no_random_number_when_it_answers(instant: Any) -> None:
    draws: list[float] = []

    def rnd() -> float:
        draws.append(0.5)
        return 0.5

    wrapped = hardy.retry(max_attempts=3, random=rnd, retry_after=lambda e: 0.25)(failing(2))
    wrapped()
    assert draws == []
    assert instant.delays == [0.25, 0.25]


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        ("5", TypeError, "retry_after must return"),
        (True, TypeError, "retry_after must return"),
        (-1.0, ValueError, "finite number >= 0"),
        (float("nan"), ValueError, "finite"),
        (10**400, ValueError, "finite"),
    ],
)
def test_retry_after_bad_value_is_an_error_with_the_attempt_error_as_context(
    value: Any, error: type, match: str
) -> None:
    wrapped = hardy.retry(max_attempts=3, retry_after=lambda e: value)(failing(2))
    with pytest.raises(error, match=match) as info:
        wrapped()
    assert isinstance(info.value.__context__, Flaky)


def test_retry_after_must_be_callable() -> None:
    with pytest.raises(TypeError, match="retry_after must be callable"):
        hardy.RetryConfig(retry_after=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="sleep must be callable"):
        hardy.retry(sleep=1.0)  # type: ignore[arg-type]


def test_config_reads_back_and_pickles_retry_after_and_sleep() -> None:
    config = hardy.RetryConfig(retry_after=abs, sleep=print)
    assert config.retry_after is abs
    assert config.sleep is print
    assert hardy.RetryConfig().retry_after is None
    assert hardy.RetryConfig().sleep is None


# -- hooks -----------------------------------------------------------------------


def test_before_sleep_and_on_giveup_receive_the_state(instant: Any, clock: FakeClock) -> None:
    events: list[tuple[str, RetryState]] = []
    order: list[str] = []
    func = failing(5)

    def before_sleep(state: RetryState) -> None:
        order.append("before_sleep")
        clock.advance(1.5)
        events.append(("sleep", state))

    wrapped = hardy.retry(
        max_attempts=3,
        jitter=False,
        clock=clock,
        on_retry=lambda e, a: order.append("on_retry"),
        before_sleep=before_sleep,
        on_giveup=lambda s: events.append(("giveup", s)),
    )(func)
    with pytest.raises(Flaky) as info:
        wrapped(1, k=2)
    assert order == ["on_retry", "before_sleep"] * 2
    kinds = [kind for kind, _ in events]
    assert kinds == ["sleep", "sleep", "giveup"]
    first, second, last = (state for _, state in events)
    assert (first.attempt, first.delay, first.elapsed) == (1, 1.0, 0.0)
    assert (second.attempt, second.delay, second.elapsed) == (2, 2.0, 1.5)
    assert (last.attempt, last.delay, last.elapsed) == (3, None, 3.0)
    assert last.exception is info.value
    assert last.result is None
    assert first.fn is func
    assert first.args == (1,)
    assert first.kwargs == {"k": 2}


def test_on_giveup_sees_the_last_result_and_not_non_retryable_errors(instant: Any) -> None:
    states: list[RetryState] = []
    wrapped = hardy.retry(max_attempts=2, retry_on_result=lambda r: r is None, on_giveup=states.append)(lambda: None)
    assert wrapped() is None
    assert [(s.attempt, s.exception, s.result, s.delay) for s in states] == [(2, None, None, None)]
    states.clear()
    fatal = hardy.retry(retryable_exceptions=(Flaky,), on_giveup=states.append)(failing(1, Fatal))
    with pytest.raises(Fatal):
        fatal()
    assert states == []


def test_hook_errors_win_with_the_attempt_error_as_context() -> None:
    def boom(state: RetryState) -> None:
        raise KeyError("hook")

    for hooks in ({"before_sleep": boom}, {"on_giveup": boom, "max_attempts": 1}):
        wrapped = hardy.retry(**hooks)(failing(3))  # type: ignore[call-overload]
        with pytest.raises(KeyError) as info:
            wrapped()
        assert isinstance(info.value.__context__, Flaky)


def test_hook_base_exception_propagates() -> None:
    def stop(state: RetryState) -> None:
        raise KeyboardInterrupt

    func = failing(3)
    with pytest.raises(KeyboardInterrupt):
        hardy.retry(before_sleep=stop)(func)()
    assert func.calls == 1


def test_hooks_reenter_the_retried_function(instant: Any) -> None:
    inner: list[Any] = []
    func = failing(1)
    wrapped: Any = None

    def before_sleep(state: RetryState) -> None:
        if not inner:
            inner.append(wrapped())  # re-entry: a whole other retried call from the hook

    wrapped = hardy.retry(before_sleep=before_sleep)(func)
    assert wrapped() == "ok"
    assert inner == ["ok"]


def test_async_hooks_are_awaited_and_need_an_async_function(instant: Any) -> None:
    seen: list[tuple[str, int]] = []

    async def before_sleep(state: RetryState) -> None:
        await asyncio.sleep(0)
        seen.append(("sleep", state.attempt))

    async def on_giveup(state: RetryState) -> None:
        seen.append(("giveup", state.attempt))

    calls = 0

    async def func() -> str:
        nonlocal calls
        calls += 1
        raise Flaky(calls)

    wrapped = hardy.retry(max_attempts=3, before_sleep=before_sleep, on_giveup=on_giveup)(func)
    with pytest.raises(Flaky):
        asyncio.run(wrapped())
    assert seen == [("sleep", 1), ("sleep", 2), ("giveup", 3)]
    for name in ("before_sleep", "on_giveup"):
        with pytest.raises(TypeError, match=f"{name} .* is async"):
            hardy.retry(**{name: before_sleep})(failing(1))  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="before_sleep must be callable"):
        hardy.retry(before_sleep=3)  # type: ignore[call-overload]


# -- blocks ----------------------------------------------------------------------


def test_attempts_block_retries_until_success(instant: Any) -> None:
    states: list[RetryState] = []
    numbers = []
    for attempt in hardy.attempts(max_attempts=4, jitter=False, before_sleep=states.append):
        with attempt:
            numbers.append(attempt.number)
            if attempt.number < 3:
                raise Flaky(attempt.number)
    assert numbers == [1, 2, 3]
    assert instant.delays == [1.0, 2.0]
    assert [(s.attempt, s.fn, s.args, s.kwargs) for s in states] == [(1, None, (), {}), (2, None, (), {})]


def run_block(loop: Attempts, exc: type[BaseException]) -> list[int]:
    """Run a block that always raises ``exc`` under ``loop``; the attempt numbers it ran (when nothing escapes)."""
    numbers: list[int] = []
    for attempt in loop:
        with attempt:
            numbers.append(attempt.number)
            raise exc(attempt.number)
    return numbers


def test_attempts_block_gives_up_with_the_last_error_and_propagates_others(instant: Any) -> None:
    gave_up: list[RetryState] = []
    with pytest.raises(Flaky, match="3"):
        run_block(hardy.attempts(max_attempts=3, on_giveup=gave_up.append), Flaky)
    assert [s.attempt for s in gave_up] == [3]
    with pytest.raises(Fatal, match="1"):
        run_block(hardy.attempts(retryable_exceptions=(Flaky,)), Fatal)
    assert gave_up == [gave_up[0]]


def test_attempts_block_result_retries(instant: Any) -> None:
    values = iter([1, 2, 3])
    got = []
    for attempt in hardy.attempts(max_attempts=5, retry_on_result=lambda v: v < 3):
        with attempt:
            value = next(values)
            got.append(value)
            attempt.set_result(value)
    assert got == [1, 2, 3]


def test_attempts_block_testing_cap_and_protocol_misuse(instant: Any) -> None:
    with hardy.testing.instant_retries(max_attempts=1), pytest.raises(Flaky, match="1"):
        run_block(hardy.attempts(max_attempts=5), Flaky)
    loop = iter(hardy.attempts())
    first = next(loop)
    with pytest.raises(RuntimeError, match="not used as `with attempt:`"):
        next(loop)
    with first, pytest.raises(RuntimeError, match="already entered"):
        first.__enter__()
    with pytest.raises(TypeError, match="use `async for`"):
        iter(hardy.attempts(before_sleep=_async_hook))


async def _async_hook(state: RetryState) -> None:
    pass


def test_async_attempts_block_awaits_hooks_and_sleep(instant: Any) -> None:
    seen: list[Any] = []

    async def on_giveup(state: RetryState) -> None:
        seen.append(("giveup", state.attempt))

    async def before_sleep(state: RetryState) -> None:
        seen.append(("sleep", state.attempt))

    async def run() -> None:
        async for attempt in hardy.attempts(max_attempts=3, before_sleep=before_sleep, on_giveup=on_giveup):
            with attempt:
                raise Flaky(attempt.number)

    with pytest.raises(Flaky, match="3"):
        asyncio.run(run())
    assert seen == [("sleep", 1), ("sleep", 2), ("giveup", 3)]
    assert instant.count == 2


def test_injected_sleep_is_used_outside_testing_mode_sync_and_async() -> None:
    from hardy import _sleep

    saved = list(_sleep._records)
    _sleep._records.clear()
    slept: list[float] = []

    async def async_sleep(seconds: float) -> None:
        slept.append(-seconds)

    try:
        hardy.retry(jitter=False, sleep=slept.append)(failing(2))()
        for attempt in hardy.attempts(jitter=False, initial_delay=5.0, sleep=slept.append):
            with attempt:
                if attempt.number == 1:
                    raise Flaky

        async def afunc() -> None:
            async for attempt in hardy.attempts(jitter=False, sleep=async_sleep):
                with attempt:
                    if attempt.number == 1:
                        raise Flaky

        asyncio.run(afunc())
    finally:
        _sleep._records[:] = saved
    assert slept == [1.0, 2.0, 5.0, -1.0]


def test_instant_retries_win_over_an_injected_sleep(instant: Any) -> None:
    slept: list[float] = []
    hardy.retry(jitter=False, sleep=slept.append)(failing(1))()
    assert slept == []
    assert instant.delays == [1.0]


# -- generators ------------------------------------------------------------------


def test_generator_retried_until_its_first_item(instant: Any) -> None:
    starts = 0

    def numbers(n: int) -> Iterator[int]:
        nonlocal starts
        starts += 1
        if starts < 3:
            raise Flaky(starts)
        yield from range(n)
        raise Fatal("after items")

    wrapped = hardy.retry(max_attempts=5)(numbers)
    assert inspect.isgeneratorfunction(wrapped)
    it = wrapped(3)
    assert list(zip(range(3), it, strict=False)) == [(0, 0), (1, 1), (2, 2)]
    with pytest.raises(Fatal):
        next(it)
    assert starts == 3
    assert dict(wrapped.statistics) == {  # type: ignore[attr-defined]
        "calls": 1,
        "attempts": 3,
        "retries": 2,
        "successes": 1,
        "giveups": 0,
        "slept": sum(instant.delays),
    }


def test_generator_send_throw_close_and_return_value_pass_through() -> None:
    log: list[Any] = []

    def echo() -> Iterator[Any]:
        try:
            while True:
                got = yield "ready"
                log.append(got)
        except KeyError:
            yield "handled"
            return "done"
        finally:
            log.append("closed")

    wrapped = hardy.retry(echo)
    it = wrapped()
    assert next(it) == "ready"
    assert it.send(1) == "ready"
    assert it.throw(KeyError()) == "handled"
    with pytest.raises(StopIteration) as stop:
        next(it)
    assert stop.value.value == "done"
    it = wrapped()
    next(it)
    it.close()
    assert log == [1, "closed", "closed"]


def test_async_generator_retried_until_its_first_item(instant: Any) -> None:
    starts = 0

    async def numbers() -> AsyncIterator[int]:
        nonlocal starts
        starts += 1
        if starts < 2:
            raise Flaky
        yield 1
        yield 2

    wrapped = hardy.retry(numbers)
    assert inspect.isasyncgenfunction(wrapped)

    async def run() -> list[int]:
        return [x async for x in wrapped()]

    assert asyncio.run(run()) == [1, 2]
    assert starts == 2
    with pytest.raises(TypeError, match="retry_on_result does not apply"):
        hardy.retry(retry_on_result=bool)(numbers)


def test_breaker_counts_errors_raised_while_iterating(clock: FakeClock) -> None:
    breaker = hardy.CircuitBreaker("gen", failure_threshold=2, reset_timeout=10, clock=clock)

    @breaker
    def items(fail: bool) -> Iterator[int]:
        yield 1
        if fail:
            raise Flaky

    assert inspect.isgeneratorfunction(items)
    it = items(True)
    assert breaker.get_stats()["failure_count"] == 0  # not started: not admitted either
    assert next(it) == 1
    with pytest.raises(Flaky):
        next(it)
    assert list(items(False)) == [1]
    closed_early = items(True)
    next(closed_early)
    closed_early.close()  # the consumer stopped: not a failure
    with pytest.raises(Flaky):
        list(items(True))
    assert breaker.state == hardy.CircuitState.CLOSED
    with pytest.raises(Flaky):
        list(items(True))
    assert breaker.state == hardy.CircuitState.OPEN
    with pytest.raises(hardy.CircuitOpenError):
        next(items(False))


def test_breaker_counts_errors_of_async_generators(clock: FakeClock) -> None:
    breaker = hardy.CircuitBreaker("agen", failure_threshold=1, reset_timeout=10, clock=clock)

    @breaker
    async def items() -> AsyncIterator[int]:
        yield 1
        raise Flaky

    assert inspect.isasyncgenfunction(items)

    async def run() -> list[int]:
        return [x async for x in items()]

    with pytest.raises(Flaky):
        asyncio.run(run())
    assert breaker.state == hardy.CircuitState.OPEN
    with pytest.raises(hardy.CircuitOpenError):
        asyncio.run(run())


# -- statistics and retry_with ---------------------------------------------------


def test_statistics_count_calls_attempts_retries_successes_giveups_and_sleeps(instant: Any) -> None:
    func = failing(2)
    wrapped = hardy.retry(max_attempts=2, jitter=False, retryable_exceptions=(Flaky,))(func)
    stats = wrapped.statistics  # type: ignore[attr-defined]
    assert dict(stats) == {"calls": 0, "attempts": 0, "retries": 0, "successes": 0, "giveups": 0, "slept": 0.0}
    with pytest.raises(Flaky):
        wrapped()  # attempts 1, 2: gives up
    assert wrapped() == "ok"  # attempt 3 succeeds at once
    assert dict(stats) == {"calls": 2, "attempts": 3, "retries": 1, "successes": 1, "giveups": 1, "slept": 1.0}
    assert len(stats) == 6
    assert list(stats) == ["calls", "attempts", "retries", "successes", "giveups", "slept"]
    fatal = hardy.retry(retryable_exceptions=(Flaky,))(failing(1, Fatal))
    with pytest.raises(Fatal):
        fatal()
    assert fatal.statistics["calls"] == 1
    assert fatal.statistics["successes"] == 0


def test_statistics_are_exact_under_threads(instant: Any) -> None:
    lock = threading.Lock()
    count = 0

    def every_third_fails() -> int:
        nonlocal count
        with lock:
            count += 1
            mine = count
        if mine % 3 == 0:
            raise Flaky
        return mine

    wrapped = hardy.retry(max_attempts=5, initial_delay=0)(every_third_fails)
    per_thread = 2000

    def work() -> None:
        for _ in range(per_thread):
            wrapped()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = dict(wrapped.statistics)  # type: ignore[attr-defined]
    assert stats["calls"] == stats["successes"] == 8 * per_thread
    assert stats["attempts"] == count
    assert stats["retries"] == count - 8 * per_thread


def test_async_statistics(instant: Any) -> None:
    calls = 0

    async def func() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise Flaky
        return calls

    wrapped = hardy.retry(initial_delay=0)(func)
    asyncio.run(wrapped())
    asyncio.run(wrapped())
    assert dict(wrapped.statistics)["calls"] == 2  # type: ignore[attr-defined]
    assert wrapped.statistics["retries"] == 1  # type: ignore[attr-defined]


def test_retry_with_changes_settings_and_hooks_and_keeps_the_original(instant: Any) -> None:
    seen: list[int] = []
    func = failing(10)
    wrapped = hardy.retry(max_attempts=3, jitter=False)(func)
    once = wrapped.retry_with(max_attempts=1, on_giveup=lambda s: seen.append(s.attempt))  # type: ignore[attr-defined]
    with pytest.raises(Flaky):
        once()
    assert func.calls == 1
    assert seen == [1]
    assert once.retry_config.max_attempts == 1
    assert wrapped.retry_config.max_attempts == 3
    assert once.__wrapped__ is func
    assert once.statistics["calls"] == 1
    assert wrapped.statistics["calls"] == 0
    with pytest.raises(TypeError, match="unknown settings 'max_attemps'"):
        wrapped.retry_with(max_attemps=2)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="max_attempts"):
        wrapped.retry_with(max_attempts=0)  # type: ignore[attr-defined]


# -- testing ---------------------------------------------------------------------


def test_instant_retries_caps_attempts() -> None:
    gave_up: list[int] = []
    func = failing(5)
    wrapped = hardy.retry(max_attempts=5, on_giveup=lambda s: gave_up.append(s.attempt))(func)
    with hardy.testing.instant_retries(max_attempts=2) as record, pytest.raises(Flaky):
        wrapped()
    assert func.calls == 2
    assert record.count == 1
    assert gave_up == [2]
    with pytest.raises(ValueError, match="max_attempts"), hardy.testing.instant_retries(max_attempts=0):
        pass


def test_instant_retries_caps_async_and_generators() -> None:
    calls = 0

    async def func() -> None:
        nonlocal calls
        calls += 1
        raise Flaky

    def gen() -> Iterator[int]:
        nonlocal calls
        calls += 1
        raise Flaky
        yield 1

    with hardy.testing.instant_retries(max_attempts=1):
        with pytest.raises(Flaky):
            asyncio.run(hardy.retry(max_attempts=5)(func)())
        with pytest.raises(Flaky):
            list(hardy.retry(max_attempts=5)(gen)())
    assert calls == 2


def test_pytest_plugin_offers_instant_retries_and_a_registry_reset(pytester: pytest.Pytester, core: Any) -> None:
    pytester.makepyfile(
        f"""
        import pytest, hardy
        from hardy import _core
        core = _core.load({core.IMPLEMENTATION!r})

        def flaky_factory():
            calls = []
            def f():
                calls.append(1)
                if len(calls) < 3:
                    raise OSError
                return len(calls)
            return f

        def test_instant(instant_retries):
            f = core.retrying(core.RetryConfig(jitter=False), flaky_factory())
            assert f() == 3
            assert instant_retries.delays == [1.0, 2.0]

        @pytest.mark.hardy_max_attempts(1)
        def test_capped(instant_retries):
            f = core.retrying(core.RetryConfig(), flaky_factory())
            with pytest.raises(OSError):
                f()

        def test_registry_one(hardy_registry):
            hardy_registry.get_or_create("leftover")

        def test_registry_two(hardy_registry):
            assert "leftover" not in hardy_registry.all()
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
