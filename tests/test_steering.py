"""Steering and recovery: force_open/disable, success_threshold, half_open_max_wait,
open-state backoff and CircuitOpenError.last_failure, on both cores."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

import hardy
from hardy import CircuitOpenError, CircuitState

from .conftest import FakeClock


class Boom(Exception):
    pass


def fail(exc: BaseException | None = None) -> Any:
    raise exc if exc is not None else Boom("boom")


def make(clock: FakeClock, **kwargs: Any) -> Any:
    settings: dict[str, Any] = {"failure_threshold": 2, "reset_timeout": 10.0, "half_open_max_calls": 2}
    settings.update(kwargs)
    return hardy.CircuitBreaker("svc", clock=clock, **settings)


def listen(breaker: Any) -> list[tuple[CircuitState, CircuitState]]:
    events: list[tuple[CircuitState, CircuitState]] = []
    breaker.add_listener(lambda b, old, new: events.append((old, new)))
    return events


def trip(breaker: Any, exc: BaseException | None = None) -> None:
    for _ in range(breaker.failure_threshold):
        with pytest.raises(Exception):  # noqa: B017, PT011 - whatever was asked for
            breaker.call(fail, exc)


# -- force_open and disable -----------------------------------------------------------------


def test_force_open_rejects_everything_until_reset(clock: FakeClock) -> None:
    breaker = hardy.CircuitBreaker("svc", clock=clock)
    events = listen(breaker)
    breaker.force_open()
    assert breaker.state is CircuitState.FORCED_OPEN
    assert breaker.is_open
    assert not breaker.is_closed
    clock.advance(10_000)
    with pytest.raises(CircuitOpenError) as info:
        breaker(lambda: 1)()
    assert info.value.reset_time == 0.0
    assert info.value.last_failure is None
    assert breaker.get_time_until_reset() == 0.0
    assert breaker.get_stats()["rejections"] == 1
    assert breaker.get_stats()["state"] == "forced_open"
    breaker.reset()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.call(lambda: 2) == 2
    assert events == [(CircuitState.CLOSED, CircuitState.FORCED_OPEN), (CircuitState.FORCED_OPEN, CircuitState.CLOSED)]


def test_disable_admits_everything_and_records_nothing(clock: FakeClock) -> None:
    breaker = hardy.CircuitBreaker("svc", failure_threshold=1, clock=clock)
    events = listen(breaker)
    breaker.disable()
    before = breaker.get_stats()
    for _ in range(5):
        with pytest.raises(Boom):
            breaker(fail)()
    assert breaker(lambda: "ok")() == "ok"
    assert breaker.call(lambda: "ok") == "ok"
    breaker.record_failure(Boom())
    assert breaker.state is CircuitState.DISABLED
    assert breaker.get_stats() == {**before}
    breaker.reset()
    assert events == [(CircuitState.CLOSED, CircuitState.DISABLED), (CircuitState.DISABLED, CircuitState.CLOSED)]
    with pytest.raises(Boom):
        breaker(fail)()
    assert breaker.state is CircuitState.OPEN


def test_manual_states_read_no_clock(clock: FakeClock) -> None:
    broken = {"now": False}

    def flaky_clock() -> float:
        if broken["now"]:
            raise OSError("no clock")
        return clock()

    for steer in ("force_open", "disable"):
        breaker = hardy.CircuitBreaker(f"svc-{steer}", clock=flaky_clock)
        getattr(breaker, steer)()
        broken["now"] = True
        try:
            if steer == "disable":
                assert breaker(lambda: 1)() == 1
            else:
                with pytest.raises(CircuitOpenError):
                    breaker(lambda: 1)()
        finally:
            broken["now"] = False


def test_calls_running_when_forced_open_cannot_move_it(clock: FakeClock) -> None:
    breaker = make(clock)
    breaker.__enter__()
    breaker.force_open()
    breaker.__exit__(Boom, Boom(), None)
    assert breaker.state is CircuitState.FORCED_OPEN
    assert breaker.get_stats()["failures"] == 1


def test_steering_from_open_and_half_open(clock: FakeClock) -> None:
    breaker = make(clock)
    trip(breaker)
    breaker.disable()
    assert breaker.state is CircuitState.DISABLED
    assert breaker.call(lambda: 1) == 1
    breaker.force_open()
    assert breaker.state is CircuitState.FORCED_OPEN
    breaker.reset()
    assert breaker.state is CircuitState.CLOSED


# -- success_threshold ----------------------------------------------------------------------


def test_success_threshold_closes_after_that_many_trial_successes(clock: FakeClock) -> None:
    breaker = make(clock, half_open_max_calls=3, success_threshold=1)
    assert breaker.success_threshold == 1
    trip(breaker)
    clock.advance(10)
    assert breaker.call(lambda: 1) == 1
    assert breaker.state is CircuitState.CLOSED


def test_success_threshold_defaults_to_half_open_max_calls(clock: FakeClock) -> None:
    breaker = make(clock, half_open_max_calls=3)
    assert breaker.success_threshold == 3
    trip(breaker)
    clock.advance(10)
    for _ in range(2):
        breaker.call(lambda: 1)
    assert breaker.state is CircuitState.HALF_OPEN
    breaker.call(lambda: 1)
    assert breaker.state is CircuitState.CLOSED


# -- half_open_max_wait ---------------------------------------------------------------------


def test_a_hanging_trial_frees_its_slot_after_half_open_max_wait(clock: FakeClock) -> None:
    breaker = make(clock, half_open_max_calls=1, half_open_max_wait=5.0)
    events = listen(breaker)
    trip(breaker)
    clock.advance(10)
    breaker.__enter__()  # a trial that hangs
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(lambda: 1)
    assert info.value.reset_time == 0.0  # its slot is taken
    clock.advance(5)
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(lambda: 1)
    assert breaker.state is CircuitState.OPEN  # the overdue trial counted as a failed period
    assert info.value.reset_time == 10.0
    assert events[-2:] == [
        (CircuitState.OPEN, CircuitState.HALF_OPEN),
        (CircuitState.HALF_OPEN, CircuitState.OPEN),
    ]
    breaker.__exit__(None, None, None)  # the late trial's success is stale
    assert breaker.state is CircuitState.OPEN
    clock.advance(10)
    assert breaker.call(lambda: 1) == 1
    assert breaker.state is CircuitState.CLOSED


# -- open-state backoff ---------------------------------------------------------------------


def test_each_failed_half_open_period_waits_longer_up_to_the_cap(clock: FakeClock) -> None:
    breaker = make(clock, half_open_max_calls=1, reset_backoff=2.0, max_reset_timeout=30.0)
    assert (breaker.reset_backoff, breaker.max_reset_timeout) == (2.0, 30.0)
    trip(breaker)
    waits = []
    for _ in range(4):
        waits.append(breaker.get_time_until_reset())
        clock.advance(waits[-1])
        with pytest.raises(Boom):
            breaker.call(fail)
    assert waits == [10.0, 20.0, 30.0, 30.0]
    assert breaker.reset_timeout == 10.0
    clock.advance(30)
    breaker.call(lambda: 1)
    assert breaker.state is CircuitState.CLOSED
    trip(breaker)
    assert breaker.get_time_until_reset() == 10.0  # closing forgot the backoff


def test_reset_forgets_the_backoff(clock: FakeClock) -> None:
    breaker = make(clock, half_open_max_calls=1, reset_backoff=3.0)
    assert breaker.max_reset_timeout is None
    trip(breaker)
    clock.advance(10)
    with pytest.raises(Boom):
        breaker.call(fail)
    assert breaker.get_time_until_reset() == 30.0
    breaker.reset()
    trip(breaker)
    assert breaker.get_time_until_reset() == 10.0


# -- last_failure ---------------------------------------------------------------------------


def test_circuit_open_error_carries_the_exception_that_opened_the_circuit(clock: FakeClock) -> None:
    breaker = make(clock, half_open_max_calls=1)
    assert breaker.last_failure is None
    first, second = Boom("first"), Boom("second")
    breaker.call(lambda: 1)
    with pytest.raises(Boom):
        breaker.call(fail, first)
    with pytest.raises(Boom):
        breaker.call(fail, second)
    assert breaker.last_failure is second
    with pytest.raises(CircuitOpenError) as info:
        breaker(lambda: 1)()
    assert info.value.last_failure is second
    assert info.value.args[:2] == ("svc", 10.0)
    copy = pickle.loads(pickle.dumps(info.value))
    assert (copy.name, copy.reset_time, type(copy.last_failure)) == ("svc", 10.0, Boom)
    clock.advance(10)
    trial = Boom("trial")
    with pytest.raises(Boom):
        breaker.call(fail, trial)
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(lambda: 1)
    assert info.value.last_failure is trial
    breaker.force_open()
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(lambda: 1)
    assert info.value.last_failure is None


def test_a_result_that_opens_the_circuit_leaves_no_last_failure(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=1, failure_on_result=lambda v: v == "bad")
    assert breaker.call(lambda: "bad") == "bad"
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(lambda: 1)
    assert info.value.last_failure is None


def test_circuit_open_error_is_built_with_or_without_a_last_failure() -> None:
    assert CircuitOpenError("x", 1.0).args == ("x", 1.0)
    assert CircuitOpenError("x", 1.0).last_failure is None
    cause = ValueError("cause")
    assert CircuitOpenError("x", 1.0, cause).last_failure is cause
    assert "open" in str(CircuitOpenError("x", 1.0, cause))


# -- validation and the registry -----------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"success_threshold": 4, "half_open_max_calls": 3}, ValueError, "success_threshold must be <="),
        ({"success_threshold": 0}, ValueError, "success_threshold must be between"),
        ({"success_threshold": 1.5}, TypeError, "success_threshold must be an int"),
        ({"half_open_max_wait": 0}, ValueError, "half_open_max_wait must be a finite number > 0"),
        ({"half_open_max_wait": "5"}, TypeError, "half_open_max_wait must be"),
        ({"reset_backoff": 0.5}, ValueError, "reset_backoff must be >= 1"),
        ({"reset_backoff": float("inf")}, ValueError, "reset_backoff must be finite"),
        ({"max_reset_timeout": 5.0, "reset_timeout": 10.0}, ValueError, "max_reset_timeout must be >= reset_timeout"),
    ],
)
def test_bad_recovery_settings_are_refused(clock: FakeClock, kwargs: dict[str, Any], error: type, text: str) -> None:
    with pytest.raises(error, match=text):
        make(clock, **kwargs)
    with pytest.raises(error, match=text):
        hardy.circuit_breaker("named", **kwargs)


def test_plain_breakers_read_the_defaults(clock: FakeClock) -> None:
    breaker = hardy.CircuitBreaker("plain", half_open_max_calls=2, clock=clock)
    assert (breaker.success_threshold, breaker.half_open_max_wait, breaker.reset_backoff) == (2, None, 1.0)
    assert breaker.max_reset_timeout is None
    assert breaker.last_failure is None


def test_the_registry_compares_the_recovery_settings() -> None:
    first = hardy.circuit_breaker("rec", reset_backoff=2.0, max_reset_timeout=120.0)(lambda: 1)
    assert hardy.circuit_breaker("rec", reset_backoff=2.0, max_reset_timeout=120.0)(lambda: 2).breaker is first.breaker
    with pytest.raises(ValueError, match="other settings"):
        hardy.circuit_breaker("rec")(lambda: 3)
    tuned = hardy.circuit_breaker("tuned", success_threshold=1, half_open_max_wait=3.0)(lambda: 1)
    assert (tuned.breaker.success_threshold, tuned.breaker.half_open_max_wait) == (1, 3.0)
