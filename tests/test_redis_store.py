"""Breakers shared through a real Redis: several stores in one process stand
for several processes, and the multi-process tests use real OS processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
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
from hardy.store import Op
from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    """The Redis that ``.ci/run`` started, or one of our own."""
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
    """A Redis this test may stop and restart."""
    own = RedisServer().start()
    yield own
    own.remove()


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def stores() -> Iterator[list[hardy.RedisStore]]:
    made: list[hardy.RedisStore] = []
    yield made
    for store in made:
        store.close()


def make_store(
    made: list[hardy.RedisStore], srv: RedisServer, prefix: str, client: Any = None, **options: Any
) -> hardy.RedisStore:
    store = hardy.RedisStore(client or srv.client(), prefix=prefix, **options)
    made.append(store)
    return store


def boom() -> None:
    raise ValueError("dependency down")


def fail(breaker: hardy.CircuitBreaker) -> None:
    with pytest.raises(ValueError, match="dependency down"):
        breaker.call(boom)


def wait_for(predicate: Callable[[], bool], seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def evalsha_calls(client: redis.Redis) -> int:
    """Scripts run to the end (a NOSCRIPT answer, before the script is loaded, is not one)."""
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0)) - int(stats.get("failed_calls", 0))


# -- one circuit for everyone -------------------------------------------------------


def test_failures_spread_over_processes_open_the_circuit_for_all(server, prefix, stores):
    a = hardy.CircuitBreaker("db", failure_threshold=3, store=make_store(stores, server, prefix))
    b = hardy.CircuitBreaker("db", failure_threshold=3, store=make_store(stores, server, prefix))
    fail(a)
    fail(b)
    assert a.is_closed
    assert b.is_closed
    fail(a)
    assert a.is_open  # the failing process knows at once, from the script's reply
    wait_for(lambda: b.is_open)  # the other by pub/sub
    with pytest.raises(hardy.CircuitOpenError):
        b.call(lambda: None)


def test_success_threshold_closes_the_shared_circuit(server, prefix, stores):
    settings: dict[str, Any] = {"failure_threshold": 1, "reset_timeout": 0.1, "half_open_max_calls": 3}
    a = hardy.CircuitBreaker("db", success_threshold=1, store=make_store(stores, server, prefix), **settings)
    b = hardy.CircuitBreaker("db", success_threshold=1, store=make_store(stores, server, prefix), **settings)
    fail(a)
    wait_for(lambda: b.state is hardy.CircuitState.HALF_OPEN)
    assert b.call(lambda: 1) == 1  # one trial success of the three the period allows
    assert b.is_closed
    wait_for(lambda: a.is_closed)


def test_the_shared_circuit_backs_off_after_a_failed_half_open_period(server, prefix, stores):
    settings: dict[str, Any] = {"failure_threshold": 1, "reset_timeout": 0.2, "half_open_max_calls": 1}
    settings["reset_backoff"] = 4.0
    a = hardy.CircuitBreaker("db", max_reset_timeout=30.0, store=make_store(stores, server, prefix), **settings)
    b = hardy.CircuitBreaker("db", max_reset_timeout=30.0, store=make_store(stores, server, prefix), **settings)
    fail(a)
    wait_for(lambda: a.state is hardy.CircuitState.HALF_OPEN)
    fail(a)  # the trial fails: open for 0.8 s now, in every process
    reopened = time.monotonic()
    wait_for(lambda: b.state is hardy.CircuitState.OPEN)  # it was half-open: the re-opening reached it
    time.sleep(0.4)
    if time.monotonic() - reopened < 0.7:  # a slow machine may have slept past the backed-off time
        assert a.state is hardy.CircuitState.OPEN
        assert b.state is hardy.CircuitState.OPEN
    wait_for(lambda: b.state is hardy.CircuitState.HALF_OPEN)
    assert b.call(lambda: 1) == 1
    assert b.is_closed
    fail(b)  # opened from closed: the configured reset_timeout again
    time.sleep(0.25)
    assert b.state is hardy.CircuitState.HALF_OPEN
    wait_for(lambda: a.state is hardy.CircuitState.HALF_OPEN)


def test_a_backed_off_open_circuit_outlives_the_idle_expiry_of_its_keys(server, prefix, stores):
    store = make_store(stores, server, prefix, idle_expiry=1.0, trial_lease=1.0)
    breaker = hardy.CircuitBreaker(
        "db", failure_threshold=1, reset_timeout=0.1, reset_backoff=100.0, half_open_max_calls=1, store=store
    )
    fail(breaker)
    wait_for(lambda: breaker.state is hardy.CircuitState.HALF_OPEN)
    fail(breaker)  # open for 10 s now: the shared state must stay that long
    ttl = server.client().pttl(f"{prefix}{{db}}")
    assert 11_000 < ttl <= 12_000  # idle_expiry, the backed-off time and the lease
    assert breaker.is_open


def test_a_success_clears_the_failures_it_has_seen(server, prefix, stores):
    a = hardy.CircuitBreaker("db", failure_threshold=3, store=make_store(stores, server, prefix, sync_interval=0.05))
    b = hardy.CircuitBreaker("db", failure_threshold=3, store=make_store(stores, server, prefix, sync_interval=0.05))
    fail(a)
    fail(a)
    wait_for(lambda: b.get_stats()["failure_count"] == 2)  # the periodic re-read
    b.call(lambda: None)
    wait_for(lambda: a.get_stats()["failure_count"] == 0)
    fail(a)
    fail(a)
    assert a.is_closed  # two after the clear, not four


def test_closed_success_and_open_rejection_make_no_round_trip(own_server, prefix, stores):
    client = own_server.client()
    store = make_store(stores, own_server, prefix, sync_interval=3600)  # no re-read during the test
    breaker = hardy.CircuitBreaker("db", failure_threshold=2, reset_timeout=60, store=store)
    protected = breaker(lambda: 1)
    wait_for(lambda: evalsha_calls(client) == 2)  # the read at creation, and the re-read at start-up
    before = evalsha_calls(client)
    for _ in range(1000):
        assert protected() == 1
    assert evalsha_calls(client) == before
    fail(breaker)
    assert evalsha_calls(client) == before + 1  # a failure: one round trip
    fail(breaker)
    assert breaker.is_open
    after_open = evalsha_calls(client)
    for _ in range(1000):
        with pytest.raises(hardy.CircuitOpenError):
            protected()
    assert evalsha_calls(client) == after_open


def test_half_open_trial_limit_holds_across_stores(server, prefix, stores):
    breakers = [
        hardy.CircuitBreaker(
            "db",
            failure_threshold=1,
            reset_timeout=0.2,
            half_open_max_calls=2,
            store=make_store(stores, server, prefix),
        )
        for _ in range(4)
    ]
    fail(breakers[0])
    wait_for(lambda: all(b.is_open for b in breakers))
    time.sleep(0.25)
    gate = threading.Event()
    outcomes: list[str] = []

    def trial(breaker: hardy.CircuitBreaker) -> None:
        try:
            breaker.call(gate.wait, 5)
            outcomes.append("ok")
        except hardy.CircuitOpenError:
            outcomes.append("rejected")

    threads = [threading.Thread(target=trial, args=(b,)) for b in breakers for _ in range(2)]
    for t in threads:
        t.start()
    wait_for(lambda: len(outcomes) == 6)  # six rejected while two trials wait
    gate.set()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok"] * 2 + ["rejected"] * 6
    wait_for(lambda: all(b.is_closed for b in breakers))


def test_a_trial_failure_reopens_for_everyone(server, prefix, stores):
    a, b = (
        hardy.CircuitBreaker("db", failure_threshold=1, reset_timeout=0.2, store=make_store(stores, server, prefix))
        for _ in range(2)
    )
    fail(a)
    time.sleep(0.25)
    fail(b)  # b's trial fails
    assert b.is_open
    wait_for(lambda: a.is_open)
    assert a.get_time_until_reset() > 0.1


def test_a_dead_processes_permit_returns_after_its_lease(server, prefix, stores):
    dying = make_store(stores, server, prefix, trial_lease=0.3)
    a = hardy.CircuitBreaker("db", failure_threshold=1, reset_timeout=0.1, half_open_max_calls=1, store=dying)
    b = hardy.CircuitBreaker(
        "db", failure_threshold=1, reset_timeout=0.1, half_open_max_calls=1, store=make_store(stores, server, prefix)
    )
    fail(a)
    time.sleep(0.15)
    assert dying._all()[0].admit() >= 0  # a trial admitted, whose process dies before it ends
    assert a.get_stats()["half_open_calls"] == 1
    wait_for(lambda: b.get_stats()["half_open_calls"] == 1)
    with pytest.raises(hardy.CircuitOpenError):
        b.call(lambda: None)
    time.sleep(0.35)
    assert b.call(lambda: "trial") == "trial"


def test_reset_closes_the_shared_circuit(server, prefix, stores):
    a, b = (hardy.CircuitBreaker("db", failure_threshold=1, store=make_store(stores, server, prefix)) for _ in range(2))
    fail(a)
    wait_for(lambda: b.is_open)
    b.reset()
    assert b.is_closed
    wait_for(lambda: a.is_closed)


def test_open_time_comes_from_the_server_clock(server, prefix, stores, clock):
    a = hardy.CircuitBreaker("db", failure_threshold=1, reset_timeout=30, store=make_store(stores, server, prefix))
    clock.advance(7200)  # this host's clock is two hours off
    b = hardy.CircuitBreaker(
        "db", failure_threshold=1, reset_timeout=30, clock=clock, store=make_store(stores, server, prefix)
    )
    fail(a)
    wait_for(lambda: b.get_stats()["state"] == "open")
    assert 29 < b.get_time_until_reset() <= 30
    clock.advance(-7200 * 2)
    time.sleep(0.2)  # a re-read in between re-anchors the open time to b's clock
    assert 29 < b.get_time_until_reset() <= 30


def test_periodic_reread_catches_a_lost_message(server, prefix, stores):
    store = make_store(stores, server, prefix, sync_interval=0.05)
    breaker = hardy.CircuitBreaker("db", failure_threshold=1, reset_timeout=30, store=store)
    other = make_store(stores, server, prefix)
    other._channel = f"{prefix}nobody-listens"
    kept = hardy.CircuitBreaker("db", failure_threshold=1, reset_timeout=30, store=other)  # held weakly by the store
    kept.call(lambda: None)
    shadow = next(iter(other._all()))
    other._run(shadow, Op.FAIL)  # opens it, publishing where nobody listens
    wait_for(lambda: breaker.is_open, seconds=1.0)


def test_keys_share_a_hash_tag_and_expire(server, prefix, stores):
    client = server.client()
    breaker = hardy.CircuitBreaker(
        "db",
        failure_threshold=1,
        reset_timeout=0.05,
        store=make_store(stores, server, prefix, idle_expiry=1, trial_lease=0.5),
    )
    fail(breaker)
    time.sleep(0.1)
    breaker.call(lambda: None)  # a trial: the permit key exists for a moment
    keys = sorted(k.decode() for k in client.keys(f"{prefix}*"))
    assert keys == [f"{prefix}{{db}}"]
    assert 0 < client.pttl(f"{prefix}{{db}}") <= 1550  # idle_expiry + reset_timeout + trial_lease
    wait_for(lambda: not client.exists(f"{prefix}{{db}}"), seconds=3)
    wait_for(lambda: breaker.is_closed)  # half-open (one trial of three) until the key expired
    fail(breaker)  # an absent key is a closed circuit: it starts afresh
    assert breaker.is_open


def test_the_registry_shares_breakers_with_a_store(server, prefix, stores):
    store = make_store(stores, server, prefix)

    @hardy.circuit_breaker(name="db", failure_threshold=1, store=store)
    def call() -> None:
        raise ValueError("dependency down")

    assert call.breaker.store is store
    with pytest.raises(ValueError, match="dependency down"):
        call()
    assert hardy.get_circuit_breaker("db").is_open
    with pytest.raises(ValueError, match="other settings"):
        hardy.circuit_breaker(name="db", failure_threshold=1)(lambda: None)
    with pytest.raises(ValueError, match="other settings"):
        hardy.circuit_breaker(name="db", failure_threshold=1, store=make_store(stores, server, prefix))(lambda: None)


def test_listeners_hear_shared_state_changes(server, prefix, stores):
    a, b = (hardy.CircuitBreaker("db", failure_threshold=1, store=make_store(stores, server, prefix)) for _ in range(2))
    heard: list[tuple[str, str]] = []
    b.add_listener(lambda breaker, old, new: heard.append((old.value, new.value)))
    fail(a)
    wait_for(lambda: heard == [("closed", "open")])


# -- a breaker made while the shared circuit is open ---------------------------------------


def test_a_breaker_made_while_the_shared_circuit_is_open_rejects_its_first_call(
    own_server, prefix, stores, monkeypatch
):
    client = own_server.client()  # a Redis of its own: no other test's script runs count
    opening = make_store(stores, own_server, prefix, sync_interval=3600)
    opener = hardy.CircuitBreaker("db", failure_threshold=1, reset_timeout=60, store=opening)
    fail(opener)
    assert opener.is_open
    wait_for(lambda: evalsha_calls(client) == 3)  # its read at creation, its start-up re-read, the failure
    late = make_store(stores, own_server, prefix, sync_interval=3600)
    # Only the read at creation may tell it: no background re-read, no message.
    monkeypatch.setattr(late, "_sync_all", lambda: None)
    before = evalsha_calls(client)
    breaker = hardy.CircuitBreaker("db", failure_threshold=1, reset_timeout=60, store=late)
    assert evalsha_calls(client) == before + 1  # one round trip at creation
    assert breaker.is_open
    assert 59 < breaker.get_time_until_reset() <= 60
    called: list[int] = []
    with pytest.raises(hardy.CircuitOpenError):
        breaker.call(lambda: called.append(1))
    assert called == []
    assert breaker.get_stats()["rejections"] == 1


def test_a_breaker_made_while_the_shared_circuit_is_closed_gets_its_failure_count(server, prefix, stores, monkeypatch):
    first = hardy.CircuitBreaker("db", failure_threshold=3, store=make_store(stores, server, prefix))
    fail(first)
    fail(first)
    late = make_store(stores, server, prefix, sync_interval=3600)
    monkeypatch.setattr(late, "_sync_all", lambda: None)
    breaker = hardy.CircuitBreaker("db", failure_threshold=3, store=late)
    assert breaker.get_stats()["failure_count"] == 2
    fail(breaker)
    assert breaker.is_open


def test_a_breaker_made_while_redis_is_unreachable_starts_closed_and_works(prefix, stores, caplog):
    caplog.set_level(logging.INFO, logger="hardy.redis")
    nobody = RedisServer()  # a free port, never started
    store = make_store(stores, nobody, prefix)
    breaker = hardy.CircuitBreaker("db", failure_threshold=2, store=store)
    assert breaker.is_closed
    assert not store.available
    assert breaker.call(lambda: "fine") == "fine"
    fail(breaker)
    fail(breaker)
    assert breaker.is_open  # the local state machine decides
    hardy.CircuitBreaker("other", store=store)  # no round trip is tried while the store is down
    assert [
        r.getMessage()[:26] for r in caplog.records if r.levelno >= logging.WARNING and r.name == "hardy.redis"
    ] == ["Redis is unavailable (Conn"]


def test_a_breaker_made_while_redis_stalls_is_made_after_the_timeout(own_server, prefix, stores):
    store = make_store(stores, own_server, prefix, timeout=0.05)
    hardy.CircuitBreaker("warm", store=store)
    assert own_server.process is not None
    os.kill(own_server.process.pid, 19)  # SIGSTOP: connections open, no answers
    try:
        breaker = hardy.CircuitBreaker("db", failure_threshold=2, store=store)  # gives up after the timeout
        assert breaker.is_closed
        assert not store.available
        assert breaker.call(lambda: "fine") == "fine"
    finally:
        os.kill(own_server.process.pid, 18)  # SIGCONT
    wait_for(lambda: store.available, seconds=10)


# -- Redis away ------------------------------------------------------------------------


def test_stopped_redis_leaves_calls_working_on_local_state(own_server, prefix, stores, caplog):
    store = make_store(stores, own_server, prefix)
    breaker = hardy.CircuitBreaker("db", failure_threshold=3, store=store)
    protected = breaker(lambda: "fine")
    assert protected() == "fine"
    own_server.stop()
    caplog.set_level(logging.INFO, logger="hardy.redis")
    for _ in range(50):
        assert protected() == "fine"
    fail(breaker)
    for _ in range(2):
        fail(breaker)  # no Redis error reaches the call; the local state decides
    assert breaker.is_open
    with pytest.raises(hardy.CircuitOpenError):
        protected()
    assert not store.available
    warnings = warnings_in(caplog)  # the breaker's own (it opened) is hardy.breaker's
    assert len(warnings) == 1  # one per outage, not per call
    assert "Redis is unavailable (ConnectionError" in warnings[0]

    own_server.start()
    wait_for(lambda: store.available, seconds=10)
    # Redis lost its data: the shared state, a closed circuit, takes over.
    wait_for(lambda: breaker.is_closed, seconds=3)
    wait_for(lambda: any("available again" in r.getMessage() for r in caplog.records), seconds=5)
    recovered = [r for r in caplog.records if "available again" in r.getMessage()]
    assert [r.levelno for r in recovered] == [logging.INFO]
    assert len(warnings_in(caplog)) == 1


def test_slow_redis_never_holds_a_call_longer_than_the_timeout(own_server, prefix, stores):
    store = make_store(stores, own_server, prefix, timeout=0.05)
    breaker = hardy.CircuitBreaker("db", failure_threshold=5, store=store)
    fail(breaker)
    assert own_server.process is not None
    os.kill(own_server.process.pid, 19)  # SIGSTOP: connections open, no answers
    try:
        fail(breaker)  # the round trip times out; the failure is still counted locally
        assert breaker.get_stats()["failure_count"] == 2
        assert not store.available
    finally:
        os.kill(own_server.process.pid, 18)  # SIGCONT
    wait_for(lambda: store.available, seconds=10)


# -- a key that is not a hardy circuit, a Redis out of memory --------------------------------


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "hardy.redis" and r.levelno >= logging.WARNING]


def infos_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "hardy.redis" and r.levelno == logging.INFO]


def exercise(breaker: hardy.CircuitBreaker, rounds: int) -> None:
    """Failures and successes, 10 ms apart, through several re-reads; no Redis error may surface."""
    for i in range(rounds):
        with contextlib.suppress(ValueError, hardy.CircuitOpenError):
            breaker.call(boom if i % 2 else (lambda: None))
        time.sleep(0.01)


@pytest.mark.parametrize(
    ("suffix", "write"),
    [
        ("", lambda c, k: c.set(k, "not a circuit")),
        ("", lambda c, k: c.rpush(k, "a", "b")),
        (":permits", lambda c, k: c.set(k, "not permits")),
    ],
    ids=["hash-as-string", "hash-as-list", "permits-as-string"],
)
def test_a_key_of_another_type_makes_that_breaker_local_with_one_warning(
    server, prefix, stores, caplog, suffix: str, write: Callable[[redis.Redis, str], object]
):
    caplog.set_level(logging.INFO, logger="hardy.redis")
    client = server.client()
    key = f"{prefix}{{db}}{suffix}"
    write(client, key)
    dumped = client.dump(key)
    store = make_store(stores, server, prefix, sync_interval=0.05)
    breaker = hardy.CircuitBreaker("db", failure_threshold=2, reset_timeout=60, store=store)
    neighbour = hardy.CircuitBreaker("other", failure_threshold=1, store=store)
    watcher = hardy.CircuitBreaker("other", failure_threshold=1, store=make_store(stores, server, prefix))

    exercise(breaker, 100)  # a second of calls: twenty re-reads
    breaker.reset()  # a local reset: the key is not touched
    fail(breaker)
    fail(breaker)
    assert breaker.is_open  # its own failures, counted locally
    assert store.available  # Redis is fine: the other breakers still share
    fail(neighbour)
    wait_for(lambda: watcher.is_open)
    assert client.dump(key) == dumped  # the foreign value is left as it was
    warnings = warnings_in(caplog)
    assert len(warnings) == 1, warnings
    assert "circuit breaker 'db'" in warnings[0]
    assert f"WRONGTYPE {key} holds a " in warnings[0]

    client.delete(key)  # repaired: the breaker shares again at the next re-read
    wait_for(lambda: any("'db' shares its state again" in m for m in infos_in(caplog)))
    wait_for(lambda: breaker.is_closed)  # the shared circuit, absent, is closed
    fail(breaker)
    fail(breaker)
    assert client.hget(f"{prefix}{{db}}", "state") == b"1"  # counted in Redis again
    assert len(warnings_in(caplog)) == 1


def test_a_key_of_another_type_found_at_creation_is_reported_once(server, prefix, stores, caplog):
    caplog.set_level(logging.INFO, logger="hardy.redis")
    client = server.client()
    client.set(f"{prefix}{{db}}", "not a circuit")
    store = make_store(stores, server, prefix, sync_interval=3600)
    first = hardy.CircuitBreaker("db", failure_threshold=1, store=store)
    second = hardy.CircuitBreaker("db", failure_threshold=1, store=store)
    fail(first)
    assert first.is_open
    assert store.available  # a bad key is not an outage
    assert second.is_closed  # each decides on its own local state
    assert len(warnings_in(caplog)) == 1


def test_a_damaged_state_field_reads_as_closed(server, prefix, stores):
    client = server.client()
    client.hset(f"{prefix}{{db}}", mapping={"inc": "x", "ver": "3", "state": "7", "gen": "2", "fseq": "0"})
    breaker = hardy.CircuitBreaker("db", failure_threshold=1, store=make_store(stores, server, prefix))
    assert breaker.is_closed
    assert breaker.call(lambda: "fine") == "fine"
    fail(breaker)
    assert breaker.is_open
    assert client.hget(f"{prefix}{{db}}", "state") == b"1"


def test_redis_out_of_memory_is_one_outage_with_one_warning(own_server, prefix, stores, caplog):
    caplog.set_level(logging.INFO, logger="hardy.redis")
    client = own_server.client()
    store = make_store(stores, own_server, prefix, sync_interval=0.05)
    breaker = hardy.CircuitBreaker("db", failure_threshold=3, store=store)
    fail(breaker)
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", "1")  # every write is refused; reads still work
    try:
        exercise(breaker, 200)  # two seconds of failing writes and reconnections
    finally:
        client.config_set("maxmemory", "0")
    warnings = warnings_in(caplog)
    assert len(warnings) == 1, warnings
    assert "OutOfMemoryError" in warnings[0]
    assert infos_in(caplog) == []  # not over while writes still fail
    # Back: the store reconnects after its backoff (at most 5 s) and settles.
    wait_for(lambda: any("available again" in m for m in infos_in(caplog)), seconds=10)
    assert len(infos_in(caplog)) == 1
    assert len(warnings_in(caplog)) == 1
    breaker.reset()
    for _ in range(3):
        fail(breaker)
    assert client.hget(f"{prefix}{{db}}", "state") == b"1"  # shared again


def test_a_client_that_raises_something_else_is_an_outage_not_a_crash(own_server, prefix, stores, caplog):
    """A client closed under a command raises ValueError ("I/O operation on closed file"), not a RedisError."""

    class Breaking(redis.Redis):  # the store copies its client with type(client): the switch is on the class
        broken = False

        def execute_command(self, *args: Any, **options: Any) -> Any:
            if Breaking.broken:
                raise ValueError("I/O operation on closed file.")
            return super().execute_command(*args, **options)

    store = make_store(
        stores, own_server, prefix, client=Breaking(host="127.0.0.1", port=own_server.port), sync_interval=0.05
    )
    breaker = hardy.CircuitBreaker("db", failure_threshold=2, store=store)
    fail(breaker)
    Breaking.broken = True
    try:
        fail(breaker)  # the round trip raises ValueError: the call decides on local state
        assert breaker.is_open
        assert not store.available
        time.sleep(0.3)  # the sync thread meets it too (script_load on reconnection), and lives on
    finally:
        Breaking.broken = False
    assert any("ValueError" in m for m in warnings_in(caplog))
    wait_for(lambda: store.available, seconds=10)
    breaker.reset()
    fail(breaker)
    fail(breaker)
    assert own_server.client().hget(f"{prefix}{{db}}", "state") == b"1"  # shared again


def test_malformed_messages_are_logged_once(server, prefix, stores, caplog):
    caplog.set_level(logging.DEBUG, logger="hardy.redis")
    store = make_store(stores, server, prefix)
    breaker = hardy.CircuitBreaker("db", store=store)
    client = server.client()
    wait_for(lambda: client.pubsub_numsub(f"{prefix}events")[0][1] >= 1)
    for _ in range(5):
        client.publish(f"{prefix}events", "not json")
    wait_for(lambda: len([r for r in caplog.records if "malformed" in r.getMessage()]) == 5)
    assert len([m for m in warnings_in(caplog) if "malformed" in m]) == 1
    assert breaker.is_closed


def test_a_message_of_an_older_hardy_without_the_backoff_count_is_adopted(server, prefix, stores):
    # Before the shared backoff a message had ten fields after the name.
    store = make_store(stores, server, prefix, sync_interval=3600)  # no re-read of the real state meanwhile
    breaker = hardy.CircuitBreaker("db", reset_timeout=60, store=store)
    client = server.client()
    wait_for(lambda: client.pubsub_numsub(f"{prefix}events")[0][1] >= 1)
    incarnation = "1.0"
    client.publish(f"{prefix}events", json.dumps(["db", incarnation, 99, 1, 7, 0, 0, 0, 0, 0, 3]))
    wait_for(lambda: breaker.is_open)
    client.publish(f"{prefix}events", json.dumps(["db", incarnation, 100, 1, 7, 0, 0, 0, 0, 0, 3, 0, "extra"]))
    time.sleep(0.05)
    assert breaker.is_open  # a message of another shape is ignored


def test_a_huge_reset_timeout_does_not_break_the_store(server, prefix, stores):
    client = server.client()
    store = make_store(stores, server, prefix)
    breaker = hardy.CircuitBreaker("db", failure_threshold=1, reset_timeout=1e300, store=store)
    fail(breaker)
    assert breaker.is_open
    assert store.available
    assert client.hget(f"{prefix}{{db}}", "state") == b"1"
    assert client.pttl(f"{prefix}{{db}}") > 86400 * 1000


# -- asyncio clients -----------------------------------------------------------------


def test_async_client_shares_the_circuit(server, prefix, stores):
    async def scenario() -> None:
        sync_side = hardy.CircuitBreaker("db", failure_threshold=2, store=make_store(stores, server, prefix))
        client = redis.asyncio.Redis(host="127.0.0.1", port=server.port)
        store = make_store(stores, server, prefix, client=client)
        breaker = hardy.CircuitBreaker("db", failure_threshold=2, reset_timeout=0.2, store=store)

        @breaker
        async def call(ok: bool) -> str:
            if not ok:
                raise ValueError("dependency down")
            return "fine"

        assert await call(True) == "fine"
        with pytest.raises(ValueError, match="dependency down"):
            await call(False)
        await wait_async(lambda: sync_side.get_stats()["failure_count"] == 1)
        fail(sync_side)  # the second failure, in the other "process"
        await wait_async(lambda: breaker.is_open)
        with pytest.raises(hardy.CircuitOpenError):
            await call(True)
        await asyncio.sleep(0.25)
        # No round trip can be awaited inside the breaker: the first trial
        # asks for a permit in the background and is rejected meanwhile.
        with pytest.raises(hardy.CircuitOpenError):
            await call(True)
        # Each trial of this process is preceded by one rejected call.
        trials = 0
        deadline = time.monotonic() + 5
        while not breaker.is_closed:
            assert time.monotonic() < deadline, "the circuit did not close"
            try:
                assert await call(True) == "fine"
                trials += 1
            except hardy.CircuitOpenError:
                pass
            await asyncio.sleep(0.005)  # the store's task runs on this loop
        assert trials == 3  # half_open_max_calls successes closed it for every process
        await wait_async(lambda: sync_side.is_closed)
        await store.aclose()
        await client.aclose()

    asyncio.run(scenario())


def test_async_store_reads_the_state_of_a_breaker_made_in_the_running_loop(own_server, prefix, stores):
    counter = own_server.client()  # a Redis of its own: no other test's script runs count
    opening = make_store(stores, own_server, prefix, sync_interval=3600)
    opener = hardy.CircuitBreaker("db", failure_threshold=1, reset_timeout=60, store=opening)
    fail(opener)
    wait_for(lambda: evalsha_calls(counter) == 3)  # its read at creation, its start-up re-read, the failure

    async def scenario() -> None:
        client = redis.asyncio.Redis(host="127.0.0.1", port=own_server.port)
        store = make_store(stores, own_server, prefix, client=client, sync_interval=3600)  # no periodic re-read
        before = evalsha_calls(counter)
        # Starts the store's task, which reads every breaker once. Kept: the store holds
        # its breakers weakly, and a collected one would leave nothing to read.
        warm = hardy.CircuitBreaker("warm", store=store)
        await wait_async(lambda: evalsha_calls(counter) == before + 1)
        assert warm.is_closed
        breaker = hardy.CircuitBreaker("db", failure_threshold=1, reset_timeout=60, store=store)
        # Nothing is awaited inside the constructor: the task reads it as soon as the loop runs.
        await wait_async(lambda: breaker.is_open)
        with pytest.raises(hardy.CircuitOpenError):
            breaker.call(lambda: None)
        await store.aclose()
        await client.aclose()

    asyncio.run(scenario())


def test_async_store_with_a_key_of_another_type_warns_once(server, prefix, stores, caplog):
    caplog.set_level(logging.INFO, logger="hardy.redis")
    server.client().set(f"{prefix}{{db}}", "not a circuit")

    async def scenario() -> None:
        client = redis.asyncio.Redis(host="127.0.0.1", port=server.port)
        store = make_store(stores, server, prefix, client=client, sync_interval=0.05)
        breaker = hardy.CircuitBreaker("db", failure_threshold=2, store=store)

        async def down() -> None:
            raise ValueError("dependency down")

        for _ in range(60):  # through several re-reads
            with contextlib.suppress(ValueError, hardy.CircuitOpenError):
                await breaker.call(down)
            await asyncio.sleep(0.01)
        assert breaker.is_open  # local decisions
        assert store.available
        await store.aclose()
        await client.aclose()

    asyncio.run(scenario())
    warnings = warnings_in(caplog)
    assert len(warnings) == 1, warnings
    assert "circuit breaker 'db'" in warnings[0]


async def wait_async(predicate: Callable[[], bool], seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


# -- bad input ---------------------------------------------------------------------------


def test_bad_store_arguments_are_refused(server):
    client = server.client()
    with pytest.raises(TypeError, match=r"client must be a redis\.Redis"):
        hardy.RedisStore("redis://localhost")
    with pytest.raises(ValueError, match="prefix must not contain braces"):
        hardy.RedisStore(client, prefix="{x}:")
    with pytest.raises(TypeError, match="prefix must be a str"):
        hardy.RedisStore(client, prefix=3)  # type: ignore[arg-type]
    for option in ("timeout", "sync_interval", "trial_lease", "idle_expiry"):
        with pytest.raises(ValueError, match=option):
            hardy.RedisStore(client, **{option: 0})
        with pytest.raises(TypeError, match=option):
            hardy.RedisStore(client, **{option: "1"})
    with pytest.raises(TypeError, match=r"store must be a hardy\.store\.BreakerStore"):
        hardy.CircuitBreaker("db", store=client)
    with pytest.raises(TypeError, match=r"store must be a hardy\.store\.BreakerStore"):
        hardy.circuit_breaker(name="db", store=client)


# -- several OS processes ------------------------------------------------------------------


class Worker:
    def __init__(self, core: ModuleType, port: int, prefix: str, threshold: int, reset: float, max_calls: int) -> None:
        env = dict(os.environ)
        env.pop("HARDY_NO_EXTENSIONS", None)
        if core.IMPLEMENTATION == "py":
            env["HARDY_NO_EXTENSIONS"] = "1"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.shared_worker",
                str(port),
                prefix,
                "db",
                str(threshold),
                str(reset),
                str(max_calls),
            ],
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

    def ask(self, line: str) -> Any:
        self.send(line)
        return self.read()

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError):
            self.send("quit")
        self.process.wait(10)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def workers(core: ModuleType) -> Iterator[Callable[..., list[Worker]]]:
    started: list[Worker] = []

    def start(
        count: int, port: int, prefix: str, threshold: int = 3, reset: float = 0.5, max_calls: int = 1
    ) -> list[Worker]:
        new = [Worker(core, port, prefix, threshold, reset, max_calls) for _ in range(count)]
        started.extend(new)
        return new

    yield start
    for worker in started:
        worker.close()


def test_processes_share_one_circuit(server, prefix, workers):
    procs = workers(3, server.port, prefix, threshold=3, reset=0.5, max_calls=2)
    assert [w.ask("fail") for w in procs] == ["failed"] * 3
    assert [w.ask("wait_state open 2") for w in procs] == ["open"] * 3
    assert [w.ask("ok") for w in procs] == ["rejected"] * 3
    time.sleep(0.55)
    for w in procs:
        w.send("slow 0.5")  # three concurrent trials for two permits
    assert sorted(w.read() for w in procs) == ["ok", "ok", "rejected"]
    assert [w.ask("wait_state closed 2") for w in procs] == ["closed"] * 3


def test_redis_restart_mid_test_loses_no_call_and_recovers(own_server, prefix, workers):
    procs = workers(3, own_server.port, prefix, threshold=10, reset=30)
    for w in procs:
        w.send("loop 2 50")  # every 50th call fails: failures make round trips during the restart
    time.sleep(0.5)
    own_server.restart()
    results = [w.read() for w in procs]
    for outcomes in results:
        assert set(outcomes) <= {"ok", "failed"}, outcomes  # no Redis error reached a call
        assert outcomes["ok"] > 0
    assert [w.ask("wait_state closed 3") for w in procs] == ["closed"] * 3
    time.sleep(0.5)  # reconnected (the backoff starts at the sync interval)
    for _ in range(10):  # the threshold, counted in Redis again: one process opens it for all
        if procs[0].ask("fail") == "rejected":
            break
    assert [w.ask("wait_state open 3") for w in procs] == ["open"] * 3


def test_stopped_redis_leaves_every_process_working(own_server, prefix, workers):
    procs = workers(2, own_server.port, prefix, threshold=2, reset=30)
    assert [w.ask("ok") for w in procs] == ["ok", "ok"]
    own_server.stop()
    for w in procs:
        assert w.ask("ok") == "ok"
        assert w.ask("fail") == "failed"
        assert w.ask("state") == "closed"  # one failure each: no shared count to add them up
        assert w.ask("fail") == "failed"
        assert w.ask("state") == "open"  # local state, local threshold
        assert w.ask("ok") == "rejected"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_listens_on_its_own(server, prefix, stores):
    store = make_store(stores, server, prefix)
    breaker = hardy.CircuitBreaker("db", failure_threshold=1, store=store)
    opener = hardy.CircuitBreaker("db", failure_threshold=1, store=make_store(stores, server, prefix))
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork() of a threaded process
        pid = os.fork()
    if pid == 0:  # the child: no call of its own, yet it must hear the change
        code = 1
        try:
            deadline = time.monotonic() + 5
            while not breaker.is_open and time.monotonic() < deadline:
                time.sleep(0.01)
            code = 0 if breaker.is_open else 1
        finally:
            os.write(write, bytes([code]))
            os._exit(0)
    time.sleep(0.3)  # the child's listener has started
    fail(opener)
    assert os.read(read, 1) == b"\x00"
    os.waitpid(pid, 0)
    os.close(read)
    os.close(write)
