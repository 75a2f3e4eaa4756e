"""Methods, static and class methods, ``None`` defaults and call checks, for mypy and pyright (never run).

Read through an instance, a decorated method loses ``self``; read through the
class it keeps it. Misuse carries an ignore for each checker (see
``check_api.py``): an ignore that is no longer needed fails the check.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Final

from typing_extensions import assert_type

import hardy


def cached(url: str) -> bytes:
    return b""


def cached_for(client: Client, url: str) -> bytes:
    return b""


# mypy takes ``MYPY`` as always true, pyright as false: the blocks under
# ``if not MYPY`` hold what pyright types and mypy does not (docs/typing.md).
MYPY: Final = False


class Client:
    @hardy.circuit_breaker
    def get(self, url: str, *, retries: int = 0) -> bytes:
        return b""

    @hardy.circuit_breaker(name="client.post", failure_threshold=3)
    async def post(self, url: str, body: bytes) -> int:
        return 0

    @hardy.retry
    def head(self, url: str) -> dict[str, str]:
        return {}

    @hardy.retry(max_attempts=3)
    async def options(self, url: str) -> list[str]:
        return []

    @hardy.timeout(1.0)
    def put(self, url: str) -> bool:
        return True

    @hardy.fallback(cached_for, default=None)
    def patch(self, url: str) -> bytes:
        return b""

    # Hardy above the descriptor, and below it.
    @hardy.circuit_breaker
    @staticmethod
    def ping(host: str) -> bool:
        return True

    @staticmethod
    @hardy.retry
    def pong(host: str) -> bool:
        return True

    @hardy.retry(max_attempts=2)
    @classmethod
    def connect(cls, url: str) -> Client:
        return cls()

    @hardy.circuit_breaker
    @classmethod
    def open(cls, url: str) -> Client:
        return cls()

    @hardy.timeout(2.0)
    @staticmethod
    async def probe(host: str) -> float:
        return 0.0


client = Client()

# Bound through an instance: self is gone, the rest is checked.
assert_type(client.get("u"), bytes)
assert_type(client.get(url="u", retries=2), bytes)
post: Coroutine[Any, Any, int] = client.post("u", b"")
post.close()
assert_type(client.head("u"), dict[str, str])
assert_type(client.put("u"), bool)
assert_type(client.patch("u"), bytes | None)
assert_type(client.get.breaker, hardy.CircuitBreaker)

# Through the class: self is an argument.
assert_type(Client.get(client, "u"), bytes)
assert_type(Client.head(client, "u"), dict[str, str])
assert_type(Client.get.breaker, hardy.CircuitBreaker)

# Static methods through the class, in both decorator orders.
assert_type(Client.ping("h"), bool)
assert_type(Client.ping.breaker, hardy.CircuitBreaker)
assert_type(Client.pong("h"), bool)
probe: Coroutine[Any, Any, float] = Client.probe("h")
probe.close()
Client.ping(3)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]

# A CircuitBreaker instance above the descriptor (the stub's __call__ overloads).
shared_breaker = hardy.CircuitBreaker("client.shared")


class Pinger:
    @shared_breaker
    @staticmethod
    def ping(host: str) -> bool:
        return True

    @shared_breaker
    @classmethod
    def create(cls, url: str) -> Pinger:
        return cls()


assert_type(Pinger.ping("h"), bool)
assert_type(Pinger.ping.breaker, hardy.CircuitBreaker)
Pinger.ping(3)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]

if not MYPY:
    # Static methods through an instance. (Class methods under a hardy
    # decorator run in both orders but bind in neither checker yet: see
    # docs/typing.md.)
    assert_type(client.ping("h"), bool)
    assert_type(client.pong("h"), bool)
    client.ping(3)  # pyright: ignore[reportArgumentType]


async def use_methods() -> None:
    assert_type(await client.post("u", b""), int)
    assert_type(await client.options("u"), list[str])
    assert_type(await Client.probe("h"), float)
    if not MYPY:
        assert_type(await client.probe("h"), float)


# What a decorated function keeps.
assert_type(Client.get.__name__, str)
assert_type(Client.get.__qualname__, str)
assert_type(Client.head.__wrapped__, Callable[..., Any])

# Misuse that must be flagged.
client.get(1)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
client.get()  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
client.get("u", retries="many")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
client.head("u", "extra")  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
client.put(3)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
Client.get("u")  # type: ignore[arg-type, call-arg]  # pyright: ignore[reportCallIssue]


# ``None`` defaults widen the return type.
@hardy.fallback(cached, default=None)
def read(url: str) -> bytes:
    return b""


@hardy.fallback(cached)
def read_or_raise(url: str) -> bytes:
    return b""


@hardy.fallback(cached, default=None)
async def read_async(url: str) -> bytes:
    return b""


assert_type(read("u"), bytes | None)
assert_type(read_or_raise("u"), bytes)
assert_type(hardy.with_fallback(cached, [cached], default=None)("u"), bytes | None)
assert_type(hardy.with_fallback(cached, [cached], None)("u"), bytes | None)
assert_type(hardy.with_fallback(cached, [cached])("u"), bytes)
assert_type(hardy.with_fallback(cached, [cached], default="")("u"), bytes | str)


async def fetch(url: str) -> str:
    return ""


async def use_defaults() -> None:
    assert_type(await read_async("u"), bytes | None)
    assert_type(await hardy.with_timeout(fetch("u"), 1.0), str)
    assert_type(await hardy.with_timeout(fetch("u"), 1.0, fallback_value=None), str | None)
    assert_type(await hardy.with_timeout(fetch("u"), 1.0, None), str | None)
    assert_type(await hardy.with_timeout(fetch("u"), 1.0, fallback_value=0), str | int)


read(1)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
len(read("u"))  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]


# ``CircuitBreaker.call`` and ``retry_with_backoff`` check the arguments against the function.
breaker = hardy.CircuitBreaker("typed-call")
assert_type(breaker.call(cached, "u"), bytes)
assert_type(breaker.call(cached, url="u"), bytes)
assert_type(hardy.retry_with_backoff(cached, "u"), bytes)
assert_type(hardy.retry_with_backoff(cached, "u", config=hardy.RetryConfig(max_attempts=2)), bytes)
called: Coroutine[Any, Any, str] = breaker.call(fetch, "u")
called.close()

breaker.call(cached, 1)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
breaker.call(cached)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
breaker.call(cached, "u", "v")  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
breaker.call(cached, link="u")  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
hardy.retry_with_backoff(cached, 1)  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]
hardy.retry_with_backoff(cached)  # type: ignore[call-overload]  # pyright: ignore[reportCallIssue]
hardy.retry_with_backoff(cached, "u", config="fast")  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
