"""hardy.RetryBudget: Finagle's retry-budget arithmetic, on both cores.

A call deposits 1000 units (none when ``ratio`` is 0), a retry withdraws
``int(1000 / ratio)`` (1 when ``ratio`` is 0), and a fixed reserve of
``floor(min_per_second * window)`` retries is always there; deposits and
withdrawals expire with the ten slices of the window.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import threading
import traceback
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

import hardy
from hardy import _core
from tests.conftest import FakeClock


class Boom(Exception):
    pass


def failing(counter: list[int]) -> Callable[[], None]:
    def fail() -> None:
        counter[0] += 1
        raise Boom(counter[0])

    return fail


def fail_calls(fn: Callable[[], object], n: int) -> None:
    for _ in range(n):
        with pytest.raises(Boom):
            fn()


def test_defaults_are_finagles() -> None:
    budget = hardy.RetryBudget()
    assert (budget.ratio, budget.min_per_second, budget.window) == (0.2, 10.0, 10.0)
    assert budget.balance == 100  # the floor: 10 per second over 10 s
    assert budget.statistics == hardy.RetryBudgetStatistics(calls=0, retries=0, exhausted=0, balance=100)
    assert repr(budget) == "RetryBudget(ratio=0.2, min_per_second=10.0, window=10.0)"


def test_ratio_of_calls_may_be_retried(clock: FakeClock) -> None:
    # ratio 0.5: a call deposits 1000, a retry costs 2000.
    budget = hardy.RetryBudget(ratio=0.5, min_per_second=0, window=10, clock=clock)
    counter = [0]
    fn: Any = hardy.retry(max_attempts=3, initial_delay=0, budget=budget)(failing(counter))
    fail_calls(fn, 4)
    # call 1: 1000 < 2000, refused; call 2: 2000, one retry, then refused; 3 as 1; 4 as 2
    assert counter == [6]
    assert budget.statistics == hardy.RetryBudgetStatistics(calls=4, retries=2, exhausted=4, balance=0)
    assert (fn.statistics["retries"], fn.statistics["giveups"], fn.statistics["attempts"]) == (2, 4, 6)


def test_successful_calls_fund_retries(clock: FakeClock) -> None:
    budget = hardy.RetryBudget(ratio=0.1, min_per_second=0, window=10, clock=clock)
    ok = hardy.retry(budget=budget)(lambda: "ok")
    for _ in range(25):
        assert ok() == "ok"
    assert budget.statistics.calls == 25
    assert budget.balance == 2  # 25 000 units, 10 000 a retry
    counter = [0]
    fn = hardy.retry(max_attempts=10, initial_delay=0, budget=budget)(failing(counter))
    fail_calls(fn, 1)
    assert counter == [3]  # its own deposit makes 26 000: two retries
    assert budget.statistics.exhausted == 1


def test_the_floor_alone(clock: FakeClock) -> None:
    # ratio 0: calls deposit nothing, a retry costs 1 unit, the reserve is floor(2 * 5) = 10 retries.
    budget = hardy.RetryBudget(ratio=0, min_per_second=2, window=5, clock=clock)
    counter = [0]
    fn = hardy.retry(max_attempts=100, initial_delay=0, budget=budget)(failing(counter))
    fail_calls(fn, 1)
    assert counter == [11]
    assert budget.balance == 0
    clock.advance(5.0)  # the withdrawals expire with the window
    assert budget.balance == 10


def test_the_floor_rounds_down_and_ratio_zero_with_no_floor_never_retries(clock: FakeClock) -> None:
    assert hardy.RetryBudget(ratio=0.2, min_per_second=0.15, window=10, clock=clock).balance == 1
    never = hardy.RetryBudget(ratio=0, min_per_second=0, clock=clock)
    counter = [0]
    fn = hardy.retry(max_attempts=5, initial_delay=0, budget=never)(failing(counter))
    fail_calls(fn, 3)
    assert counter == [3]
    assert never.statistics.exhausted == 3


def test_deposits_expire_slice_by_slice(clock: FakeClock) -> None:
    budget = hardy.RetryBudget(ratio=1.0, min_per_second=0, window=10, clock=clock)
    ok = hardy.retry(budget=budget)(lambda: None)
    for _ in range(4):
        ok()
    assert budget.balance == 4  # looked at t=0: the four are in slice 0
    clock.advance(5.0)
    assert budget.balance == 4  # looked at t=5: the next calls land in slice 5
    for _ in range(3):
        ok()
    assert budget.balance == 7
    clock.advance(4.999)  # t=9.999: slice 9, slices 0..9 all count
    assert budget.balance == 7
    clock.advance(0.002)  # t=10.001: slice 10, slice 0 expired
    assert budget.balance == 3
    clock.advance(5.0)  # t=15.001: slice 15, slice 5 expired
    assert budget.balance == 0


def test_calls_counted_without_a_look_are_spread_over_the_time_since(clock: FakeClock) -> None:
    budget = hardy.RetryBudget(ratio=1.0, min_per_second=0, window=10, clock=clock)
    ok = hardy.retry(budget=budget)(lambda: None)
    for _ in range(100):
        ok()  # counted with no clock reading
    clock.advance(20.0)
    # Spread evenly over (0, 20]: slices 11..19 (9 of the 20 seconds) are still in the window.
    assert budget.balance == 45
    assert budget.statistics.calls == 100


def test_a_long_quiet_spell_expires_everything(clock: FakeClock) -> None:
    budget = hardy.RetryBudget(ratio=1.0, min_per_second=1, window=10, clock=clock)
    ok = hardy.retry(budget=budget)(lambda: None)
    for _ in range(50):
        ok()
    assert budget.balance == 60
    clock.advance(10_000.0)
    assert budget.balance == 10


def test_a_clock_that_goes_back_counts_as_standing_still(clock: FakeClock) -> None:
    budget = hardy.RetryBudget(ratio=1.0, min_per_second=0, window=10, clock=clock)
    ok = hardy.retry(budget=budget)(lambda: None)
    ok()
    assert budget.balance == 1
    clock.advance(-100.0)
    ok()
    assert budget.balance == 2


def test_one_budget_shared_by_two_functions(clock: FakeClock) -> None:
    budget = hardy.RetryBudget(ratio=0.5, min_per_second=0, window=10, clock=clock)
    reads = hardy.retry(budget=budget)(lambda: "row")
    counter = [0]
    writes = hardy.retry(max_attempts=5, initial_delay=0, budget=budget)(failing(counter))
    for _ in range(5):
        reads()
    fail_calls(writes, 1)
    assert counter == [4]  # 6 calls: 6000 units, three retries of 2000
    assert budget.statistics == hardy.RetryBudgetStatistics(calls=6, retries=3, exhausted=1, balance=0)


def test_the_error_is_raised_at_once_with_its_traceback(clock: FakeClock) -> None:
    budget = hardy.RetryBudget(ratio=0, min_per_second=0, clock=clock)
    raised: list[BaseException] = []

    def fail() -> None:
        error = Boom("down")
        raised.append(error)
        raise error

    fn = hardy.retry(max_attempts=5, initial_delay=0, budget=budget)(fail)
    with pytest.raises(Boom) as info:
        fn()
    assert raised == [info.value]
    frames = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert frames[-1] == "fail"


def test_a_result_retry_refused_returns_the_last_result(clock: FakeClock) -> None:
    budget = hardy.RetryBudget(ratio=0, min_per_second=0, clock=clock)
    calls = [0]

    def busy() -> str:
        calls[0] += 1
        return "busy"

    fn = hardy.retry(max_attempts=3, initial_delay=0, retry_on_result=lambda r: r == "busy", budget=budget)(busy)
    assert fn() == "busy"
    assert calls == [1]
    assert budget.statistics.exhausted == 1


def test_errors_not_retried_do_not_touch_the_budget(clock: FakeClock) -> None:
    budget = hardy.RetryBudget(ratio=0, min_per_second=0, clock=clock)

    def fail() -> None:
        raise KeyError("k")

    fn = hardy.retry(retryable_exceptions=(Boom,), budget=budget)(fail)
    with pytest.raises(KeyError):
        fn()
    assert budget.statistics == hardy.RetryBudgetStatistics(calls=1, retries=0, exhausted=0, balance=0)


def test_attempts_run_out_before_the_budget_is_asked(clock: FakeClock) -> None:
    budget = hardy.RetryBudget(ratio=1.0, min_per_second=0, clock=clock)
    fn = hardy.retry(max_attempts=1, budget=budget)(failing([0]))
    fail_calls(fn, 2)
    assert budget.statistics == hardy.RetryBudgetStatistics(calls=2, retries=0, exhausted=0, balance=2)


def test_async_retry_draws_on_the_budget(clock: FakeClock) -> None:
    budget = hardy.RetryBudget(ratio=0.5, min_per_second=0, window=10, clock=clock)
    counter = [0]

    @hardy.retry(max_attempts=3, initial_delay=0, budget=budget)
    async def fail() -> None:
        counter[0] += 1
        raise Boom(counter[0])

    @hardy.retry(budget=budget)
    async def ok() -> str:
        return "ok"

    async def main() -> None:
        coroutine = ok()  # deposits as it starts, not when made
        assert budget.statistics.calls == 0
        assert await coroutine == "ok"
        for _ in range(3):
            with pytest.raises(Boom):
                await fail()

    asyncio.run(main())
    # 4 calls: 1000, 2000 (retry, then refused), 1000 (refused), 2000 (retry, refused)
    assert counter == [5]
    assert budget.statistics == hardy.RetryBudgetStatistics(calls=4, retries=2, exhausted=3, balance=0)


def test_attempts_blocks_draw_on_the_budget(clock: FakeClock) -> None:
    budget = hardy.RetryBudget(ratio=0, min_per_second=0.2, window=10, clock=clock)  # two retries
    tries = [0]

    def run() -> None:
        for attempt in hardy.attempts(max_attempts=5, initial_delay=0, budget=budget):
            with attempt:
                tries[0] += 1
                raise Boom(tries[0])

    with pytest.raises(Boom):
        run()
    assert tries == [3]
    assert budget.statistics == hardy.RetryBudgetStatistics(calls=1, retries=2, exhausted=1, balance=0)


def test_config_and_retry_with_carry_the_budget(clock: FakeClock) -> None:
    budget = hardy.RetryBudget(clock=clock)
    config = hardy.RetryConfig(budget=budget)
    assert config.budget is budget
    assert hardy.RetryConfig().budget is None
    fn: Any = hardy.retry(budget=budget)(lambda: None)
    assert fn.retry_config.budget is budget
    assert fn.retry_with(max_attempts=2).retry_config.budget is budget
    assert fn.retry_with(budget=None).retry_config.budget is None
    assert hardy.retry_with_backoff(lambda: "ok", config=config) == "ok"
    assert budget.statistics.calls == 1


def test_on_giveup_runs_and_on_retry_does_not_when_the_budget_refuses(clock: FakeClock) -> None:
    budget = hardy.RetryBudget(ratio=0, min_per_second=0, clock=clock)
    retried: list[int] = []
    gave_up: list[hardy.RetryState] = []
    fn = hardy.retry(
        max_attempts=3,
        initial_delay=0,
        on_retry=lambda exc, n: retried.append(n),
        on_giveup=gave_up.append,
        budget=budget,
    )(failing([0]))
    fail_calls(fn, 1)
    assert retried == []
    assert [(s.attempt, type(s.exception)) for s in gave_up] == [(1, Boom)]


def test_the_giveup_event_says_the_budget_stopped_it(clock: FakeClock) -> None:
    budget = hardy.RetryBudget(ratio=0, min_per_second=1, window=1, clock=clock)  # one retry
    seen: list[Any] = []
    stop = hardy.events.subscribe(seen.append, kinds={"giveup"})
    try:
        fn = hardy.retry(max_attempts=2, initial_delay=0, budget=budget)(failing([0]))
        fail_calls(fn, 2)  # the first runs out of attempts, the second out of budget
    finally:
        stop()
    assert [e.data.get("budget_exhausted", False) for e in seen] == [False, True]
    assert seen[1].data["attempt"] == 1


def test_the_giveup_record_says_the_budget_stopped_it(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    budget = hardy.RetryBudget(ratio=0, min_per_second=0, clock=clock)
    fn = hardy.retry(max_attempts=2, initial_delay=0, budget=budget)(failing([0]))
    with caplog.at_level(logging.INFO, logger="hardy.retry"):
        fail_calls(fn, 1)
    records = [r for r in caplog.records if r.name == "hardy.retry"]
    assert len(records) == 1
    assert records[0].getMessage().endswith("giving up after 1 attempt (Boom): retry budget exhausted")
    assert records[0].budget_exhausted is True  # type: ignore[attr-defined]


def test_threads_keep_exact_arithmetic(clock: FakeClock) -> None:
    budget = hardy.RetryBudget(ratio=0.5, min_per_second=0, window=10, clock=clock)
    invoked = [0]
    lock = threading.Lock()

    def fail() -> None:
        with lock:
            invoked[0] += 1
        raise Boom()

    ok = hardy.retry(budget=budget)(lambda: None)
    fn = hardy.retry(max_attempts=2, initial_delay=0, budget=budget)(fail)
    start = threading.Barrier(8)

    def work() -> None:
        start.wait(timeout=30)
        for _ in range(300):
            ok()
        for _ in range(200):
            with pytest.raises(Boom):
                fn()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    stats = budget.statistics
    assert stats.calls == 8 * 500  # no deposit lost
    assert stats.retries + stats.exhausted == 8 * 200  # each failing call asked once
    assert invoked == [8 * 200 + stats.retries]
    # 4000 deposits of 1000 fund at most 2000 withdrawals of 2000, and every one was taken
    assert stats.balance == (4000 * 1000 - stats.retries * 2000) // 2000
    assert 0 < stats.retries <= 1600
    # Each thread's 300 successes fund its own 150 retries at least: never refused before then.
    assert stats.retries >= 8 * 150


def test_a_clock_that_raises_on_the_retry_path_propagates(clock: FakeClock) -> None:
    state: dict[str, BaseException | None] = {"raise": None}

    def flaky() -> float:
        error = state["raise"]
        if error is not None:
            raise error
        return clock()

    budget = hardy.RetryBudget(clock=flaky)
    fn = hardy.retry(max_attempts=3, initial_delay=0, budget=budget)(failing([0]))
    state["raise"] = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt) as info:
        fn()
    assert isinstance(info.value.__context__, Boom)
    state["raise"] = RuntimeError("clock")
    with pytest.raises(RuntimeError, match="clock"):
        fn()
    with pytest.raises(RuntimeError, match="clock"):
        _ = budget.balance
    state["raise"] = None
    assert budget.statistics.calls == 2


def test_async_clock_that_raises_propagates(clock: FakeClock) -> None:
    state = {"raise": False}

    def flaky() -> float:
        if state["raise"]:
            raise KeyboardInterrupt
        return clock()

    budget = hardy.RetryBudget(clock=flaky)

    @hardy.retry(max_attempts=3, initial_delay=0, budget=budget)
    async def fail() -> None:
        raise Boom()

    state["raise"] = True

    async def main() -> None:
        with pytest.raises(KeyboardInterrupt):
            await fail()

    asyncio.run(main())


def test_reentry_from_the_clock_and_the_function(clock: FakeClock) -> None:
    budget: hardy.RetryBudget
    inner = [0]
    depth = {"in_clock": False}

    def reentrant_clock() -> float:
        # The clock is read before the budget's lock: it may use the budget itself.
        if not depth["in_clock"] and inner[0] < 3:
            depth["in_clock"] = True
            try:
                with pytest.raises(Boom):
                    other()
                _ = budget.balance
            finally:
                depth["in_clock"] = False
        return clock()

    budget = hardy.RetryBudget(ratio=1.0, min_per_second=0, clock=clock)
    other_budget_user = failing(inner)
    other = hardy.retry(max_attempts=2, initial_delay=0, budget=budget)(other_budget_user)
    outer = hardy.RetryBudget(ratio=1.0, min_per_second=1, clock=reentrant_clock)
    fn = hardy.retry(max_attempts=2, initial_delay=0, budget=outer)(failing([0]))
    fail_calls(fn, 1)
    assert inner[0] >= 2
    assert outer.statistics.retries == 1

    # The function itself calls another function with the same budget.
    nested = hardy.RetryBudget(ratio=1.0, min_per_second=0, clock=clock)
    seen = [0]

    @hardy.retry(max_attempts=2, initial_delay=0, budget=nested)
    def child() -> str:
        return "child"

    @hardy.retry(max_attempts=2, initial_delay=0, budget=nested)
    def parent() -> str:
        seen[0] += 1
        child()
        if seen[0] == 1:
            raise Boom()
        return "done"

    assert parent() == "done"
    assert nested.statistics.calls == 3
    assert nested.statistics.retries == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"ratio": -0.1}, ValueError, "ratio must be a finite number in [0, 1000], got -0.1"),
        ({"ratio": 1000.5}, ValueError, "ratio"),
        ({"ratio": float("nan")}, ValueError, "ratio"),
        ({"ratio": float("inf")}, ValueError, "ratio"),
        ({"ratio": True}, TypeError, "ratio must be a number, got True (bool)"),
        ({"ratio": "0.2"}, TypeError, "ratio"),
        ({"min_per_second": -1}, ValueError, "min_per_second must be a finite number >= 0, got -1"),
        ({"min_per_second": float("inf")}, ValueError, "min_per_second"),
        ({"min_per_second": 10**400}, ValueError, "min_per_second"),
        ({"min_per_second": False}, TypeError, "min_per_second"),
        ({"window": 0}, ValueError, "window must be a finite number > 0, got 0"),
        ({"window": -1.0}, ValueError, "window"),
        ({"window": 0.0001}, ValueError, "window must be at least 0.001 seconds, got 0.0001"),
        ({"window": float("inf")}, ValueError, "window"),
        ({"window": None}, TypeError, "window"),
        ({"clock": 3}, TypeError, "clock must be callable"),
        ({"clock": lambda: "now"}, TypeError, "clock"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, Any], error: type[Exception], text: str) -> None:
    with pytest.raises(error) as info:
        hardy.RetryBudget(**kwargs)
    assert text in str(info.value)


def test_extreme_settings_stay_in_range(clock: FakeClock) -> None:
    huge = hardy.RetryBudget(ratio=1e-300, min_per_second=1e300, window=10, clock=clock)
    assert huge.balance == 2**62 // (2**31 - 1)  # the reserve is capped, so is a withdrawal
    many = hardy.RetryBudget(ratio=1000, min_per_second=0, clock=clock)
    hardy.retry(budget=many)(lambda: None)()
    assert many.balance == 1000


def test_budget_must_be_a_retry_budget() -> None:
    bad: Any
    for bad in ("budget", 0.2, object()):
        with pytest.raises(TypeError, match=r"budget must be a hardy\.RetryBudget"):
            hardy.retry(budget=bad)
        with pytest.raises(TypeError, match=r"budget must be a hardy\.RetryBudget"):
            hardy.RetryConfig(budget=bad)


@pytest.mark.c_extension
def test_a_budget_belongs_to_the_core_that_made_it(core: ModuleType) -> None:
    other = _core.load("py" if core.IMPLEMENTATION == "c" else "c")
    budget = hardy.RetryBudget()
    with pytest.raises(TypeError, match="made with the other core"):
        other.RetryConfig(budget=budget)


def test_a_budget_is_not_pickled() -> None:
    budget = hardy.RetryBudget()
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(budget)
    with pytest.raises(TypeError):
        pickle.dumps(hardy.RetryConfig(budget=budget))


def test_generator_retries_are_bounded_by_the_budget(clock: FakeClock) -> None:
    budget = hardy.RetryBudget(ratio=0, min_per_second=0.1, window=10, clock=clock)  # one retry
    tries = [0]

    @hardy.retry(max_attempts=5, initial_delay=0, budget=budget)
    def rows() -> Any:
        tries[0] += 1
        if tries[0] > 0:
            raise Boom()
        yield 1

    with pytest.raises(Boom):
        list(rows())
    assert tries == [2]
    assert budget.statistics.retries == 1


def test_generator_calls_deposit_once_each(clock: FakeClock) -> None:
    budget = hardy.RetryBudget(ratio=1.0, min_per_second=0, window=10, clock=clock)
    tries = [0]

    @hardy.retry(max_attempts=3, initial_delay=0, budget=budget)
    def rows() -> Any:
        tries[0] += 1
        if tries[0] % 2:
            raise Boom()
        yield 1

    @hardy.retry(max_attempts=3, initial_delay=0, budget=budget)
    async def agen() -> Any:
        yield 2

    async def drain() -> list[Any]:
        return [item async for item in agen()]

    assert list(rows()) == [1]  # one call, one retry: funded by its own deposit (ratio 1: a retry per call)
    assert asyncio.run(drain()) == [2]
    assert budget.statistics.calls == 2
    assert budget.statistics.retries == 1


@pytest.mark.c_extension
@pytest.mark.parametrize("seed", range(5))
def test_both_cores_decide_the_same(seed: int) -> None:
    # The same random calls, retries and clock steps give the same counts and balances on both cores.
    import random

    from hardy import _settings

    rng = random.Random(seed)
    ratio = rng.choice([0.0, 0.1, 0.2, 0.5, 1.0, 3.0])
    clock = FakeClock()
    settings = _settings.RetryBudgetSettings(
        ratio=ratio, min_per_second=rng.choice([0.0, 0.5, 3.0]), window=rng.choice([0.5, 1.0, 10.0]), clock=clock
    )
    ledgers = [_core.load(name).RetryConfig._budget_ledger(settings) for name in ("c", "py")]
    for _ in range(2000):
        step = rng.random()
        if step < 0.6:
            for ledger in ledgers:
                ledger._add_call()
        elif step < 0.9:
            allowed = [ledger._withdraw() for ledger in ledgers]
            assert allowed[0] == allowed[1]
        elif step < 0.97:
            clock.advance(rng.choice([0.001, 0.05, 0.3, 1.0, 7.0]))
        else:
            assert ledgers[0]._balance() == ledgers[1]._balance()
        assert ledgers[0]._counts() == ledgers[1]._counts()
    assert ledgers[0]._balance() == ledgers[1]._balance()
