"""``circuit_breaker(key=...)``: one breaker per key, for mypy and pyright (never run).

The keyed decorator keeps the signature like the plain one, and its
functions carry ``.breakers`` (a mapping key -> breaker) instead of
``.breaker``. Misuse carries an ignore for each checker (see ``check_api.py``).
"""

from __future__ import annotations

from collections.abc import Coroutine, Hashable
from typing import Any
from urllib.parse import urlsplit

from typing_extensions import assert_type

import hardy
from hardy.breaker import KeyedBreakers


def host_of(url: str, **_: object) -> str:
    return urlsplit(url).netloc


def same(value: int) -> int:
    return value


@hardy.circuit_breaker(key=host_of, max_keys=16)
def fetch(url: str, timeout: float = 5.0) -> bytes:
    return b""


assert_type(fetch("https://example.org/"), bytes)
assert_type(fetch.breakers, KeyedBreakers)
assert_type(fetch.breakers["example.org"], hardy.CircuitBreaker)
assert_type(fetch.breakers.max_keys, int)
first: Hashable = next(iter(fetch.breakers))
fetch(1)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
missing: object = fetch.breaker  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType, reportUnknownVariableType]


@hardy.circuit_breaker(name="per-user", failure_threshold=3, key=same)
async def profile(user_id: int) -> dict[str, str]:
    return {}


coroutine: Coroutine[Any, Any, dict[str, str]] = profile(1)
assert_type(profile.breakers, KeyedBreakers)


class Client:
    @hardy.circuit_breaker(key=lambda *args: args[-1])
    def ping(self, host: str) -> bool:
        return True

    @hardy.circuit_breaker(key=host_of)
    @staticmethod
    def resolve(host: str) -> str:
        return host


assert_type(Client().ping("db"), bool)
assert_type(Client.resolve("db"), str)
assert_type(Client.ping.breakers, KeyedBreakers)

hardy.circuit_breaker(key=None, max_keys=3)  # type: ignore[call-overload]  # pyright: ignore[reportCallIssue, reportArgumentType]
