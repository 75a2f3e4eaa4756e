"""Type-checked by mypy and pyright (see check_api.py), never run: issue 18's hooks and blocks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from typing_extensions import assert_type

import hardy
from hardy.attempts import Attempt


def before_sleep(state: hardy.RetryState) -> None:
    assert_type(state.attempt, int)
    assert_type(state.delay, float | None)
    assert_type(state.elapsed, float)
    assert_type(state.exception, BaseException | None)


async def on_giveup(state: hardy.RetryState) -> None:
    pass


def seconds_asked(outcome: object) -> float | None:
    return 1.0 if isinstance(outcome, ConnectionError) else None


@hardy.retry(
    max_attempts=3,
    retry_after=seconds_asked,
    before_sleep=before_sleep,
    on_giveup=on_giveup,
    sleep=lambda seconds: None,
)
async def hooked(url: str) -> bytes:
    return b""


@hardy.retry(max_attempts=2)
def numbers(n: int) -> Iterator[int]:
    yield n


@hardy.retry
async def async_numbers(n: int) -> AsyncIterator[int]:
    yield n


assert_type(numbers(1), Iterator[int])
assert_type(async_numbers(1), AsyncIterator[int])

hardy.retry(before_sleep=3)  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]
hardy.retry(retry_after=lambda outcome: "soon")  # type: ignore[arg-type, return-value]  # pyright: ignore[reportArgumentType]

config = hardy.RetryConfig(retry_after=seconds_asked, sleep=lambda seconds: None)
assert_type(config.retry_after, Callable[[Any], float | None] | None)


def block() -> int:
    for attempt in hardy.attempts(max_attempts=3, before_sleep=before_sleep):
        assert_type(attempt, Attempt)
        with attempt:
            attempt.set_result(1)
            return attempt.number
    return 0


async def async_block() -> None:
    async for attempt in hardy.attempts(on_giveup=on_giveup):
        with attempt:
            pass


stats = hardy.RetryStatistics(lambda: (0, 0, 0, 0, 0, 0.0))
assert_type(stats["calls"], float)
