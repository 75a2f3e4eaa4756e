"""hardy.RetryBudget(store=RedisStore(...)): one budget for several OS processes, against a real redis-server."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import redis

import hardy
from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent


class Down(Exception):
    pass


WORKER = textwrap.dedent(
    """
    import json, sys
    import redis, hardy

    port, name, successes, failures = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    store = hardy.RedisStore(redis.Redis(host="127.0.0.1", port=port), prefix="budget-test:", timeout=2.0)
    budget = hardy.RetryBudget(ratio=0.5, min_per_second=0, window=60, store=store, name=name)
    invoked = [0]

    @hardy.retry(budget=budget)
    def ok() -> None:
        pass

    @hardy.retry(max_attempts=2, initial_delay=0, budget=budget)
    def fail() -> None:
        invoked[0] += 1
        raise ValueError("down")

    for _ in range(successes):
        ok()
    balance = budget.balance  # a read writes the calls counted
    sys.stdout.write("ready\\n")
    sys.stdout.flush()
    sys.stdin.readline()  # go
    errors = []
    for _ in range(failures):
        try:
            fail()
        except ValueError:
            pass
        except BaseException as exc:
            errors.append(repr(exc))
    stats = budget.statistics
    print(json.dumps({"calls": stats.calls, "retries": stats.retries, "exhausted": stats.exhausted,
                      "invoked": invoked[0], "errors": errors, "core": hardy.IMPLEMENTATION}))
    """
)


@pytest.fixture
def server() -> Iterator[RedisServer]:
    srv = RedisServer().start()
    yield srv
    srv.remove()


def spawn(core: ModuleType, port: int, successes: int, failures: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if core.IMPLEMENTATION == "py":
        env["HARDY_NO_EXTENSIONS"] = "1"
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(port), "shared", str(successes), str(failures)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready", process.stderr.read() if process.stderr else ""
    return process


def test_processes_share_one_budget(core: ModuleType, server: RedisServer) -> None:
    # One process only succeeds; three others only fail, in parallel. Ratio 0.5, no floor:
    # together they may retry at most half of all 40 + 3 x 40 calls, 80, and alone each
    # could retry only half of its own 40, 20: more than 60 shows the first one's calls count.
    healthy = spawn(core, server.port, 40, 0)
    failing = [spawn(core, server.port, 0, 40) for _ in range(3)]
    results: list[dict[str, Any]] = []
    for process in [healthy, *failing]:
        out, err = process.communicate("go\n", timeout=60)
        assert process.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert {r["core"] for r in results} == {core.IMPLEMENTATION}
    assert all(r["errors"] == [] for r in results)
    retries = sum(r["retries"] for r in results)
    asked = sum(r["retries"] + r["exhausted"] for r in results)
    assert asked == 120  # every failing call asked once
    assert sum(r["invoked"] for r in results) == 120 + retries
    assert 60 < retries <= 80


def test_a_budget_shared_in_one_process_and_its_key(server: RedisServer) -> None:
    store = hardy.RedisStore(server.client(), prefix="p:", timeout=2.0)
    a = hardy.RetryBudget(ratio=0.5, min_per_second=0, window=60, store=store, name="b")
    b = hardy.RetryBudget(ratio=0.5, min_per_second=0, window=60, store=store, name="b")
    assert (a.name, a.store, repr(a)) == (
        "b",
        store,
        "RetryBudget(ratio=0.5, min_per_second=0.0, window=60.0, name='b')",
    )
    ok = hardy.retry(budget=a)(lambda: None)
    for _ in range(10):
        ok()
    assert b.balance == 0  # a's calls are not written yet (its next retry, read or slice will)
    assert a.balance == 5  # now they are
    assert b.balance == 5
    tries = [0]

    def fail() -> None:
        tries[0] += 1
        raise Down

    with pytest.raises(Down):
        hardy.retry(max_attempts=10, initial_delay=0, budget=b)(fail)()
    assert tries == [6]  # 11 calls: five retries of 2000
    assert b.statistics.retries == 5
    assert b.statistics.exhausted == 1
    assert server.client().pttl("p:{b}:budget") > 0  # it expires with the window
    store.close()


def test_redis_down_decides_locally_with_one_warning(server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    store = hardy.RedisStore(server.client(), prefix="down:", timeout=0.5)
    budget = hardy.RetryBudget(ratio=0, min_per_second=0.2, window=10, store=store, name="d")  # two retries
    tries = [0]

    def fail() -> None:
        tries[0] += 1
        raise Down

    fn = hardy.retry(max_attempts=5, initial_delay=0, budget=budget)(fail)
    with pytest.raises(Down):
        fn()
    assert tries == [3]
    server.stop()
    with caplog.at_level(logging.WARNING, logger="hardy"):
        for _ in range(3):
            with pytest.raises(Down):  # the call's own error, never Redis's
                fn()
    assert store.available is False
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "Redis is unavailable" in r.getMessage()]
    assert len(warnings) == 1
    # Locally the floor is spent too (the withdrawals the store allowed were kept), so nothing more is retried.
    assert tries == [6]
    assert budget.statistics.exhausted == 4
    server.start()
    deadline = time.monotonic() + 10
    while not store.available and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.available
    with pytest.raises(Down):
        fn()
    assert server.client().exists("down:{d}:budget") == 1  # asked of Redis again
    store.close()


def test_a_shared_budget_needs_a_sync_store_and_a_name(server: RedisServer) -> None:
    store = hardy.RedisStore(server.client(), prefix="v:")
    with pytest.raises(TypeError, match="needs a name="):
        hardy.RetryBudget(store=store)
    with pytest.raises(TypeError, match=r"store must be a hardy\.RedisStore"):
        hardy.RetryBudget(store="redis://", name="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name"):
        hardy.RetryBudget(store=store, name="")
    async_store = hardy.RedisStore(redis.asyncio.Redis(port=server.port), prefix="v:")
    with pytest.raises(TypeError, match="asyncio client"):
        hardy.RetryBudget(store=async_store, name="x")
    store.close()


def test_calls_are_written_within_a_slice_without_a_retry(server: RedisServer) -> None:
    store = hardy.RedisStore(server.client(), prefix="f:", timeout=2.0)
    a = hardy.RetryBudget(ratio=1.0, min_per_second=0, window=1.0, store=store, name="f")
    b = hardy.RetryBudget(ratio=1.0, min_per_second=0, window=1.0, store=store, name="f")
    assert b.balance == 0  # starts b's flusher; a's starts with its first look at the store
    assert a.balance == 0
    ok = hardy.retry(budget=a)(lambda: None)
    for _ in range(20):
        ok()
    deadline = time.monotonic() + 5
    seen = 0
    while seen == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
        seen = b.balance  # b writes nothing: a's flusher thread wrote a's calls
    assert 0 < seen <= 20
    store.close()
