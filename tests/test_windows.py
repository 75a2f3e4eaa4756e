"""Rate-based windows (``window=hardy.CountWindow(...)`` / ``hardy.TimeWindow(...)``) on both cores:
thresholds, minimum_calls, eviction arithmetic, slow calls, time buckets, half-open periods, resets,
async functions, generators, blocks, the registry and validation."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import math
import random
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

import hardy
from hardy import CircuitOpenError, CircuitState, CountWindow, TimeWindow

from .conftest import FakeClock
from .probes import run_python
from .redis_server import RedisServer
from .test_redis_store import evalsha_calls, wait_for
from .threads import run_threads, switching_often


class Boom(Exception):
    pass


class Ignored(Exception):
    pass


def boom() -> None:
    raise Boom("boom")


def make(clock: FakeClock, window: Any, **kwargs: Any) -> Any:
    settings: dict[str, Any] = {"reset_timeout": 10.0, "half_open_max_calls": 2}
    settings.update(kwargs)
    return hardy.CircuitBreaker("svc", clock=clock, window=window, **settings)


def succeed(breaker: Any) -> None:
    assert breaker.call(lambda: 1) == 1


def fail(breaker: Any) -> None:
    with pytest.raises(Boom):
        breaker.call(boom)


def window_stats(breaker: Any) -> tuple[int, int, int]:
    stats = breaker.get_stats()
    return stats["window_calls"], stats["window_failures"], stats["window_slow_calls"]


class CountingClock(FakeClock):
    """A fake clock that counts its readings."""

    def __init__(self, now: float = 1000.0) -> None:
        super().__init__(now)
        self.readings = 0

    def __call__(self) -> float:
        self.readings += 1
        return self.now


# -- the settings -------------------------------------------------------------------------------


def test_windows_have_resilience4j_like_defaults_and_are_frozen() -> None:
    count = CountWindow()
    assert (count.size, count.failure_rate, count.minimum_calls) == (100, 0.5, 10)
    assert (count.slow_call_duration, count.slow_call_rate) == (None, 1.0)
    assert TimeWindow().seconds == 60
    assert CountWindow(size=10, failure_rate=1) == CountWindow(size=10, failure_rate=1.0)
    assert isinstance(CountWindow(failure_rate=1).failure_rate, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        count.size = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"size": "100"}, TypeError, "size must be an int, got '100'"),
        ({"size": True}, TypeError, "size must be an int, got True"),
        ({"size": 0}, ValueError, "size must be between 1 and"),
        ({"size": 10**7}, ValueError, "size must be at most 1000000, got 10000000"),
        ({"size": 5}, ValueError, r"minimum_calls must be <= size \(5\), got 10"),
        ({"failure_rate": 0}, ValueError, r"failure_rate must be a fraction of calls in \(0, 1\], got 0"),
        ({"failure_rate": 50}, ValueError, "got 50 \\(a fraction: 0.5 for 50 %\\)"),
        ({"failure_rate": math.nan}, ValueError, "failure_rate must be finite, got nan"),
        ({"failure_rate": "half"}, TypeError, "failure_rate must be a number, got 'half'"),
        ({"minimum_calls": 0}, ValueError, "minimum_calls must be between 1 and"),
        ({"minimum_calls": 2.0}, TypeError, "minimum_calls must be an int, got 2.0"),
        ({"slow_call_duration": 0}, ValueError, "slow_call_duration must be a finite number > 0, got 0"),
        ({"slow_call_duration": -1.0}, ValueError, "slow_call_duration must be a finite number > 0, got -1.0"),
        ({"slow_call_duration": "1s"}, TypeError, "slow_call_duration must be a number of seconds, got '1s'"),
        ({"slow_call_rate": 1.5}, ValueError, r"slow_call_rate must be a fraction of calls in \(0, 1\], got 1.5"),
    ],
)
def test_a_count_window_checks_its_fields_at_construction(kwargs: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        CountWindow(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"seconds": 1.5}, TypeError, "seconds must be an int, got 1.5"),
        ({"seconds": 0}, ValueError, "seconds must be between 1 and"),
        ({"seconds": 86_401}, ValueError, "seconds must be at most 86400, got 86401"),
        ({"failure_rate": 1.01}, ValueError, "failure_rate must be a fraction"),
        ({"minimum_calls": -3}, ValueError, "minimum_calls must be between 1 and"),
    ],
)
def test_a_time_window_checks_its_fields_at_construction(kwargs: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        TimeWindow(**kwargs)


def test_a_time_window_may_ask_for_more_calls_than_seconds() -> None:
    assert TimeWindow(seconds=5, minimum_calls=1000).minimum_calls == 1000


def test_window_must_be_a_window(clock: FakeClock) -> None:
    with pytest.raises(
        TypeError, match=r"window must be a hardy\.CountWindow, a hardy\.TimeWindow or None, got 5 \(int\)"
    ):
        hardy.CircuitBreaker("svc", window=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"window must be a hardy\.CountWindow"):
        hardy.circuit_breaker("svc", window={"size": 10})  # type: ignore[call-overload]


def test_the_breaker_shows_its_window(clock: FakeClock) -> None:
    window = CountWindow(size=20)
    breaker = make(clock, window)
    assert breaker.window is window
    assert hardy.CircuitBreaker("plain").window is None
    assert "window_calls" not in hardy.CircuitBreaker("plain").get_stats()
    assert window_stats(breaker) == (0, 0, 0)


def test_breakers_made_with_one_window_share_what_it_decides_by_while_they_live() -> None:
    """The settings a window is read into are kept once per window object: they hold it (one
    reference, whatever the number of breakers) and let it go with the last of its breakers."""
    window = TimeWindow(seconds=7, minimum_calls=3)
    other = CountWindow(size=30, slow_call_duration=0.5)
    alone = sys.getrefcount(window), sys.getrefcount(other)
    breakers = [hardy.CircuitBreaker(f"svc-{i}", window=window if i % 2 else other) for i in range(20)]
    assert (sys.getrefcount(window), sys.getrefcount(other)) == (alone[0] + 1, alone[1] + 1)
    assert [b.window for b in breakers] == [window if i % 2 else other for i in range(20)]
    assert all(b.window is (window if i % 2 else other) for i, b in enumerate(breakers))
    equal = CountWindow(size=30, slow_call_duration=0.5)
    assert hardy.CircuitBreaker("equal", window=equal).window is equal  # an equal one is its own
    del breakers[:19]  # the last one is given ``window``
    assert (sys.getrefcount(window), sys.getrefcount(other)) == (alone[0] + 1, alone[1])
    breakers.clear()
    gc.collect()
    assert (sys.getrefcount(window), sys.getrefcount(other)) == alone


def test_a_window_whose_fields_run_code_may_make_breakers_or_interrupt(clock: FakeClock) -> None:
    """Reading a window's fields is user code for a subclass: it may make another windowed breaker
    (no lock is held around it) or raise a BaseException, which propagates and leaves nothing behind."""
    inner: list[Any] = []
    armed: list[str] = []

    @dataclasses.dataclass(frozen=True)
    class Eager(CountWindow):
        def __getattribute__(self, name: str) -> Any:
            if name == "size" and armed:
                what = armed.pop()
                if what == "interrupt":
                    raise KeyboardInterrupt
                inner.append(hardy.CircuitBreaker("inner", window=CountWindow(size=4, minimum_calls=1)))
            return super().__getattribute__(name)

    window = Eager(size=6, minimum_calls=1)
    armed.append("interrupt")
    with pytest.raises(KeyboardInterrupt):
        make(clock, window)
    armed.append("breaker")
    breaker = make(clock, window)
    assert breaker.window is window
    assert inner[0].window == CountWindow(size=4, minimum_calls=1)
    for _ in range(8):
        succeed(breaker)
    assert window_stats(breaker) == (6, 0, 0)
    fail(inner[0])
    assert inner[0].state is CircuitState.OPEN
    inner.clear()  # the class (a cycle) would keep it among the live breakers until a collection


def test_a_breaker_in_a_cycle_through_its_window_is_collected() -> None:
    """A window subclass may hold its own breaker: the collector sees the breaker's reference to the
    window (compiled, through its C block) and frees the cycle."""

    @dataclasses.dataclass(frozen=True)
    class Holding(CountWindow):
        held: list[Any] = dataclasses.field(default_factory=list, compare=False)

    for make_window in (lambda: Holding(size=20), lambda: Holding(size=20, slow_call_duration=1.0)):
        window = make_window()
        breaker = hardy.CircuitBreaker("cycle", window=window)
        window.held.append(breaker)
        breaker.call(lambda: 1)
        alive = weakref.ref(breaker)
        del window, breaker
        gc.collect()
        assert alive() is None


@pytest.mark.parametrize(("field", "answer"), [("size", 0), ("size", -3), ("seconds", 0), ("minimum_calls", 10**9)])
def test_a_window_that_answers_other_fields_later_is_checked_again(field: str, answer: int) -> None:
    """The fields are checked when the window is made; a subclass that answers otherwise when a breaker
    reads them gets the same ValueError, not a window of that size (compiled, C memory indexed by it)."""

    @dataclasses.dataclass(frozen=True)
    class Shifty(TimeWindow if field == "seconds" else CountWindow):  # type: ignore[misc]
        def __getattribute__(self, name: str) -> Any:
            if name == field and shifted:
                return answer
            return super().__getattribute__(name)

    shifted: list[bool] = []
    window = Shifty(minimum_calls=2)
    shifted.append(True)
    with pytest.raises(ValueError, match=field):
        hardy.CircuitBreaker("svc", window=window)


@pytest.mark.parametrize(
    ("window", "held", "failures_to_open"),
    [
        (CountWindow(size=1, minimum_calls=1), 1, 1),
        (CountWindow(size=9, minimum_calls=1, slow_call_duration=60.0), 9, 5),
        (CountWindow(size=13, minimum_calls=1), 13, 7),
        (TimeWindow(seconds=1, minimum_calls=1), 27, 27),
    ],
)
def test_the_smallest_windows_hold_what_they_should(
    clock: FakeClock, window: Any, held: int, failures_to_open: int
) -> None:
    """Windows of one slot or one second, and rings whose last byte is partly used, on both cores."""
    breaker = make(clock, window)
    for _ in range(27):
        succeed(breaker)
    assert window_stats(breaker) == (held, 0, 0)
    for _ in range(failures_to_open - 1):
        fail(breaker)
    assert breaker.state is CircuitState.CLOSED
    assert window_stats(breaker)[1] == failures_to_open - 1
    fail(breaker)
    assert breaker.state is CircuitState.OPEN


def test_the_registry_compares_windows() -> None:
    @hardy.circuit_breaker("shared", window=CountWindow(size=20))
    def one() -> int:
        return 1

    @hardy.circuit_breaker("shared", window=CountWindow(size=20))
    def two() -> int:
        return 2

    assert one.breaker is two.breaker
    assert one.breaker.window == CountWindow(size=20)
    with pytest.raises(ValueError, match="already exists with other settings"):
        hardy.circuit_breaker("shared", window=CountWindow(size=30))(lambda: 3)
    with pytest.raises(ValueError, match="already exists with other settings"):
        hardy.circuit_breaker("shared")(lambda: 3)


def test_the_registry_tells_trials_judged_by_rate_from_a_success_threshold() -> None:
    window = CountWindow(size=20)
    hardy.circuit_breaker("judged", window=window, half_open_max_calls=3)(lambda: 1)
    with pytest.raises(ValueError, match="already exists with other settings"):
        hardy.circuit_breaker("judged", window=window, half_open_max_calls=3, success_threshold=3)(lambda: 2)
    plain = hardy.circuit_breaker("plain", half_open_max_calls=3)(lambda: 1)
    same = hardy.circuit_breaker("plain", half_open_max_calls=3, success_threshold=3)(lambda: 2)
    assert same.breaker is plain.breaker  # without a window, the default's own number decides as none

    def echo(host: str) -> str:
        return host

    keyed = hardy.circuit_breaker(name="hosts", key=echo, half_open_max_calls=3)(echo)
    also = hardy.circuit_breaker(name="hosts", key=echo, half_open_max_calls=3, success_threshold=3)(echo)
    assert keyed("a") == also("a") == "a"
    assert keyed.breakers["a"] is also.breakers["a"]
    with pytest.raises(ValueError, match="already exists with other settings"):
        hardy.circuit_breaker(name="hosts", key=echo, half_open_max_calls=3, success_threshold=2)(echo)


# -- a count window ---------------------------------------------------------------------------------


def test_a_count_window_opens_at_the_failure_rate_with_enough_calls(clock: FakeClock) -> None:
    breaker = make(clock, CountWindow(size=10, failure_rate=0.5, minimum_calls=4))
    succeed(breaker)
    fail(breaker)
    succeed(breaker)
    assert breaker.state is CircuitState.CLOSED  # 1 of 3: fewer than minimum_calls
    fail(breaker)  # 2 of 4 = 50 %
    assert breaker.state is CircuitState.OPEN
    assert isinstance(breaker.last_failure, Boom)
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: 1)


def test_below_minimum_calls_even_all_failures_do_not_open(clock: FakeClock) -> None:
    breaker = make(clock, CountWindow(size=20, minimum_calls=10), failure_threshold=1)
    for _ in range(9):
        fail(breaker)
    assert breaker.state is CircuitState.CLOSED  # failure_threshold is not used with a window
    assert window_stats(breaker) == (9, 9, 0)
    fail(breaker)
    assert breaker.state is CircuitState.OPEN


def test_the_rate_must_reach_its_threshold(clock: FakeClock) -> None:
    breaker = make(clock, CountWindow(size=10, failure_rate=0.3, minimum_calls=10))
    for _ in range(8):
        succeed(breaker)
    fail(breaker)
    succeed(breaker)
    assert breaker.state is CircuitState.CLOSED  # 10 %
    fail(breaker)  # evicts a success: 2 of 10
    assert breaker.state is CircuitState.CLOSED
    fail(breaker)  # 3 of 10 is 30 %, exactly the threshold (no float rounding below it)
    assert breaker.state is CircuitState.OPEN


def test_a_full_window_subtracts_what_it_evicts(clock: FakeClock) -> None:
    breaker = make(clock, CountWindow(size=4, failure_rate=0.75, minimum_calls=4))
    fail(breaker)
    succeed(breaker)
    succeed(breaker)
    succeed(breaker)
    assert window_stats(breaker) == (4, 1, 0)
    succeed(breaker)  # evicts the failure
    assert window_stats(breaker) == (4, 0, 0)
    fail(breaker)
    fail(breaker)  # evicts two successes
    assert window_stats(breaker) == (4, 2, 0)
    assert breaker.state is CircuitState.CLOSED
    fail(breaker)  # 3 of 4
    assert breaker.state is CircuitState.OPEN


def test_a_success_can_complete_the_verdict(clock: FakeClock) -> None:
    breaker = make(clock, CountWindow(size=10, failure_rate=0.5, minimum_calls=4))
    events: list[tuple[CircuitState, CircuitState]] = []
    breaker.add_listener(lambda b, old, new: events.append((old, new)))
    fail(breaker)
    fail(breaker)
    succeed(breaker)
    assert breaker.state is CircuitState.CLOSED
    succeed(breaker)  # the fourth call: 2 of 4 failed
    assert breaker.state is CircuitState.OPEN
    assert events == [(CircuitState.CLOSED, CircuitState.OPEN)]
    assert breaker.last_failure is None  # no exception opened it
    assert breaker.get_time_until_reset() == 10.0  # opened at the time of that success


def test_excluded_and_non_failure_exceptions_are_classified_before_the_window(clock: FakeClock) -> None:
    breaker = make(clock, CountWindow(size=10, minimum_calls=2), excluded_exceptions=Ignored)
    for _ in range(5):
        with pytest.raises(Ignored):
            breaker.call(lambda: (_ for _ in ()).throw(Ignored()))
    assert window_stats(breaker) == (0, 0, 0)  # ignored: not in the window
    judged = hardy.CircuitBreaker(
        "judged", clock=clock, window=CountWindow(size=10, minimum_calls=2), failure_exceptions=Boom
    )
    with pytest.raises(Ignored):
        judged.call(lambda: (_ for _ in ()).throw(Ignored()))
    assert window_stats(judged) == (1, 0, 0)  # the dependency answered: a success
    results = hardy.CircuitBreaker(
        "results", clock=clock, window=CountWindow(size=10, minimum_calls=2), failure_on_result=lambda r: r is None
    )
    assert results.call(lambda: None) is None
    assert results.call(lambda: None) is None
    assert results.state is CircuitState.OPEN


def test_manual_records_go_into_the_window(clock: FakeClock) -> None:
    breaker = make(clock, CountWindow(size=10, minimum_calls=2))
    breaker.record_success()
    breaker.record_failure(Boom())
    assert breaker.state is CircuitState.OPEN


def test_a_count_window_without_slow_calls_reads_no_clock_per_call() -> None:
    counting = CountingClock()
    breaker = hardy.CircuitBreaker("svc", clock=counting, window=CountWindow(size=10))
    protected = breaker(lambda: 1)
    before = counting.readings
    for _ in range(50):
        assert protected() == 1
        assert breaker.call(lambda: 1) == 1
    assert counting.readings == before


# -- slow calls -------------------------------------------------------------------------------------


def sleeper(clock: FakeClock, breaker: Any) -> Any:
    @breaker
    def work(seconds: float, ok: bool = True) -> float:
        clock.advance(seconds)
        if not ok:
            raise Boom("slow and failed")
        return seconds

    return work


def test_slow_calls_open_at_the_slow_call_rate(clock: FakeClock) -> None:
    breaker = make(clock, CountWindow(size=10, minimum_calls=4, slow_call_duration=1.0, slow_call_rate=0.5))
    work = sleeper(clock, breaker)
    assert work(0.5) == 0.5
    assert work(1.0) == 1.0  # exactly the duration: not slower than it
    assert work(2.0) == 2.0
    assert window_stats(breaker) == (3, 0, 1)
    assert breaker.state is CircuitState.CLOSED
    work(3.0)  # 2 of 4 slow
    assert breaker.state is CircuitState.OPEN
    assert breaker.last_failure is None
    assert breaker.get_stats()["failures"] == 0


def test_a_slow_failure_counts_as_both(clock: FakeClock) -> None:
    breaker = make(clock, CountWindow(size=10, minimum_calls=2, slow_call_duration=1.0, failure_rate=1.0))
    work = sleeper(clock, breaker)
    with pytest.raises(Boom):
        work(5.0, ok=False)
    assert window_stats(breaker) == (1, 1, 1)
    work(0.1)
    assert breaker.state is CircuitState.CLOSED  # 50 % failed, 50 % slow: neither at 100 %
    assert window_stats(breaker) == (2, 1, 1)


def test_a_count_window_reads_the_clock_only_for_the_failure_that_opens_it() -> None:
    counting = CountingClock()
    window = CountWindow(size=10, minimum_calls=10, failure_rate=0.5)
    breaker = hardy.CircuitBreaker("svc", clock=counting, window=window, reset_timeout=10.0)
    before = counting.readings
    for _ in range(4):
        fail(breaker)
    for _ in range(5):
        succeed(breaker)
    assert counting.readings == before  # nine outcomes: none needed the time
    with pytest.raises(Boom) as raised:
        breaker.call(boom)  # the tenth: 5 failures in 10 reach 50 %, and it opens at a reading
    assert counting.readings == before + 1
    stats = breaker.get_stats()
    assert (stats["state"], stats["opened"], stats["failures"]) == ("open", 1, 5)
    assert breaker.last_failure is raised.value


def test_slow_tracking_reads_the_clock_once_before_and_once_after() -> None:
    counting = CountingClock()
    breaker = hardy.CircuitBreaker("svc", clock=counting, window=CountWindow(size=10, slow_call_duration=1.0))
    protected = breaker(lambda: 1)
    before = counting.readings
    for _ in range(10):
        protected()
    assert counting.readings == before + 20


def test_slow_calls_on_the_default_clock_are_judged_by_their_real_duration() -> None:
    # The compiled core reads a coarse clock (the kernel's tick) after a call
    # when that shows it surely ended in time, and the precise one otherwise:
    # a call just within slow_call_duration (within the coarse clock's lag of
    # it) and one just over it are judged as by the precise clock.
    breaker = hardy.CircuitBreaker("svc", window=CountWindow(size=10, minimum_calls=10, slow_call_duration=0.5))
    protected = breaker(time.sleep)
    protected(0)
    protected(0.45)
    assert window_stats(breaker) == (2, 0, 0)
    protected(0.52)
    assert window_stats(breaker) == (3, 0, 1)
    for _ in range(5):
        protected(0)
    assert window_stats(breaker) == (8, 0, 1)
    assert breaker.state is CircuitState.CLOSED


def test_async_slow_calls_on_the_default_clock_are_judged_by_their_real_duration() -> None:
    breaker = hardy.CircuitBreaker("svc", window=CountWindow(size=10, minimum_calls=2, slow_call_duration=0.5))
    protected = breaker(asyncio.sleep)

    async def main() -> None:
        await protected(0)
        await protected(0.45)
        assert window_stats(breaker) == (2, 0, 0)
        await protected(0.52)
        assert window_stats(breaker) == (3, 0, 1)

    asyncio.run(main())
    assert breaker.state is CircuitState.CLOSED  # 1 in 3 slow: below the rate of 1.0


def test_slow_calls_through_call_and_blocks(clock: FakeClock) -> None:
    breaker = make(clock, CountWindow(size=10, minimum_calls=3, slow_call_duration=1.0, slow_call_rate=1.0))
    breaker.call(clock.advance, 2.0)
    with breaker:
        clock.advance(1.5)
    assert window_stats(breaker) == (2, 0, 2)

    def late() -> None:
        with breaker:
            clock.advance(3.0)
            raise Boom("late")

    with pytest.raises(Boom):
        late()
    assert window_stats(breaker) == (3, 1, 3)
    assert breaker.state is CircuitState.OPEN


def test_nested_blocks_of_one_breaker_each_measure_their_own_duration(clock: FakeClock) -> None:
    breaker = make(clock, CountWindow(size=10, minimum_calls=5, slow_call_duration=1.0))
    with breaker:
        with breaker:
            clock.advance(0.5)
        clock.advance(1.0)  # the outer block: 1.5 s
    assert window_stats(breaker) == (2, 0, 1)


def test_a_protected_generator_is_measured_from_start_to_exhaustion(clock: FakeClock) -> None:
    breaker = make(clock, CountWindow(size=10, minimum_calls=1, slow_call_duration=1.0))

    @breaker
    def rows() -> Iterator[int]:
        for i in range(3):
            clock.advance(0.5)
            yield i

    assert list(rows()) == [0, 1, 2]
    assert window_stats(breaker)[2] == 1
    assert breaker.state is CircuitState.OPEN


def test_async_functions_are_measured_to_the_end_of_the_await(clock: FakeClock) -> None:
    breaker = make(
        clock, CountWindow(size=10, minimum_calls=2, failure_rate=0.9, slow_call_duration=1.0, slow_call_rate=0.5)
    )

    @breaker
    async def fetch(seconds: float) -> float:
        await asyncio.sleep(0)
        clock.advance(seconds)
        return seconds

    @breaker
    async def broken() -> None:
        await asyncio.sleep(0)
        raise Boom("async")

    async def main() -> None:
        assert await fetch(0.1) == 0.1
        with pytest.raises(Boom):
            await broken()
        assert window_stats(breaker) == (2, 1, 0)
        assert breaker.state is CircuitState.CLOSED
        await fetch(2.0)  # 1 of 3 slow; 1 of 3 failed
        assert window_stats(breaker) == (3, 1, 1)
        await fetch(2.0)  # 2 of 4 slow: 50 %
        assert breaker.state is CircuitState.OPEN
        with pytest.raises(CircuitOpenError):
            await fetch(0.1)

    asyncio.run(main())
    assert fetch.__name__ == "fetch"


def test_fallbacks_answer_rejections_of_slow_tracked_breakers() -> None:
    window = CountWindow(size=10, minimum_calls=1, slow_call_duration=1.0)

    async def spare(x: int) -> int:
        return -x

    @hardy.circuit_breaker("async-svc", fallback=spare, window=window)
    async def fetch(x: int) -> int:
        return x

    @hardy.circuit_breaker("sync-svc", fallback=lambda x: -x, window=window)
    def compute(x: int) -> int:
        return x

    @hardy.circuit_breaker("async-sync-fallback", fallback=lambda x: -x, window=window)
    async def fetch_or_minus(x: int) -> int:
        return x

    for protected in (fetch, compute, fetch_or_minus):
        protected.breaker.force_open()
    assert compute(2) == -2

    async def main() -> None:
        assert await fetch(3) == -3
        assert await fetch_or_minus(4) == -4

    asyncio.run(main())
    unanswered = hardy.CircuitBreaker("svc", window=window)
    unanswered.force_open()

    async def rejected() -> None:
        with pytest.raises(CircuitOpenError):
            await unanswered(fetch.__wrapped__)(1)

    asyncio.run(rejected())


def test_an_async_count_window_without_slow_calls(clock: FakeClock) -> None:
    breaker = make(clock, CountWindow(size=4, minimum_calls=2))

    @breaker
    async def flaky(ok: bool) -> bool:
        if not ok:
            raise Boom("no")
        return ok

    async def main() -> None:
        assert await flaky(True)
        with pytest.raises(Boom):
            await flaky(False)

    asyncio.run(main())
    assert breaker.state is CircuitState.OPEN


# -- a time window ----------------------------------------------------------------------------------


def test_a_time_window_forgets_the_seconds_that_fall_out(clock: FakeClock) -> None:
    clock.now = 100.0
    breaker = make(clock, TimeWindow(seconds=10, failure_rate=0.5, minimum_calls=3))
    fail(breaker)
    fail(breaker)
    assert window_stats(breaker) == (2, 2, 0)
    clock.advance(9.9)  # 109.9: second 109, the window holds seconds 100..109
    succeed(breaker)
    assert window_stats(breaker) == (3, 2, 0)
    assert breaker.state is CircuitState.OPEN  # 2 of 3


def test_time_buckets_expire_one_second_at_a_time(clock: FakeClock) -> None:
    clock.now = 100.5
    breaker = make(clock, TimeWindow(seconds=3, failure_rate=1.0, minimum_calls=3))
    fail(breaker)  # second 100
    clock.now = 101.2
    fail(breaker)  # second 101
    clock.now = 102.9
    succeed(breaker)  # second 102
    assert window_stats(breaker) == (3, 2, 0)
    clock.now = 103.0  # second 103: second 100 falls out
    fail(breaker)
    assert window_stats(breaker) == (3, 2, 0)
    clock.now = 105.0  # 104 and 105: 101 and 102 fall out
    fail(breaker)
    assert window_stats(breaker) == (2, 2, 0)
    clock.now = 1000.0  # a long pause: everything falls out at once
    succeed(breaker)
    assert window_stats(breaker) == (1, 0, 0)
    assert breaker.state is CircuitState.CLOSED


def test_a_reading_older_than_the_newest_second_counts_in_it(clock: FakeClock) -> None:
    clock.now = 50.0
    breaker = make(clock, TimeWindow(seconds=2, minimum_calls=5))
    succeed(breaker)
    clock.now = 48.0  # a reading taken before another thread's, settled after it
    fail(breaker)
    assert window_stats(breaker) == (2, 1, 0)
    clock.now = 51.0
    succeed(breaker)
    assert window_stats(breaker) == (3, 1, 0)
    clock.now = 52.0  # second 50 falls out, with both outcomes it holds
    succeed(breaker)
    assert window_stats(breaker) == (2, 0, 0)


def test_a_time_window_below_zero(clock: FakeClock) -> None:
    clock.now = -10.5  # a test clock may start anywhere
    breaker = make(clock, TimeWindow(seconds=4, minimum_calls=10))
    fail(breaker)  # second -11
    clock.now = -6.5  # second -7: the window holds -10..-7, -11 falls out
    fail(breaker)
    assert window_stats(breaker) == (1, 1, 0)


def test_a_time_window_reads_the_clock_once_per_outcome() -> None:
    counting = CountingClock()
    breaker = hardy.CircuitBreaker("svc", clock=counting, window=TimeWindow(seconds=10))
    protected = breaker(lambda: 1)
    before = counting.readings
    for _ in range(10):
        protected()
    assert counting.readings == before + 10


def test_time_window_slow_calls(clock: FakeClock) -> None:
    breaker = make(clock, TimeWindow(seconds=60, minimum_calls=2, slow_call_duration=0.5, slow_call_rate=1.0))
    work = sleeper(clock, breaker)
    work(1.0)
    work(0.6)
    assert breaker.state is CircuitState.OPEN


# -- against a reference model ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_a_count_window_agrees_with_a_deque(clock: FakeClock, seed: int) -> None:
    rng = random.Random(seed)
    size, minimum, rate, slow_rate = rng.randint(1, 70), 1, rng.choice([0.3, 0.5, 0.9]), rng.choice([0.4, 1.0])
    minimum = rng.randint(1, size)
    breaker = make(
        clock,
        CountWindow(
            size=size, failure_rate=rate, minimum_calls=minimum, slow_call_duration=1.0, slow_call_rate=slow_rate
        ),
    )
    work = sleeper(clock, breaker)
    model: deque[tuple[bool, bool]] = deque(maxlen=size)
    for _ in range(600):
        failed, slow = rng.random() < 0.35, rng.random() < 0.3
        if failed:
            with pytest.raises(Boom):
                work(2.0 if slow else 0.1, ok=False)
        else:
            work(2.0 if slow else 0.1)
        model.append((failed, slow))
        calls = len(model)
        failures = sum(f for f, _ in model)
        slows = sum(s for _, s in model)
        tripped = calls >= minimum and (failures / calls >= rate or slows / calls >= slow_rate)
        if tripped:
            assert breaker.state is CircuitState.OPEN
            breaker.reset()
            model.clear()
            assert window_stats(breaker) == (0, 0, 0)
        else:
            assert breaker.state is CircuitState.CLOSED
            assert window_stats(breaker) == (calls, failures, slows)


def judged_trials(
    outcomes: list[tuple[bool, bool]], trials: int, rate: float, slow_rate: float | None
) -> tuple[int, CircuitState]:
    """The reference for a rate-judged half-open period: how many of ``outcomes`` (failed, slow) it
    takes, in order, and the state it ends in (HALF_OPEN: no verdict yet)."""
    failed = slow = 0
    for taken, (f, s) in enumerate(outcomes, 1):
        failed, slow = failed + f, slow + s
        if failed / trials >= rate or (slow_rate is not None and slow / trials >= slow_rate):
            return taken, CircuitState.OPEN
        if taken == trials:
            return taken, CircuitState.CLOSED
    return len(outcomes), CircuitState.HALF_OPEN


@pytest.mark.parametrize("seed", range(8))
def test_half_open_periods_agree_with_a_reference_judge(clock: FakeClock, seed: int) -> None:
    rng = random.Random(seed)
    trials, rate = rng.randint(1, 7), rng.choice([0.2, 0.5, 0.7, 1.0])
    slow_rate = rng.choice([None, 0.3, 0.5, 1.0])
    window = CountWindow(
        size=4,
        failure_rate=rate,
        minimum_calls=1,
        slow_call_duration=None if slow_rate is None else 1.0,
        slow_call_rate=1.0 if slow_rate is None else slow_rate,
    )
    breaker = make(clock, window, half_open_max_calls=trials)
    work = sleeper(clock, breaker)
    for _ in range(12):
        if breaker.state is not CircuitState.OPEN:  # closed, or a period left without a verdict
            breaker.reset()
            with pytest.raises(Boom):
                work(0.5, ok=False)  # 1 of 1 failed: at any rate
        assert breaker.state is CircuitState.OPEN
        clock.advance(breaker.get_time_until_reset() + 0.5)
        outcomes = [(rng.random() < 0.4, rng.random() < 0.4) for _ in range(rng.randint(1, trials + 2))]
        taken, expected = judged_trials(outcomes, trials, rate, slow_rate)
        for failed, slow in outcomes[:taken]:
            assert breaker.state is CircuitState.HALF_OPEN
            if failed:
                with pytest.raises(Boom):
                    work(2.0 if slow else 0.5, ok=False)
            else:
                work(2.0 if slow else 0.5)
        assert breaker.state is expected, (outcomes, taken)


@pytest.mark.parametrize("seed", range(6))
def test_runs_of_decorated_successes_agree_with_a_deque(clock: FakeClock, seed: int) -> None:
    """Decorated, without slow calls: once the window holds ``minimum_calls``, a success is only counted
    and written into the ring by whatever reads or changes the window next (policies.breaker). Runs of
    successes shorter and longer than the window, read back at random moments, must read as recorded."""
    rng = random.Random(seed)
    size = rng.choice([1, 3, 4, 5, 8, 37, 100])
    minimum = rng.randint(1, size)
    rate = rng.choice([0.2, 0.5, 0.9])
    breaker = make(clock, CountWindow(size=size, failure_rate=rate, minimum_calls=minimum))

    @breaker
    def work(ok: bool) -> int:
        if not ok:
            raise Boom
        return 1

    model: deque[bool] = deque(maxlen=size)
    opened = 0

    def step(failed: bool) -> None:
        nonlocal opened
        if failed:
            with pytest.raises(Boom):
                work(False)
        else:
            assert work(True) == 1
        model.append(failed)
        calls, failures = len(model), sum(model)
        if calls >= minimum and failures / calls >= rate:
            assert breaker.state is CircuitState.OPEN
            opened += 1
            breaker.reset()
            model.clear()
        else:
            assert breaker.state is CircuitState.CLOSED

    for _ in range(300):
        for _ in range(rng.choice([0, 1, 2, size - 1, size, size + 1, 2 * size + 3, rng.randint(0, 4 * size)])):
            step(False)
        for _ in range(rng.randint(0, size)):
            step(rng.random() < 0.8)
        if rng.random() < 0.2:
            assert window_stats(breaker) == (len(model), sum(model), 0)
    assert opened > 0


def test_runs_of_quick_successes_after_slow_calls_agree_with_a_deque() -> None:
    """On the real clock the compiled core only counts a success that surely ended in time, and writes
    it into the two-bit ring later (policies.breaker.surely_not_slow): runs of them around slow calls
    and failures, shorter and longer than the window, must read back as recorded."""
    size = 13  # three whole bytes of four two-bit slots, and one slot of a fourth
    breaker = hardy.CircuitBreaker(
        "svc", window=CountWindow(size=size, minimum_calls=size, failure_rate=1.0, slow_call_duration=0.2)
    )
    protected = breaker(time.sleep)
    model: deque[tuple[bool, bool]] = deque(maxlen=size)

    def record(failed: bool, slow: bool) -> None:
        if failed:
            with pytest.raises(Boom):
                breaker.call(boom)
        else:
            protected(0.25 if slow else 0)
        model.append((failed, slow))

    for run in (0, 2, 5, size - 1, size, size + 3, 2 * size + 3):
        record(False, True)
        record(True, False)
        for _ in range(run):
            record(False, False)
        expected = (len(model), sum(f for f, _ in model), sum(s for _, s in model))
        assert window_stats(breaker) == expected, run
    assert breaker.state is CircuitState.CLOSED


def test_successes_from_many_threads_are_all_recorded_while_others_read_the_window() -> None:
    """The counted-only successes (``_pending``) are added without the lock in the twin and written into
    the ring under it by readers: none may be lost or written twice."""
    threads, each = 6, 3000
    breaker = hardy.CircuitBreaker("svc", window=CountWindow(size=threads * each + 10, minimum_calls=1))

    @breaker
    def work() -> int:
        return 1

    work()
    stop = threading.Event()
    seen: list[int] = []

    def read() -> None:
        while not stop.is_set():
            seen.append(breaker.get_stats()["window_calls"])

    def run() -> None:
        for _ in range(each):
            work()

    with switching_often():
        reader = threading.Thread(target=read)
        reader.start()
        try:
            errors = run_threads(run, threads)
        finally:
            stop.set()
            reader.join(60)
    assert errors == []
    stats = breaker.get_stats()
    assert stats["successes"] == threads * each + 1
    assert stats["window_calls"] == threads * each + 1
    assert seen == sorted(seen)  # a reader never sees the window go back


@pytest.mark.parametrize("seed", range(3))
def test_a_time_window_agrees_with_a_list_of_timestamps(clock: FakeClock, seed: int) -> None:
    rng = random.Random(seed)
    seconds, minimum, rate = rng.randint(1, 8), rng.randint(1, 12), rng.choice([0.3, 0.6])
    breaker = make(clock, TimeWindow(seconds=seconds, failure_rate=rate, minimum_calls=minimum))
    model: list[tuple[int, bool]] = []
    for _ in range(500):
        clock.advance(rng.choice([0.0, 0.1, 0.4, 1.0, 2.5, 0.05]))
        failed = rng.random() < 0.3
        if failed:
            fail(breaker)
        else:
            succeed(breaker)
        second = math.floor(clock.now)
        model = [(s, f) for s, f in model if s > second - seconds]
        model.append((second, failed))
        calls, failures = len(model), sum(f for _, f in model)
        if calls >= minimum and failures / calls >= rate:
            assert breaker.state is CircuitState.OPEN
            breaker.reset()
            model.clear()
        else:
            assert breaker.state is CircuitState.CLOSED
            assert window_stats(breaker)[:2] == (calls, failures)


# -- half-open, closing and resets ------------------------------------------------------------------


def open_it(breaker: Any) -> None:
    while breaker.state is CircuitState.CLOSED:
        fail(breaker)


def test_with_success_threshold_half_open_trials_are_counted_as_without_a_window(clock: FakeClock) -> None:
    breaker = make(clock, CountWindow(size=10, minimum_calls=2, slow_call_duration=1.0), success_threshold=2)
    work = sleeper(clock, breaker)
    open_it(breaker)
    clock.advance(10.0)
    assert breaker.state is CircuitState.HALF_OPEN
    work(5.0)  # a slow trial is a successful trial
    assert breaker.state is CircuitState.HALF_OPEN
    work(0.5)
    assert breaker.state is CircuitState.CLOSED
    assert window_stats(breaker) == (0, 0, 0)  # closing starts the window afresh
    open_it(breaker)
    clock.advance(10.0)
    fail(breaker)  # counted: any failed trial re-opens, whatever the rate
    assert breaker.state is CircuitState.OPEN


def trial_counts(breaker: Any) -> tuple[int, int, int]:
    stats = breaker.get_stats()
    return stats["half_open_calls"], stats["success_count"], stats["failure_count"]


def test_half_open_trials_are_judged_by_the_window_rates_once_all_have_an_outcome(clock: FakeClock) -> None:
    breaker = make(clock, CountWindow(size=10, failure_rate=0.5, minimum_calls=10), half_open_max_calls=4)
    events: list[tuple[CircuitState, CircuitState]] = []
    breaker.add_listener(lambda _b, old, new: events.append((old, new)))
    for _ in range(10):
        fail(breaker)
    clock.advance(10.0)
    succeed(breaker)
    fail(breaker)  # a failed trial keeps its slot and does not end the period: 1 of 4 so far
    succeed(breaker)
    assert breaker.state is CircuitState.HALF_OPEN
    assert trial_counts(breaker) == (3, 2, 1)
    succeed(breaker)  # every trial has an outcome: 1 of 4 failed, below 50 % (minimum_calls is not asked)
    assert breaker.state is CircuitState.CLOSED
    assert events[-2:] == [(CircuitState.OPEN, CircuitState.HALF_OPEN), (CircuitState.HALF_OPEN, CircuitState.CLOSED)]
    assert window_stats(breaker) == (0, 0, 0)
    assert trial_counts(breaker) == (0, 0, 0)


def test_a_half_open_period_reopens_as_soon_as_its_failed_trials_reach_the_rate(clock: FakeClock) -> None:
    breaker = make(clock, CountWindow(size=10, failure_rate=0.5, minimum_calls=2), half_open_max_calls=4)
    open_it(breaker)
    clock.advance(10.0)
    with breaker:  # a trial still running
        fail(breaker)
        assert breaker.state is CircuitState.HALF_OPEN
        fail(breaker)  # 2 of the 4 trials failed: 50 % whatever the other two do
        assert breaker.state is CircuitState.OPEN
        assert breaker.last_failure is not None
    assert breaker.state is CircuitState.OPEN  # the running trial's success is stale
    assert breaker.get_time_until_reset() == 10.0


def test_slow_trials_are_judged_by_the_slow_call_rate(clock: FakeClock) -> None:
    window = CountWindow(size=10, minimum_calls=2, slow_call_duration=1.0, slow_call_rate=0.5)
    breaker = make(clock, window, half_open_max_calls=2)
    work = sleeper(clock, breaker)
    open_it(breaker)
    clock.advance(10.0)
    work(0.5)
    assert breaker.state is CircuitState.HALF_OPEN
    work(5.0)  # a slow trial: 1 of 2, the slow-call rate
    assert breaker.state is CircuitState.OPEN
    assert breaker.last_failure is None  # no exception re-opened it
    clock.advance(10.0)
    work(5.0)  # slow, and 50 % of the period already: re-opens before the second trial
    assert breaker.state is CircuitState.OPEN
    lenient = make(clock, CountWindow(size=10, minimum_calls=2, slow_call_duration=1.0), half_open_max_calls=2)
    work = sleeper(clock, lenient)
    open_it(lenient)
    clock.advance(10.0)
    work(5.0)
    work(0.5)  # 1 slow trial of 2: below a slow-call rate of 100 %
    assert lenient.state is CircuitState.CLOSED


def test_a_slow_failed_trial_counts_in_both_rates(clock: FakeClock) -> None:
    window = CountWindow(size=10, failure_rate=1.0, minimum_calls=2, slow_call_duration=1.0, slow_call_rate=0.5)
    breaker = make(clock, window, half_open_max_calls=2)
    work = sleeper(clock, breaker)
    open_it(breaker)
    clock.advance(10.0)
    with pytest.raises(Boom):
        work(5.0, ok=False)  # 1 of 2 failed (below 100 %) and slow (at 50 %)
    assert breaker.state is CircuitState.OPEN


def test_a_time_window_judges_its_trials_by_rate_too(clock: FakeClock) -> None:
    breaker = make(clock, TimeWindow(seconds=5, failure_rate=0.6, minimum_calls=10), half_open_max_calls=2)
    open_it(breaker)
    clock.advance(10.0)
    fail(breaker)
    assert breaker.state is CircuitState.HALF_OPEN  # 1 of 2: below 60 %
    succeed(breaker)
    assert breaker.state is CircuitState.CLOSED


def test_an_interrupted_trial_is_no_outcome_and_gives_its_slot_back(clock: FakeClock) -> None:
    breaker = make(clock, CountWindow(size=10, minimum_calls=2), half_open_max_calls=2)
    open_it(breaker)
    clock.advance(10.0)

    def interrupted() -> None:
        raise KeyboardInterrupt

    succeed(breaker)
    with pytest.raises(KeyboardInterrupt):
        breaker.call(interrupted)
    assert trial_counts(breaker) == (1, 1, 0)
    succeed(breaker)
    assert breaker.state is CircuitState.CLOSED


@pytest.mark.parametrize(("failure_rate", "after"), [(0.5, CircuitState.OPEN), (1.0, CircuitState.CLOSED)])
def test_an_overdue_trial_judged_by_rate_counts_as_failed(
    clock: FakeClock, failure_rate: float, after: CircuitState
) -> None:
    window = CountWindow(size=10, failure_rate=failure_rate, minimum_calls=2)
    breaker = make(clock, window, half_open_max_calls=2, half_open_max_wait=5.0)
    open_it(breaker)
    clock.advance(10.0)
    succeed(breaker)
    breaker.__enter__()  # the other trial hangs
    clock.advance(5.0)
    if after is CircuitState.OPEN:
        with pytest.raises(CircuitOpenError):
            breaker.call(lambda: 1)  # 1 of 2 failed: 50 %
    else:
        succeed(breaker)  # 1 of 2 failed, below 100 %: closed, and this call is the first of the closed period
    assert breaker.state is after
    held = window_stats(breaker)  # closed: the one call since; open: what opened it first
    assert held == ((1, 0, 0) if after is CircuitState.CLOSED else (2, 2, 0))
    breaker.__exit__(None, None, None)  # the overdue trial's outcome comes late: stale
    assert window_stats(breaker) == held
    assert breaker.state is after


def test_half_open_trials_are_judged_by_rate_when_only_the_recovery_is_tuned(clock: FakeClock) -> None:
    breaker = make(
        clock, CountWindow(size=10, failure_rate=0.5, minimum_calls=2), half_open_max_calls=3, reset_backoff=2.0
    )
    assert breaker.success_threshold == 3
    open_it(breaker)
    clock.advance(10.0)
    succeed(breaker)
    fail(breaker)
    assert breaker.state is CircuitState.HALF_OPEN  # counted, that failure would have re-opened it
    succeed(breaker)
    assert breaker.state is CircuitState.CLOSED


def test_a_failed_trial_reopens_and_the_window_is_empty_after_closing(clock: FakeClock) -> None:
    breaker = make(clock, CountWindow(size=10, minimum_calls=3), half_open_max_calls=1)
    open_it(breaker)
    clock.advance(10.0)
    fail(breaker)  # the trial
    assert breaker.state is CircuitState.OPEN
    clock.advance(10.0)
    succeed(breaker)
    assert breaker.state is CircuitState.CLOSED
    fail(breaker)
    fail(breaker)
    assert breaker.state is CircuitState.CLOSED  # 2 calls since closing: fewer than minimum_calls
    fail(breaker)
    assert breaker.state is CircuitState.OPEN


def test_reset_and_manual_states_empty_the_window(clock: FakeClock) -> None:
    breaker = make(clock, CountWindow(size=10, minimum_calls=5))
    fail(breaker)
    fail(breaker)
    breaker.reset()
    assert window_stats(breaker) == (0, 0, 0)
    fail(breaker)
    breaker.disable()
    for _ in range(10):
        fail(breaker)  # disabled: nothing is recorded
    assert window_stats(breaker) == (0, 0, 0)
    breaker.reset()
    fail(breaker)
    breaker.force_open()
    breaker.reset()
    assert window_stats(breaker) == (0, 0, 0)
    assert breaker.state is CircuitState.CLOSED


def test_an_outcome_of_a_call_started_before_the_opening_stays_out_of_the_window(clock: FakeClock) -> None:
    breaker = make(clock, CountWindow(size=10, minimum_calls=2), half_open_max_calls=1)
    with breaker:  # still running when the breaker opens, and after it closes again
        open_it(breaker)
        clock.advance(10.0)
        succeed(breaker)
        assert breaker.state is CircuitState.CLOSED
    assert window_stats(breaker) == (0, 0, 0)


# -- user code that misbehaves ----------------------------------------------------------------------


class FailingClock(FakeClock):
    def __init__(self) -> None:
        super().__init__()
        self.fail_at: int | None = None
        self.readings = 0
        self.error: BaseException = RuntimeError("clock broke")

    def __call__(self) -> float:
        self.readings += 1
        if self.fail_at is not None and self.readings == self.fail_at:
            raise self.error
        return self.now


@pytest.mark.parametrize("error", [RuntimeError("clock broke"), KeyboardInterrupt()])
@pytest.mark.parametrize("at", [1, 2])
def test_a_clock_that_raises_before_or_after_a_trial_gives_its_slot_back(error: BaseException, at: int) -> None:
    clock = FailingClock()
    breaker = hardy.CircuitBreaker(
        "svc", clock=clock, reset_timeout=10.0, half_open_max_calls=1,
        window=CountWindow(size=4, minimum_calls=1, slow_call_duration=1.0),
    )  # fmt: skip
    protected = breaker(lambda: "ok")
    breaker.record_failure(Boom())
    clock.advance(10.0)
    clock.error = error
    clock.readings = 0
    # The admission reads the clock once (open, past the timeout), then the start, then the end.
    clock.fail_at = 1 + at
    with pytest.raises(type(error)):
        protected()
    assert breaker.get_stats()["half_open_calls"] == 0  # the trial slot came back
    clock.fail_at = None
    assert protected() == "ok"
    assert breaker.state is CircuitState.CLOSED


def test_a_block_whose_start_cannot_be_read_gives_its_slot_back() -> None:
    clock = FailingClock()
    breaker = hardy.CircuitBreaker(
        "svc", clock=clock, reset_timeout=10.0, half_open_max_calls=1,
        window=CountWindow(size=4, minimum_calls=1, slow_call_duration=1.0),
    )  # fmt: skip
    breaker.record_failure(Boom())
    clock.advance(10.0)
    clock.readings = 0
    clock.fail_at = 2
    with pytest.raises(RuntimeError, match="clock broke"), breaker:
        pass
    assert breaker.get_stats()["half_open_calls"] == 0
    with pytest.raises(RuntimeError, match="without a matching __enter__"):
        breaker.__exit__(None, None, None)


def test_a_listener_that_reenters_when_the_window_opens(clock: FakeClock) -> None:
    breaker = make(clock, CountWindow(size=4, minimum_calls=2))
    seen: list[Any] = []

    def listener(b: Any, old: CircuitState, new: CircuitState) -> None:
        seen.append(new)
        if new is CircuitState.OPEN:
            with pytest.raises(CircuitOpenError):
                b.call(lambda: 1)
            b.reset()

    breaker.add_listener(listener)
    fail(breaker)
    fail(breaker)
    assert seen == [CircuitState.OPEN, CircuitState.CLOSED]
    assert breaker.state is CircuitState.CLOSED
    assert window_stats(breaker) == (0, 0, 0)


def test_a_function_that_reenters_its_slow_tracked_breaker(clock: FakeClock) -> None:
    breaker = make(clock, CountWindow(size=10, minimum_calls=10, slow_call_duration=1.0))
    depth = [0]

    @breaker
    def recurse() -> int:
        depth[0] += 1
        if depth[0] < 5:
            clock.advance(0.5)
            return recurse() + 1
        return 0

    assert recurse() == 4
    assert window_stats(breaker) == (5, 0, 2)  # the outer two took 2.0 and 1.5 s


def test_a_clock_that_reenters_the_breaker_it_times() -> None:
    state = {"inside": False, "armed": False}
    now = [0.0]

    def clock() -> float:
        if state["armed"] and not state["inside"]:
            state["inside"] = True
            try:
                breaker.record_success()
            finally:
                state["inside"] = False
        return now[0]

    breaker = hardy.CircuitBreaker("svc", clock=clock, window=TimeWindow(seconds=5, minimum_calls=100))
    state["armed"] = True
    breaker.call(lambda: 1)
    assert window_stats(breaker)[0] == 2  # the clock's own success, then the call's


@pytest.mark.c_extension
def test_the_window_types_cannot_be_made_or_reused(core: ModuleType) -> None:
    result = run_python(
        core,
        """
        from hardy import _core_c
        kind = _core_c.WindowSettings
        for make in (lambda: kind(), lambda: kind.__new__(kind)):
            try:
                make()
                print("made")
            except TypeError:
                print("refused")
        # Dropping windowed breakers with blocks and awaiters in flight is safe.
        import asyncio, gc
        windows = [
            hardy.CountWindow(size=8, minimum_calls=1, slow_call_duration=1.0),
            hardy.CountWindow(size=9, minimum_calls=1),
            hardy.TimeWindow(seconds=3, minimum_calls=1, slow_call_duration=1.0),
        ]
        for i in range(300):
            b = hardy.CircuitBreaker("x", window=windows[i % 3])
            b.__enter__()

            @b
            async def f():
                return 1

            coro = f()
            del b, f, coro
        gc.collect()
        print("done")
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["refused"] * 2 + ["done"]


