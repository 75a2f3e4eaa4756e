"""The compiled core and the twin behave identically, step by step.

A Hypothesis state machine drives one breaker of each core with the same
random sequence of successes, failures, excluded errors, interruptions, clock
advances, resets, manual records and trial calls held open across steps, and
compares their state, statistics and outcomes after every step.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from hardy import CircuitOpenError, CountWindow, Jitter, TimeWindow, _core

from .conftest import FakeClock


class Failure(Exception):
    pass


class Excluded(Exception):
    pass


class Answered(Exception):
    """An error the dependency answered with: a failure only when flagged as a 5xx."""


def server_side(exc: BaseException) -> bool:
    return isinstance(exc, Answered) and exc.args == ("5xx",)


KINDS = ["ok", "fail", "excluded", "interrupt", "answered", "answered-5xx", "bad", "slow", "slow-fail"]

# Windows (issue 17): none, or a count or time window, with or without slow calls.
windows = st.one_of(
    st.none(),
    st.builds(
        lambda size, rate, minimum, slow, slow_rate: CountWindow(
            size=size,
            failure_rate=rate,
            minimum_calls=min(minimum, size),
            slow_call_duration=slow,
            slow_call_rate=slow_rate,
        ),
        st.integers(1, 6),
        st.sampled_from([0.3, 0.5, 1.0]),
        st.integers(1, 4),
        st.sampled_from([None, 1.0]),
        st.sampled_from([0.5, 1.0]),
    ),
    st.builds(
        lambda seconds, rate, minimum, slow: TimeWindow(
            seconds=seconds, failure_rate=rate, minimum_calls=minimum, slow_call_duration=slow
        ),
        st.integers(1, 4),
        st.sampled_from([0.3, 0.5, 1.0]),
        st.integers(1, 4),
        st.sampled_from([None, 1.0]),
    ),
)


def body_of(kind: str, clock: FakeClock | None = None) -> Any:
    def body() -> str:
        if kind.startswith("slow") and clock is not None:
            clock.advance(1.5)  # each core's own clock: the call takes 1.5 s
            if kind == "slow-fail":
                raise Failure()
        if kind == "fail":
            raise Failure()
        if kind == "excluded":
            raise Excluded()
        if kind == "interrupt":
            raise KeyboardInterrupt()
        if kind.startswith("answered"):
            raise Answered(*kind.split("-")[1:])
        return kind

    return body


def outcome_of(action: Any) -> tuple[str, Any]:
    try:
        return ("returned", action())
    except CircuitOpenError as exc:
        return ("rejected", round(exc.reset_time, 9))
    except BaseException as exc:
        return ("raised", type(exc).__name__)


class Parity(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.clocks = [self.clock, FakeClock()]  # one per core: a slow call moves its own core's clock
        self.pairs: list[Any] = []
        self.open_blocks: list[tuple[Any, Any]] = []
        self.events: dict[str, list[Any]] = {"c": [], "py": []}

    @rule(
        threshold=st.integers(1, 4),
        reset_timeout=st.sampled_from([0.0, 0.5, 1.0, 5.0]),
        half_open=st.integers(1, 3),
        classified=st.booleans(),
        tuned=st.booleans(),
        counted=st.booleans(),
        window=windows,
    )
    @precondition(lambda self: not self.pairs)
    def create(
        self,
        threshold: int,
        reset_timeout: float,
        half_open: int,
        classified: bool,
        tuned: bool,
        counted: bool,
        window: Any,
    ) -> None:
        outcomes: dict[str, Any] = {"window": window}
        if classified:  # with the window too: classification comes first
            outcomes.update(failure_exceptions=(Failure, server_side), failure_on_result=lambda v: v == "bad")
        if tuned:
            # Recovery: backoff with a cap, overdue trials, and (counted) fewer successes than
            # slots close; without success_threshold a window judges the trials by its rates.
            outcomes.update(reset_backoff=2.0, max_reset_timeout=max(reset_timeout * 3, 1.0), half_open_max_wait=2.0)
            if counted:
                outcomes.update(success_threshold=1 + (half_open - 1) // 2)
        for name, clock in zip(("c", "py"), self.clocks, strict=True):
            module = _core.load(name)
            breaker = module.CircuitBreaker(
                "parity", threshold, reset_timeout, half_open, (Excluded,), clock=clock, **outcomes
            )
            events = self.events[name]
            breaker.add_listener(lambda b, old, new, events=events: events.append((old, new)))
            self.pairs.append(breaker)

    def both(self, action: Any) -> None:
        results = [outcome_of(lambda b=b: action(b)) for b in self.pairs]
        assert results[0] == results[1], results

    @precondition(lambda self: bool(self.pairs))
    @rule(kind=st.sampled_from(KINDS))
    def call(self, kind: str) -> None:
        self.both(lambda b: b.call(body_of(kind, self.clock_of(b))))

    @precondition(lambda self: bool(self.pairs))
    @rule(kind=st.sampled_from(KINDS))
    def decorated_call(self, kind: str) -> None:
        self.both(lambda b: b(body_of(kind, self.clock_of(b)))())

    def clock_of(self, breaker: Any) -> FakeClock:
        return self.clocks[self.pairs.index(breaker)]

    @precondition(lambda self: bool(self.pairs) and len(self.open_blocks) < 4)
    @rule()
    def start_trial(self) -> None:
        entered = []
        for b in self.pairs:
            outcome = outcome_of(b.__enter__)
            entered.append(outcome[0] == "returned")
        assert entered[0] == entered[1]
        if entered[0]:
            self.open_blocks.append((self.pairs[0], self.pairs[1]))

    @precondition(lambda self: bool(self.open_blocks))
    @rule(index=st.integers(0, 3), kind=st.sampled_from(["ok", "fail", "excluded", "interrupt", "answered"]))
    def finish_trial(self, index: int, kind: str) -> None:
        pair = self.open_blocks.pop(index % len(self.open_blocks))
        exc = {
            "ok": None,
            "fail": Failure(),
            "excluded": Excluded(),
            "interrupt": KeyboardInterrupt(),
            "answered": Answered(),
        }[kind]
        for b in pair:
            b.__exit__(type(exc) if exc else None, exc, None)

    @precondition(lambda self: bool(self.pairs))
    @rule(seconds=st.sampled_from([0.1, 0.5, 1.0, 2.5, 6.0]))
    def advance(self, seconds: float) -> None:
        for clock in self.clocks:
            clock.advance(seconds)

    @precondition(lambda self: bool(self.pairs))
    @rule()
    def reset(self) -> None:
        self.both(lambda b: b.reset())

    @precondition(lambda self: bool(self.pairs))
    @rule(steer=st.sampled_from(["force_open", "disable"]))
    def manual_state(self, steer: str) -> None:
        self.both(lambda b: getattr(b, steer)())

    @precondition(lambda self: bool(self.pairs))
    @rule(kind=st.sampled_from(["success", "fail", "excluded", "answered"]))
    def record(self, kind: str) -> None:
        if kind == "success":
            self.both(lambda b: b.record_success())
        else:
            exc = {"fail": Failure(), "excluded": Excluded(), "answered": Answered()}[kind]
            self.both(lambda b: b.record_failure(exc))

    @invariant()
    def same_state_and_stats(self) -> None:
        if not self.pairs:
            return
        c, py = self.pairs
        assert self.clocks[0].now == self.clocks[1].now
        assert c.state == py.state
        assert c.is_open == py.is_open
        assert c.is_closed == py.is_closed
        assert c.get_stats() == py.get_stats()
        assert c.get_time_until_reset() == py.get_time_until_reset()
        assert (c.last_failure is None) == (py.last_failure is None)
        assert self.events["c"] == self.events["py"]
        stats = c.get_stats()
        assert stats["calls"] == stats["successes"] + stats["failures"] + stats["ignored"]
        assert 0 <= stats["half_open_calls"] <= c.half_open_max_calls

    def teardown(self) -> None:
        for pair in self.open_blocks:
            for b in pair:
                b.__exit__(None, None, None)


Parity.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


@pytest.mark.parametrize("core", [pytest.param("c", marks=pytest.mark.c_extension)], indirect=True)
def test_compiled_and_pure_cores_behave_identically(core: Any) -> None:
    # The machine holds one breaker of each core itself; the fixture's
    # parametrisation is pinned so it runs once, and errors if the compiled
    # core is missing.
    Parity.TestCase().runTest()


# -- retry ------------------------------------------------------------------------

retry_configs = st.fixed_dictionaries(
    {
        "max_attempts": st.integers(1, 6),
        "backoff_factor": st.floats(1.0, 5.0),
        "initial_delay": st.floats(0.0, 2.0),
        "extra_delay": st.floats(0.0, 50.0),
        "jitter": st.sampled_from([True, False, *Jitter]),
    }
)


def _both_configs(settings: dict[str, Any], seed: int, **extra: Any) -> list[Any]:
    configs = []
    for name in ("c", "py"):
        module = _core.load(name)
        configs.append(
            module.RetryConfig(
                settings["max_attempts"],
                settings["backoff_factor"],
                settings["initial_delay"],
                settings["initial_delay"] + settings["extra_delay"],
                settings["jitter"],
                random=random.Random(seed).random,
                **extra,
            )
        )
    return configs


@pytest.mark.parametrize("core", [pytest.param("c", marks=pytest.mark.c_extension)], indirect=True)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    settings_=retry_configs,
    seed=st.integers(0, 2**32),
    calls=st.lists(
        st.tuples(st.integers(1, 2**31 - 1) | st.integers(1, 80), st.none() | st.floats(0.0, 100.0)),
        min_size=1,
        max_size=30,
    ),
)
def test_both_cores_give_the_same_delays_for_the_same_seed(
    core: Any, settings_: dict[str, Any], seed: int, calls: list[tuple[int, float | None]]
) -> None:
    c_config, py_config = _both_configs(settings_, seed)
    for attempt, previous in calls:
        c_delay = c_config.get_delay(attempt, previous)
        py_delay = py_config.get_delay(attempt, previous)
        assert c_delay == py_delay, (attempt, previous)
        assert 0.0 <= c_delay <= c_config.max_delay


@pytest.mark.parametrize("core", [pytest.param("c", marks=pytest.mark.c_extension)], indirect=True)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    settings_=retry_configs,
    seed=st.integers(0, 2**32),
    outcomes=st.lists(st.sampled_from(["ok", "none", "flaky", "fatal", "open"]), min_size=1, max_size=8),
    use_result_predicate=st.booleans(),
    deadline=st.none() | st.floats(0.5, 30.0),
    retryable=st.sampled_from(["default", "predicate", "class and predicate"]),
)
def test_both_cores_run_the_same_retry_loop(
    core: Any,
    settings_: dict[str, Any],
    seed: int,
    outcomes: list[str],
    use_result_predicate: bool,
    deadline: float | None,
    retryable: str,
) -> None:
    import hardy

    def is_failure(exc: BaseException) -> bool:
        return isinstance(exc, Failure)

    exceptions: dict[str, Any] = {
        "default": {},
        "predicate": {"retryable_exceptions": (is_failure,)},  # only a predicate matches: the compiled core lost it
        "class and predicate": {"retryable_exceptions": (KeyError, is_failure)},
    }[retryable]
    traces = []
    for config in _both_configs(
        settings_,
        seed,
        retry_on_result=(lambda r: r is None) if use_result_predicate else None,
        deadline=deadline,
        clock=FakeClock(),
        **exceptions,
    ):
        events: list[Any] = []
        remaining = iter(outcomes)

        def func(remaining: Any = remaining, events: Any = events) -> Any:
            kind = next(remaining, "ok")
            events.append(("call", kind))
            if kind == "flaky":
                raise Failure()
            if kind == "fatal":
                raise KeyError("fatal")
            if kind == "open":
                raise CircuitOpenError("dep", 1.0)
            return None if kind == "none" else "value"

        module = _core.load("c" if len(traces) == 0 else "py")
        wrapped = module.retrying(
            config,
            func,
            lambda exc, attempt, events=events: events.append(("on_retry", type(exc).__name__, attempt)),
        )
        with hardy.testing.instant_retries() as sleeps:
            events.append(("outcome", outcome_of(wrapped)))
        traces.append((events, sleeps.delays))
    assert traces[0] == traces[1]
