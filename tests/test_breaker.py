"""The circuit breaker's state machine and its API, on both cores."""

from __future__ import annotations

import asyncio
import logging
import traceback
from typing import Any

import pytest

import hardy
from hardy import CircuitOpenError, CircuitState

from .conftest import FakeClock


class Boom(Exception):
    pass


class Excluded(Exception):
    pass


def fail(exc: BaseException | None = None) -> Any:
    raise exc if exc is not None else Boom("boom")


def make(clock: FakeClock, **kwargs: Any) -> Any:
    settings: dict[str, Any] = {"failure_threshold": 3, "reset_timeout": 10.0, "half_open_max_calls": 2}
    settings.update(kwargs)
    return hardy.CircuitBreaker("svc", clock=clock, **settings)


def trip(breaker: Any) -> None:
    for _ in range(breaker.failure_threshold):
        with pytest.raises(Boom):
            breaker.call(fail)


# -- closed ------------------------------------------------------------------


def test_new_breaker_is_closed_and_passes_results(clock: FakeClock) -> None:
    breaker = make(clock)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.is_closed
    assert not breaker.is_open
    assert breaker.call(lambda x, y=0: x + y, 2, y=3) == 5
    assert breaker.get_stats()["successes"] == 1


def test_opens_after_threshold_consecutive_failures(clock: FakeClock) -> None:
    breaker = make(clock)
    for expected in (1, 2):
        with pytest.raises(Boom):
            breaker.call(fail)
        assert breaker.state is CircuitState.CLOSED
        assert breaker.get_stats()["failure_count"] == expected
    with pytest.raises(Boom):
        breaker.call(fail)
    assert breaker.state is CircuitState.OPEN
    assert breaker.get_stats()["opened"] == 1


def test_success_resets_the_consecutive_count(clock: FakeClock) -> None:
    breaker = make(clock)
    for _ in range(5):
        with pytest.raises(Boom):
            breaker.call(fail)
        with pytest.raises(Boom):
            breaker.call(fail)
        breaker.call(lambda: None)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.get_stats()["failure_count"] == 0


def test_only_exceptions_count_as_failures(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=1)
    for exc in (KeyboardInterrupt(), SystemExit(1), GeneratorExit(), asyncio.CancelledError()):
        with pytest.raises(type(exc)):
            breaker.call(fail, exc)
    assert breaker.state is CircuitState.CLOSED
    stats = breaker.get_stats()
    assert (stats["calls"], stats["failures"], stats["ignored"]) == (0, 0, 0)


def test_excluded_exceptions_are_neither_success_nor_failure(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=2, excluded_exceptions=(Excluded,))
    with pytest.raises(Boom):
        breaker.call(fail)
    with pytest.raises(Excluded):
        breaker.call(fail, Excluded())
    assert breaker.get_stats()["failure_count"] == 1  # not reset, not increased
    with pytest.raises(Boom):
        breaker.call(fail)
    assert breaker.state is CircuitState.OPEN
    stats = breaker.get_stats()
    assert (stats["calls"], stats["failures"], stats["ignored"], stats["successes"]) == (3, 2, 1, 0)


def test_excluded_exceptions_accepts_a_single_class_and_subclasses(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=1, excluded_exceptions=LookupError)
    with pytest.raises(KeyError):
        breaker.call(fail, KeyError("k"))
    assert breaker.state is CircuitState.CLOSED
    assert breaker.excluded_exceptions == (LookupError,)


# -- open --------------------------------------------------------------------


def test_open_rejects_without_calling(clock: FakeClock) -> None:
    breaker = make(clock)
    trip(breaker)
    calls = []
    clock.advance(4.0)
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(calls.append, 1)
    assert calls == []
    assert info.value.name == "svc"
    assert info.value.reset_time == pytest.approx(6.0)
    assert "svc" in str(info.value)
    assert str(info.value) == "Circuit breaker 'svc' is open. Resets in 6.0s"  # the reference's words
    assert isinstance(info.value, hardy.HardyError)
    assert breaker.get_stats()["rejections"] == 1
    assert breaker.get_time_until_reset() == pytest.approx(6.0)