# -- with a store: the window is the process's own, its verdict is shared ---------------------------


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    own = RedisServer().start()
    yield own
    own.remove()


@pytest.mark.redis
def test_each_process_keeps_its_window_and_shares_its_verdict(redis_server: RedisServer) -> None:
    client = redis_server.client()
    stores = [hardy.RedisStore(redis_server.client(), prefix="w:", sync_interval=3600) for _ in range(2)]
    try:
        window = CountWindow(size=10, failure_rate=0.5, minimum_calls=4)
        a, b = (hardy.CircuitBreaker("db", window=window, store=store, reset_timeout=60) for store in stores)
        protected = a(lambda: 1)
        wait_for(lambda: evalsha_calls(client) == 4)  # each store's read at creation and at start-up
        before = evalsha_calls(client)
        for _ in range(500):
            assert protected() == 1
        for _ in range(3):
            fail(b)
        assert evalsha_calls(client) == before  # successes, and failures the window holds: no round trip
        assert window_stats(a) == (10, 0, 0)
        assert window_stats(b) == (3, 3, 0)
        assert a.is_closed
        assert b.is_closed
        fail(b)  # b's window: 4 of 4 failed, so b reports the one failure that opens the shared circuit
        assert evalsha_calls(client) == before + 1
        assert b.is_open
        wait_for(lambda: a.is_open)  # a's own window was clean: it hears of the verdict
        with pytest.raises(CircuitOpenError):
            protected()
        b.reset()  # closes the shared circuit, and every process's window starts afresh
        wait_for(lambda: a.is_closed)
        assert window_stats(a) == (0, 0, 0)
        assert window_stats(b) == (0, 0, 0)
    finally:
        for store in stores:
            store.close()


