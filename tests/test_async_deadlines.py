"""Async deadlines on asyncio without a loop timer per call (``hardy.policies.async_deadlines``).

Behaviour under every loop is in ``test_event_loops.py``; these tests look at
what is asyncio's own: the registry on the loop (each core's own), the one
armed timer, the lanes emptied as calls leave, and the cancel counts
(``uncancel()``).
"""

from __future__ import annotations

import asyncio
import sys
from types import ModuleType
from typing import Any

import pytest

import hardy


async def quick(x: int) -> int:
    await asyncio.sleep(0)
    return x


def pending_timers(loop: asyncio.AbstractEventLoop) -> int:
    return sum(1 for handle in loop._scheduled if not handle.cancelled())  # type: ignore[attr-defined]


def test_deadlines_that_do_not_fire_arm_one_timer_and_leave_nothing(core: ModuleType) -> None:
    timed = hardy.timeout(10.0)(quick)

    async def scenario() -> tuple[int, int, dict[float, int]]:
        loop = asyncio.get_running_loop()
        before = pending_timers(loop)
        for i in range(200):
            assert await timed(i) == i
        return before, pending_timers(loop), core.async_deadlines(loop).lane_sizes()

    before, after, lanes = asyncio.run(scenario())
    assert after - before == 1  # one timer for all 200 calls
    assert lanes == {10.0: 0}


def test_concurrent_calls_share_the_timer_and_every_lane_empties(core: ModuleType) -> None:
    timed = hardy.timeout(10.0)(quick)
    other = hardy.timeout(20.0)(quick)

    async def scenario() -> tuple[int, list[int]]:
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(*(timed(i) if i % 2 else other(i) for i in range(100)))
        assert core.async_deadlines(loop).lane_sizes() == {10.0: 0, 20.0: 0}
        return pending_timers(loop), list(results)

    timers, results = asyncio.run(scenario())
    assert timers == 1
    assert results == list(range(100))


def test_a_left_call_behind_a_running_one_is_dropped_when_that_one_leaves(core: ModuleType) -> None:
    timed = hardy.timeout(10.0)(quick)

    async def slow(release: asyncio.Event) -> str:
        await release.wait()
        return "slow"

    slow_timed = hardy.timeout(10.0)(slow)

    async def scenario() -> list[int]:
        release = asyncio.Event()
        head = asyncio.ensure_future(slow_timed(release))
        await asyncio.sleep(0)
        for i in range(20):
            await timed(i)
        registry = core.async_deadlines(asyncio.get_running_loop())
        sizes = [registry.lane_sizes()[10.0]]
        release.set()
        assert await head == "slow"
        sizes.append(registry.lane_sizes()[10.0])
        return sizes

    assert asyncio.run(scenario()) == [21, 0]


def test_a_shorter_deadline_rearms_the_timer_earlier() -> None:
    long = hardy.timeout(30.0)(asyncio.sleep)

    @hardy.timeout(0.02)
    async def short() -> None:
        await asyncio.sleep(30)

    async def scenario() -> None:
        background = asyncio.ensure_future(long(0.5))
        await asyncio.sleep(0)
        async with asyncio.timeout(5.0) if sys.version_info >= (3, 11) else _nothing():
            with pytest.raises(hardy.TimeoutError):
                await short()  # not held until the 30 s deadline's timer
        background.cancel()
        with pytest.raises(asyncio.CancelledError):
            await background

    asyncio.run(scenario())


class _nothing:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


@pytest.mark.skipif(sys.version_info < (3, 11), reason="Task.cancelling() and uncancel() are 3.11+")
def test_a_fired_deadline_is_uncancelled() -> None:
    @hardy.timeout(0.01)
    async def slow() -> None:
        await asyncio.sleep(10)

    async def scenario() -> int:
        with pytest.raises(hardy.TimeoutError):
            await slow()
        task = asyncio.current_task()
        assert task is not None
        return task.cancelling()

    assert asyncio.run(scenario()) == 0


@pytest.mark.skipif(sys.version_info < (3, 11), reason="telling the two apart needs Task.uncancel() (3.11+)")
def test_a_cancellation_from_outside_after_our_deadline_fired_stays_a_cancellation() -> None:
    async def scenario() -> None:
        ours_arrived = asyncio.Event()
        external_sent = asyncio.Event()

        @hardy.timeout(0.01)
        async def slow() -> None:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                ours_arrived.set()
                with_shield = asyncio.ensure_future(external_sent.wait())
                await asyncio.shield(with_shield)  # the external cancel lands here
                raise

        task = asyncio.ensure_future(slow())
        await ours_arrived.wait()
        task.cancel()
        external_sent.set()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


async def _hog_the_loop() -> None:
    import time

    time.sleep(0.05)  # every deadline passes before the loop looks


def _found_late(outer: Any) -> str:
    """What a call of ``outer`` raises when its deadlines are all found passed in one turn of the loop."""

    async def scenario() -> str:
        task = asyncio.ensure_future(outer())
        await asyncio.sleep(0)
        await _hog_the_loop()
        try:
            await task
        except hardy.TimeoutError as error:
            return error.operation
        return "no timeout"

    return asyncio.run(scenario())


def test_nested_deadlines_found_late_report_the_innermost() -> None:
    @hardy.timeout(0.01, error_message="inner")
    async def inner() -> None:
        await asyncio.sleep(10)

    @hardy.timeout(0.011, error_message="outer")
    async def outer() -> None:
        await inner()

    assert _found_late(outer) == "inner"


def test_with_timeout_and_timed_functions_share_a_deadline_registry() -> None:
    # with_timeout and @timeout take their deadlines from the same core: nested
    # either way, the tightest reports, as between two @timeout functions.
    @hardy.timeout(0.01, error_message="inner")
    async def inner() -> None:
        await asyncio.sleep(10)

    async def around_a_timed_function() -> None:
        await hardy.with_timeout(inner(), 0.011, fallback_value=None)

    @hardy.timeout(0.011, error_message="outer")
    async def around_with_timeout() -> None:
        await hardy.with_timeout(asyncio.sleep(10), 0.01)

    assert _found_late(around_a_timed_function) == "inner"
    assert _found_late(around_with_timeout) == "coroutine"


def test_a_coroutine_driven_by_hand_is_refused() -> None:
    loop = asyncio.new_event_loop()
    coroutine = hardy.with_timeout(quick(1), 1.0)
    asyncio.events._set_running_loop(loop)
    try:
        with pytest.raises(RuntimeError, match="inside an asyncio task"):
            coroutine.send(None)
    finally:
        asyncio.events._set_running_loop(None)
        loop.close()
