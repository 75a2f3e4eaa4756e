"""Nothing a caller does crashes the compiled core, wedges a breaker, or tells the cores apart.

Every test runs on both cores (the fixture runs it twice); probes that could
crash the interpreter run in a subprocess (``tests/probes.py``), so that a
crash fails the test instead of killing the run.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import importlib
import math
import pickle
import sys
import weakref
from collections.abc import Generator
from types import ModuleType
from typing import Any

import pytest

import hardy

from .conftest import FakeClock
from .probes import run_python


class Boom(Exception):
    pass


def fail() -> None:
    raise Boom("down")


def open_breaker(clock: FakeClock, **settings: Any) -> hardy.CircuitBreaker:
    breaker = hardy.CircuitBreaker("b", failure_threshold=1, reset_timeout=10.0, clock=clock, **settings)
    with pytest.raises(Boom):
        breaker.call(fail)
    return breaker


# -- crashes: awaitables driven by hand -------------------------------------------------------


@pytest.mark.parametrize("method", ["close()", "throw(ValueError)", "send(None)"])
def test_driving_an_awaitable_from_inside_its_own_coroutine_is_refused(core: ModuleType, method: str) -> None:
    result = run_python(
        core,
        f"""
        import asyncio

        breaker = hardy.CircuitBreaker("b")
        holder = {{}}

        @breaker
        async def call():
            try:
                holder["aw"].{method}
            except ValueError as exc:
                return f"refused: {{exc}}"
            return "not refused"

        async def main():
            holder["aw"] = call()
            return await holder["aw"]

        print(asyncio.run(main()))
        stats = breaker.get_stats()
        print(stats["successes"], stats["failures"])
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["refused: coroutine already executing", "1 0"]


