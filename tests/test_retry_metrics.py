"""Retry counts in hardy.metrics: read from each wrapper's own counters, kept when the wrapper goes."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable

import pytest

import hardy
import hardy.events
import hardy.metrics
from hardy import _retry_events


class Boom(Exception):
    pass


def exported(metric: str, name: str) -> float:
    for family in hardy.metrics.collect():
        if family.name == metric:
            for labels, number in family.samples:
                if labels.get("name") == name:
                    return number
    return 0.0


def flaky(failures: int) -> Callable[[], str]:
    calls = {"n": 0}

    def func() -> str:
        calls["n"] += 1
        if calls["n"] % (failures + 1):
            raise Boom("not yet")
        return "ok"

    return func


def test_a_declared_wrapper_counts_its_retries_itself_and_they_outlive_it() -> None:
    func = flaky(3)
    func.__qualname__ = "outlive"
    func.__module__ = "tests.retry_metrics"
    name = "tests.retry_metrics.outlive"
    before_retries = exported("hardy_retries", name)
    before_giveups = exported("hardy_retry_giveups", name)
    wrapped = hardy.retry(max_attempts=4, initial_delay=0)(func)
    assert wrapped() == "ok"
    assert exported("hardy_retries", name) == before_retries + 3
    assert wrapped() == "ok"  # 3 more, never read before the wrapper goes
    other = flaky(5)
    other.__qualname__, other.__module__ = "outlive", "tests.retry_metrics"  # two wrappers, one name: added up
    give_up = hardy.retry(max_attempts=2, initial_delay=0)(other)
    with pytest.raises(Boom):
        give_up()
    del wrapped, give_up
    gc.collect()
    assert exported("hardy_retries", name) == before_retries + 7
    assert exported("hardy_retry_giveups", name) == before_giveups + 1
    assert exported("hardy_retries", name) == before_retries + 7  # folded once, not again


def test_retry_with_backoff_is_tallied_per_retry() -> None:
    func = flaky(2)
    func.__qualname__ = "per_call"
    func.__module__ = "tests.retry_metrics"
    before = exported("hardy_retries", "tests.retry_metrics.per_call")
    config = hardy.RetryConfig(max_attempts=3, initial_delay=0)
    assert hardy.retry_with_backoff(func, config=config) == "ok"
    gc.collect()
    assert exported("hardy_retries", "tests.retry_metrics.per_call") == before + 2


def test_gone_wrappers_do_not_pile_up() -> None:
    for _ in range(1000):
        hardy.retry(max_attempts=2)(flaky(1))
    gc.collect()
    hardy.retry(max_attempts=2)(flaky(1))  # a declaration prunes when the list has doubled
    assert len(_retry_events._live) < 200


def test_a_declared_wrapper_still_reports_to_events_and_the_log(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[hardy.events.Event] = []
    unsubscribe = hardy.events.subscribe(seen.append, kinds={"retry"})
    wrapped = hardy.retry(max_attempts=3, initial_delay=0)(flaky(2))
    try:
        assert wrapped() == "ok"
    finally:
        unsubscribe()
    assert [event.data["attempt"] for event in seen] == [1, 2]
    with caplog.at_level(logging.DEBUG, logger="hardy.retry"):
        assert wrapped() == "ok"
    assert [record.attempt for record in caplog.records if record.name == "hardy.retry"] == [1, 2]  # type: ignore[attr-defined]
    assert wrapped.statistics["retries"] == 4  # type: ignore[attr-defined]


def test_async_retries_are_counted_once() -> None:
    import asyncio

    calls = {"n": 0}

    async def func() -> str:
        calls["n"] += 1
        if calls["n"] % 3:
            raise Boom("not yet")
        return "ok"

    func.__qualname__ = "async_once"
    func.__module__ = "tests.retry_metrics"
    before = exported("hardy_retries", "tests.retry_metrics.async_once")
    wrapped = hardy.retry(max_attempts=3, initial_delay=0)(func)
    assert asyncio.run(wrapped()) == "ok"
    assert exported("hardy_retries", "tests.retry_metrics.async_once") == before + 2
    assert wrapped.statistics["retries"] == 2  # type: ignore[attr-defined]
