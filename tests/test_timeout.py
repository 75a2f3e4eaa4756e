"""Timeouts, sync and async, on both cores (the fixture runs every test twice)."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from typing import Any

import pytest

import hardy
from hardy import _deadlines


def busy(seconds: float) -> str:
    """Spin in Python code for ``seconds``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return "finished"


# -- sync ---------------------------------------------------------------------------


def test_sync_call_within_its_deadline_returns_normally() -> None:
    @hardy.timeout(1.0)
    def quick(x: int) -> int:
        """Doc."""
        return x * 2

    assert quick(21) == 42
    assert quick.__name__ == "quick"
    assert quick.__doc__ == "Doc."
    assert inspect.signature(quick) == inspect.signature(quick.__wrapped__)


def test_sync_busy_loop_is_interrupted() -> None:
    wrapped = hardy.timeout(0.05)(busy)
    started = time.monotonic()
    with pytest.raises(hardy.TimeoutError) as info:
        wrapped(5.0)
    assert time.monotonic() - started < 2.0
    assert info.value.timeout == 0.05
    assert info.value.operation.endswith("busy")
    assert isinstance(info.value, TimeoutError)  # the builtin: `except TimeoutError` catches it


def test_except_exception_cannot_swallow_the_deadline() -> None:
    swallowed = 0

    @hardy.timeout(0.05)
    def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                busy(0.01)
            except Exception:
                swallowed += 1

    with pytest.raises(hardy.TimeoutError):
        stubborn()
    assert swallowed == 0


def test_even_a_bare_except_loop_is_interrupted() -> None:
    caught = 0

    @hardy.timeout(0.05)
    def very_stubborn() -> None:
        nonlocal caught
        while True:
            try:
                busy(0.01)
            except BaseException:  # the deadline is delivered again until the call ends
                caught += 1
                if caught > 3:
                    raise

    with pytest.raises(hardy.TimeoutError):
        very_stubborn()
    assert caught >= 1


def test_sleep_is_interrupted_when_it_returns() -> None:
    wrapped = hardy.timeout(0.05)(time.sleep)
    started = time.monotonic()
    with pytest.raises(hardy.TimeoutError):
        wrapped(0.3)
    assert time.monotonic() - started < 2.0


def test_works_in_a_worker_thread() -> None:
    results: list[Any] = []

    def worker() -> None:
        try:
            hardy.timeout(0.05, error_message="report")(busy)(5.0)
        except hardy.TimeoutError as exc:
            results.append(exc.operation)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(timeout=10)
    assert results == ["report"]


def test_nested_deadlines_the_tightest_wins() -> None:
    @hardy.timeout(5.0, error_message="outer")
    def outer() -> str:
        return inner()

    @hardy.timeout(0.05, error_message="inner")
    def inner() -> str:
        return busy(5.0)

    with pytest.raises(hardy.TimeoutError, match="inner"):
        outer()

    @hardy.timeout(0.05, error_message="tight outer")
    def tight_outer() -> str:
        return loose_inner()

    @hardy.timeout(5.0, error_message="loose inner")
    def loose_inner() -> str:
        return busy(5.0)

    with pytest.raises(hardy.TimeoutError, match="tight outer"):
        tight_outer()


def test_fallback_on_timeout() -> None:
    wrapped = hardy.timeout(0.05, fallback=lambda seconds: f"gave up on {seconds}")(busy)
    assert wrapped(5.0) == "gave up on 5.0"


def test_calls_that_finish_just_before_the_deadline_are_never_hit_later() -> None:
    # Many calls end right around their deadline; none may be interrupted
    # after it returned. The work after each call would be hit by a late
    # delivery, and is itself long enough for the re-delivery to arrive.
    wrapped = hardy.timeout(0.002)(busy)
    outcomes = {"finished": 0, "timed out": 0}
    for _ in range(300):
        try:
            outcomes[wrapped(0.0019)] += 1
        except hardy.TimeoutError:
            outcomes["timed out"] += 1
        busy(0.001)  # an escaped deadline would surface here as Expired
    assert outcomes["finished"] + outcomes["timed out"] == 300


def test_exceptions_of_the_call_pass_through_unchanged() -> None:
    error = ValueError("own")

    @hardy.timeout(1.0)
    def raises() -> None:
        raise error

    with pytest.raises(ValueError, match="own") as info:
        raises()
    assert info.value is error


