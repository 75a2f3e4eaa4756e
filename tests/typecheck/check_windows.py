"""Type-checked by mypy (``mypy --strict tests/typecheck``) and pyright (strict), never run.

What a type checker must infer for rate-based windows (``window=``).
"""

from __future__ import annotations

from typing_extensions import assert_type

import hardy

count = hardy.CountWindow(size=50, failure_rate=0.25, minimum_calls=5, slow_call_duration=2.0, slow_call_rate=0.5)
timed = hardy.TimeWindow(seconds=30)
assert_type(count.size, int)
assert_type(count.failure_rate, float)
assert_type(count.slow_call_duration, float | None)
assert_type(timed.seconds, int)

breaker = hardy.CircuitBreaker("search", window=count)
assert_type(breaker.window, hardy.CountWindow | hardy.TimeWindow | None)
hardy.CircuitBreaker("search", window=timed)
hardy.CircuitBreaker("search", window=None)
hardy.CircuitBreaker("search", window=0.5)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
hardy.registry.get_or_create("search", window=count)


@hardy.circuit_breaker("fetch", window=timed)
def fetch(url: str) -> bytes:
    return url.encode()


assert_type(fetch("x"), bytes)
assert_type(fetch.breaker.window, hardy.CountWindow | hardy.TimeWindow | None)


def _server_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError)


# A predicate stands wherever an exception class does (issue 17), retry included.
@hardy.retry(retryable_exceptions=(KeyError, _server_error))
def lookup(key: str) -> int:
    return len(key)


assert_type(lookup("x"), int)
for attempt in hardy.attempts(retryable_exceptions=_server_error):
    with attempt:
        pass
