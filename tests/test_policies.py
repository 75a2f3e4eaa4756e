"""The policies (hardy/policies) are one source: both cores decide through them.

The transitions are exercised through both cores by every other test; these
check that the layer is what the architecture says: the twin imports the
very modules the extension compiles, they run where Cython is not installed,
and a transition only changes the state and says what to do next.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from types import ModuleType

from hardy.policies import breaker as breaker_policy
from hardy.policies import deadlines as deadline_policy
from hardy.policies import retry as retry_policy


def test_both_cores_build_on_the_policy_states(core: ModuleType) -> None:
    names = [kind.__name__ for kind in core.CircuitBreaker.__mro__]
    assert "BreakerState" in names
    assert "RetryPolicy" in [kind.__name__ for kind in core.RetryConfig.__mro__]
    if core.IMPLEMENTATION == "py":
        assert issubclass(core.CircuitBreaker, breaker_policy.BreakerState)
        assert issubclass(core.RetryConfig, retry_policy.RetryPolicy)


def test_the_core_runs_where_cython_is_not_installed(core: ModuleType) -> None:
    # The policies import Cython's pure-mode names when Cython is there and
    # their own shadow of them when it is not (an installed wheel).
    env = dict(os.environ)
    env.pop("HARDY_NO_EXTENSIONS", None)
    if core.IMPLEMENTATION == "py":
        env["HARDY_NO_EXTENSIONS"] = "1"
    source = f"""
        import sys
        sys.modules["cython"] = None  # import cython now raises ModuleNotFoundError
        import hardy
        from hardy.policies import breaker
        assert hardy.IMPLEMENTATION == {core.IMPLEMENTATION!r}
        assert breaker.cython.__name__ == "hardy.policies._shadow", breaker.cython
        clock = [0.0]
        b = hardy.CircuitBreaker("x", failure_threshold=1, reset_timeout=5, half_open_max_calls=1,
                                 clock=lambda: clock[0])
        b.record_failure(RuntimeError())
        assert b.is_open
        clock[0] = 6.0
        assert b.call(lambda: 42) == 42 and b.is_closed
        assert hardy.RetryConfig(jitter=False).get_delay(3) == 4.0
        print("ok")
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ok"]


def test_a_breaker_transition_leaves_its_event_and_reads_no_clock(core: ModuleType) -> None:
    state = breaker_policy.BreakerState()
    breaker_policy.configure_breaker(state, 2, 10.0, 1)
    epoch = breaker_policy.admit(state, 100.0, False)
    assert epoch == 0
    assert breaker_policy.settle_failure(state, epoch, 100.0, False, True) == breaker_policy.DONE
    assert breaker_policy.take_event(state) == 0
    breaker_policy.settle_failure(state, epoch, 101.0, False, True)
    code = breaker_policy.take_event(state)
    assert (breaker_policy.event_old(code), breaker_policy.event_new(code)) == (
        breaker_policy.CLOSED,
        breaker_policy.OPEN,
    )
    assert breaker_policy.admit(state, 105.0, False) == breaker_policy.REJECTED
    assert state._rejections == 1
    assert breaker_policy.time_until_reset(state, 105.0) == 6.0
    # Shared: the policy asks the store instead of deciding.
    assert breaker_policy.admit(state, 111.0, True) == breaker_policy.ASK_STORE
    assert breaker_policy.effective_state(state, 111.0) == breaker_policy.HALF_OPEN
    trial = breaker_policy.admit(state, 111.0, False)
    assert trial == 1
    assert breaker_policy.take_event(state) == breaker_policy.event(breaker_policy.OPEN, breaker_policy.HALF_OPEN)
    assert breaker_policy.admit(state, 111.0, False) == breaker_policy.REJECTED  # one trial at a time
    # An outcome of an older epoch is counted but moves nothing.
    assert breaker_policy.settle_success(state, 0, False, True) == breaker_policy.DONE
    assert state._state == breaker_policy.HALF_OPEN
    assert state._successes == 1
    breaker_policy.settle_success(state, trial, False, True)
    assert state._state == breaker_policy.CLOSED


def test_retry_policy_decisions() -> None:
    policy = retry_policy.RetryPolicy()
    retry_policy.configure_retry(policy, 3, 2.0, 1.0, 5.0, retry_policy.JITTER_FULL, False, True, 10.0)
    assert [retry_policy.base_delay(policy, n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    assert retry_policy.draws(policy)
    assert retry_policy.delay(policy, -1.0, 0.5, 4.0) == 2.0
    assert retry_policy.out_of_attempts(policy, 3)
    assert not retry_policy.out_of_attempts(policy, 2)
    assert retry_policy.out_of_time(policy, 9.0, 1.5)
    assert not retry_policy.out_of_time(policy, 8.0, 1.5)
    huge = retry_policy.RetryPolicy()
    retry_policy.configure_retry(huge, 5000, 10.0, 1.0, 60.0, retry_policy.JITTER_NONE, False, False, 0.0)
    assert retry_policy.base_delay(huge, 4000) == 60.0  # overflows to the cap, as C's pow() does


def test_deadline_policy_decisions() -> None:
    p = deadline_policy
    assert p.on_due(False, p.FREE, False) == p.DELIVER
    assert p.on_due(False, p.HANDLING, False) == p.DELIVER  # a first delivery always happens
    assert p.on_due(True, p.HANDLING, False) == p.HOLD
    assert p.on_due(True, p.UNSAFE, False) == p.WAIT
    assert p.on_due(False, p.FREE, True) == p.LATER  # one exception at a time per thread
    assert p.next_look(p.WAIT, 1.0) == 1.0 + p.DEFER
    assert p.next_look(p.DELIVER, 1.0) == 1.0 + p.REDELIVER
    assert p.due_at(True, 5.0, 7.0) == 7.0
    assert p.due_at(False, 5.0, 7.0) == 5.0
    assert p.late(5.0, 5.0)
    assert not p.late(4.9, 5.0)
    assert p.claims(False, 5.0, 5.0)
    assert p.claims(True, 9.0, 5.0)
    assert not p.claims(False, 9.0, 5.0)