def shared_pair(redis_server: RedisServer, prefix: str, window: Any) -> tuple[list[Any], list[Any]]:
    stores = [hardy.RedisStore(redis_server.client(), prefix=prefix, sync_interval=3600) for _ in range(2)]
    breakers = [
        hardy.CircuitBreaker("db", window=window, store=store, reset_timeout=0.1, half_open_max_calls=2)
        for store in stores
    ]
    return stores, breakers


def shared_fields(redis_server: RedisServer, key: str, *names: str) -> list[int]:
    return [int(value or 0) for value in redis_server.client().hmget(key, *names)]


@pytest.mark.redis
def test_a_shared_half_open_period_judges_its_trials_by_rate(redis_server: RedisServer) -> None:
    stores, (a, b) = shared_pair(redis_server, "rate:", CountWindow(size=4, failure_rate=1.0, minimum_calls=2))
    try:
        fail(b)
        fail(b)  # b's window: 2 of 2 failed, the shared circuit opens
        wait_for(lambda: a.state is CircuitState.HALF_OPEN)
        fail(a)  # one trial of two failed: below 100 %, and its slot stays taken
        assert shared_fields(redis_server, "rate:{db}", "state", "tfail", "tsucc") == [1, 1, 0]
        succeed(b)  # every trial has an outcome: 1 of 2 failed, the circuit closes for all
        assert b.is_closed
        wait_for(lambda: a.is_closed)
        assert shared_fields(redis_server, "rate:{db}", "state", "tfail", "boff") == [0, 0, 0]
        fail(a)
        fail(a)
        wait_for(lambda: b.state is CircuitState.HALF_OPEN)
        fail(b)
        fail(a)  # both trials failed: 100 %, it re-opens (and backs off)
        assert a.state is CircuitState.OPEN
        assert shared_fields(redis_server, "rate:{db}", "state", "tfail", "boff") == [1, 0, 1]
    finally:
        for store in stores:
            store.close()


