"""Bad input across the public API: a ValueError or TypeError naming the parameter.

Every seconds-like parameter is swept with the same hostile values; exception
tuples, names and clocks are checked where they are received.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
from collections.abc import Callable, Iterator
from fractions import Fraction

import pytest
import redis

import hardy

from .conftest import FakeClock
from .redis_server import free_port

HOSTILE = [10**400, -(10**400), float("nan"), float("inf"), float("-inf"), -1, True, "1", None, 1j]


def _client() -> redis.Redis:
    # Never connected: RedisStore checks its arguments before any command.
    return redis.Redis(host="127.0.0.1", port=free_port())


async def _nothing() -> None:
    return None


def _with_timeout(value: object) -> None:
    asyncio.run(hardy.with_timeout(_nothing(), value))  # type: ignore[arg-type]


def _decorrelated_delay(value: object) -> None:
    hardy.RetryConfig(jitter=hardy.Jitter.DECORRELATED).get_delay(1, previous_delay=value)  # type: ignore[arg-type]


# (what is called, the parameter its message must name)
SECONDS: list[tuple[str, Callable[[object], object], str]] = [
    ("CircuitBreaker", lambda v: hardy.CircuitBreaker("x", reset_timeout=v), "reset_timeout"),
    ("circuit_breaker", lambda v: hardy.circuit_breaker("x", reset_timeout=v), "reset_timeout"),
    ("registry.get_or_create", lambda v: hardy.registry.get_or_create("x", reset_timeout=v), "reset_timeout"),
    ("RetryConfig", lambda v: hardy.RetryConfig(backoff_factor=v), "backoff_factor"),
    ("RetryConfig", lambda v: hardy.RetryConfig(initial_delay=v), "initial_delay"),
    ("RetryConfig", lambda v: hardy.RetryConfig(max_delay=v), "max_delay"),
    ("RetryConfig", lambda v: hardy.RetryConfig(deadline=v), "deadline"),
    ("retry", lambda v: hardy.retry(backoff_factor=v), "backoff_factor"),
    ("retry", lambda v: hardy.retry(initial_delay=v), "initial_delay"),
    ("retry", lambda v: hardy.retry(max_delay=v), "max_delay"),
    ("retry", lambda v: hardy.retry(deadline=v), "deadline"),
    ("get_delay", _decorrelated_delay, "previous_delay"),
    ("timeout", lambda v: hardy.timeout(v), "seconds"),
    ("timeout thread", lambda v: hardy.timeout(v, mode="thread"), "seconds"),
    ("with_timeout", _with_timeout, "seconds"),
    ("HealthCheck.register", lambda v: hardy.HealthCheck().register("x", timeout=v), "timeout"),
    ("HealthCheck.register", lambda v: hardy.HealthCheck().register("x", cache_ttl=v), "cache_ttl"),
    ("RedisStore", lambda v: hardy.RedisStore(_client(), timeout=v), "timeout"),
    ("RedisStore", lambda v: hardy.RedisStore(_client(), sync_interval=v), "sync_interval"),
    ("RedisStore", lambda v: hardy.RedisStore(_client(), trial_lease=v), "trial_lease"),
    ("RedisStore", lambda v: hardy.RedisStore(_client(), idle_expiry=v), "idle_expiry"),
]

# Values that are bad for every one of them (None is fine for deadline= and
# previous_delay=, so it is swept apart below).
ALWAYS_BAD = [value for value in HOSTILE if value is not None]


@pytest.mark.parametrize(("target", "call", "parameter"), SECONDS, ids=[f"{t}-{p}" for t, _, p in SECONDS])
@pytest.mark.parametrize("value", ALWAYS_BAD, ids=lambda v: re.sub(r"\W", "_", repr(v))[:12])
def test_every_seconds_parameter_refuses_hostile_values(
    target: str, call: Callable[[object], object], parameter: str, value: object
) -> None:
    with pytest.raises((ValueError, TypeError)) as info:
        call(value)
    assert type(info.value) in (ValueError, TypeError)  # not OverflowError, nor a subclass of either
    assert parameter in str(info.value), str(info.value)


@pytest.mark.parametrize(
    ("call", "parameter"),
    [(call, parameter) for _, call, parameter in SECONDS if parameter not in ("deadline", "previous_delay")],
)
def test_none_is_refused_where_it_means_nothing(call: Callable[[object], object], parameter: str) -> None:
    with pytest.raises(TypeError, match=parameter):
        call(None)


def test_huge_ints_are_described_not_printed() -> None:
    # repr() of an int this long raises ValueError itself (the 4300-digit limit).
    huge = 10**5000
    with pytest.raises(ValueError, match=r"reset_timeout must be a finite number, got an int of \d+ bits"):
        hardy.CircuitBreaker("x", reset_timeout=huge)
    with pytest.raises(ValueError, match=r"failure_threshold must be between 1 and \d+, got an int of \d+ bits"):
        hardy.CircuitBreaker("x", failure_threshold=huge)


def test_large_finite_seconds_are_accepted() -> None:
    assert hardy.CircuitBreaker("x", reset_timeout=10**300).reset_timeout == 1e300
    assert hardy.RetryConfig(initial_delay=10**300, max_delay=1e301).max_delay == 1e301


# -- exception tuples ---------------------------------------------------------------


def _breaker_excluded(value: object) -> object:
    return hardy.CircuitBreaker("x", excluded_exceptions=value)  # type: ignore[arg-type]


def _registry_excluded(value: object) -> object:
    return hardy.registry.get_or_create("x", excluded_exceptions=value)  # type: ignore[arg-type]


def _decorator_excluded(value: object) -> object:
    return hardy.circuit_breaker("x", excluded_exceptions=value)  # type: ignore[arg-type]


def _config_retryable(value: object) -> object:
    return hardy.RetryConfig(retryable_exceptions=value)  # type: ignore[arg-type]


def _retry_retryable(value: object) -> object:
    return hardy.retry(retryable_exceptions=value)  # type: ignore[arg-type]


def _fallback_exceptions(value: object) -> object:
    return hardy.fallback(exceptions=value)  # type: ignore[arg-type]


def _chain_exceptions(value: object) -> object:
    return hardy.Fallback("x", exceptions=value)  # type: ignore[arg-type]


def _with_fallback_exceptions(value: object) -> object:
    return hardy.with_fallback(lambda: 1, [], exceptions=value)  # type: ignore[arg-type]


EXCEPTION_PARAMETERS = [
    (_breaker_excluded, "excluded_exceptions"),
    (_registry_excluded, "excluded_exceptions"),
    (_decorator_excluded, "excluded_exceptions"),
    (_config_retryable, "retryable_exceptions"),
    (_retry_retryable, "retryable_exceptions"),
    (_fallback_exceptions, "exceptions"),
    (_chain_exceptions, "exceptions"),
    (_with_fallback_exceptions, "exceptions"),
]


def _generator() -> Iterator[type[Exception]]:
    yield ValueError


NOT_EXCEPTION_TUPLES = [
    ({ValueError: "why"}, "a mapping is not"),
    ({ValueError}, "a set has no order"),
    (frozenset({ValueError}), "a set has no order"),
    ("ValueError", "a string is not an exception class"),
    (b"ValueError", "a string is not an exception class"),
    (_generator(), "pass a tuple"),
    (iter([ValueError]), "pass a tuple"),
    (ValueError("an instance"), "must be an exception class"),
    (int, "must be an exception class"),
    (3, "must be an exception class"),
    ((ValueError, "KeyError"), "must hold exception classes, got 'KeyError'"),
    ([ValueError, (KeyError,)], "must hold exception classes"),
]


@pytest.mark.parametrize(("call", "parameter"), EXCEPTION_PARAMETERS, ids=[p for _, p in EXCEPTION_PARAMETERS])
@pytest.mark.parametrize(("value", "hint"), NOT_EXCEPTION_TUPLES, ids=lambda v: type(v).__name__)
def test_exception_parameters_refuse_what_is_not_a_class_tuple_or_list(
    call: Callable[[object], object], parameter: str, value: object, hint: str
) -> None:
    with pytest.raises(TypeError) as info:
        call(value)
    message = str(info.value)
    assert message.startswith(f"{parameter} must "), message
    assert hint in message, message


@pytest.mark.parametrize(("call", "parameter"), EXCEPTION_PARAMETERS, ids=[p for _, p in EXCEPTION_PARAMETERS])
def test_exception_parameters_take_a_class_a_tuple_or_a_list(call: Callable[[object], object], parameter: str) -> None:
    for value in (KeyError, (KeyError, OSError), [KeyError, OSError]):
        hardy.registry.clear()
        call(value)


def test_a_list_of_exceptions_behaves_as_the_tuple(clock: FakeClock) -> None:
    breaker = hardy.CircuitBreaker("x", failure_threshold=1, excluded_exceptions=[KeyError], clock=clock)
    assert breaker.excluded_exceptions == (KeyError,)
    with pytest.raises(KeyError):
        breaker.call(_raise, KeyError("ignored"))
    assert breaker.is_closed
    config = hardy.RetryConfig(retryable_exceptions=[OSError, KeyError])
    assert config.retryable_exceptions == (OSError, KeyError)


def _raise(exc: BaseException) -> None:
    raise exc


# -- names ----------------------------------------------------------------------------


EMPTY_NAME: list[tuple[str, Callable[[object], object]]] = [
    ("CircuitBreaker", lambda name: hardy.CircuitBreaker(name)),  # type: ignore[arg-type]
    ("circuit_breaker", lambda name: hardy.circuit_breaker(name)),  # type: ignore[arg-type]
    ("circuit_breaker(name=)", lambda name: hardy.circuit_breaker(name=name)),  # type: ignore[arg-type]
    ("registry.get_or_create", lambda name: hardy.registry.get_or_create(name)),  # type: ignore[arg-type]
    ("Fallback", lambda name: hardy.Fallback(name)),  # type: ignore[arg-type]
    ("HealthCheck.register", lambda name: hardy.HealthCheck().register(name)),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("target", "call"), EMPTY_NAME, ids=[t for t, _ in EMPTY_NAME])
def test_an_empty_name_is_a_value_error(target: str, call: Callable[[object], object]) -> None:
    with pytest.raises(ValueError, match="name must not be empty"):
        call("")
    assert hardy.registry.all() == {}  # nothing was registered under a default name


@pytest.mark.parametrize(("target", "call"), EMPTY_NAME, ids=[t for t, _ in EMPTY_NAME])
def test_a_name_that_is_not_a_str_is_a_type_error(target: str, call: Callable[[object], object]) -> None:
    for name in (b"db", 3, ("db",)):
        with pytest.raises(TypeError, match="name must be a str"):
            call(name)


def test_circuit_breaker_without_a_name_still_takes_the_functions() -> None:
    def lookup() -> int:
        return 1

    assert hardy.circuit_breaker(name=None)(lookup).breaker.name.endswith("lookup")


# -- clocks ---------------------------------------------------------------------------


def _breaker_clock(clock: Callable[[], object]) -> object:
    return hardy.CircuitBreaker("x", clock=clock)  # type: ignore[arg-type]


def _config_clock(clock: Callable[[], object]) -> object:
    return hardy.RetryConfig(clock=clock)  # type: ignore[arg-type]


def _retry_clock(clock: Callable[[], object]) -> object:
    return hardy.retry(clock=clock)  # type: ignore[arg-type]


CLOCK_TARGETS = [_breaker_clock, _config_clock, _retry_clock]


@pytest.mark.parametrize("make", CLOCK_TARGETS)
@pytest.mark.parametrize(
    ("reading", "error", "shown"),
    [
        (float("nan"), ValueError, "nan"),
        (float("inf"), ValueError, "inf"),
        (float("-inf"), ValueError, "-inf"),
        (10**400, ValueError, "an int of 1329 bits"),
        (Fraction(10**400), ValueError, "Fraction"),
        ("12.5", TypeError, "'12.5'"),
        (None, TypeError, "None"),
        (True, TypeError, "True"),
        (1j, TypeError, "1j"),
    ],
    ids=repr,
)
def test_a_clock_reading_that_is_not_a_finite_number_is_refused_at_construction(
    make: Callable[[Callable[[], object]], object], reading: object, error: type[Exception], shown: str
) -> None:
    def bad_clock() -> object:
        return reading

    with pytest.raises(error) as info:
        make(bad_clock)
    assert type(info.value) is error
    message = str(info.value)
    assert message.startswith("clock must return "), message
    assert shown in message, message
    assert "bad_clock" in message, message


@pytest.mark.parametrize("make", CLOCK_TARGETS)
def test_a_clock_that_raises_at_construction_propagates(make: Callable[[Callable[[], object]], object]) -> None:
    class ClockBroken(Exception):
        pass

    def broken() -> float:
        raise ClockBroken("no time")

    with pytest.raises(ClockBroken, match="no time"):
        make(broken)


@pytest.mark.parametrize("make", CLOCK_TARGETS)
def test_good_clocks_are_read_twice_at_construction(make: Callable[[Callable[[], object]], object]) -> None:
    # Twice: a clock that goes backwards is refused at once.
    for reading in (0, -5, 12.5, Fraction(3, 2), 2**60):
        calls: list[object] = []

        def clock(reading: object = reading, calls: list[object] = calls) -> object:
            calls.append(reading)
            return reading

        make(clock)
        assert calls == [reading, reading]


@pytest.mark.parametrize("make", CLOCK_TARGETS)
def test_a_clock_that_goes_backwards_is_refused_at_construction(make: Callable[[Callable[[], object]], object]) -> None:
    readings = iter([10.0, 9.0])
    with pytest.raises(ValueError, match=r"clock must not go backwards, but it read 10.0 and then 9.0"):
        make(lambda: next(readings))


def test_a_clock_that_is_not_callable_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="clock must be callable"):
        hardy.CircuitBreaker("x", clock=12.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="clock must be callable"):
        hardy.RetryConfig(clock=12.0)  # type: ignore[arg-type]


def test_the_random_source_is_not_called_at_construction() -> None:
    seeded = random.Random(7)
    expected = random.Random(7)
    config = hardy.RetryConfig(jitter=hardy.Jitter.FULL, initial_delay=1.0, random=seeded.random)
    assert config.get_delay(1) == expected.random() * 1.0  # the first draw went to the first delay


def test_fake_clocks_still_drive_breakers(clock: FakeClock) -> None:
    breaker = hardy.CircuitBreaker("x", failure_threshold=1, reset_timeout=5, clock=clock)
    with pytest.raises(KeyError):
        breaker.call(_raise, KeyError("down"))
    assert breaker.is_open
    clock.advance(5)
    assert breaker.state is hardy.CircuitState.HALF_OPEN
    assert math.isclose(breaker.get_time_until_reset(), 0.0)


def test_a_str_subclass_is_a_name_on_both_cores() -> None:
    """A str enum member (any str subclass) names a breaker, a bulkhead or a rate limiter by its text."""
    import enum

    class Dependency(str, enum.Enum):  # enum.StrEnum from 3.11
        DB = "db"

    class Shouting(str):
        def __str__(self) -> str:
            return "IGNORED"

    for name, text in ((Dependency.DB, "db"), (Shouting("api"), "api")):
        made = [
            hardy.CircuitBreaker(name),
            hardy.Bulkhead(name, max_concurrent=1),
            hardy.RateLimiter(name, rate=1),
        ]
        for obj in made:
            assert obj.name == text
            assert type(obj.name) is str
