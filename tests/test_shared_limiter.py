"""Rate limiters shared through a real Redis (``RateLimiter(..., store=RedisStore(...))``).

Several stores in one process stand for several processes; the rate and the
round trips are measured with real OS processes (``tests/shared_limit_worker.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import redis
import redis.asyncio

import hardy
from tests.redis_server import RedisServer
from tests.test_redis_store import evalsha_calls, wait_for

ROOT = Path(__file__).resolve().parent.parent
SHARED, FALLBACK = 1, 2  # the limiter's modes (hardy/policies/ratelimit.py)

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    port = os.environ.get("HARDY_TEST_REDIS_PORT")
    if port:
        borrowed = RedisServer(int(port))
        yield borrowed
        borrowed.close_clients()
        return
    own = RedisServer().start()
    yield own
    own.remove()


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    own = RedisServer().start()
    yield own
    own.remove()


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def stores() -> Iterator[Callable[..., hardy.RedisStore]]:
    made: list[hardy.RedisStore] = []

    def make(srv: RedisServer, prefix: str, **options: Any) -> hardy.RedisStore:
        store = hardy.RedisStore(srv.client(), prefix=prefix, **options)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


def outage_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.getMessage().startswith("Redis is unavailable")
    ]


# -- one limit for everyone ----------------------------------------------------------


def test_stores_share_one_rate(server, prefix, stores, clock):
    a = hardy.RateLimiter("api", rate=1, period=60.0, store=stores(server, prefix), clock=clock)
    b = hardy.RateLimiter("api", rate=1, period=60.0, store=stores(server, prefix), clock=clock)
    assert a.store is not None
    assert b.store is not None
    assert a.store is not b.store
    assert a.try_acquire()
    assert not b.try_acquire()  # the one permit of the minute is gone, for every process
    with pytest.raises(hardy.RateLimitExceededError) as info:
        b.acquire()
    assert 50.0 < info.value.retry_after <= 60.0  # the server's GCRA: the next permit is a minute away
    assert info.value.name == "api"
    assert b.get_stats()["rejections"] == 2
    assert a.get_stats()["admitted"] == 1
    other = hardy.RateLimiter("other", rate=1, period=60.0, store=stores(server, prefix), clock=clock)
    assert other.try_acquire()  # another name, another limit


def test_a_lease_serves_calls_without_round_trips(own_server, prefix, stores):
    limiter = hardy.RateLimiter("api", rate=10_000, store=stores(own_server, prefix))
    limited = limiter(lambda x: x * 2)
    before = evalsha_calls(own_server.client())
    assert [limited(i) for i in range(1_000)] == [i * 2 for i in range(1_000)]
    trips = evalsha_calls(own_server.client()) - before
    # Leases of 200 permits (20 ms of the rate): 5 round trips, and fewer than 10 whatever the timing.
    assert 1 <= trips < 10
    assert limiter.get_stats()["admitted"] == 1_000


def test_keys_carry_the_name_as_hash_tag_and_expire(server, prefix, stores):
    limiter = hardy.RateLimiter("api", rate=5, store=stores(server, prefix))
    assert limiter.try_acquire()
    client = server.client()
    key = f"{prefix}{{api}}:rate"
    assert client.type(key) == b"string"
    assert client.type(f"{key}:procs") == b"zset"
    assert 0 < client.pttl(key) <= 1000 + 200  # gone once the permits it counts are in the past
    assert 0 < client.pttl(f"{key}:procs") <= 60_000


def test_waiting_works_sync_and_async(server, prefix, stores):
    store = stores(server, prefix)
    limiter = hardy.RateLimiter("api", rate=100, burst=1, max_wait=1.0, store=store)
    for _ in range(5):
        limiter.acquire()  # each waits ~10 ms for the next permit, none is refused

    @limiter
    async def limited(i: int) -> int:
        return i

    async def main() -> list[int]:
        async with limiter:
            pass
        return list(await asyncio.gather(*(limited(i) for i in range(5))))

    assert asyncio.run(main()) == list(range(5))
    stats = limiter.get_stats()
    assert (stats["admitted"], stats["rejections"]) == (11, 0)

    impatient = hardy.RateLimiter("impatient", rate=100, burst=1, store=stores(server, prefix))

    async def refused() -> float:
        await impatient.acquire_async()
        try:
            await impatient.acquire_async()
        except hardy.RateLimitExceededError as exc:
            return exc.retry_after
        raise AssertionError("not refused")

    assert 0.0 < asyncio.run(refused()) <= 0.01 + 1e-6


def test_a_cancelled_waiter_leaves_the_limiter_working(server, prefix, stores):
    limiter = hardy.RateLimiter("api", rate=1, period=0.5, burst=1, max_wait=5.0, store=stores(server, prefix))
    assert limiter.try_acquire()

    async def main() -> None:
        waiter = asyncio.ensure_future(limiter.acquire_async())
        await asyncio.sleep(0.05)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await limiter.acquire_async()  # the next permit, about half a second on

    asyncio.run(main())
    assert limiter.get_stats()["admitted"] == 2


def test_the_registry_and_the_decorator_take_a_store(server, prefix, stores):
    store = stores(server, prefix)
    hardy.rate_limiters.clear()
    try:

        @hardy.rate_limit("geo", rate=5, store=store)
        def geocode() -> str:
            return "ok"

        assert geocode() == "ok"
        assert geocode.rate_limiter.store is store
        assert hardy.rate_limiters.get_or_create("geo", rate=5, store=store) is geocode.rate_limiter
        with pytest.raises(ValueError, match="already exists with other settings"):
            hardy.rate_limiters.get_or_create("geo", rate=5)
    finally:
        hardy.rate_limiters.clear()


def test_a_dropped_shared_limiter_is_freed_and_the_store_goes_on(server, prefix, stores):
    """The store holds its limiters weakly: one made per request and dropped does not stay alive with it."""
    import gc
    import weakref

    store = stores(server, prefix)
    kept = hardy.RateLimiter("kept", rate=100, period=1.0, store=store)
    dropped = hardy.RateLimiter("dropped", rate=100, period=1.0, store=store)
    assert dropped.try_acquire()
    ref = weakref.ref(dropped)
    del dropped
    gc.collect()
    assert ref() is None
    assert [limit.name for limit in store._limits] == ["kept"]
    assert kept.try_acquire()


def test_bad_stores_are_refused(server):
    with pytest.raises(TypeError, match=r"store must be a hardy\.RedisStore or None, got 'redis://x'"):
        hardy.RateLimiter("api", 5, store="redis://x")
    with pytest.raises(TypeError, match=r"store must be a hardy\.RedisStore"):
        hardy.rate_limit("api", rate=5, store=server.client())
    async_store = hardy.RedisStore(redis.asyncio.Redis(port=server.port))
    with pytest.raises(TypeError, match="has an asyncio client; a shared rate limiter needs a blocking one"):
        hardy.RateLimiter("api", 5, store=async_store)


def test_a_key_of_another_type_makes_the_limiter_local_with_one_warning(server, prefix, stores, caplog, clock):
    server.client().hset(f"{prefix}{{api}}:rate", "x", "1")
    limiter = hardy.RateLimiter("api", rate=2, period=60.0, store=stores(server, prefix), clock=clock)
    assert [limiter.try_acquire() for _ in range(3)] == [True, True, False]  # its own share (all of it)
    unusable = [r for r in caplog.records if "cannot be used" in r.getMessage()]
    assert len(unusable) == 1
    assert "rate limiter 'api'" in unusable[0].getMessage()
    assert server.client().hget(f"{prefix}{{api}}:rate", "x") == b"1"  # left alone


# -- Redis away ----------------------------------------------------------------------


def test_redis_down_falls_back_to_the_local_share_and_recovers(own_server, prefix, stores, caplog, clock):
    first = stores(own_server, prefix, sync_interval=0.05)
    second = stores(own_server, prefix, sync_interval=0.05)
    a = hardy.RateLimiter("api", rate=10, period=1.0, store=first, clock=clock)
    b = hardy.RateLimiter("api", rate=10, period=1.0, store=second, clock=clock)
    # A lease each (one permit at this rate), then one more for a: each has seen two processes.
    assert [a.try_acquire(), b.try_acquire(), a.try_acquire()] == [True, True, True]
    own_server.stop()
    with caplog.at_level(logging.INFO, logger="hardy.redis"):
        wait_for(lambda: a._share_mode() == FALLBACK and b._share_mode() == FALLBACK, seconds=5)
        # Each process now has half the rate and half the burst: 5 at once, then 5 a second.
        assert [a.try_acquire() for _ in range(6)] == [True] * 5 + [False]
        with pytest.raises(hardy.RateLimitExceededError) as info:
            a.acquire()
        assert info.value.retry_after == pytest.approx(0.2)
        clock.now += 0.2
        assert a.try_acquire()
        for _ in range(200):  # no call fails with a Redis error, and no more warnings
            b.try_acquire()
            clock.now += 0.001
        assert len([w for w in outage_warnings(caplog) if "rate limiters ['api']" in w]) == 2  # one per store
        own_server.start()
        wait_for(lambda: a._share_mode() == SHARED and b._share_mode() == SHARED, seconds=15)
        before = evalsha_calls(own_server.client())
        clock.now += 10.0
        assert a.try_acquire()
        assert evalsha_calls(own_server.client()) == before + 1  # a lease from Redis again
        assert len(outage_warnings(caplog)) == 2


def test_a_limiter_made_while_redis_is_unreachable_works_locally(prefix, caplog, clock):
    store = hardy.RedisStore(redis.Redis(port=RedisServer().port), prefix=prefix)
    try:
        limiter = hardy.RateLimiter("api", rate=3, period=60.0, store=store, clock=clock)
        assert [limiter.try_acquire() for _ in range(4)] == [True, True, True, False]
        wait_for(lambda: len(outage_warnings(caplog)) == 1, seconds=5)
    finally:
        store.close()


# -- several OS processes ------------------------------------------------------------------


class Worker:
    def __init__(self, core: ModuleType, port: int, prefix: str, rate: float, burst: int, max_wait: float) -> None:
        env = dict(os.environ)
        env.pop("HARDY_NO_EXTENSIONS", None)
        if core.IMPLEMENTATION == "py":
            env["HARDY_NO_EXTENSIONS"] = "1"
        args = [str(port), prefix, "api", str(rate), str(burst), str(max_wait)]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.shared_limit_worker", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            env=env,
            text=True,
        )
        assert self.read() == {"ready": core.IMPLEMENTATION}

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def read(self) -> Any:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, "the worker died"
        return json.loads(line)

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError):
            self.send("quit")
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def workers(core: ModuleType) -> Iterator[Callable[..., list[Worker]]]:
    started: list[Worker] = []

    def start(count: int, port: int, prefix: str, rate: float, burst: int, max_wait: float) -> list[Worker]:
        new = [Worker(core, port, prefix, rate, burst, max_wait) for _ in range(count)]
        started.extend(new)
        return new

    yield start
    for worker in started:
        worker.close()


def test_processes_together_stay_within_the_rate_with_few_round_trips(own_server, prefix, workers):
    rate = 4000.0
    procs = workers(4, own_server.port, prefix, rate=rate, burst=200, max_wait=0.5)
    start = time.time() + 0.5
    warm, end = start + 1.0, start + 4.0
    for i, w in enumerate(procs):  # two spin on try_acquire(), two call a limited function that waits
        w.send(f"run {start} {warm} {end} {'try' if i % 2 else 'call'}")
    time.sleep(max(0.0, warm - time.time()))
    before = evalsha_calls(own_server.client())
    time.sleep(max(0.0, end - time.time()))
    trips = evalsha_calls(own_server.client()) - before
    results = [w.read() for w in procs]
    assert all(r["errors"] == [] for r in results), results
    permits = sum(r["permits"] for r in results)
    calls = sum(r["calls"] for r in results)
    assert abs(permits / (end - warm) - rate) <= 0.05 * rate, (permits, results)
    assert trips / calls <= 0.05, (trips, calls)
    assert trips / permits <= 0.05, (trips, permits)  # leases of 80 permits: about 0.0125


def test_processes_keep_working_while_redis_restarts(own_server, prefix, workers):
    procs = workers(2, own_server.port, prefix, rate=1000.0, burst=50, max_wait=0.0)
    start = time.time() + 0.3
    for w in procs:
        w.send(f"run {start} {start} {start + 2.0} try")
    time.sleep(max(0.0, start + 0.5 - time.time()))
    own_server.restart()
    results = [w.read() for w in procs]
    assert all(r["errors"] == [] for r in results), results  # no call failed because Redis was away
    assert all(r["permits"] > 0 for r in results)
    for w in procs:
        deadline = time.monotonic() + 15
        while w.send("mode") or w.read() != SHARED:
            assert time.monotonic() < deadline, "did not share again"
            time.sleep(0.05)


# -- user code on the slow path, fork ---------------------------------------------------


def test_a_clock_that_raises_on_the_slow_path_raises_to_the_caller(server, prefix, stores):
    class Stop(BaseException):
        pass

    readings = iter([1000.0, 1000.0])

    def clock() -> float:
        try:
            return next(readings)
        except StopIteration:
            raise Stop("clock gone") from None

    limiter = hardy.RateLimiter("api", rate=5, store=stores(server, prefix), clock=clock)
    with pytest.raises(Stop, match="clock gone"):
        limiter.acquire()  # a reading on the slow path (around the round trip) raises: the call sees it
    readings = iter([2000.0] * 10)
    assert limiter.try_acquire()  # the limiter still works (no lock left held)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_drops_the_lease_it_inherited(server, prefix, stores):
    limiter = hardy.RateLimiter("api", rate=10_000, store=stores(server, prefix))
    assert limiter.try_acquire()
    assert limiter.available == 199  # the rest of a lease of 200
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork() of a threaded process
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            before = evalsha_calls(server.client())
            took = limiter.try_acquire()
            code = 0 if took and evalsha_calls(server.client()) == before + 1 else 1  # a lease of its own
        finally:
            os.write(write, bytes([code]))
            os._exit(0)
    assert os.read(read, 1) == b"\x00"
    os.waitpid(pid, 0)
    os.close(read)
    os.close(write)
    assert limiter.available == 199  # the parent keeps its own


# -- the lease decisions, with plain numbers (hardy/policies/ratelimit.py) --------------


def test_lease_policy_arithmetic() -> None:
    from hardy.policies import ratelimit as policy

    state = policy.RateLimiterState()
    policy.ratelimit_configure(state, 0.001, 100)  # 1,000 per second, a burst of 100
    assert policy.ratelimit_lease_size(state) == 20  # 20 ms of the rate
    assert policy.ratelimit_lease_next(state, 10.0, 0.0) == policy.RL_NOT_SHARED
    policy.ratelimit_share(state, policy.RL_SHARED, 1)
    assert policy.ratelimit_take(state, 10.0, 0.0) == policy.RL_ASK_STORE  # no lease yet
    assert policy.ratelimit_available(state, 10.0) == 20  # a lease's worth: the next call asks
    policy.ratelimit_lease_grant(state, 10.0, 2, 0.5)  # two permits, usable from 10.5
    assert policy.ratelimit_available(state, 10.0) == 0
    assert policy.ratelimit_take(state, 10.0, 0.0) == pytest.approx(-0.5)  # refused: counted
    assert policy.ratelimit_take(state, 10.0, 1.0) == policy.RL_ASK_STORE  # the dispatch waits for it
    assert policy.ratelimit_lease_next(state, 10.0, 1.0) == pytest.approx(0.5)
    assert policy.ratelimit_take(state, 10.5, 0.0) == 0.0
    assert policy.ratelimit_available(state, 10.5) == 1
    assert policy.ratelimit_take(state, 10.5, 0.0) == 0.0
    assert policy.ratelimit_take(state, 10.5, 0.0) == policy.RL_ASK_STORE  # spent
    policy.ratelimit_lease_grant(state, 11.0, 5, 0.0)
    assert policy.ratelimit_take(state, 11.0 + 0.5, 0.0) == policy.RL_ASK_STORE  # expired: thrown away
    assert state._leased == 0
    assert (state._admitted, state._rejected) == (2, 1)
    policy.ratelimit_lease_grant(state, 12.0, 5, 0.0)
    policy.ratelimit_share(state, policy.RL_FALLBACK, 4)  # a quarter of the rate and of the burst
    assert state._leased == 0
    assert [policy.ratelimit_take(state, 12.0, 0.0) for _ in range(26)][-2:] == [0.0, pytest.approx(-0.004)]
    assert int(policy.ratelimit_available(state, 12.0)) == 0  # a fraction: the dispatch rounds down
    policy.ratelimit_lease_grant(state, 12.0, 5, 0.0)  # a late answer after the fallback: ignored
    assert state._leased == 0
    policy.ratelimit_share(state, policy.RL_SHARED, 4)
    assert policy.ratelimit_take(state, 12.0, 0.0) == policy.RL_ASK_STORE
    policy.ratelimit_share(state, policy.RL_FALLBACK, 4)  # the store flaps: no second burst of the share
    assert policy.ratelimit_take(state, 12.0, 0.0) == pytest.approx(-0.004)
    assert policy.ratelimit_take(state, 12.004, 0.0) == 0.0  # the share refills at its rate
    state = policy.RateLimiterState()
    policy.ratelimit_configure(state, 10.0, 3)  # slow: one permit per lease; a tiny burst
    assert policy.ratelimit_lease_size(state) == 1
    policy.ratelimit_configure(state, 1e-9, 7)
    assert policy.ratelimit_lease_size(state) == 7  # never more than the burst