def test_each_rejection_raises_a_fresh_exception(clock: FakeClock) -> None:
    breaker = make(clock)
    protected = breaker(lambda: None)
    trip(breaker)
    seen = []
    for _ in range(3):
        try:
            protected()
        except CircuitOpenError as exc:
            seen.append(exc)
            depth = len(traceback.extract_tb(exc.__traceback__))
            assert depth <= 2  # it does not grow with the number of rejections
    assert len({id(exc) for exc in seen}) == 3


def test_outcomes_of_calls_started_before_opening_do_not_extend_it(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=2)
    slow_ok = breaker.__enter__()  # a call admitted while closed...
    assert slow_ok is breaker
    with pytest.raises(Boom), breaker:
        fail()
    with pytest.raises(Boom), breaker:
        fail()
    assert breaker.is_open
    clock.advance(9.0)
    breaker.__exit__(Boom, Boom(), None)  # ...fails late: counted, but ignored by the state
    assert breaker.get_time_until_reset() == pytest.approx(1.0)
    assert breaker.get_stats()["failures"] == 3
    assert breaker.get_stats()["opened"] == 1


def test_reading_the_state_does_not_change_behaviour(clock: FakeClock) -> None:
    transitions: list[tuple[CircuitState, CircuitState]] = []
    breaker = make(clock)
    breaker.add_listener(lambda b, old, new: transitions.append((old, new)))
    trip(breaker)
    clock.advance(10.0)
    for _ in range(3):
        assert breaker.state is CircuitState.HALF_OPEN
        assert not breaker.is_open
        assert breaker.get_time_until_reset() == 0.0
        assert breaker.get_stats()["state"] == "half_open"
    assert transitions == [(CircuitState.CLOSED, CircuitState.OPEN)]
    breaker.call(lambda: None)
    assert transitions[-1] == (CircuitState.OPEN, CircuitState.HALF_OPEN)


# -- half-open ---------------------------------------------------------------


def test_half_open_admits_limited_trials_then_closes(clock: FakeClock) -> None:
    breaker = make(clock, half_open_max_calls=2)
    trip(breaker)
    clock.advance(10.0)
    breaker.__enter__()
    breaker.__enter__()
    assert breaker.get_stats()["half_open_calls"] == 2
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(lambda: None)
    assert info.value.reset_time == 0.0
    assert "in progress" in str(info.value)
    breaker.__exit__(None, None, None)
    assert breaker.state is CircuitState.HALF_OPEN
    breaker.__exit__(None, None, None)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.get_stats()["failure_count"] == 0


def test_trial_failure_reopens_and_restarts_the_timeout(clock: FakeClock) -> None:
    breaker = make(clock)
    trip(breaker)
    clock.advance(10.0)
    with pytest.raises(Boom):
        breaker.call(fail)
    assert breaker.state is CircuitState.OPEN
    assert breaker.get_time_until_reset() == pytest.approx(10.0)
    assert breaker.get_stats()["opened"] == 2


def test_excluded_error_or_interrupt_gives_the_trial_slot_back(clock: FakeClock) -> None:
    breaker = make(clock, half_open_max_calls=1, excluded_exceptions=Excluded)
    trip(breaker)
    clock.advance(10.0)
    with pytest.raises(Excluded):
        breaker.call(fail, Excluded())
    with pytest.raises(KeyboardInterrupt):
        breaker.call(fail, KeyboardInterrupt())
    assert breaker.get_stats()["half_open_calls"] == 0
    breaker.call(lambda: None)
    assert breaker.state is CircuitState.CLOSED


# -- manual use ----------------------------------------------------------------


def test_record_success_and_failure(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=2, excluded_exceptions=Excluded)
    breaker.record_failure(Boom())
    breaker.record_failure(Excluded())
    breaker.record_failure(KeyboardInterrupt())  # not an outcome
    assert breaker.state is CircuitState.CLOSED
    breaker.record_failure(Boom())
    assert breaker.state is CircuitState.OPEN
    clock.advance(10.0)
    breaker.call(lambda: None)  # moves to half-open, one success
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED
    stats = breaker.get_stats()
    assert (stats["failures"], stats["ignored"], stats["successes"]) == (2, 1, 2)
    with pytest.raises(TypeError, match="exception"):
        breaker.record_failure("not an exception")