@pytest.mark.redis
def test_a_slow_shared_trial_counts_in_the_shared_slow_call_rate(redis_server: RedisServer) -> None:
    window = CountWindow(size=4, failure_rate=1.0, minimum_calls=2, slow_call_duration=0.05, slow_call_rate=0.5)
    stores, (a, b) = shared_pair(redis_server, "slow:", window)
    try:
        fail(a)
        fail(a)
        wait_for(lambda: b.state is CircuitState.HALF_OPEN)
        assert b.call(lambda: time.sleep(0.2) or "late") == "late"  # 1 slow trial of 2: 50 %
        assert b.state is CircuitState.OPEN
        wait_for(lambda: a.state is CircuitState.OPEN)
        assert shared_fields(redis_server, "slow:{db}", "state", "boff") == [1, 1]
    finally:
        for store in stores:
            store.close()


@pytest.mark.redis
def test_a_process_adopts_the_shared_trial_tally_from_a_message(redis_server: RedisServer) -> None:
    store = hardy.RedisStore(redis_server.client(), prefix="tally:", sync_interval=3600)
    try:
        window = CountWindow(size=4, minimum_calls=2, slow_call_duration=1.0)
        breaker = hardy.CircuitBreaker("db", window=window, store=store, reset_timeout=1.0, half_open_max_calls=3)
        client = redis_server.client()
        wait_for(lambda: client.pubsub_numsub("tally:events")[0][1] >= 1)
        # Open for 5 s of a 1 s timeout; 3 permits out, 1 trial succeeded, 1 failed and slow.
        message = ["db", "1.0", 99, 1, 7, 0, 5_000_000, 3, 1, 0, 3, 0, 1, 1]
        client.publish("tally:events", json.dumps(message))
        wait_for(lambda: breaker.state is CircuitState.HALF_OPEN)
        stats = breaker.get_stats()
        assert (stats["half_open_calls"], stats["success_count"], stats["failure_count"]) == (3, 1, 1)
    finally:
        store.close()


