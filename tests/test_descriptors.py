"""Every hardy decorator on static and class methods, in both decorator orders.

A hardy decorator above ``@staticmethod`` / ``@classmethod`` wraps the
function inside and keeps the descriptor, so both orders mean the same:
called through the class and through an instance, the static method gets no
instance and the class method gets the class. Runs against both cores.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

import pytest

import hardy

# Each decorator, made fresh for each class (a breaker name is per function).
DECORATORS: dict[str, Callable[[], Callable[[Any], Any]]] = {
    "circuit_breaker": lambda: hardy.circuit_breaker,
    "circuit_breaker()": lambda: hardy.circuit_breaker(failure_threshold=2),
    "retry": lambda: hardy.retry,
    "retry()": lambda: hardy.retry(max_attempts=2, initial_delay=0),
    "timeout": lambda: hardy.timeout(5.0),
    "fallback": lambda: hardy.fallback(lambda *args: "fallback"),
    "CircuitBreaker instance": lambda: hardy.CircuitBreaker("descriptors"),
}


def make_class(decorator: Callable[[Any], Any], outer: bool) -> type[Any]:
    """A class with a static and a class method under ``decorator``, above (outer) or below the descriptor."""
    if outer:

        class Outer:
            @decorator
            @staticmethod
            def static(x: int) -> tuple[str, int]:
                return ("static", x)

            @decorator
            @classmethod
            def klass(cls, x: int) -> tuple[type[Any], int]:
                return (cls, x)

        return Outer

    class Inner:
        @staticmethod
        @decorator
        def static(x: int) -> tuple[str, int]:
            return ("static", x)

        @classmethod
        @decorator
        def klass(cls, x: int) -> tuple[type[Any], int]:
            return (cls, x)

    return Inner


@pytest.mark.parametrize("outer", [True, False], ids=["above", "below"])
@pytest.mark.parametrize("name", list(DECORATORS))
def test_static_and_class_methods_in_both_orders(name: str, outer: bool) -> None:
    cls = make_class(DECORATORS[name](), outer)
    assert cls.static(1) == ("static", 1)
    assert cls().static(2) == ("static", 2)
    assert cls.klass(3) == (cls, 3)
    assert cls().klass(4) == (cls, 4)

    class Sub(cls):  # type: ignore[misc, valid-type]
        pass

    assert Sub.klass(5) == (Sub, 5)
    assert Sub().static(6) == ("static", 6)
    # Still a staticmethod / classmethod in the class dict, whatever the order.
    assert isinstance(cls.__dict__["static"], staticmethod)
    assert isinstance(cls.__dict__["klass"], classmethod)
    assert cls.static.__name__ == "static"
    assert cls.klass.__name__ == "klass"


@pytest.mark.parametrize("outer", [True, False], ids=["above", "below"])
def test_circuit_breaker_on_static_and_class_methods_guards_and_exposes_the_breaker(outer: bool) -> None:
    cls = make_class(hardy.circuit_breaker(name=f"descriptors-{outer}", failure_threshold=1), outer)
    breaker = hardy.get_circuit_breaker(f"descriptors-{outer}")
    assert breaker is not None
    assert cls.static.breaker is breaker
    assert cls().klass.breaker is breaker
    cls().static(1)
    cls.klass(1)
    assert breaker.get_stats()["successes"] == 2


def test_default_breaker_name_is_the_method_qualname_in_both_orders() -> None:
    cls = make_class(hardy.circuit_breaker, outer=True)
    assert cls.static.breaker.name.endswith("make_class.<locals>.Outer.static")
    assert cls.klass.breaker.name.endswith("make_class.<locals>.Outer.klass")


@pytest.mark.parametrize("outer", [True, False], ids=["above", "below"])
def test_retry_on_a_static_method_retries_with_the_right_arguments(outer: bool) -> None:
    calls: list[tuple[Any, ...]] = []

    def flaky(*args: Any) -> str:
        calls.append(args)
        if len(calls) < 2:
            raise ConnectionError("down")
        return "ok"

    decorator = hardy.retry(max_attempts=3, initial_delay=0)
    if outer:

        class Client:
            ping = decorator(staticmethod(flaky))

    else:

        class Client:  # type: ignore[no-redef]
            ping = staticmethod(decorator(flaky))

    assert Client().ping("host") == "ok"
    assert calls == [("host",), ("host",)]


@pytest.mark.parametrize("outer", [True, False], ids=["above", "below"])
@pytest.mark.parametrize("name", ["circuit_breaker", "retry()", "timeout", "fallback"])
def test_async_static_and_class_methods_stay_coroutine_functions(name: str, outer: bool) -> None:
    decorator = DECORATORS[name]()
    if outer:

        class Service:
            @decorator
            @staticmethod
            async def static(x: int) -> int:
                return x

            @decorator
            @classmethod
            async def klass(cls, x: int) -> tuple[type[Any], int]:
                return (cls, x)

    else:

        class Service:  # type: ignore[no-redef]
            @staticmethod
            @decorator
            async def static(x: int) -> int:
                return x

            @classmethod
            @decorator
            async def klass(cls, x: int) -> tuple[type[Any], int]:
                return (cls, x)

    assert inspect.iscoroutinefunction(Service.static)
    assert inspect.iscoroutinefunction(Service().klass)
    assert asyncio.run(Service().static(7)) == 7
    assert asyncio.run(Service.klass(8)) == (Service, 8)


def test_a_timeout_above_a_static_generator_is_still_refused_at_decoration() -> None:
    with pytest.raises(TypeError, match="generator function"):

        class Feed:
            @hardy.timeout(1.0)
            @staticmethod
            def items() -> Any:
                yield 1
