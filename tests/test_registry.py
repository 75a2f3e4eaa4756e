"""The ``circuit_breaker`` decorator and the registry of named breakers."""

from __future__ import annotations

import asyncio
import functools
import inspect
from typing import Any

import pytest

import hardy


class Boom(Exception):
    pass


def test_bare_and_called_forms() -> None:
    @hardy.circuit_breaker
    def bare(x: int) -> int:
        return x + 1

    @hardy.circuit_breaker()
    def called(x: int) -> int:
        return x + 2

    assert bare(1) == 2
    assert called(1) == 3
    assert bare.breaker.name == f"{__name__}.test_bare_and_called_forms.<locals>.bare"
    assert hardy.get_circuit_breaker(bare.breaker.name) is bare.breaker
    assert bare.breaker is not called.breaker
    assert isinstance(bare.breaker, hardy.CircuitBreaker)


def test_same_name_shares_one_breaker_and_conflicts_are_errors() -> None:
    @hardy.circuit_breaker("db", failure_threshold=2)
    def read() -> None:
        raise Boom()

    @hardy.circuit_breaker("db", failure_threshold=2)
    def write() -> str:
        return "written"

    assert read.breaker is write.breaker
    for _ in range(2):
        with pytest.raises(Boom):
            read()
    with pytest.raises(hardy.CircuitOpenError):
        write()
    with pytest.raises(ValueError, match="'db' already exists with other settings"):
        hardy.circuit_breaker("db", failure_threshold=3)(lambda: None)


def test_fallback_sync_and_async() -> None:
    calls: list[tuple[Any, ...]] = []

    def fallback(*args: Any, **kwargs: Any) -> str:
        calls.append((args, kwargs))
        return "cached"

    @hardy.circuit_breaker("flaky", failure_threshold=1, fallback=fallback)
    def flaky(x: int, *, y: int = 0) -> str:
        raise Boom()

    with pytest.raises(Boom):
        flaky(1, y=2)
    assert flaky(1, y=2) == "cached"
    assert calls == [((1,), {"y": 2})]

    async def async_fallback(x: int) -> str:
        return f"async cached {x}"

    @hardy.circuit_breaker("aflaky", failure_threshold=1, fallback=async_fallback)
    async def aflaky(x: int) -> str:
        raise Boom()

    async def scenario() -> None:
        with pytest.raises(Boom):
            await aflaky(1)
        assert await aflaky(2) == "async cached 2"

    asyncio.run(scenario())
    assert inspect.iscoroutinefunction(aflaky)


def test_default_name_of_partials_and_objects() -> None:
    def base(a: int, b: int) -> int:
        return a + b

    protected = hardy.circuit_breaker(functools.partial(base, 1))
    assert protected(2) == 3
    assert protected.breaker.name.endswith("test_default_name_of_partials_and_objects.<locals>.base")


def test_registry_operations() -> None:
    registry = hardy.BreakerRegistry()
    breaker = registry.get_or_create("a", failure_threshold=2)
    assert registry.get_or_create("a", failure_threshold=2) is breaker
    assert registry.get("a") is breaker
    assert registry.get("missing") is None
    assert registry.all() == {"a": breaker}
    other = hardy.CircuitBreaker("b")
    assert registry.register(other) is other
    with pytest.raises(ValueError, match="already registered"):
        registry.register(hardy.CircuitBreaker("b"))
    assert registry.remove("a") is breaker
    registry.clear()
    assert registry.all() == {}


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"name": 3}, TypeError, "name must be a str or None, got 3"),
        ({"failure_threshold": 0}, ValueError, "failure_threshold"),
        ({"reset_timeout": -5}, ValueError, "reset_timeout"),
        ({"half_open_max_calls": "2"}, TypeError, "half_open_max_calls"),
        ({"excluded_exceptions": [1]}, TypeError, "excluded_exceptions"),
        ({"fallback": "x"}, TypeError, "fallback must be callable"),
    ],
)
def test_bad_arguments_fail_at_the_call_that_made_them(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        hardy.circuit_breaker(**kwargs)