def test_internal_objects_cannot_be_made_empty(core: ModuleType) -> None:
    result = run_python(
        core,
        """
        import asyncio

        breaker = hardy.CircuitBreaker("b")

        @breaker
        async def call():
            return 1

        def plain(x):
            return x

        made = {
            "awaitable": call(),
            "protected": breaker(plain),
            "retrying": hardy.retry(plain),
            "chain": hardy.with_fallback(plain, [plain]),
            "timed": hardy.timeout(1.0)(plain),
        }
        for name, obj in made.items():
            try:
                type(obj)()
                print(name, "made")
            except TypeError:
                print(name, "refused")
        made["awaitable"].close()
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "awaitable", "refused", "protected", "refused", "retrying", "refused", "chain", "refused", "timed", "refused",
    ]  # fmt: skip


@pytest.mark.c_extension
def test_no_internal_type_of_the_compiled_core_can_be_instantiated(core: ModuleType) -> None:
    # The twin has no internal types: its run probes the compiled module too.
    result = run_python(
        core,
        """
        from hardy import _core_c

        # The policies' states (hardy/policies) hold only numbers and have no
        # methods: an empty one is as harmless as the twin's plain classes.
        public = {
            "CircuitBreaker", "RetryConfig", "BreakerState", "RetryPolicy", "Bulkhead", "BulkheadState",
            "RateLimiter", "RateLimiterState",
        }
        for name in sorted(vars(_core_c)):
            kind = getattr(_core_c, name)
            if isinstance(kind, type) and kind.__module__ == "hardy._core_c" and name not in public:
                for make in (lambda: kind(), lambda: kind.__new__(kind), lambda: object.__new__(kind)):
                    try:
                        make()
                        print(name, "made")
                    except TypeError:
                        pass
        print("done")
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["done"]


# -- no wedged breakers ---------------------------------------------------------------------


def test_an_interrupt_raised_by_a_listener_on_half_open_does_not_keep_the_trial_slot(clock: FakeClock) -> None:
    breaker = open_breaker(clock, half_open_max_calls=1)
    interrupted = []

    def listener(b: Any, old: hardy.CircuitState, new: hardy.CircuitState) -> None:
        if new is hardy.CircuitState.HALF_OPEN and not interrupted:
            interrupted.append(True)
            raise KeyboardInterrupt

    breaker.add_listener(listener)
    clock.advance(10.0)
    with pytest.raises(KeyboardInterrupt):
        breaker.call(lambda: "never runs")
    assert breaker.get_stats()["half_open_calls"] == 0
    assert breaker.call(lambda: "a trial") == "a trial"  # the slot came back
    assert breaker.state is hardy.CircuitState.CLOSED


class SwitchableClock:
    """A clock the test moves, and can make fail or return a bad reading."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.fail_next = False
        self.bad: object = None
        self.use_bad = False

    def __call__(self) -> object:
        if self.fail_next:
            self.fail_next = False
            raise OSError("clock unavailable")
        return self.bad if self.use_bad else self.now


def switchable_open_breaker(clock: SwitchableClock, **settings: Any) -> hardy.CircuitBreaker:
    breaker = hardy.CircuitBreaker("b", failure_threshold=1, reset_timeout=10.0, clock=clock, **settings)
    with pytest.raises(Boom):
        breaker.call(fail)
    return breaker


def test_a_clock_that_fails_while_a_trial_fails_gives_the_slot_back() -> None:
    clock = SwitchableClock()
    breaker = switchable_open_breaker(clock, half_open_max_calls=1)
    clock.now += 10.0

    def failing_trial() -> None:
        clock.fail_next = True  # the reading that would reopen the breaker fails
        raise Boom("trial failed")

    with pytest.raises(OSError, match="clock unavailable") as info:
        breaker.call(failing_trial)
    assert isinstance(info.value.__context__, Boom)
    assert breaker.get_stats()["half_open_calls"] == 0
    assert breaker.call(lambda: "the next trial") == "the next trial"
    assert breaker.state is hardy.CircuitState.CLOSED


@pytest.mark.parametrize("reading", [math.nan, math.inf, -math.inf, "12", None, True])
def test_a_clock_that_goes_bad_in_use_is_a_clear_error_not_a_half_state(reading: object) -> None:
    clock = SwitchableClock()
    breaker = switchable_open_breaker(clock)
    clock.bad = reading
    clock.use_bad = True  # it went bad after construction, where it is checked too
    error = TypeError if reading is None or isinstance(reading, (str, bool)) else ValueError
    with pytest.raises(error, match=r"clock must return a (finite )?number of seconds"):
        breaker.call(lambda: "admitted?")
    with pytest.raises(error, match=r"clock must return a (finite )?number of seconds"):
        breaker.state  # noqa: B018 - reading it is the point
    clock.use_bad = False
    assert breaker.state is hardy.CircuitState.OPEN
    assert breaker.get_stats()["calls"] == 1


# -- the twins agree ------------------------------------------------------------------------


def test_decorated_module_level_functions_pickle_and_copy_by_reference(core: ModuleType, tmp_path: Any) -> None:
    # A module of its own per core, so that its wrappers are made by the core under test.
    name = f"pickled_{core.IMPLEMENTATION}"
    (tmp_path / f"{name}.py").write_text(
        "import hardy\n"
        "@hardy.CircuitBreaker('pickled-module-level')\n"
        "def protected(x):\n"
        "    return x + 1\n"
        "@hardy.retry(max_attempts=2, initial_delay=0.0)\n"
        "def retried(x):\n"
        "    return x * 2\n"
        "@hardy.timeout(5.0)\n"
        "def timed(x):\n"
        "    return x - 1\n"
        "@hardy.fallback(lambda x: 0)\n"
        "def chained(x):\n"
        "    return x\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module(name)
        for attribute in ("protected", "retried", "timed", "chained"):
            wrapped = getattr(module, attribute)
            assert pickle.loads(pickle.dumps(wrapped)) is wrapped
            assert copy.copy(wrapped) is wrapped
            assert copy.deepcopy(wrapped) is wrapped
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)


def test_decorated_functions_run_in_a_process_pool(core: ModuleType, tmp_path: Any) -> None:
    (tmp_path / "pooled.py").write_text(
        "import hardy\n"
        "@hardy.circuit_breaker\n"
        "def double(x):\n"
        "    return 2 * x\n"
        "@hardy.retry(max_attempts=2, initial_delay=0.0)\n"
        "def triple(x):\n"
        "    return 3 * x\n"
    )
    result = run_python(
        core,
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        import pooled

        if __name__ == "__main__":
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                print(list(pool.map(pooled.double, [1, 2])), list(pool.map(pooled.triple, [1, 2])))
        """,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[2, 4] [3, 6]"


def test_breakers_and_configs_subclass_and_are_weakly_referenced() -> None:
    class Named(hardy.CircuitBreaker):
        pass

    class Tuned(hardy.RetryConfig):
        pass

    breaker = Named("sub", failure_threshold=2)
    config = Tuned(max_attempts=4)
    assert isinstance(breaker, hardy.CircuitBreaker)
    assert repr(breaker) == "<Named 'sub' closed>"
    assert weakref.ref(breaker)() is breaker
    assert weakref.ref(config)() is config
    assert breaker(lambda: "through a subclass")() == "through a subclass"
    assert hardy.retry_with_backoff(lambda: "ok", config=config) == "ok"


def test_retry_configs_copy_and_pickle() -> None:
    config = hardy.RetryConfig(5, 3.0, 0.5, 30.0, hardy.Jitter.EQUAL, (OSError,), retry_on_result=None, deadline=9.0)
    for clone in (copy.copy(config), copy.deepcopy(config), pickle.loads(pickle.dumps(config))):
        assert type(clone) is type(config)
        assert repr(clone) == repr(config)
        assert (clone.retryable_exceptions, clone.deadline, clone.jitter) == ((OSError,), 9.0, hardy.Jitter.EQUAL)


class _Awaitable:
    def __init__(self, value: object) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, object]:
        yield from asyncio.sleep(0).__await__()
        return self.value


