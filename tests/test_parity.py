"""The compiled core and the twin behave identically, step by step.

A Hypothesis state machine drives one breaker of each core with the same
random sequence of successes, failures, excluded errors, interruptions, clock
advances, resets, manual records and trial calls held open across steps, and
compares their state, statistics and outcomes after every step.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from hardy import CircuitOpenError, _core

from .conftest import FakeClock


class Failure(Exception):
    pass


class Excluded(Exception):
    pass


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
        self.pairs: list[Any] = []
        self.open_blocks: list[tuple[Any, Any]] = []
        self.events: dict[str, list[Any]] = {"c": [], "py": []}

    @rule(
        threshold=st.integers(1, 4),
        reset_timeout=st.sampled_from([0.0, 0.5, 1.0, 5.0]),
        half_open=st.integers(1, 3),
    )
    @precondition(lambda self: not self.pairs)
    def create(self, threshold: int, reset_timeout: float, half_open: int) -> None:
        for name in ("c", "py"):
            module = _core.load(name)
            breaker = module.CircuitBreaker(
                "parity", threshold, reset_timeout, half_open, (Excluded,), clock=self.clock
            )
            events = self.events[name]
            breaker.add_listener(lambda b, old, new, events=events: events.append((old, new)))
            self.pairs.append(breaker)

    def both(self, action: Any) -> None:
        results = [outcome_of(lambda b=b: action(b)) for b in self.pairs]
        assert results[0] == results[1], results

    @precondition(lambda self: bool(self.pairs))
    @rule(kind=st.sampled_from(["ok", "fail", "excluded", "interrupt"]))
    def call(self, kind: str) -> None:
        def body() -> str:
            if kind == "fail":
                raise Failure()
            if kind == "excluded":
                raise Excluded()
            if kind == "interrupt":
                raise KeyboardInterrupt()
            return "ok"

        self.both(lambda b: b.call(body))

    @precondition(lambda self: bool(self.pairs))
    @rule(kind=st.sampled_from(["ok", "fail", "excluded", "interrupt"]))
    def decorated_call(self, kind: str) -> None:
        def body() -> str:
            if kind != "ok":
                raise {"fail": Failure, "excluded": Excluded, "interrupt": KeyboardInterrupt}[kind]()
            return "ok"

        self.both(lambda b: b(body)())

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
    @rule(index=st.integers(0, 3), kind=st.sampled_from(["ok", "fail", "excluded", "interrupt"]))
    def finish_trial(self, index: int, kind: str) -> None:
        pair = self.open_blocks.pop(index % len(self.open_blocks))
        exc = {"ok": None, "fail": Failure(), "excluded": Excluded(), "interrupt": KeyboardInterrupt()}[kind]
        for b in pair:
            b.__exit__(type(exc) if exc else None, exc, None)

    @precondition(lambda self: bool(self.pairs))
    @rule(seconds=st.sampled_from([0.1, 0.5, 1.0, 2.5, 6.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @precondition(lambda self: bool(self.pairs))
    @rule()
    def reset(self) -> None:
        self.both(lambda b: b.reset())

    @precondition(lambda self: bool(self.pairs))
    @rule(kind=st.sampled_from(["success", "fail", "excluded"]))
    def record(self, kind: str) -> None:
        if kind == "success":
            self.both(lambda b: b.record_success())
        else:
            exc = Failure() if kind == "fail" else Excluded()
            self.both(lambda b: b.record_failure(exc))

    @invariant()
    def same_state_and_stats(self) -> None:
        if not self.pairs:
            return
        c, py = self.pairs
        assert c.state == py.state
        assert c.is_open == py.is_open
        assert c.is_closed == py.is_closed
        assert c.get_stats() == py.get_stats()
        assert c.get_time_until_reset() == py.get_time_until_reset()
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