def test_reset_closes_and_keeps_totals(clock: FakeClock) -> None:
    breaker = make(clock)
    changes: list[tuple[CircuitState, CircuitState]] = []
    breaker.add_listener(lambda b, old, new: changes.append((old, new)))
    trip(breaker)
    breaker.reset()
    assert breaker.state is CircuitState.CLOSED
    assert changes[-1] == (CircuitState.OPEN, CircuitState.CLOSED)
    stats = breaker.get_stats()
    assert (stats["failure_count"], stats["failures"], stats["opened"]) == (0, 3, 1)
    assert breaker.get_time_until_reset() == 0.0


def test_listeners_see_every_change_and_cannot_break_calls(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    breaker = make(clock, failure_threshold=1, half_open_max_calls=1)
    seen: list[tuple[Any, CircuitState, CircuitState]] = []

    def broken(b: Any, old: CircuitState, new: CircuitState) -> None:
        raise RuntimeError("listener bug")

    breaker.add_listener(broken)
    breaker.add_listener(lambda b, old, new: seen.append((b, old, new)))
    with caplog.at_level(logging.ERROR, logger="hardy"), pytest.raises(Boom):
        breaker.call(fail)
    clock.advance(10.0)
    assert breaker.call(lambda: 7) == 7
    assert seen == [
        (breaker, CircuitState.CLOSED, CircuitState.OPEN),
        (breaker, CircuitState.OPEN, CircuitState.HALF_OPEN),
        (breaker, CircuitState.HALF_OPEN, CircuitState.CLOSED),
    ]
    logged = [record for record in caplog.records if "listener" in record.getMessage()]
    assert len(logged) == 3
    assert all(record.exc_info and record.exc_info[0] is RuntimeError for record in logged)
    breaker.remove_listener(broken)
    with pytest.raises(ValueError, match="not"):
        breaker.remove_listener(broken)
    with pytest.raises(TypeError, match="callback"):
        breaker.add_listener(42)


def test_stats_hold_the_documented_keys_and_invariant(clock: FakeClock) -> None:
    breaker = make(clock, excluded_exceptions=Excluded)
    breaker.call(lambda: None)
    with pytest.raises(Boom):
        breaker.call(fail)
    with pytest.raises(Excluded):
        breaker.call(fail, Excluded())
    stats = breaker.get_stats()
    for key in (
        "name",
        "state",
        "failure_count",
        "success_count",
        "time_until_reset",
        "calls",
        "successes",
        "failures",
        "rejections",
        "ignored",
        "opened",
    ):
        assert key in stats
    assert stats["calls"] == stats["successes"] + stats["failures"] + stats["ignored"] == 3
    assert stats["name"] == "svc"
    assert stats["state"] == "closed"


def test_real_clock_is_the_default() -> None:
    breaker = hardy.CircuitBreaker("real", failure_threshold=1, reset_timeout=0.05)
    with pytest.raises(Boom):
        breaker.call(fail)
    assert 0.0 < breaker.get_time_until_reset() <= 0.05
    assert breaker.is_open


def test_a_clock_that_raises_propagates(clock: FakeClock) -> None:
    readings = iter([1.0, 1.0])  # two good readings, taken at construction

    def breaking_clock() -> float:
        for reading in readings:
            return reading
        raise OSError("clock")

    breaker = hardy.CircuitBreaker("c", failure_threshold=1, clock=breaking_clock)
    with pytest.raises(OSError, match="clock") as info:
        breaker.call(fail)
    assert isinstance(info.value.__context__, Boom)


def test_a_clock_that_raises_at_construction_propagates() -> None:
    def broken_clock() -> float:
        raise OSError("no clock")

    with pytest.raises(OSError, match="no clock"):
        hardy.CircuitBreaker("c", clock=broken_clock)


# -- ways of using it ----------------------------------------------------------


def test_decorator_keeps_metadata_and_exceptions(clock: FakeClock) -> None:
    breaker = make(clock)

    def original(a: int, b: int = 2, *, c: str = "x") -> str:
        """Docstring."""
        if a < 0:
            raise ValueError(f"negative {a}")
        return f"{a}{b}{c}"

    protected = breaker(original)
    assert protected(1) == "12x"
    assert protected(1, 3, c="y") == "13y"
    assert protected.__name__ == "original"
    assert protected.__qualname__ == original.__qualname__
    assert protected.__doc__ == "Docstring."
    assert protected.__module__ == __name__
    assert protected.__wrapped__ is original
    import inspect

    assert inspect.signature(protected) == inspect.signature(original)
    with pytest.raises(ValueError, match="negative -1") as info:
        protected(-1)
    # The original frame is in the traceback: nothing was re-raised from a copy.
    assert info.traceback[-1].name == "original"


def test_methods_static_and_class_methods(clock: FakeClock) -> None:
    breaker = make(clock)

    class Service:
        factor = 10

        def __init__(self) -> None:
            self.calls = 0

        @breaker
        def method(self, x: int) -> int:
            self.calls += 1
            return x * self.factor

        @staticmethod
        @breaker
        def static(x: int) -> int:
            return x + 1

        @classmethod
        @breaker
        def klass(cls, x: int) -> int:
            return x * cls.factor

    service = Service()
    assert service.method(2) == 20
    assert service.calls == 1
    assert Service.method(service, 3) == 30
    assert Service.static(1) == 2
    assert service.static(1) == 2
    assert Service.klass(2) == 20
    assert breaker.get_stats()["successes"] == 5


def test_partials_and_callable_objects(clock: FakeClock) -> None:
    import functools

    breaker = make(clock)

    class Adder:
        def __call__(self, a: int, b: int) -> int:
            return a + b

    assert breaker(functools.partial(pow, 2))(10) == 1024
    assert breaker(Adder())(1, 2) == 3


def test_fallback_on_rejection(clock: FakeClock, core: Any) -> None:
    breaker = make(clock, failure_threshold=1)
    protected = core.protect(breaker, lambda x, y=1: x * y, lambda x, y=1: ("fallback", x, y))
    assert protected(2, y=3) == 6
    breaker.record_failure(Boom())
    assert protected(2, y=3) == ("fallback", 2, 3)
    assert breaker.get_stats()["rejections"] == 1


def test_with_block(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=1)
    with breaker:
        pass
    with pytest.raises(Boom), breaker:
        fail()
    with pytest.raises(CircuitOpenError), breaker:
        raise AssertionError("the block must not run")
    stats = breaker.get_stats()
    assert (stats["successes"], stats["failures"], stats["rejections"]) == (1, 1, 1)


def test_exit_without_enter_is_an_error(clock: FakeClock) -> None:
    with pytest.raises(RuntimeError, match="__enter__"):
        make(clock).__exit__(None, None, None)


def test_repr_names_breaker_and_state(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=1)
    assert repr(breaker) == "<CircuitBreaker 'svc' closed>"
    breaker.record_failure(Boom())
    assert repr(breaker) == "<CircuitBreaker 'svc' open>"


# -- async ---------------------------------------------------------------------


def test_async_function_stays_a_coroutine_function(clock: FakeClock) -> None:
    import inspect

    breaker = make(clock)

    async def fetch(x: int) -> int:
        """Fetch."""
        await asyncio.sleep(0)
        return x * 2

    protected = breaker(fetch)
    assert inspect.iscoroutinefunction(protected)
    assert protected.__name__ == "fetch"
    assert protected.__doc__ == "Fetch."
    assert inspect.signature(protected) == inspect.signature(fetch)
    assert asyncio.run(protected(4)) == 8

    async def run_as_task() -> int:
        return await asyncio.create_task(protected(5))

    assert asyncio.run(run_as_task()) == 10
    assert breaker.get_stats()["successes"] == 2


def test_async_failures_rejections_and_fallback(clock: FakeClock, core: Any) -> None:
    breaker = make(clock, failure_threshold=2)

    async def flaky(x: int) -> int:
        if x < 0:
            raise Boom("async boom")
        return x

    async def async_fallback(x: int) -> str:
        return f"fallback {x}"

    protected = breaker(flaky)
    with_fallback = core.protect(breaker, flaky, async_fallback)
    with_sync_fallback = core.protect(breaker, flaky, lambda x: f"sync {x}")

    async def scenario() -> None:
        for _ in range(2):
            with pytest.raises(Boom, match="async boom"):
                await protected(-1)
        with pytest.raises(CircuitOpenError):
            await protected(1)
        assert await with_fallback(3) == "fallback 3"
        assert await with_sync_fallback(4) == "sync 4"

    asyncio.run(scenario())
    stats = breaker.get_stats()
    assert (stats["failures"], stats["rejections"], stats["state"]) == (2, 3, "open")


def test_async_admission_happens_when_awaited(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=1)

    async def work() -> str:
        return "done"

    protected = breaker(work)
    pending = protected()  # created while closed
    breaker.record_failure(Boom())

    async def scenario() -> None:
        with pytest.raises(CircuitOpenError):
            await pending

    asyncio.run(scenario())


def test_async_call_with_wrong_arguments_fails_at_await_and_counts(clock: FakeClock) -> None:
    breaker = make(clock)

    async def one(x: int) -> int:
        return x

    protected = breaker(one)

    async def scenario() -> None:
        awaitable = protected(1, 2, 3)
        with pytest.raises(TypeError):
            await awaitable

    asyncio.run(scenario())
    assert breaker.get_stats()["failures"] == 1


def test_cancelled_trial_gives_its_slot_back(clock: FakeClock) -> None:
    breaker = make(clock, half_open_max_calls=1)
    trip(breaker)
    clock.advance(10.0)

    async def slow() -> None:
        await asyncio.sleep(10)

    protected = breaker(slow)
    calls_before = breaker.get_stats()["calls"]

    async def scenario() -> None:
        task = asyncio.ensure_future(protected())
        await asyncio.sleep(0)
        assert breaker.get_stats()["half_open_calls"] == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert breaker.get_stats()["half_open_calls"] == 0
    assert breaker.get_stats()["calls"] == calls_before  # a cancelled call is not an outcome


def test_abandoned_trial_gives_its_slot_back(clock: FakeClock) -> None:
    import gc

    breaker = make(clock, half_open_max_calls=1)
    trip(breaker)
    clock.advance(10.0)

    class Suspend:
        def __await__(self) -> Any:
            yield "suspended"

    async def slow() -> None:
        await Suspend()

    awaitable = breaker(slow)()
    assert awaitable.send(None) == "suspended"
    assert breaker.get_stats()["half_open_calls"] == 1
    del awaitable
    gc.collect()
    assert breaker.get_stats()["half_open_calls"] == 0


def test_call_and_async_with_on_coroutines(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=1)

    async def value() -> int:
        return 3

    async def scenario() -> None:
        assert await breaker.call(value) == 3
        async with breaker:
            pass
        with pytest.raises(Boom):
            async with breaker:
                raise Boom()
        with pytest.raises(CircuitOpenError):
            async with breaker:
                raise AssertionError("the block must not run")

    asyncio.run(scenario())
    stats = breaker.get_stats()
    assert (stats["successes"], stats["failures"], stats["rejections"]) == (2, 1, 1)


def test_async_callable_object_and_partial(clock: FakeClock) -> None:
    import functools
    import inspect

    breaker = make(clock)

    class Client:
        async def __call__(self, x: int) -> int:
            return x + 1

    async def add(a: int, b: int) -> int:
        return a + b

    for target, expected in ((Client(), 2), (functools.partial(add, 1), 2)):
        protected = breaker(target)
        assert inspect.iscoroutinefunction(protected)
        assert asyncio.run(protected(1)) == expected


def test_async_method(clock: FakeClock) -> None:
    breaker = make(clock)

    class Repo:
        @breaker
        async def get(self, key: str) -> str:
            return key.upper()

    assert asyncio.run(Repo().get("k")) == "K"


# -- validation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"name": 3}, TypeError, "name must be a str, got 3"),
        ({"name": ""}, ValueError, "name must not be empty"),
        ({"failure_threshold": 0}, ValueError, "failure_threshold must be between 1 and .*got 0"),
        ({"failure_threshold": 2.5}, TypeError, "failure_threshold must be an int, got 2.5"),
        ({"failure_threshold": True}, TypeError, "failure_threshold must be an int, got True"),
        ({"failure_threshold": 2**31}, ValueError, "failure_threshold"),
        ({"reset_timeout": -1}, ValueError, "reset_timeout must be a finite number >= 0, got -1"),
        ({"reset_timeout": float("nan")}, ValueError, "reset_timeout"),
        ({"reset_timeout": float("inf")}, ValueError, "reset_timeout"),
        ({"reset_timeout": "10"}, TypeError, "reset_timeout must be a number of seconds, got '10'"),
        ({"half_open_max_calls": 0}, ValueError, "half_open_max_calls must be between 1"),
        ({"excluded_exceptions": "ValueError"}, TypeError, "excluded_exceptions"),
        ({"excluded_exceptions": (ValueError, 3)}, TypeError, "excluded_exceptions must hold exception classes"),
        ({"excluded_exceptions": int}, TypeError, "excluded_exceptions"),
        ({"clock": 5}, TypeError, "clock must be callable, got 5"),
    ],
)
def test_bad_arguments_are_rejected_with_their_name(kwargs: dict[str, Any], error: type, match: str) -> None:
    arguments: dict[str, Any] = {"name": "svc"}
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        hardy.CircuitBreaker(**arguments)