def test_an_async_callable_returning_a_future_or_an_awaitable_is_awaited() -> None:
    breaker = hardy.CircuitBreaker("awaitables")
    returned: list[object] = []

    class MarkedAsync:
        async def __call__(self) -> object:  # what the wrapper sees when it is made
            raise AssertionError("replaced below")

    protected = breaker(MarkedAsync())
    # ...but calling it gives something else to await.
    MarkedAsync.__call__ = lambda self: returned.pop()  # type: ignore[assignment, method-assign]

    async def scenario() -> list[object]:
        future = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(future.set_result, "from a future")
        returned.append(future)
        first = await protected()
        returned.append(_Awaitable("from __await__"))
        second = await protected()
        returned.append(42)
        with pytest.raises(TypeError):
            await protected()  # not awaitable: a failure of the call
        return [first, second]

    assert asyncio.run(scenario()) == ["from a future", "from __await__"]
    stats = breaker.get_stats()
    assert (stats["successes"], stats["failures"]) == (2, 1)


def test_sending_a_value_to_a_fresh_awaitable_counts_nothing(clock: FakeClock) -> None:
    breaker = open_breaker(clock, half_open_max_calls=1)
    clock.advance(10.0)

    @breaker
    async def trial() -> str:
        return "ran"

    awaitable = trial()
    with pytest.raises(TypeError, match="can't send non-None value to a just-started coroutine"):
        awaitable.send(1)
    stats = breaker.get_stats()
    assert (stats["calls"], stats["half_open_calls"], stats["failures"]) == (1, 0, 1)
    assert asyncio.run(_await(awaitable)) == "ran"  # still fresh: it runs as the trial
    assert breaker.state is hardy.CircuitState.CLOSED


async def _await(awaitable: Any) -> Any:
    return await awaitable


def test_an_inner_coroutine_that_ignores_close_fails_the_same_way() -> None:
    breaker = hardy.CircuitBreaker("stubborn")

    ignored: list[bool] = []

    @breaker
    async def stubborn() -> None:
        while True:
            try:
                await asyncio.sleep(0)
            except GeneratorExit:
                if ignored:
                    raise  # the second time (when collected), it closes
                ignored.append(True)

    awaitable = stubborn()
    awaitable.send(None)
    with pytest.raises(RuntimeError, match="ignored GeneratorExit"):
        awaitable.close()
    stats = breaker.get_stats()
    assert (stats["failures"], stats["successes"]) == (1, 0)