def test_no_timer_thread_is_left_behind() -> None:
    hardy.timeout(0.01)(busy)(0.0)
    assert _deadlines.timer_thread() is not None
    deadline = time.monotonic() + _deadlines.IDLE_EXIT + 5.0
    while _deadlines.timer_thread() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _deadlines.timer_thread() is None
    assert not [t for t in threading.enumerate() if t.name == "hardy-deadlines"]


def test_thread_mode_abandons_a_blocking_call() -> None:
    release = threading.Event()

    @hardy.timeout(0.05, mode="thread")
    def blocked() -> str:
        release.wait(10)  # a blocking wait the interrupt mode could not break
        return "late"

    started = time.monotonic()
    with pytest.raises(hardy.TimeoutError):
        blocked()
    assert time.monotonic() - started < 2.0
    release.set()
    assert hardy.timeout(1.0, mode="thread")(lambda: "quick")() == "quick"
    with pytest.raises(KeyError):
        hardy.timeout(1.0, mode="thread")({}.__getitem__)("missing")


# -- async --------------------------------------------------------------------------------


def test_async_deadline_cancels_the_work() -> None:
    cancelled = False

    @hardy.timeout(0.05)
    async def slow() -> str:
        nonlocal cancelled
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled = True
            raise
        return "late"

    assert inspect.iscoroutinefunction(slow)
    with pytest.raises(hardy.TimeoutError) as info:
        asyncio.run(slow())
    assert cancelled
    assert info.value.operation.endswith("slow")


def test_async_own_timeout_error_passes_through_untouched() -> None:
    error = TimeoutError("the function's own")

    @hardy.timeout(5.0)
    async def raises() -> None:
        raise error

    with pytest.raises(TimeoutError) as info:
        asyncio.run(raises())
    assert info.value is error


def test_async_external_cancellation_stays_cancellation() -> None:
    @hardy.timeout(5.0)
    async def slow() -> None:
        await asyncio.sleep(10)

    async def scenario() -> None:
        task = asyncio.ensure_future(slow())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def test_async_fallbacks_sync_and_async() -> None:
    async def async_fallback(x: int) -> str:
        return f"async {x}"

    @hardy.timeout(0.02, fallback=async_fallback)
    async def slow(x: int) -> str:
        await asyncio.sleep(10)
        return "late"

    @hardy.timeout(0.02, fallback=lambda x: f"sync {x}")
    async def slow_too(x: int) -> str:
        await asyncio.sleep(10)
        return "late"

    assert asyncio.run(slow(1)) == "async 1"
    assert asyncio.run(slow_too(2)) == "sync 2"


def test_with_timeout() -> None:
    async def value(delay: float) -> str:
        await asyncio.sleep(delay)
        return "value"

    async def scenario() -> None:
        assert await hardy.with_timeout(value(0), 1.0) == "value"
        assert await hardy.with_timeout(value(10), 0.02, fallback_value=None) is None
        with pytest.raises(hardy.TimeoutError) as info:
            await hardy.with_timeout(value(10), 0.02)
        assert info.value.operation == "coroutine"

    asyncio.run(scenario())


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"seconds": 0}, ValueError, "seconds must be a finite number > 0, got 0"),
        ({"seconds": -1}, ValueError, "seconds must be a finite number > 0"),
        ({"seconds": float("inf")}, ValueError, "seconds must be a finite number > 0"),
        ({"seconds": "1"}, TypeError, "seconds must be a number of seconds, got '1'"),
        ({"seconds": 1, "error_message": 5}, TypeError, "error_message must be a str or None"),
        ({"seconds": 1, "fallback": 5}, TypeError, "fallback must be callable"),
        ({"seconds": 1, "mode": "kill"}, ValueError, "mode must be one of"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        hardy.timeout(**kwargs)


def test_bad_combinations() -> None:
    async def coro() -> None:
        pass

    async def async_fallback() -> None:
        pass

    with pytest.raises(ValueError, match="mode='thread' is for sync functions"):
        hardy.timeout(1, mode="thread")(coro)
    with pytest.raises(TypeError, match=r"fallback .* is async but"):
        hardy.timeout(1, fallback=async_fallback)(lambda: None)
    with pytest.raises(TypeError, match="awaitable must be awaitable"):
        asyncio.run(hardy.with_timeout(5, 1.0))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seconds must be a finite number > 0"):
        asyncio.run(hardy.with_timeout(coro(), 0))