def test_decorating_a_non_callable_is_rejected(clock: FakeClock) -> None:
    with pytest.raises(TypeError, match="func must be callable, got 3"):
        make(clock)(3)


def test_many_concurrent_and_interleaved_async_calls(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=1000)

    async def echo(x: int) -> int:
        for _ in range(x % 3):
            await asyncio.sleep(0)
        if x % 7 == 0:
            raise Boom(x)
        return x

    protected = breaker(echo)

    async def scenario() -> None:
        results = await asyncio.gather(*(protected(x) for x in range(1, 101)), return_exceptions=True)
        for x, result in zip(range(1, 101), results, strict=False):
            if x % 7 == 0:
                assert isinstance(result, Boom)
                assert result.args == (x,)
            else:
                assert result == x
        # Awaitables held by the caller and awaited out of order.
        first, second = protected(1), protected(2)
        assert await second == 2
        assert await first == 1
        for x in range(1, 50):  # one after another
            if x % 7:
                assert await protected(x) == x

    asyncio.run(scenario())
    stats = breaker.get_stats()
    assert stats["failures"] == 14
    assert stats["successes"] == 86 + 2 + 42


def test_an_awaitable_cannot_be_awaited_twice(clock: FakeClock) -> None:
    breaker = make(clock)

    async def one() -> int:
        return 1

    protected = breaker(one)

    async def scenario() -> None:
        awaitable = protected()
        assert await awaitable == 1
        with pytest.raises(RuntimeError, match="cannot reuse already awaited coroutine"):
            await awaitable

    asyncio.run(scenario())