@pytest.mark.parametrize("draw", ["0.5", None, True, 1.0, -0.1, math.nan, 2**2000])
def test_a_random_source_that_returns_a_bad_value_fails_alike(draw: object) -> None:
    config = hardy.RetryConfig(initial_delay=1.0, random=lambda: draw)
    error = TypeError if draw is None or isinstance(draw, (str, bool)) else ValueError
    with pytest.raises(error, match=r"random must return a float in \[0, 1\), got "):
        config.get_delay(1)


def test_calling_init_twice_is_refused_alike() -> None:
    breaker = hardy.CircuitBreaker("once")
    config = hardy.RetryConfig()
    with pytest.raises(RuntimeError, match="CircuitBreaker <CircuitBreaker 'once' closed> is already initialised"):
        breaker.__init__("twice")  # type: ignore[misc]
    with pytest.raises(RuntimeError, match=r"RetryConfig RetryConfig\(.*\) is already initialised"):
        config.__init__(max_attempts=9)  # type: ignore[misc]
    assert breaker.name == "once"
    assert config.max_attempts == 3


def test_writing_breaker_on_a_wrapper_changes_the_attribute_only() -> None:
    # As for any function attribute, in both cores: the wrapper keeps the
    # breaker it was made with.
    first = hardy.CircuitBreaker("first")
    other = hardy.CircuitBreaker("other")
    wrapped = first(lambda: "ok")
    wrapped.breaker = other  # type: ignore[misc]
    assert wrapped.breaker is other
    assert wrapped() == "ok"
    assert (first.get_stats()["calls"], other.get_stats()["calls"]) == (1, 0)


def test_removing_an_unknown_listener_says_so_alike() -> None:
    breaker = hardy.CircuitBreaker("listened")

    def listener(*args: object) -> None:
        pass

    with pytest.raises(ValueError, match=r"is not a listener of <CircuitBreaker 'listened' closed>"):
        breaker.remove_listener(listener)
    breaker.add_listener(listener)
    breaker.remove_listener(listener)
    with pytest.raises(ValueError, match="is not a listener of"):
        breaker.remove_listener(listener)


class _Big:
    pass


def test_an_async_result_is_not_kept_alive_after_the_caller_drops_it() -> None:
    breaker = hardy.CircuitBreaker("results")

    @breaker
    async def produce() -> _Big:
        return _Big()

    async def scenario() -> weakref.ref[_Big]:
        result = await produce()
        return weakref.ref(result)

    ref = asyncio.run(scenario())
    gc.collect()
    assert ref() is None


def test_call_with_a_non_callable_is_a_type_error_that_counts_nothing(clock: FakeClock) -> None:
    breaker = open_breaker(clock, half_open_max_calls=1)
    clock.advance(10.0)
    with pytest.raises(TypeError, match="func must be callable, got 42"):
        breaker.call(42)  # type: ignore[arg-type]
    stats = breaker.get_stats()
    assert (stats["calls"], stats["failures"], stats["half_open_calls"]) == (1, 1, 0)


def test_pickling_a_breaker_is_refused_alike() -> None:
    breaker = hardy.CircuitBreaker("local")
    with pytest.raises(TypeError, match="cannot pickle <CircuitBreaker 'local' closed>: a circuit breaker's state"):
        pickle.dumps(breaker)


# -- manual recording follows the effective state (issue 13) -----------------------------------


def test_manual_recording_after_the_reset_timeout_follows_the_half_open_state(clock: FakeClock) -> None:
    breaker = hardy.CircuitBreaker(
        "manual", failure_threshold=1, reset_timeout=10.0, half_open_max_calls=2, clock=clock
    )
    breaker.record_failure(Boom("down"))
    clock.advance(10.0)
    assert breaker.state is hardy.CircuitState.HALF_OPEN
    breaker.record_success()
    assert breaker.state is hardy.CircuitState.HALF_OPEN
    breaker.record_success()
    assert breaker.state is hardy.CircuitState.CLOSED
    breaker.record_failure(Boom("down again"))
    clock.advance(10.0)
    breaker.record_failure(Boom("a failed probe"))  # half-open: opens again, for a full reset timeout
    assert breaker.state is hardy.CircuitState.OPEN
    assert breaker.get_time_until_reset() == 10.0
