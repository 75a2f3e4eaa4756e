"""Bulkheads on both cores: limits under threads and tasks, waiting, misuse."""

from __future__ import annotations

import asyncio
import pickle
import threading
from collections.abc import Callable
from typing import Any

import pytest

import hardy
from tests.conftest import FakeClock
from tests.threads import run_threads, switching_often


class Gauge:
    """Counts the calls inside at once and remembers the highest count."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inside = 0
        self.peak = 0

    def enter(self) -> None:
        with self.lock:
            self.inside += 1
            self.peak = max(self.peak, self.inside)

    def leave(self) -> None:
        with self.lock:
            self.inside -= 1


def test_bulkhead_full_error_is_a_hardy_error() -> None:
    exc = hardy.BulkheadFullError("db", 4, 0.5)
    assert isinstance(exc, hardy.HardyError)
    assert (exc.name, exc.max_concurrent, exc.max_wait) == ("db", 4, 0.5)
    assert "db" in str(exc)
    assert "0.5s" in str(exc)
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is hardy.BulkheadFullError
    assert again.args == exc.args


def test_decorator_rejects_over_the_limit_and_frees_the_slot() -> None:
    pool = hardy.Bulkhead("db", 1)
    seen: list[Any] = []

    @pool
    def inner(x: int) -> int:
        with pytest.raises(hardy.BulkheadFullError) as info:
            inner(x)
        seen.append(info.value)
        return x * 2

    assert inner(21) == 42
    assert seen[0].name == "db"
    assert seen[0].max_wait == 0.0
    stats = pool.get_stats()
    assert stats["active"] == 0
    assert stats["admitted"] == 1
    assert stats["rejections"] == 1
    assert stats["peak"] == 1
    assert inner.bulkhead is pool  # type: ignore[attr-defined]
    assert inner.__name__ == "inner"


def test_user_exceptions_keep_their_type_and_free_the_slot() -> None:
    pool = hardy.Bulkhead("db", 1)

    class Boom(BaseException):
        pass

    @pool
    def fail() -> None:
        raise Boom("x")

    with pytest.raises(Boom) as info:
        fail()
    assert info.value.args == ("x",)
    assert info.traceback[-1].name == "fail"
    assert pool.active == 0
    assert pool.try_acquire()


def test_by_hand_and_context_manager() -> None:
    pool = hardy.Bulkhead("db", 2)
    assert pool.try_acquire()
    pool.acquire()
    assert (pool.active, pool.available) == (2, 0)
    assert not pool.try_acquire()
    with pytest.raises(hardy.BulkheadFullError):
        pool.acquire()
    with pytest.raises(hardy.BulkheadFullError), pool:
        pass
    pool.release()
    with pool as entered:
        assert entered is pool
        assert pool.active == 2
    pool.release()
    assert pool.get_stats()["rejections"] == 3
    with pytest.raises(RuntimeError, match="without a matching acquire"):
        pool.release()


def test_release_by_the_guarded_function_is_misuse() -> None:
    pool = hardy.Bulkhead("db", 1)

    @pool
    def sneaky() -> None:
        pool.release()

    with pytest.raises(RuntimeError, match="without a matching acquire"):
        sneaky()
    assert pool.active == 0


def test_async_with_and_async_decorator() -> None:
    pool = hardy.Bulkhead("db", 1)

    @pool
    async def work(x: int) -> int:
        assert pool.active == 1
        await asyncio.sleep(0)
        return x + 1

    async def main() -> None:
        assert await work(1) == 2
        async with pool:
            with pytest.raises(hardy.BulkheadFullError):
                await work(1)
        assert pool.active == 0

    asyncio.run(main())


def test_eight_threads_never_exceed_the_limit() -> None:
    pool = hardy.Bulkhead("db", 3, max_wait=30.0)
    gauge = Gauge()
    start = threading.Barrier(8)

    @pool
    def work() -> None:
        gauge.enter()
        threading.Event().wait(0.0005)
        gauge.leave()

    def run() -> None:
        start.wait()
        for _ in range(200):
            work()

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert gauge.peak == 3  # reached, never passed
    stats = pool.get_stats()
    assert stats["admitted"] == 1600
    assert stats["rejections"] == 0
    assert stats["active"] == 0
    assert stats["waiting"] == 0
    assert stats["peak"] == 3
    assert stats["waited"] > 0


def test_decorated_calls_from_threads_switching_at_every_chance_never_exceed_the_limit() -> None:
    """The decorator enters and leaves without the lock under the GIL (the twin): with threads switching as
    often as the interpreter can, no slot is handed out twice or lost."""
    pool = hardy.Bulkhead("db", 2, max_wait=60.0)
    gauge = Gauge()

    @pool
    def work() -> None:
        gauge.enter()
        gauge.leave()

    def run() -> None:
        for _ in range(10000):
            work()  # a slot given back twice raises RuntimeError

    with switching_often():
        errors = run_threads(run, 6)
    assert errors == []
    assert gauge.peak <= 2
    stats = pool.get_stats()
    assert stats["admitted"] == 60000
    assert (stats["active"], stats["waiting"], stats["rejections"]) == (0, 0, 0)


def test_thousand_tasks_never_exceed_the_limit() -> None:
    pool = hardy.Bulkhead("db", 10, max_wait=60.0)
    gauge = Gauge()

    @pool
    async def work() -> None:
        gauge.enter()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        gauge.leave()

    async def main() -> None:
        await asyncio.gather(*(work() for _ in range(1000)))

    asyncio.run(main())
    assert gauge.peak == 10
    stats = pool.get_stats()
    assert stats["admitted"] == 1000
    assert stats["active"] == 0
    assert stats["waiting"] == 0
    assert stats["waited"] == 990  # all but the first ten were handed a slot, in order


def test_waiters_are_served_first_come_first_served() -> None:
    pool = hardy.Bulkhead("db", 1, max_wait=60.0)
    order: list[int] = []

    async def one(i: int) -> None:
        async with pool:
            order.append(i)
            await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(*(one(i) for i in range(50)))

    asyncio.run(main())
    assert order == list(range(50))


def test_cancelled_task_never_leaks_a_slot() -> None:
    pool = hardy.Bulkhead("db", 1, max_wait=60.0)

    async def main() -> None:
        await pool.acquire_async()
        waiter = asyncio.ensure_future(pool.acquire_async())
        await asyncio.sleep(0)
        assert pool.waiting == 1
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert pool.waiting == 0
        # A waiter cancelled after it was handed the slot passes it on.
        second = asyncio.ensure_future(pool.acquire_async())
        third = asyncio.ensure_future(pool.acquire_async())
        await asyncio.sleep(0)
        pool.release()  # hands the slot to `second`, which is then cancelled
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
        await third  # got the slot `second` passed on
        assert pool.active == 1
        pool.release()

    asyncio.run(main())
    assert (pool.active, pool.waiting) == (0, 0)
    assert pool.try_acquire()


def test_async_wait_runs_out_with_an_injected_clock(clock: FakeClock) -> None:
    pool = hardy.Bulkhead("db", 1, max_wait=5.0, clock=clock)

    async def main() -> None:
        await pool.acquire_async()
        waiter = asyncio.ensure_future(pool.acquire_async())
        for _ in range(3):
            await asyncio.sleep(0.01)
        assert not waiter.done()
        clock.advance(5.0)
        with pytest.raises(hardy.BulkheadFullError) as info:
            await waiter
        assert info.value.max_wait == 5.0
        pool.release()

    asyncio.run(main())
    stats = pool.get_stats()
    assert (stats["active"], stats["waiting"], stats["rejections"]) == (0, 0, 1)


def test_thread_wait_runs_out_with_an_injected_clock(clock: FakeClock) -> None:
    pool = hardy.Bulkhead("db", 1, max_wait=2.0, clock=clock)
    pool.acquire()
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            pool.acquire()
        except hardy.BulkheadFullError as exc:
            errors.append(exc)

    thread = threading.Thread(target=wait)
    thread.start()
    while pool.waiting == 0:
        threading.Event().wait(0.001)
    clock.advance(2.0)
    thread.join(30)
    assert len(errors) == 1
    assert pool.waiting == 0
    assert pool.active == 1
    pool.release()
    assert pool.active == 0


def test_thread_waiter_is_handed_the_slot() -> None:
    pool = hardy.Bulkhead("db", 1, max_wait=30.0)
    pool.acquire()
    got = threading.Event()

    def wait() -> None:
        with pool:
            got.set()

    thread = threading.Thread(target=wait)
    thread.start()
    while pool.waiting == 0:
        threading.Event().wait(0.001)
    pool.release()
    thread.join(30)
    assert got.is_set()
    assert pool.active == 0
    assert pool.get_stats()["waited"] == 1


def test_interrupted_thread_waiter_never_leaks_a_slot() -> None:
    # The clock is read while waiting: raising from it stands for an
    # interrupt (KeyboardInterrupt) arriving during the wait.
    readings = {"n": 0, "raise_at": 10**9}

    def clock() -> float:
        readings["n"] += 1
        if readings["n"] >= readings["raise_at"]:
            raise KeyboardInterrupt
        return float(readings["n"])

    pool = hardy.Bulkhead("db", 1, max_wait=1e9, clock=clock)
    pool.acquire()
    readings["raise_at"] = readings["n"] + 3
    with pytest.raises(KeyboardInterrupt):
        pool.acquire()
    assert (pool.active, pool.waiting) == (1, 0)
    readings["raise_at"] = 10**9
    pool.release()
    assert pool.try_acquire()


def test_registry_and_names() -> None:
    @hardy.bulkhead("shared", max_concurrent=2)
    def one() -> None: ...

    @hardy.bulkhead("shared", max_concurrent=2)
    def two() -> None: ...

    assert one.bulkhead is two.bulkhead is hardy.get_bulkhead("shared")  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="already exists with other settings"):
        hardy.bulkhead("shared", max_concurrent=3)(lambda: None)

    @hardy.bulkhead
    def bare() -> None: ...

    assert bare.bulkhead.name == f"{__name__}.test_registry_and_names.<locals>.bare"  # type: ignore[attr-defined]
    assert set(hardy.bulkheads.all()) == {"shared", bare.bulkhead.name}  # type: ignore[attr-defined]
    manual = hardy.bulkheads.register(hardy.Bulkhead("manual", 1))
    with pytest.raises(ValueError, match="already registered"):
        hardy.bulkheads.register(hardy.Bulkhead("manual", 1))
    assert hardy.bulkheads.remove("manual") is manual


class Holder:
    @hardy.bulkhead("static", max_concurrent=1)
    @staticmethod
    def static(x: int) -> int:
        return x

    @hardy.bulkhead("method", max_concurrent=1)
    def method(self, x: int) -> int:
        return x


def test_methods() -> None:
    assert Holder.static(3) == 3
    assert Holder().static(4) == 4
    assert Holder().method(5) == 5


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"name": ""}, ValueError, "name must not be empty"),
        ({"name": 3}, TypeError, "name must be a str"),
        ({"max_concurrent": 0}, ValueError, "max_concurrent must be between 1"),
        ({"max_concurrent": True}, TypeError, "max_concurrent must be an int"),
        ({"max_concurrent": 2.0}, TypeError, "max_concurrent must be an int"),
        ({"max_wait": -1}, ValueError, "max_wait must be a finite number >= 0"),
        ({"max_wait": float("nan")}, ValueError, "max_wait"),
        ({"max_wait": "1"}, TypeError, "max_wait must be a number of seconds"),
        ({"clock": lambda: "x"}, TypeError, "clock must return a number"),
        ({"clock": 5}, TypeError, "clock"),
    ],
)
def test_bad_settings_are_reported_where_they_are_passed(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    settings: dict[str, Any] = {"name": "db", "max_concurrent": 2, **kwargs}
    with pytest.raises(error, match=match):
        hardy.Bulkhead(**settings)
    if "clock" not in settings:
        with pytest.raises(error, match=match):
            hardy.bulkhead(**settings)


def test_misuse_of_the_objects() -> None:
    pool = hardy.Bulkhead("db", 1)
    with pytest.raises(RuntimeError, match="already initialised"):
        pool.__init__("db", 2)  # type: ignore[misc]
    with pytest.raises(TypeError, match="cannot pickle"):
        pickle.dumps(pool)
    blank = hardy.Bulkhead.__new__(hardy.Bulkhead)
    for method in (blank.acquire, blank.try_acquire, blank.release, blank.get_stats):
        with pytest.raises(TypeError, match="without calling __init__"):
            method()
    with pytest.raises(TypeError, match="bulkhead must be a Bulkhead"):
        hardy._core.guard_bulkhead(object(), len)
    with pytest.raises(TypeError, match="func must be callable"):
        pool(3)  # type: ignore[arg-type]


def test_internal_types_cannot_be_instantiated(core: Any) -> None:
    guarded: Callable[..., Any] = hardy.Bulkhead("db", 1)(len)
    if core.IMPLEMENTATION == "c":
        with pytest.raises(TypeError):
            type(guarded)()
    assert guarded("ab") == 2


def test_health_check_reports_full_bulkheads() -> None:
    from hardy.health.defaults import bulkheads_check

    pool = hardy.bulkheads.get_or_create("db", max_concurrent=1)
    assert bulkheads_check()["status"] is hardy.HealthStatus.HEALTHY
    pool.acquire()
    assert not pool.try_acquire()
    result = bulkheads_check()
    assert result["status"] is hardy.HealthStatus.DEGRADED
    assert result["bulkheads"]["db"] == {"active": 1, "max_concurrent": 1, "waiting": 0, "rejections": 1}
    assert "db (1/1, 0 waiting)" in result["message"]
    pool.release()
    assert bulkheads_check()["status"] is hardy.HealthStatus.HEALTHY


def test_policy_counts_and_hands_off() -> None:
    from hardy.policies import bulkhead as policy

    state = policy.BulkheadState()
    policy.bulkhead_configure(state, 2)
    assert policy.bulkhead_enter(state)
    assert policy.bulkhead_enter(state)
    assert not policy.bulkhead_enter_or_queue(state)  # full: now waiting
    assert (state._active, state._waiting) == (2, 1)
    assert not policy.bulkhead_leave_alone(state)  # a waiter: the slow way
    assert policy.bulkhead_leave(state) == policy.HAND_OFF
    assert (state._active, state._waiting, state._waited) == (2, 0, 1)
    assert not policy.bulkhead_enter(state)
    assert policy.bulkhead_leave_alone(state)
    assert policy.bulkhead_leave(state) == policy.LEFT
    assert policy.bulkhead_leave(state) == policy.NOT_INSIDE
    assert not policy.bulkhead_leave_alone(state)
    assert (state._active, state._admitted, state._peak) == (0, 3, 2)


@pytest.mark.parametrize("core", [pytest.param("c", marks=pytest.mark.c_extension)], indirect=True)
def test_both_cores_agree_on_random_sequences(core: Any) -> None:
    # Holds one bulkhead of each core itself: pinned to one run, which needs the compiled core.
    import random

    from hardy import _core

    rng = random.Random(19)
    pools = [_core.load(name).Bulkhead("same", 3) for name in ("c", "py")]
    for _ in range(2000):
        op = rng.choice(("try", "try", "release", "acquire"))
        outcomes = []
        for pool in pools:
            try:
                if op == "try":
                    outcomes.append(pool.try_acquire())
                elif op == "acquire":
                    pool.acquire()
                    outcomes.append("ok")
                else:
                    pool.release()
                    outcomes.append("ok")
            except (hardy.BulkheadFullError, RuntimeError) as exc:
                outcomes.append(type(exc).__name__)
        assert outcomes[0] == outcomes[1]
        assert pools[0].get_stats() == pools[1].get_stats()


def test_waits_running_out_while_slots_are_handed_over_lose_nothing() -> None:
    # Short waits race with hand-offs: every call is admitted or rejected,
    # exactly once, and the bulkhead ends empty.
    pool = hardy.Bulkhead("db", 2, max_wait=0.0003)
    gauge = Gauge()
    start = threading.Barrier(8)
    outcomes: list[int] = [0, 0]
    lock = threading.Lock()

    def run() -> None:
        start.wait()
        for _ in range(300):
            try:
                with pool:
                    gauge.enter()
                    threading.Event().wait(0.0001)
                    gauge.leave()
                index = 0
            except hardy.BulkheadFullError:
                index = 1
            with lock:
                outcomes[index] += 1

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    stats = pool.get_stats()
    assert gauge.peak <= 2
    assert (stats["active"], stats["waiting"]) == (0, 0)
    assert stats["admitted"] == outcomes[0]
    assert stats["rejections"] == outcomes[1]
    assert sum(outcomes) == 2400
    assert pool.try_acquire()
    assert pool.try_acquire()
    assert not pool.try_acquire()