def test_unawaited_call_of_an_async_trial_gives_its_slot_back(clock: FakeClock) -> None:
    import gc
    import warnings

    breaker = make(clock, half_open_max_calls=1)
    trip(breaker)
    clock.advance(10.0)

    async def work() -> int:
        return 1

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "never awaited": the point of the test
        pending = breaker.call(work)
        assert breaker.get_stats()["half_open_calls"] == 1
        del pending
        gc.collect()
    assert breaker.get_stats()["half_open_calls"] == 0
    assert breaker.call(lambda: "trial") == "trial"


def test_half_open_trial_limit_holds_across_tasks(clock: FakeClock) -> None:
    breaker = make(clock, half_open_max_calls=3)
    trip(breaker)
    clock.advance(10.0)
    inside = 0
    most_inside = 0

    async def trial() -> str:
        nonlocal inside, most_inside
        inside += 1
        most_inside = max(most_inside, inside)
        await asyncio.sleep(0.01)
        inside -= 1
        return "ok"

    protected = breaker(trial)

    async def scenario() -> list[Any]:
        return await asyncio.gather(*(protected() for _ in range(20)), return_exceptions=True)

    results = asyncio.run(scenario())
    assert results.count("ok") == 3
    assert all(isinstance(r, CircuitOpenError) for r in results if r != "ok")
    assert most_inside == 3
    assert breaker.state is CircuitState.CLOSED


def test_protect_checks_its_arguments_in_both_cores(clock: FakeClock, core: Any) -> None:
    with pytest.raises(TypeError, match="breaker must be a CircuitBreaker, got 'nope'"):
        core.protect("nope", lambda: None)
    with pytest.raises(TypeError, match="fallback must be callable, got 3"):
        core.protect(make(clock), lambda: None, 3)
