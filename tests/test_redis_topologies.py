"""Breakers and rate limiters on a real Redis Cluster (three masters) and through a Sentinel failover.

The servers are started by the fixtures (``tests/redis_server.py``) on
loopback ports, each wait bounded, and stopped on teardown.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis.asyncio.cluster

import hardy
from tests.redis_server import RedisCluster, RedisSentinel
from tests.test_redis_store import wait_for

pytestmark = pytest.mark.redis
SHARED, FALLBACK = 1, 2  # a limiter spending leases, or on its local share (hardy/policies/ratelimit.py)


def _answers(client: redis.Redis) -> bool:
    """Whether ``client`` reaches a master now (a Sentinel may name none for a while after a failover)."""
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisCluster]:
    started = RedisCluster().start()
    yield started
    started.stop()


@pytest.fixture
def sentinel() -> Iterator[RedisSentinel]:
    started = RedisSentinel().start()  # function scope: the test kills its master
    yield started
    started.stop()


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def stores() -> Iterator[Callable[..., hardy.RedisStore]]:
    made: list[hardy.RedisStore] = []

    def make(client: Any, prefix: str) -> hardy.RedisStore:
        store = hardy.RedisStore(client, prefix=prefix, sync_interval=0.05)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


def fail(breaker: hardy.CircuitBreaker) -> None:
    with pytest.raises(ZeroDivisionError):
        breaker.call(lambda: 1 / 0)


# -- Redis Cluster -------------------------------------------------------------------


NAMES = [f"dep-{i}" for i in range(8)]  # spread over the three masters' slots


def test_cluster_breakers_share_their_circuits(cluster, prefix, stores):
    first, second = stores(cluster.client(), prefix), stores(cluster.client(), prefix)
    slots = {cluster.client().keyslot(f"{prefix}{{{name}}}") for name in NAMES}
    nodes = {cluster.client().nodes_manager.get_node_from_slot(slot).port for slot in slots}
    assert len(nodes) > 1  # the names really live on several masters
    mine = {name: hardy.CircuitBreaker(name, failure_threshold=2, reset_timeout=60, store=first) for name in NAMES}
    theirs = {name: hardy.CircuitBreaker(name, failure_threshold=2, reset_timeout=60, store=second) for name in NAMES}
    for name in NAMES:
        fail(mine[name])
        fail(theirs[name])  # the second failure, in the other process: the shared count opens it
    for name in NAMES:
        wait_for(lambda name=name: mine[name].is_open and theirs[name].is_open, seconds=5)
    theirs[NAMES[0]].reset()
    wait_for(lambda: not mine[NAMES[0]].is_open, seconds=5)  # by pub/sub or the re-read, from any node
    assert first.available
    assert second.available


def test_cluster_keys_of_one_name_share_a_slot(cluster, prefix, stores):
    store = stores(cluster.client(), prefix)
    client = cluster.client()
    breaker = hardy.CircuitBreaker("payments", failure_threshold=1, store=store)
    fail(breaker)
    limiter = hardy.RateLimiter("payments", rate=5, store=store)
    assert limiter.try_acquire()
    keys = [f"{prefix}{{payments}}", f"{prefix}{{payments}}:permits", f"{prefix}{{payments}}:rate"]
    keys.append(f"{prefix}{{payments}}:rate:procs")
    assert len({client.keyslot(key) for key in keys}) == 1
    assert client.exists(keys[0], keys[2], keys[3]) == 3


def test_cluster_rate_limiters_share_one_rate_per_name(cluster, prefix, stores, clock):
    first, second = stores(cluster.client(), prefix), stores(cluster.client(), prefix)
    for name in NAMES:
        a = hardy.RateLimiter(name, rate=2, period=60.0, store=first, clock=clock)
        b = hardy.RateLimiter(name, rate=2, period=60.0, store=second, clock=clock)
        assert [a.try_acquire(), b.try_acquire(), a.try_acquire(), b.try_acquire()] == [True, True, False, False]
        assert a._share_mode() == SHARED
        assert b._share_mode() == SHARED


def test_a_cluster_that_goes_away_fails_no_call(prefix, stores, caplog, clock):
    own = RedisCluster().start()
    try:
        store = stores(own.client(socket_timeout=0.1, socket_connect_timeout=0.1), prefix)
        breaker = hardy.CircuitBreaker("db", failure_threshold=2, reset_timeout=60, store=store)
        limiter = hardy.RateLimiter("api", rate=4, period=60.0, store=store, clock=clock)
        assert limiter.try_acquire()
        fail(breaker)
    finally:
        own.stop()
    # Every node gone: redis-py's cluster client raises its own errors, which are outages too.
    fail(breaker)
    wait_for(lambda: breaker.is_open, seconds=5)  # its local count reached the threshold
    results = [limiter.try_acquire() for _ in range(6)]
    assert results.count(True) >= 1
    assert limiter._share_mode() == FALLBACK
    assert not store.available
    assert any(r.getMessage().startswith("Redis is unavailable") for r in caplog.records)


def test_cluster_async_client_shares_the_circuit(cluster, prefix, stores):
    async def scenario() -> None:
        sync_side = {
            name: hardy.CircuitBreaker(name, failure_threshold=1, store=stores(cluster.client(), prefix))
            for name in NAMES
        }
        client = redis.asyncio.cluster.RedisCluster(host="127.0.0.1", port=cluster.ports[0])
        store = hardy.RedisStore(client, prefix=prefix, sync_interval=0.05)
        breakers = {name: hardy.CircuitBreaker(name, failure_threshold=1, store=store) for name in NAMES}
        await asyncio.sleep(0.1)  # the store's task starts and reads every breaker, one script each
        for name in NAMES:
            fail(sync_side[name])
        deadline = time.monotonic() + 5
        while not all(b.is_open for b in breakers.values()):
            assert time.monotonic() < deadline, "the async side did not see the circuits open"
            await asyncio.sleep(0.01)
        assert store.available
        await store.aclose()
        await client.aclose()

    asyncio.run(scenario())


# -- Sentinel failover ---------------------------------------------------------------


def test_sentinel_failover_loses_no_call_and_keeps_the_circuit_and_the_limit(sentinel, prefix, stores):
    first, second = stores(sentinel.client(), prefix), stores(sentinel.client(), prefix)
    breakers = [hardy.CircuitBreaker("db", failure_threshold=2, reset_timeout=60, store=s) for s in (first, second)]
    limiters = [hardy.RateLimiter("api", rate=1, period=60.0, store=s) for s in (first, second)]
    fail(breakers[0])
    fail(breakers[1])  # open, in Redis
    assert limiters[0].try_acquire()  # the one permit of the minute, in Redis
    wait_for(lambda: all(b.is_open for b in breakers), seconds=5)
    assert sentinel.master.client().wait(1, 2000) == 1  # replicated before the master dies

    outcomes: Counter[str] = Counter()
    stop = threading.Event()

    def calls(breaker: hardy.CircuitBreaker, limiter: hardy.RateLimiter) -> None:
        while not stop.is_set():
            for call in (lambda: breaker.call(lambda: None), limiter.acquire):
                try:
                    call()
                    outcomes["ok"] += 1
                except (hardy.CircuitOpenError, hardy.RateLimitExceededError):
                    outcomes["refused"] += 1
                except BaseException as exc:  # a Redis error that reached a call
                    outcomes[f"error: {exc!r}"] += 1
            time.sleep(0.002)

    threads = [threading.Thread(target=calls, args=pair, daemon=True) for pair in zip(breakers, limiters, strict=True)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    sentinel.kill_master()
    sentinel.wait_failover()
    wait_for(lambda: all(lim._share_mode() == SHARED for lim in limiters), seconds=20)
    time.sleep(0.2)
    stop.set()
    for thread in threads:
        thread.join(10)
    assert [key for key in outcomes if key.startswith("error")] == [], outcomes
    assert outcomes["refused"] > 0
    # The circuit stayed open throughout (no breaker call passed); each process's local share of the
    # limit during the outage is one permit (half the rate, a burst of one): at most two calls passed.
    assert outcomes["ok"] <= 2, outcomes

    # A process that starts after the failover finds the circuit open and the minute's permits taken
    # (at most one extra burst went to each process while it ran on its local share).
    # Its client waits longer than the calls' 0.1 s, and it starts once the Sentinel names a master
    # that answers: on a loaded machine that can take a while after the failover, and until then
    # redis-py reports no master (an outage for the store, which would decide locally).
    late_client = sentinel.client(timeout=2.0)
    wait_for(lambda: _answers(late_client), seconds=20)
    late = stores(late_client, prefix)
    assert hardy.CircuitBreaker("db", failure_threshold=2, reset_timeout=60, store=late).is_open
    assert not hardy.RateLimiter("api", rate=1, period=60.0, store=late).try_acquire()
    assert all(b.is_open for b in breakers)