@pytest.mark.redis
def test_with_success_threshold_a_shared_failed_trial_reopens_at_once(redis_server: RedisServer) -> None:
    stores = [hardy.RedisStore(redis_server.client(), prefix="count:", sync_interval=3600) for _ in range(2)]
    window = CountWindow(size=4, failure_rate=1.0, minimum_calls=2)
    a, b = (
        hardy.CircuitBreaker(
            "db", window=window, store=store, reset_timeout=0.1, half_open_max_calls=2, success_threshold=2
        )
        for store in stores
    )
    try:
        fail(a)
        fail(a)
        wait_for(lambda: b.state is CircuitState.HALF_OPEN)
        fail(b)  # counted, not judged by rate: one failed trial re-opens
        assert b.state is CircuitState.OPEN
        wait_for(lambda: a.state is CircuitState.OPEN)
    finally:
        for store in stores:
            store.close()


class UnavailableStore(hardy.store.BreakerStore):
    """A store that is never available: its breakers decide locally, as during an outage."""

    available = False

    def __init__(self) -> None:
        self.bindings: list[Any] = []

    def _attach(self, binding: Any) -> None:
        self.bindings.append(binding)

    def _run(self, binding: Any, op: Any, arg: str = "") -> None:
        return None

    def _submit(self, binding: Any, op: Any, arg: str = "") -> None:
        pass

    def _new_permit(self) -> str:
        return "permit"


