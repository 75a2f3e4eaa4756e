"""hardy.events: one stream of what happens off the success path, on both cores."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

import hardy
import hardy.events
from hardy.events import Event

from .conftest import FakeClock


class Boom(Exception):
    pass


@pytest.fixture
def seen() -> Iterator[list[Event]]:
    events: list[Event] = []
    unsubscribe = hardy.events.subscribe(events.append)
    yield events
    unsubscribe()


def kinds(events: list[Event]) -> list[str]:
    return [e.kind for e in events]


def fail() -> None:
    raise Boom("down")


def flaky(failures: int, error: type[Exception] = Boom) -> Any:
    calls = {"n": 0}

    def func() -> str:
        calls["n"] += 1
        if calls["n"] <= failures:
            raise error("flaky")
        return "ok"

    return func


# -- subscribing --------------------------------------------------------------------------


def test_unsubscribe_stops_delivery_and_is_idempotent() -> None:
    got: list[Event] = []
    unsubscribe = hardy.events.subscribe(got.append, kinds={"state_change"})
    breaker = hardy.CircuitBreaker("sub", failure_threshold=1)
    with pytest.raises(Boom):
        breaker.call(fail)
    assert [(e.kind, e.source, dict(e.data)) for e in got] == [
        ("state_change", "sub", {"old_state": "closed", "new_state": "open"})
    ]
    unsubscribe()
    unsubscribe()
    breaker.reset()
    assert len(got) == 1
    assert not hardy.events.active


def test_kinds_filter_and_the_same_callback_twice() -> None:
    got: list[Event] = []
    stop_retry = hardy.events.subscribe(got.append, kinds=["retry"])
    stop_all = hardy.events.subscribe(got.append)
    try:
        hardy.retry(max_attempts=2, initial_delay=0)(flaky(1))()
    finally:
        stop_retry()
        stop_all()
    assert kinds(got) == ["retry", "retry"]


@pytest.mark.parametrize(
    ("kinds_arg", "error", "match"),
    [
        ("retry", TypeError, "not a str"),
        ({"retry", "nope"}, ValueError, "unknown event kind 'nope'"),
        (set(), ValueError, "at least one"),
        ({1}, TypeError, "str kind names"),
        (42, TypeError, "collection"),
    ],
)
def test_bad_kinds_are_refused(kinds_arg: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        hardy.events.subscribe(print, kinds=kinds_arg)
    assert not hardy.events.active


def test_a_callback_must_be_callable() -> None:
    with pytest.raises(TypeError, match="callback must be callable, got 42"):
        hardy.events.subscribe(42)  # type: ignore[arg-type]


def test_events_are_frozen_records() -> None:
    event = Event("retry", "f", 1.0, {"attempt": 1})
    with pytest.raises(AttributeError):
        event.kind = "giveup"  # type: ignore[misc]
    assert Event("timeout", "g", 2.0).data == {}


# -- breakers -----------------------------------------------------------------------------


def test_every_state_change_is_an_event(clock: FakeClock, seen: list[Event]) -> None:
    breaker = hardy.CircuitBreaker("db", failure_threshold=2, reset_timeout=10, half_open_max_calls=1, clock=clock)
    assert breaker.call(lambda: 1) == 1
    assert seen == []  # a success is never an event
    for _ in range(2):
        with pytest.raises(Boom):
            breaker.call(fail)
    clock.advance(10.0)
    assert breaker.call(lambda: 2) == 2
    changes = [(e.source, e.data["old_state"], e.data["new_state"]) for e in seen]
    assert changes == [("db", "closed", "open"), ("db", "open", "half_open"), ("db", "half_open", "closed")]
    assert all(e.kind == "state_change" and isinstance(e.time, float) for e in seen)


def test_rejections_are_events_only_while_someone_asks_for_them(seen: list[Event]) -> None:
    breaker = hardy.CircuitBreaker("shut", failure_threshold=1)
    with pytest.raises(Boom):
        breaker.call(fail)
    seen.clear()
    with pytest.raises(hardy.CircuitOpenError):
        breaker.call(lambda: 1)
    assert kinds(seen) == ["rejection"]  # the fixture subscribed to every kind
    assert seen[0].source == "shut"
    assert seen[0].data["reset_time"] > 0
    got: list[Event] = []
    stop = hardy.events.subscribe(got.append, kinds={"retry"})
    try:
        protected = breaker(lambda: 1)
        with pytest.raises(hardy.CircuitOpenError):
            protected()
    finally:
        stop()
    assert got == []


# -- retries ------------------------------------------------------------------------------


def test_retries_and_a_give_up_sync(seen: list[Event]) -> None:
    assert hardy.retry(max_attempts=3, initial_delay=0)(flaky(0))() == "ok"
    assert seen == []  # first-attempt success: nothing
    wrapped = hardy.retry(max_attempts=3, initial_delay=0, jitter=False)(flaky(5))
    with pytest.raises(Boom):
        wrapped()
    assert kinds(seen) == ["retry", "retry", "giveup"]
    assert [e.data["attempt"] for e in seen] == [1, 2, 3]
    assert {e.source for e in seen} == {"tests.test_events.flaky.<locals>.func"}
    assert seen[0].data["delay"] == 0.0
    assert seen[0].data["error_type"] == "Boom"
    assert isinstance(seen[0].data["error"], Boom)
    assert "delay" not in seen[2].data


def test_an_error_that_is_not_retried_is_no_give_up(seen: list[Event]) -> None:
    wrapped = hardy.retry(max_attempts=3, initial_delay=0, retryable_exceptions=(ValueError,))(flaky(5))
    with pytest.raises(Boom):
        wrapped()
    assert seen == []


def test_retried_results_and_a_give_up_on_a_result(seen: list[Event]) -> None:
    wrapped = hardy.retry(max_attempts=2, initial_delay=0, retry_on_result=lambda r: r is None)(lambda: None)
    assert wrapped() is None
    assert [(e.kind, e.data["error"], e.data["error_type"]) for e in seen] == [
        ("retry", None, None),
        ("giveup", None, None),
    ]


def test_running_out_of_time_is_a_give_up(clock: FakeClock, seen: list[Event]) -> None:
    wrapped = hardy.retry(max_attempts=5, initial_delay=10, jitter=False, deadline=1.0, clock=clock)(flaky(5))
    with pytest.raises(Boom):
        wrapped()
    assert [(e.kind, e.data["attempt"]) for e in seen] == [("giveup", 1)]


def test_retries_and_a_give_up_async(seen: list[Event]) -> None:
    calls = {"n": 0}

    async def func() -> str:
        calls["n"] += 1
        raise Boom("async")

    wrapped = hardy.retry(max_attempts=2, initial_delay=0)(func)
    with pytest.raises(Boom):
        asyncio.run(wrapped())
    assert kinds(seen) == ["retry", "giveup"]

    async def none() -> None:
        return None

    seen.clear()
    assert asyncio.run(hardy.retry(max_attempts=2, initial_delay=0, retry_on_result=lambda r: True)(none)()) is None
    assert [(e.kind, e.data["error"]) for e in seen] == [("retry", None), ("giveup", None)]


def test_a_subscriber_that_raises_base_exception_wins_with_the_attempt_error_as_context() -> None:
    # Exception from a subscriber is logged; anything else (here KeyboardInterrupt) is the caller's.
    def interrupt(event: Event) -> None:
        raise KeyboardInterrupt

    for kind in ("retry", "giveup"):
        stop = hardy.events.subscribe(interrupt, kinds={kind})
        try:
            wrapped = hardy.retry(max_attempts=2, initial_delay=0)(flaky(5))
            with pytest.raises(KeyboardInterrupt) as info:
                wrapped()
        finally:
            stop()
        assert isinstance(info.value.__context__, Boom)


# -- fallbacks and timeouts ---------------------------------------------------------------


def test_fallbacks_that_answer_are_events(seen: list[Event]) -> None:
    def spare() -> str:
        return "spare"

    assert hardy.fallback(spare)(lambda: "primary")() == "primary"
    assert seen == []
    assert hardy.with_fallback(fail, [spare])() == "spare"
    assert hardy.Fallback("chain", [fail, fail], default_value="d").execute() == "d"
    assert [(e.kind, e.data["via"], e.data["function"], e.data["error_type"]) for e in seen] == [
        ("fallback", "function", "tests.test_events.test_fallbacks_that_answer_are_events.<locals>.spare", "Boom"),
        ("fallback", "default", None, "Boom"),
    ]
    assert [e.source for e in seen] == ["tests.test_events.fail", "chain"]


def test_async_chains_emit_too(seen: list[Event]) -> None:
    async def down() -> str:
        raise Boom("async down")

    async def up() -> str:
        return "up"

    assert asyncio.run(hardy.with_fallback(up, [down])()) == "up"
    assert seen == []
    assert asyncio.run(hardy.with_fallback(down, [up])()) == "up"
    assert asyncio.run(hardy.with_fallback(down, [down], default=0)()) == 0
    assert [e.data["via"] for e in seen] == ["function", "default"]


def test_a_timeout_and_its_fallback_are_events(seen: list[Event]) -> None:
    async def slow() -> str:
        await asyncio.sleep(10)
        return "late"

    assert asyncio.run(hardy.with_timeout(slow(), 0.01, fallback_value="cached")) == "cached"
    with pytest.raises(hardy.TimeoutError):
        asyncio.run(hardy.with_timeout(slow(), 0.01))
    assert [(e.kind, e.source) for e in seen] == [
        ("timeout", "coroutine"),
        ("fallback", "coroutine"),
        ("timeout", "coroutine"),
    ]
    assert seen[0].data == {"seconds": 0.01}
    assert seen[1].data["via"] == "timeout"


def test_a_sync_timeout_is_an_event(seen: list[Event]) -> None:
    def slow() -> None:
        # Python bytecode, where the interrupt lands at once (a C-level wait would defer it).
        end = time.monotonic() + 5.0
        while time.monotonic() < end:
            pass

    with pytest.raises(hardy.TimeoutError):
        hardy.timeout(0.01, error_message="slow-op")(slow)()
    assert [(e.kind, e.source) for e in seen] == [("timeout", "slow-op")]


# -- health -------------------------------------------------------------------------------


def test_a_health_check_that_changes_status_is_an_event(seen: list[Event]) -> None:
    health = hardy.HealthCheck()
    state = {"ok": True}

    @health.register("db")
    def db() -> bool:
        return state["ok"]

    asyncio.run(health.run_check("db"))
    assert seen == []  # healthy from the start: no change
    state["ok"] = False
    asyncio.run(health.run_check("db"))
    asyncio.run(health.run_check("db"))
    state["ok"] = True
    asyncio.run(health.run_check("db"))
    assert [(e.kind, e.source, e.data["previous"], e.data["status"]) for e in seen] == [
        ("health", "db", "healthy", "unhealthy"),
        ("health", "db", "unhealthy", "healthy"),
    ]


# -- delivery -----------------------------------------------------------------------------


def test_a_subscriber_that_raises_is_logged_and_never_breaks_the_call(caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: Event) -> None:
        raise RuntimeError("subscriber bug")

    got: list[Event] = []
    stop_broken = hardy.events.subscribe(broken)
    stop_good = hardy.events.subscribe(got.append)
    try:
        with caplog.at_level(logging.ERROR, logger="hardy"):
            assert hardy.retry(max_attempts=2, initial_delay=0)(flaky(1))() == "ok"
    finally:
        stop_broken()
        stop_good()
    assert kinds(got) == ["retry"]
    records = [r for r in caplog.records if r.name == "hardy.events"]
    assert len(records) == 1
    assert records[0].exc_info is not None
    assert records[0].exc_info[0] is RuntimeError
    assert records[0].component == "events"  # type: ignore[attr-defined]
    assert records[0].source == "tests.test_events.flaky.<locals>.func"  # type: ignore[attr-defined]


def test_a_subscriber_may_unsubscribe_itself_while_being_called() -> None:
    got: list[Event] = []

    def once(event: Event) -> None:
        got.append(event)
        stop()

    stop = hardy.events.subscribe(once)
    hardy.retry(max_attempts=3, initial_delay=0)(flaky(2))()
    assert kinds(got) == ["retry"]


def test_async_subscribers_run_on_the_running_loop(caplog: pytest.LogCaptureFixture) -> None:
    got: list[tuple[Event, asyncio.AbstractEventLoop]] = []

    async def record(event: Event) -> None:
        got.append((event, asyncio.get_running_loop()))

    async def broken(event: Event) -> None:
        raise RuntimeError("async subscriber bug")

    async def main() -> asyncio.AbstractEventLoop:
        stop_record = hardy.events.subscribe(record, kinds={"retry"})
        stop_broken = hardy.events.subscribe(broken, kinds={"retry"})
        try:

            async def func() -> str:
                return await asyncio.sleep(0, "ok")

            flaky_calls = {"n": 0}

            async def once_flaky() -> str:
                flaky_calls["n"] += 1
                if flaky_calls["n"] == 1:
                    raise Boom("first")
                return await func()

            assert await hardy.retry(max_attempts=2, initial_delay=0)(once_flaky)() == "ok"
            for _ in range(3):
                await asyncio.sleep(0)
        finally:
            stop_record()
            stop_broken()
        return asyncio.get_running_loop()

    with caplog.at_level(logging.ERROR, logger="hardy"):
        loop = asyncio.run(main())
    assert [(e.kind, running) for e, running in got] == [("retry", loop)]
    failures = [r for r in caplog.records if r.name == "hardy.events"]
    assert len(failures) == 1
    assert "async subscriber" in failures[0].getMessage()


def test_an_async_subscriber_hears_of_events_from_threads_on_its_own_loop() -> None:
    got: list[tuple[str, asyncio.AbstractEventLoop]] = []

    async def record(event: Event) -> None:
        got.append((event.kind, asyncio.get_running_loop()))

    async def main() -> asyncio.AbstractEventLoop:
        stop = hardy.events.subscribe(record, kinds={"giveup"})
        try:
            wrapped = hardy.retry(max_attempts=1)(fail)

            def in_thread() -> None:
                with pytest.raises(Boom):
                    wrapped()

            await asyncio.to_thread(in_thread)
            for _ in range(5):
                await asyncio.sleep(0)
        finally:
            stop()
        return asyncio.get_running_loop()

    loop = asyncio.run(main())
    assert got == [("giveup", loop)]


def test_an_async_subscriber_without_a_loop_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    async def record(event: Event) -> None:
        raise AssertionError("never scheduled")

    stop = hardy.events.subscribe(record)  # no loop runs here
    try:
        with caplog.at_level(logging.WARNING, logger="hardy.events"):
            with pytest.raises(Boom):
                hardy.retry(max_attempts=1)(fail)()
            with pytest.raises(Boom):
                hardy.retry(max_attempts=1)(fail)()
    finally:
        stop()
    dropped = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(dropped) == 1  # rate-limited: once, not once per event


def test_a_subscriber_that_raises_base_exception_on_a_rejection_replaces_the_rejection() -> None:
    breaker = hardy.CircuitBreaker("interrupted", failure_threshold=1)
    with pytest.raises(Boom):
        breaker.call(fail)
    protected = breaker(lambda: 1)

    def interrupt(event: Event) -> None:
        raise KeyboardInterrupt

    stop = hardy.events.subscribe(interrupt, kinds={"rejection"})
    try:
        with pytest.raises(KeyboardInterrupt):
            protected()
        with pytest.raises(KeyboardInterrupt):
            breaker.call(lambda: 1)
    finally:
        stop()
    with pytest.raises(hardy.CircuitOpenError):
        protected()
    assert breaker.get_stats()["rejections"] == 3


def test_a_subscriber_calling_the_open_breaker_again_does_not_recurse() -> None:
    breaker = hardy.CircuitBreaker("reentrant", failure_threshold=1)
    with pytest.raises(Boom):
        breaker.call(fail)
    protected = breaker(lambda: 1)
    mine: list[Event] = []
    others: list[Event] = []

    def call_again(event: Event) -> None:
        mine.append(event)
        with pytest.raises(hardy.CircuitOpenError):
            protected()

    stop_mine = hardy.events.subscribe(call_again, kinds={"rejection"})
    stop_others = hardy.events.subscribe(others.append, kinds={"rejection"})
    try:
        with pytest.raises(hardy.CircuitOpenError):
            protected()
    finally:
        stop_mine()
        stop_others()
    assert len(mine) == 1
    assert len(others) == 2  # the outer rejection and the one the subscriber caused
