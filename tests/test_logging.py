"""What hardy logs: one logger per component, the same extra fields everywhere, repeated warnings held back."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from typing import Any

import pytest
import structlog
from pythonjsonlogger.json import JsonFormatter

import hardy
from hardy import _log

from .conftest import FakeClock

FIELDS = ("component", "source", "event", "attempt", "delay", "error_type")


class Boom(Exception):
    pass


def fail() -> None:
    raise Boom("down")


def everything(clock: FakeClock) -> None:
    """Make every kind of record hardy emits (Redis has its own tests)."""
    breaker = hardy.CircuitBreaker("db", failure_threshold=1, reset_timeout=5, half_open_max_calls=1, clock=clock)
    breaker.add_listener(lambda b, old, new: 1 / 0)
    with pytest.raises(Boom):
        breaker.call(fail)
    clock.advance(5.0)
    breaker.call(lambda: None)
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            raise Boom("once")
        return "ok"

    assert hardy.retry(max_attempts=2, initial_delay=0)(flaky)() == "ok"
    with pytest.raises(Boom):
        hardy.retry(max_attempts=2, initial_delay=0)(fail)()
    assert hardy.Fallback("chain", [fail], default_value=0).execute() == 0

    async def slow() -> None:
        await asyncio.sleep(10)

    async def timeouts() -> None:
        assert await hardy.with_timeout(slow(), 0.01, fallback_value=1) == 1

    asyncio.run(timeouts())
    health = hardy.HealthCheck()
    health.register("cache")(lambda: False)
    asyncio.run(health.run_check("cache"))
    stop = hardy.events.subscribe(lambda event: 1 / 0, kinds={"giveup"})
    try:
        with pytest.raises(Boom):
            hardy.retry(max_attempts=1)(fail)()
    finally:
        stop()


@pytest.fixture
def records(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    with caplog.at_level(logging.DEBUG, logger="hardy"):
        everything(clock)
    return [r for r in caplog.records if r.name.startswith("hardy")]


def test_every_record_carries_the_fields_and_its_components_logger(records: list[logging.LogRecord]) -> None:
    assert {r.name for r in records} == {
        "hardy.breaker",
        "hardy.retry",
        "hardy.fallback",
        "hardy.timeout",
        "hardy.health",
        "hardy.events",
    }
    for record in records:
        for name in FIELDS:
            assert hasattr(record, name), (record.name, record.getMessage(), name)
        assert record.name == f"hardy.{record.component}"  # type: ignore[attr-defined]
        assert not record.getMessage().lower().startswith("hardy")  # the logger's name says it already
    by_event = {(r.name, r.event): r for r in records}  # type: ignore[attr-defined]
    retry = by_event["hardy.retry", "retry"]
    assert (retry.attempt, retry.delay, retry.error_type) == (1, 0.0, "Boom")  # type: ignore[attr-defined]
    assert retry.levelno == logging.DEBUG
    giveup = by_event["hardy.retry", "giveup"]
    assert (giveup.attempt, giveup.levelno) == (2, logging.INFO)  # type: ignore[attr-defined]
    opened = by_event["hardy.breaker", "state_change"]
    assert opened.source == "db"  # type: ignore[attr-defined]
    assert by_event["hardy.breaker", "listener_failed"].error_type == "ZeroDivisionError"  # type: ignore[attr-defined]
    timeout = by_event["hardy.timeout", "timeout"]
    assert (timeout.source, timeout.delay, timeout.levelno) == ("coroutine", 0.01, logging.WARNING)  # type: ignore[attr-defined]
    assert by_event["hardy.health", "health"].source == "cache"  # type: ignore[attr-defined]
    assert by_event["hardy.events", "giveup"].error_type is None  # type: ignore[attr-defined]
    assert by_event["hardy.fallback", "default_answered"].error_type == "Boom"  # type: ignore[attr-defined]


def test_the_hardy_logger_configures_every_component(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="hardy"):
        everything(clock)
    assert {r.levelno for r in caplog.records if r.name.startswith("hardy")} == {logging.ERROR}


@pytest.fixture
def clocked(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    clock = FakeClock()
    monkeypatch.setattr(_log, "_clock", clock)
    return clock


def test_a_repeated_warning_is_logged_once_per_interval(clocked: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    gives_up = hardy.retry(max_attempts=1)(named("flaky"))

    def give_up(times: int) -> None:
        for _ in range(times):
            with pytest.raises(Boom):
                gives_up()

    with caplog.at_level(logging.INFO, logger="hardy.retry"):
        give_up(5)
        assert len(caplog.records) == 1
        assert caplog.records[0].suppressed == 0  # type: ignore[attr-defined]
        clocked.advance(_log.INTERVAL - 1)
        give_up(1)
        assert len(caplog.records) == 1
        clocked.advance(1.0)
        give_up(1)
    assert len(caplog.records) == 2
    assert caplog.records[1].suppressed == 5  # type: ignore[attr-defined]
    assert "(5 more like it since the last one not logged)" in caplog.records[1].getMessage()


def test_every_timeout_is_logged(clocked: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    # Never rate-limited: one WARNING per timeout, as issue 13 and the reference promise.
    async def slow() -> None:
        await asyncio.sleep(10)

    async def time_out(times: int) -> None:
        for _ in range(times):
            with pytest.raises(hardy.TimeoutError):
                await hardy.with_timeout(slow(), 0.001)

    with caplog.at_level(logging.WARNING, logger="hardy.timeout"):
        asyncio.run(time_out(3))
    assert [r.getMessage() for r in caplog.records] == ["Operation 'coroutine' timed out after 0.001s"] * 3


def test_different_sources_are_limited_apart(clocked: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="hardy.retry"):
        for name in ("a", "b", "a", "b"):
            with pytest.raises(Boom):
                hardy.retry(max_attempts=1)(named(name))()
    assert [r.source for r in caplog.records] == ["tests.test_logging.a", "tests.test_logging.b"]  # type: ignore[attr-defined]


def test_fallback_steps_and_listener_failures_are_never_held_back(caplog: pytest.LogCaptureFixture) -> None:
    # The spec: each failed step is logged while log_failures is on; a listener that raises is logged.
    breaker = hardy.CircuitBreaker("flapping", failure_threshold=1, reset_timeout=0.0)
    breaker.add_listener(lambda b, old, new: 1 / 0)
    with caplog.at_level(logging.WARNING, logger="hardy"):
        for _ in range(3):
            assert hardy.Fallback("steps", [fail, lambda: 1]).execute() == 1
        for _ in range(2):
            with pytest.raises(Boom):
                breaker.call(fail)
            breaker.reset()
    steps = [r for r in caplog.records if r.event == "step_failed"]  # type: ignore[attr-defined]
    listeners = [r for r in caplog.records if r.event == "listener_failed"]  # type: ignore[attr-defined]
    assert len(steps) == 3
    assert len(listeners) == 4  # closed -> open and open -> closed, twice


def named(name: str) -> Any:
    def func() -> None:
        raise Boom(name)

    func.__qualname__ = name
    return func


def emitted_json(clock: FakeClock, formatter: logging.Formatter) -> list[dict[str, Any]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("hardy")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        everything(clock)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


def test_json_logging_with_python_json_logger(clock: FakeClock) -> None:
    lines = emitted_json(clock, JsonFormatter("%(name)s %(levelname)s %(message)s"))
    assert lines
    for line in lines:
        assert set(FIELDS) <= set(line), line
    retry = next(line for line in lines if line["event"] == "retry")
    assert retry["name"] == "hardy.retry"
    assert (retry["source"], retry["attempt"], retry["delay"]) == (
        "tests.test_logging.everything.<locals>.flaky",
        1,
        0.0,
    )


def test_structlog_renders_hardys_fields(clock: FakeClock) -> None:
    formatter = structlog.stdlib.ProcessorFormatter(
        processor=structlog.processors.JSONRenderer(),
        # structlog calls the message "event", as hardy calls its event field: rename the message first.
        foreign_pre_chain=[
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.processors.EventRenamer("message"),
            structlog.stdlib.ExtraAdder(),
        ],
    )
    lines = emitted_json(clock, formatter)
    assert lines
    for line in lines:
        assert set(FIELDS) <= set(line), line
    giveup = next(line for line in lines if line["event"] == "giveup" and line["logger"] == "hardy.retry")
    assert (giveup["component"], giveup["attempt"], giveup["error_type"], giveup["level"]) == (
        "retry",
        2,
        "Boom",
        "info",
    )
    assert giveup["message"] == "tests.test_logging.fail: giving up after 2 attempts (Boom)"