def test_a_re_read_sent_before_the_shared_state_was_created_anew_is_dropped(clock: FakeClock) -> None:
    store = UnavailableStore()
    breaker = hardy.CircuitBreaker("db", failure_threshold=1, clock=clock, store=store)
    binding = store.bindings[0]

    def snapshot(incarnation: str, version: int, state: int) -> Any:
        return hardy.store.Snapshot(incarnation, version, state, 1, 0, 0.0, 0, 0, False, 1)

    mark = binding.read_mark()  # a re-read goes out while the keys do not exist...
    binding.apply(snapshot("1.5", 1, hardy.store.OPEN))  # ...a failure's reply creates them, open
    assert breaker.is_open
    binding.apply(snapshot("", 0, hardy.store.CLOSED), mark)  # the re-read answers with the state before
    assert breaker.is_open
    binding.apply(snapshot("", 0, hardy.store.CLOSED), binding.read_mark())  # a read sent now is the state
    assert breaker.is_closed


def test_a_slow_trial_counts_while_the_store_is_away(clock: FakeClock) -> None:
    window = CountWindow(size=4, minimum_calls=2, slow_call_duration=1.0, slow_call_rate=0.5)
    breaker = make(clock, window, store=UnavailableStore())
    work = sleeper(clock, breaker)
    open_it(breaker)
    clock.advance(10.0)
    work(5.0)  # 1 slow trial of 2: the rate, judged locally
    assert breaker.state is CircuitState.OPEN


