"""The breaker under concurrent threads, on both cores."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest

import hardy
from hardy import CircuitOpenError

from .conftest import FakeClock

THREADS = 8


class Failure(Exception):
    pass


class Excluded(Exception):
    pass


def run_threads(target: Any, count: int = THREADS) -> None:
    errors: list[BaseException] = []

    def guarded(index: int) -> None:
        try:
            target(index)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors


def test_callers_are_never_serialised() -> None:
    # All eight threads must be inside the function at once for the barrier
    # to open; a breaker that held a lock around the call would break it.
    breaker = hardy.CircuitBreaker("parallel")
    barrier = threading.Barrier(THREADS, timeout=10)
    protected = breaker(barrier.wait)
    run_threads(lambda _: protected())
    assert breaker.get_stats()["successes"] == THREADS


def test_half_open_trial_limit_holds_across_threads(clock: FakeClock) -> None:
    breaker = hardy.CircuitBreaker("trials", failure_threshold=1, reset_timeout=5, half_open_max_calls=3, clock=clock)
    breaker.record_failure(Failure())
    clock.advance(5)
    inside = threading.Semaphore(0)
    release = threading.Event()
    results: list[str] = []
    lock = threading.Lock()

    def trial() -> None:
        inside.release()
        assert release.wait(timeout=10)

    protected = breaker(trial)

    def caller(_: int) -> None:
        try:
            protected()
            outcome = "ran"
        except CircuitOpenError:
            outcome = "rejected"
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for _ in range(3):
        assert inside.acquire(timeout=10)
    # The three trials are parked inside; everyone else must be turned away.
    while len(results) < THREADS - 3:
        assert not inside.acquire(timeout=0.01)
    release.set()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(results) == ["ran"] * 3 + ["rejected"] * (THREADS - 3)
    assert breaker.state is hardy.CircuitState.CLOSED


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_stress_keeps_every_count(seed: int) -> None:
    breaker = hardy.CircuitBreaker(
        "stress", failure_threshold=3, reset_timeout=0.001, half_open_max_calls=2, excluded_exceptions=Excluded
    )
    most_trials = 0
    lock = threading.Lock()
    counts = {"ok": 0, "fail": 0, "excluded": 0, "rejected": 0}

    def body(kind: str) -> str:
        nonlocal most_trials
        # The breaker's own count of admitted trials, read under its lock. (A
        # call cannot tell from inside whether it was admitted as a trial: it
        # may have been admitted while closed, just before the breaker opened.)
        trials = breaker.get_stats()["half_open_calls"]
        with lock:
            most_trials = max(most_trials, trials)
        if kind == "fail":
            raise Failure()
        if kind == "excluded":
            raise Excluded()
        return kind

    protected = breaker(body)

    def worker(index: int) -> None:
        rng = random.Random(seed * 100 + index)
        local = dict.fromkeys(counts, 0)
        for _ in range(3000):
            kind = rng.choices(["ok", "fail", "excluded"], weights=[6, 3, 1])[0]
            try:
                protected(kind)
                local["ok"] += 1
            except Failure:
                local["fail"] += 1
            except Excluded:
                local["excluded"] += 1
            except CircuitOpenError:
                local["rejected"] += 1
        with lock:
            for key, value in local.items():
                counts[key] += value

    run_threads(worker)
    stats = breaker.get_stats()
    assert stats["successes"] == counts["ok"]
    assert stats["failures"] == counts["fail"]
    assert stats["ignored"] == counts["excluded"]
    assert stats["rejections"] == counts["rejected"]
    assert stats["calls"] == stats["successes"] + stats["failures"] + stats["ignored"]
    assert stats["calls"] + stats["rejections"] == THREADS * 3000
    assert most_trials <= 2
    assert stats["opened"] > 0  # the run really went through the states
