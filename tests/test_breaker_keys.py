"""One breaker per key: ``circuit_breaker(key=..., max_keys=...)``, on both cores.

Each key's breaker is made on first use with the decorator's settings,
registered as ``f"{name}[{key!r}]"``, kept in a bounded LRU (the least
recently used closed breaker is evicted first) and seen by the registry,
the health check and the metrics; see docs/circuit-breaker.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import logging
import random
import threading
import time
import traceback
import weakref
from collections.abc import AsyncIterator, Hashable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

import hardy
from hardy import CircuitOpenError, CircuitState
from hardy.health.defaults import circuit_breakers_check
from hardy.metrics import _sources

from .threads import run_threads, switching_often

CLOSED, OPEN = CircuitState.CLOSED, CircuitState.OPEN


class Down(Exception):
    pass


def host(url: str, **_: object) -> str:
    return urlsplit(url).netloc


def make_fetch(**options: Any) -> Any:
    """A keyed function over a host: ``fail=True`` makes its call fail."""
    calls: list[str] = []

    @hardy.circuit_breaker(**{"name": "fetch", "failure_threshold": 2, "key": host, **options})
    def fetch(url: str, fail: bool = False) -> str:
        """Fetch a URL."""
        calls.append(url)
        if fail:
            raise Down(url)
        return url

    fetch.calls = calls
    return fetch


def trip(fetch: Any, url: str) -> None:
    """Open ``url``'s breaker (make_fetch's threshold: two failures)."""
    for _ in range(2):
        with pytest.raises(Down):
            fetch(url, fail=True)


# -- isolation ----------------------------------------------------------------------------


def test_one_dead_host_trips_its_own_breaker_only() -> None:
    fetch = make_fetch()
    trip(fetch, "http://dead/")
    with pytest.raises(CircuitOpenError) as info:
        fetch("http://dead/x")
    assert info.value.name == "fetch['dead']"
    assert fetch("http://alive/x") == "http://alive/x"
    assert fetch.breakers["dead"].state is OPEN
    assert fetch.breakers["alive"].state is CLOSED
    assert fetch.calls == ["http://dead/", "http://dead/", "http://alive/x"]


def test_each_key_has_the_decorators_settings_and_its_own_name() -> None:
    fetch = make_fetch(failure_threshold=3, reset_timeout=7.5, half_open_max_calls=2, excluded_exceptions=KeyError)
    fetch("http://a/")
    fetch("http://b/")
    for key in ("a", "b"):
        breaker = fetch.breakers[key]
        assert isinstance(breaker, hardy.CircuitBreaker)
        assert breaker.name == f"fetch[{key!r}]"
        assert (breaker.failure_threshold, breaker.reset_timeout, breaker.half_open_max_calls) == (3, 7.5, 2)
        assert breaker.excluded_exceptions == (KeyError,)
    assert fetch.breakers["a"] is not fetch.breakers["b"]


def test_the_default_name_is_the_functions_and_keys_of_any_hashable_type() -> None:
    @hardy.circuit_breaker(key=lambda *args: args)
    def f(a: object, b: object) -> None:
        pass

    f(1, None)
    f("x", (2, 3))
    prefix = f"{__name__}.test_the_default_name_is_the_functions_and_keys_of_any_hashable_type.<locals>.f"
    assert [b.name for b in f.breakers.values()] == [f"{prefix}[(1, None)]", f"{prefix}[('x', (2, 3))]"]
    assert f.breakers.name == prefix


def test_a_fallback_answers_for_an_open_key_only() -> None:
    fetch = make_fetch(fallback=lambda url, fail=False: f"cached {url}")
    trip(fetch, "http://dead/")
    assert fetch("http://dead/x") == "cached http://dead/x"
    assert fetch("http://alive/") == "http://alive/"


def test_the_wrapper_keeps_the_functions_metadata_and_has_no_single_breaker() -> None:
    fetch = make_fetch()
    assert fetch.__name__ == "fetch"
    assert fetch.__doc__ == "Fetch a URL."
    assert str(inspect.signature(fetch)) == "(url: 'str', fail: 'bool' = False) -> 'str'"
    assert fetch.__wrapped__.__name__ == "fetch"
    assert not hasattr(fetch, "breaker")  # which one? fn.breakers[key]


# -- fn.breakers, the LRU -----------------------------------------------------------------


def test_breakers_is_a_read_only_live_mapping_most_recently_used_last() -> None:
    fetch = make_fetch(max_keys=10)
    for name in ("a", "b", "c"):
        fetch(f"http://{name}/")
    view = fetch.breakers
    assert list(view) == ["a", "b", "c"]
    fetch("http://a/")
    assert list(view) == ["b", "c", "a"]  # the same object shows the change
    assert len(view) == 3
    assert "a" in view
    assert "z" not in view
    assert view.max_keys == 10
    _ = view["b"].state  # looking is not a use
    assert list(view) == ["b", "c", "a"]
    with pytest.raises(KeyError):
        view["z"]
    with pytest.raises(TypeError):
        view["z"] = view["a"]  # type: ignore[index]
    assert "fetch" in repr(view)
    assert "'a': closed" in repr(view)


def test_the_least_recently_used_closed_key_is_evicted_first() -> None:
    fetch = make_fetch(max_keys=3)
    for name in ("a", "b", "c"):
        fetch(f"http://{name}/")
    fetch("http://a/")  # b is now the least recently used
    fetch("http://d/")
    assert list(fetch.breakers) == ["c", "a", "d"]
    fetch("http://e/")
    assert list(fetch.breakers) == ["a", "d", "e"]
    assert len(fetch.breakers) == 3


def test_an_open_breaker_is_not_evicted_while_a_closed_one_can_be() -> None:
    fetch = make_fetch(max_keys=3)
    trip(fetch, "http://dead/")  # the least recently used, and open
    fetch("http://b/")
    fetch("http://c/")
    fetch("http://d/")
    assert list(fetch.breakers) == ["dead", "c", "d"]
    with pytest.raises(CircuitOpenError):  # still rejecting: its state was kept
        fetch("http://dead/")
    assert len(fetch.calls) == 5


def test_when_every_breaker_is_open_the_least_recently_used_goes_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fetch = make_fetch(max_keys=2)
    trip(fetch, "http://x/")
    trip(fetch, "http://y/")
    with caplog.at_level(logging.WARNING, logger="hardy.breaker"):
        assert fetch("http://z/") == "http://z/"
    assert list(fetch.breakers) == ["y", "z"]
    warnings = [r for r in caplog.records if getattr(r, "event", None) == "keyed_evicted_open"]
    assert len(warnings) == 1
    assert "fetch['x']" in warnings[0].getMessage()
    assert "loses its state" in warnings[0].getMessage()
    # x comes back as a new, closed breaker: its open state was lost.
    assert fetch("http://x/") == "http://x/"


def test_max_keys_one_keeps_a_single_breaker() -> None:
    fetch = make_fetch(max_keys=1)
    for name in "abcab":
        fetch(f"http://{name}/")
        assert list(fetch.breakers) == [name]


# -- the registry, health, metrics --------------------------------------------------------


def test_each_keys_breaker_is_registered_and_an_evicted_one_is_forgotten() -> None:
    fetch = make_fetch(max_keys=2)
    fetch("http://a/")
    fetch("http://b/")
    assert hardy.get_circuit_breaker("fetch['a']") is fetch.breakers["a"]
    assert hardy.get_circuit_breaker("fetch['b']") is fetch.breakers["b"]
    assert hardy.get_circuit_breaker("fetch") is None  # the name itself names no breaker
    fetch("http://c/")
    assert hardy.get_circuit_breaker("fetch['a']") is None
    assert sorted(hardy.registry.all()) == ["fetch['b']", "fetch['c']"]


def test_an_evicted_key_comes_back_with_a_fresh_breaker() -> None:
    fetch = make_fetch(max_keys=1)
    fetch("http://a/")
    fetch("http://a/")
    assert fetch.breakers["a"].get_stats()["calls"] == 2
    fetch("http://b/")
    fetch("http://a/")
    assert fetch.breakers["a"].get_stats()["calls"] == 1
    assert hardy.get_circuit_breaker("fetch['a']") is fetch.breakers["a"]


def live_names() -> list[str]:
    return [b.name for b in hardy._live.breakers()]


def test_health_and_metrics_see_each_key_and_forget_an_evicted_one() -> None:
    gc.collect()  # earlier tests' functions, kept by their exceptions' tracebacks
    fetch = make_fetch(max_keys=2)
    trip(fetch, "http://dead/")
    fetch("http://ok/")
    health = circuit_breakers_check()
    assert health["status"] is hardy.HealthStatus.DEGRADED
    assert list(health["breakers"]) == ["fetch['dead']"]
    assert health["breakers"]["fetch['dead']"]["registered"] is True
    families = {f.name: f for f in _sources.breakers()}
    states = {
        (labels["name"], labels["state"]): value
        for labels, value in families["hardy_circuit_breaker_state"].all_samples()
    }
    assert states[("fetch['dead']", "open")] == 1
    assert states[("fetch['ok']", "closed")] == 1
    calls = {
        (labels["name"], labels["outcome"]): value
        for labels, value in families["hardy_circuit_breaker_calls"].all_samples()
    }
    assert calls[("fetch['dead']", "failure")] == 2
    assert calls[("fetch['ok']", "success")] == 1
    # "ok" is the least recently used closed key: the next key evicts it.
    fetch("http://new/")
    gc.collect()
    assert "fetch['ok']" not in live_names()
    assert "fetch['ok']" not in {labels["name"] for labels, _ in next(iter(_sources.breakers())).all_samples()}
    assert {"fetch['dead']", "fetch['new']"} <= set(live_names())


# -- sharing by name ----------------------------------------------------------------------


def test_functions_with_one_keyed_name_share_each_keys_breaker() -> None:
    @hardy.circuit_breaker(name="http", failure_threshold=1, key=host)
    def get(url: str) -> str:
        raise Down(url)

    @hardy.circuit_breaker(name="http", failure_threshold=1, key=lambda url, body: host(url))
    def post(url: str, body: bytes) -> str:
        return "posted"

    with pytest.raises(Down):
        get("http://dead/")
    with pytest.raises(CircuitOpenError):  # the host is down for both
        post("http://dead/", b"")
    assert post("http://alive/", b"") == "posted"
    assert get.breakers["dead"] is post.breakers["dead"]
    assert list(get.breakers) == ["dead", "alive"]


def test_eviction_by_one_function_is_seen_by_the_other() -> None:
    @hardy.circuit_breaker(name="shared", max_keys=1, key=lambda k: k)
    def one(k: str) -> str:
        return k

    @hardy.circuit_breaker(name="shared", max_keys=1, key=lambda k: k)
    def two(k: str) -> str:
        return k

    one("a")
    two("a")
    first = one.breakers["a"]
    two("b")  # evicts "a" for both
    one("a")
    assert one.breakers["a"] is not first
    assert two.breakers is not one.breakers
    assert dict(two.breakers) == dict(one.breakers)
    two("a")
    assert two.breakers["a"].get_stats()["calls"] == 2  # one("a") and two("a") on the new breaker


def test_one_keyed_name_with_other_settings_or_bound_is_an_error() -> None:
    hardy.circuit_breaker(name="n", failure_threshold=2, key=host)(lambda url: url)
    with pytest.raises(ValueError, match="keyed circuit breaker 'n' already exists with other settings"):
        hardy.circuit_breaker(name="n", failure_threshold=3, key=host)(lambda url: url)
    with pytest.raises(ValueError, match="other max_keys"):
        hardy.circuit_breaker(name="n", failure_threshold=2, key=host, max_keys=5)(lambda url: url)
    # Another key function is fine: the keys are the group's, the function is each caller's.
    hardy.circuit_breaker(name="n", failure_threshold=2, key=lambda url: url)(lambda url: url)


def test_two_keys_with_one_repr_are_an_error_not_a_shared_breaker() -> None:
    class Key:
        def __init__(self, n: int) -> None:
            self.n = n

        def __repr__(self) -> str:
            return "Key()"

    @hardy.circuit_breaker(key=lambda k: k)
    def f(k: Key) -> int:
        return k.n

    assert f(Key(1)) == 1
    with pytest.raises(ValueError, match="have the same repr"):
        f(Key(2))
    assert len(f.breakers) == 1


def test_a_breaker_that_cannot_be_made_fails_the_call_and_leaves_nothing_behind() -> None:
    # Another breaker already holds the name, with other settings: the registry refuses.
    taken = hardy.registry.get_or_create("fetch['a']", failure_threshold=9)
    fetch = make_fetch()
    for _ in range(2):  # the same error each time, never a "same repr" one
        with pytest.raises(ValueError, match="already exists with other settings"):
            fetch("http://a/")
    assert fetch.calls == []
    assert "a" not in fetch.breakers
    assert fetch("http://b/") == "http://b/"
    hardy.registry.remove("fetch['a']")
    assert fetch("http://a/") == "http://a/"
    assert fetch.breakers["a"] is not taken


# -- the key function ---------------------------------------------------------------------


def test_the_key_function_gets_the_calls_arguments() -> None:
    seen: list[tuple[Any, ...]] = []

    def key(*args: Any, **kwargs: Any) -> Hashable:
        seen.append((args, kwargs))
        return "k"

    @hardy.circuit_breaker(key=key)
    def f(a: int, b: int = 0, *, c: int = 0) -> int:
        return a + b + c

    assert f(1, 2, c=3) == 6
    assert f(1) == 1
    assert seen == [((1, 2), {"c": 3}), ((1,), {})]


def test_an_error_of_the_key_function_propagates_unchanged_and_the_function_is_not_called() -> None:
    called: list[object] = []

    def key(url: str) -> str:
        raise LookupError("no host in " + url)

    @hardy.circuit_breaker(key=key, fallback=lambda url: called.append("fallback"))
    def f(url: str) -> None:
        called.append(url)

    with pytest.raises(LookupError, match="no host in x") as info:
        f("x")
    assert called == []
    assert len(f.breakers) == 0
    frames = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert frames[-1] == "key"  # raised where the key function raised it


@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit, GeneratorExit])
def test_a_base_exception_of_the_key_function_propagates_and_counts_nothing(error: type[BaseException]) -> None:
    calls = 0

    def key(n: int) -> int:
        if n < 0:
            raise error()
        return n

    @hardy.circuit_breaker(key=key)
    def f(n: int) -> int:
        nonlocal calls
        calls += 1
        return n

    assert f(1) == 1
    with pytest.raises(error):
        f(-1)
    assert calls == 1
    assert f.breakers[1].get_stats()["calls"] == 1


def test_an_unhashable_key_is_a_type_error_naming_key_and_the_value() -> None:
    @hardy.circuit_breaker(key=lambda *args: list(args))
    def f(a: int) -> int:
        return a

    with pytest.raises(TypeError, match=r"key must return a hashable value, got \[1\] \(list\)") as info:
        f(1)
    assert isinstance(info.value.__cause__, TypeError)
    with pytest.raises(TypeError, match=r"got \(1, \[2\]\)"):
        hardy.circuit_breaker(name="t", key=lambda *args: args)(lambda a, b: a)(1, [2])


def test_a_key_whose_eq_raises_type_error_keeps_its_own_error() -> None:
    class Odd:
        def __hash__(self) -> int:
            return 1

        def __eq__(self, other: object) -> bool:
            raise TypeError("not comparable")

    @hardy.circuit_breaker(key=lambda k: k)
    def f(k: object) -> str:
        return "ok"

    assert f(Odd()) == "ok"  # the first is stored without comparing
    with pytest.raises(TypeError, match=r"^not comparable$"):
        f(Odd())


def test_the_key_function_may_call_the_decorated_function() -> None:
    depth = 0

    def key(n: int) -> int:
        nonlocal depth
        if n > 0 and depth == 0:
            depth += 1
            try:
                assert f(0) == 0  # re-entry from the key function, on the same thread
            finally:
                depth -= 1
        return n % 3

    @hardy.circuit_breaker(key=key, max_keys=2)
    def f(n: int) -> int:
        return n

    for n in range(1, 8):
        assert f(n) == n
    assert len(f.breakers) <= 2


def test_a_key_hash_that_calls_the_decorated_function_does_not_deadlock() -> None:
    class Reentrant:
        def __init__(self, n: int) -> None:
            self.n = n

        def __hash__(self) -> int:
            if self.n > 0:
                f(Reentrant(0))  # inside the group's dict operations
            return hash(self.n % 2)

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Reentrant) and other.n % 2 == self.n % 2

        def __repr__(self) -> str:
            return f"R{self.n % 2}"

    @hardy.circuit_breaker(key=lambda k: k, max_keys=1)
    def f(k: Reentrant) -> int:
        return k.n

    done: list[int] = []
    worker = threading.Thread(target=lambda: done.extend(f(Reentrant(n)) for n in range(1, 5)))
    worker.start()
    worker.join(30)
    assert not worker.is_alive()
    assert done == [1, 2, 3, 4]


# -- validation ---------------------------------------------------------------------------


def test_key_must_be_callable() -> None:
    with pytest.raises(TypeError, match=r"key must be callable, got 'host' \(str\)"):
        hardy.circuit_breaker(key="host")  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("max_keys", "error", "message"),
    [
        (0, ValueError, "max_keys must be between 1 and"),
        (-1, ValueError, "max_keys must be between 1 and"),
        (2**40, ValueError, "max_keys must be between 1 and"),
        (1.5, TypeError, r"max_keys must be an int, got 1.5 \(float\)"),
        (True, TypeError, r"max_keys must be an int, got True \(bool\)"),
        ("10", TypeError, r"max_keys must be an int, got '10' \(str\)"),
    ],
)
def test_max_keys_is_an_int_of_at_least_one(max_keys: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        hardy.circuit_breaker(key=host, max_keys=max_keys)


def test_max_keys_without_key_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"max_keys applies only with key="):
        hardy.circuit_breaker(max_keys=10)  # type: ignore[call-overload]


def test_the_default_bound_is_1024() -> None:
    fetch = make_fetch()
    assert fetch.breakers.max_keys == 1024 == hardy.breaker.DEFAULT_MAX_KEYS


def test_bad_settings_are_reported_at_decoration_not_at_the_first_call() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        hardy.circuit_breaker(failure_threshold=0, key=host)


# -- async, generators, methods -----------------------------------------------------------


def test_an_async_function_stays_a_coroutine_function_with_a_breaker_per_key() -> None:
    @hardy.circuit_breaker(failure_threshold=1, key=host)
    async def fetch(url: str) -> str:
        await asyncio.sleep(0)
        if "dead" in url:
            raise Down(url)
        return url

    assert inspect.iscoroutinefunction(fetch)

    async def main() -> None:
        with pytest.raises(Down):
            await fetch("http://dead/")
        with pytest.raises(CircuitOpenError):
            await fetch("http://dead/")
        assert await fetch("http://alive/") == "http://alive/"
        results = await asyncio.gather(*(fetch(f"http://h{i % 3}/") for i in range(9)))
        assert len(results) == 9

    asyncio.run(main())
    assert list(fetch.breakers) == ["dead", "alive", "h0", "h1", "h2"]
    assert fetch.breakers["h1"].get_stats()["successes"] == 3


def test_an_async_key_error_is_raised_by_the_await_like_the_functions_own() -> None:
    @hardy.circuit_breaker(key=lambda n: {}[n])
    async def f(n: int) -> int:
        return n

    coroutine = f(1)  # nothing runs until awaited
    with pytest.raises(KeyError):
        asyncio.run(coroutine)


def test_an_async_fallback_answers_for_an_open_key() -> None:
    async def cached(url: str) -> str:
        return "cached"

    @hardy.circuit_breaker(failure_threshold=1, key=host, fallback=cached)
    async def fetch(url: str) -> str:
        raise Down(url)

    async def main() -> None:
        with pytest.raises(Down):
            await fetch("http://a/")
        assert await fetch("http://a/") == "cached"

    asyncio.run(main())


def test_a_generator_function_gets_a_breaker_per_key() -> None:
    @hardy.circuit_breaker(failure_threshold=1, key=lambda n: n % 2)
    def items(n: int) -> Iterator[int]:
        yield n
        if n < 0:
            raise Down()
        received = yield n + 1
        yield received

    assert inspect.isgeneratorfunction(items)
    gen = items(4)
    assert next(gen) == 4
    assert next(gen) == 5
    assert gen.send(9) == 9
    with pytest.raises(StopIteration):
        next(gen)
    with pytest.raises(Down):
        list(items(-1))  # key 1
    with pytest.raises(CircuitOpenError):
        next(items(3))
    assert list(items(2))[:2] == [2, 3]
    assert fstate(items, 0) is CLOSED
    assert fstate(items, 1) is OPEN


def fstate(fn: Any, key: Hashable) -> CircuitState:
    state: CircuitState = fn.breakers[key].state
    return state


def test_an_async_generator_function_gets_a_breaker_per_key() -> None:
    @hardy.circuit_breaker(failure_threshold=1, key=lambda n: n % 2)
    async def items(n: int) -> AsyncIterator[int]:
        yield n
        if n < 0:
            raise Down()
        received = yield n + 1
        yield received

    assert inspect.isasyncgenfunction(items)

    async def main() -> None:
        agen = items(4)
        assert await agen.__anext__() == 4
        assert await agen.__anext__() == 5
        assert await agen.asend(7) == 7
        await agen.aclose()
        with pytest.raises(Down):
            async for _ in items(-1):
                pass
        with pytest.raises(CircuitOpenError):
            await items(3).__anext__()
        assert [i async for i in items(2)][:2] == [2, 3]

    asyncio.run(main())
    assert fstate(items, 0) is CLOSED
    assert fstate(items, 1) is OPEN


def make_client_class() -> Any:
    """Made per test: the class is decorated on the core under test."""

    class Client:
        def __init__(self, base: str) -> None:
            self.base = base

        @hardy.circuit_breaker(name="client.get", failure_threshold=1, key=lambda self, path: self.base)
        def get(self, path: str) -> str:
            if self.base == "dead":
                raise Down(path)
            return f"{self.base}{path}"

        @hardy.circuit_breaker(name="client.ping", key=lambda target: target)
        @staticmethod
        def ping(target: str) -> str:
            return target

        @classmethod
        @hardy.circuit_breaker(name="client.make", key=lambda cls, base: base)
        def make(cls, base: str) -> Any:
            return cls(base)

    return Client


def test_methods_bind_and_the_key_function_gets_self() -> None:
    Client = make_client_class()
    dead, alive = Client("dead"), Client("alive")
    with pytest.raises(Down):
        dead.get("/x")
    with pytest.raises(CircuitOpenError):
        dead.get("/x")
    assert alive.get("/x") == "alive/x"
    assert list(Client.get.breakers) == ["dead", "alive"]
    assert alive.get.breakers is Client.get.breakers
    assert Client.ping("t") == "t"
    assert alive.ping("u") == "u"
    assert list(Client.__dict__["ping"].__func__.breakers) == ["t", "u"]
    assert Client.make("b").base == "b"
    assert isinstance(Client.__dict__["ping"], staticmethod)
    assert isinstance(Client.__dict__["make"], classmethod)


# -- store --------------------------------------------------------------------------------


@pytest.fixture
def redis_store() -> Iterator[Any]:
    import uuid

    from tests.redis_server import RedisServer

    server = RedisServer().start()
    stores: list[hardy.RedisStore] = []

    def make() -> hardy.RedisStore:
        store = hardy.RedisStore(server.client(), prefix=f"k{uuid.uuid4().hex[:6]}:")
        stores.append(store)
        return store

    try:
        yield make
    finally:
        for store in stores:
            store.close()
        server.remove()


@pytest.mark.redis
def test_with_a_store_each_key_shares_its_state_under_its_own_name(redis_store: Any) -> None:
    store = redis_store()
    other = hardy.RedisStore(store.client, prefix=store.prefix)  # another process's view
    try:
        fetch = make_fetch(store=store, failure_threshold=2)
        fetch("http://a/")
        fetch("http://b/")
        elsewhere = hardy.CircuitBreaker("fetch['a']", failure_threshold=2, store=other)
        elsewhere.record_failure(Down())
        elsewhere.record_failure(Down())  # opens "a" for every process
        deadline = time.monotonic() + 10
        while fetch.breakers["a"].state is not OPEN:  # the store's news arrives in the background
            assert time.monotonic() < deadline, "the open state did not reach this process"
            time.sleep(0.005)
        with pytest.raises(CircuitOpenError):
            fetch("http://a/")
        assert fetch("http://b/") == "http://b/"
        assert fetch.breakers["a"].store is store
    finally:
        other.close()


@pytest.mark.redis
def test_with_a_store_an_evicted_keys_breaker_is_freed_and_its_circuit_kept(redis_store: Any) -> None:
    # The store holds its breakers weakly: evicted keys do not pile up in it,
    # and a key that comes back reads its shared circuit again.
    store = redis_store()
    fetch = make_fetch(store=store, max_keys=1, failure_threshold=1)
    with pytest.raises(Down):
        fetch("http://a/", fail=True)
    first = weakref.ref(fetch.breakers["a"])
    for round_ in range(50):  # many evictions and returns
        fetch(f"http://other{round_}/")
    gc.collect()
    assert first() is None
    assert len(store._all()) <= 2  # the live key's breaker (and at most one not yet collected)
    with pytest.raises(CircuitOpenError):  # "a" opened in the store; its new breaker reads that
        fetch("http://a/")
    assert hardy.get_circuit_breaker("fetch['a']") is fetch.breakers["a"]


# -- threads ------------------------------------------------------------------------------


def test_threads_never_make_two_breakers_for_one_key(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    real = hardy.registry.get_or_create

    def counting(name: str, *args: Any, **kwargs: Any) -> Any:
        made.append(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(hardy.registry, "get_or_create", counting)
    with switching_often():

        @hardy.circuit_breaker(key=lambda k: k, max_keys=64)
        def f(k: int) -> int:
            return k

        def work() -> None:
            rng = random.Random(threading.get_ident())
            for _ in range(2000):
                k = rng.randrange(32)
                assert f(k) == k

        errors = run_threads(work)
    assert errors == []
    assert sorted(made) == sorted(set(made))
    assert len(made) == 32
    assert sum(b.get_stats()["calls"] for b in f.breakers.values()) == 8 * 2000


def test_threads_never_exceed_max_keys_and_every_call_is_counted_once() -> None:
    sizes: list[int] = []
    stop = threading.Event()
    calls = 0
    lock = threading.Lock()

    @hardy.circuit_breaker(key=lambda k: k, max_keys=4, failure_threshold=3)
    def f(k: int) -> int:
        nonlocal calls
        with lock:
            calls += 1
        if k % 5 == 0:
            raise Down()
        return k

    def watch() -> None:
        while not stop.is_set():
            sizes.append(len(f.breakers))
            assert len(list(f.breakers)) <= 4

    def work() -> None:
        rng = random.Random(threading.get_ident())
        for _ in range(1500):
            with contextlib.suppress(Down, CircuitOpenError):
                f(rng.randrange(16))

    with switching_often():
        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            errors = run_threads(work)
        finally:
            stop.set()
            watcher.join(30)
    assert errors == []
    assert not watcher.is_alive()
    assert sizes
    assert max(sizes) <= 4
    assert len(f.breakers) == 4
    assert all(name.startswith(f.breakers.name) for name in hardy.registry.all())
    assert len(hardy.registry.all()) == 4  # the evicted ones were forgotten
    assert calls > 0


def test_each_keys_breaker_has_the_decorators_window() -> None:
    window = hardy.CountWindow(size=4, failure_rate=0.5, minimum_calls=2)
    fetch = make_fetch(name="windowed-fetch", window=window)
    fetch("http://a/")
    with pytest.raises(Down):
        fetch("http://a/", fail=True)  # 1 of 2 failed: the rate reaches 0.5
    assert fetch.breakers["a"].window == window
    assert fetch.breakers["a"].state is CircuitState.OPEN
    assert fetch("http://b/") == "http://b/"
    assert fetch.breakers["b"].window == window