def test_a_success_after_an_adopted_tally_at_the_rate_reopens_with_a_reading(clock: FakeClock) -> None:
    store = UnavailableStore()
    breaker = make(clock, CountWindow(size=4, failure_rate=0.5, minimum_calls=2), store=store)
    local = store.bindings[0].local
    # Half-open, as another process's store judged it: 1 trial failed (50 % of 2 here), 1 permit out.
    local.adopt(hardy.store.HALF_OPEN, 1, 1, 0, 60.0, True)
    assert breaker.state is CircuitState.HALF_OPEN
    succeed(breaker)  # completes a verdict to re-open: the time is read for it
    assert breaker.state is CircuitState.OPEN
    assert breaker.get_time_until_reset() == 10.0
    assert breaker.get_stats()["failure_count"] == 0  # no failed trials while open


@pytest.mark.redis
def test_a_windowed_breaker_opens_locally_while_its_store_is_down(redis_server: RedisServer) -> None:
    store = hardy.RedisStore(redis_server.client(), prefix="down:", sync_interval=3600)
    try:
        breaker = hardy.CircuitBreaker("db", window=CountWindow(size=4, minimum_calls=2), store=store)
        redis_server.stop()
        wait_for(lambda: not store.available)
        fail(breaker)
        fail(breaker)
        assert breaker.is_open
    finally:
        store.close()


def test_a_cancelled_slow_tracked_async_trial_gives_its_slot_back(clock: FakeClock) -> None:
    breaker = make(clock, CountWindow(size=4, minimum_calls=1, slow_call_duration=1.0), half_open_max_calls=1)

    @breaker
    async def hang() -> None:
        await asyncio.sleep(3600)

    @breaker
    async def quick() -> str:
        return "ok"

    breaker.record_failure(Boom())
    clock.advance(10.0)

    async def main() -> None:
        task = asyncio.ensure_future(hang())
        await asyncio.sleep(0)
        assert breaker.get_stats()["half_open_calls"] == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert breaker.get_stats()["half_open_calls"] == 0  # not an outcome: the slot is back
        assert await quick() == "ok"

    asyncio.run(main())
    assert breaker.state is CircuitState.CLOSED


def test_a_decorated_success_can_complete_the_verdict_and_counts_once(clock: FakeClock) -> None:
    breaker = make(clock, CountWindow(size=4, failure_rate=0.5, minimum_calls=4))
    ok = breaker(lambda: "ok")
    broken = breaker(boom)
    for _ in range(2):
        with pytest.raises(Boom):
            broken()
    assert ok() == "ok"
    assert breaker.state is CircuitState.CLOSED
    assert ok() == "ok"  # the fourth call: 2 of 4 failed
    assert breaker.state is CircuitState.OPEN
    assert breaker.get_stats()["successes"] == 2
    breaker.reset()
    for _ in range(10):
        assert ok() == "ok"  # a full window of successes: recorded, never judged
    assert window_stats(breaker) == (4, 0, 0)
    assert breaker.get_stats()["successes"] == 12
    breaker.disable()
    assert ok() == "ok"
    assert breaker.get_stats()["successes"] == 12  # disabled: nothing recorded
