"""Fallback chains on both cores."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from typing import Any

import pytest

import hardy
from hardy import AllFallbacksFailedError


class Down(Exception):
    pass


def down(*args: Any, **kwargs: Any) -> Any:
    raise Down(args, kwargs)


def echo(tag: str) -> Any:
    def func(*args: Any, **kwargs: Any) -> Any:
        return (tag, args, kwargs)

    func.__qualname__ = f"echo_{tag}"
    return func


# -- the decorator ------------------------------------------------------------------


def test_primary_success_calls_nothing_else() -> None:
    calls: list[str] = []

    def spare(x: int) -> str:
        calls.append("spare")
        return "spare"

    @hardy.fallback(spare)
    def primary(x: int) -> str:
        """Doc."""
        return f"primary {x}"

    assert primary(1) == "primary 1"
    assert calls == []
    assert primary.__name__ == "primary"
    assert primary.__doc__ == "Doc."
    assert inspect.signature(primary) == inspect.signature(primary.__wrapped__)


def test_falls_through_in_order_with_the_same_arguments() -> None:
    wrapped = hardy.fallback(down, echo("second"), echo("third"))(down)
    assert wrapped(1, k=2) == ("second", (1,), {"k": 2})


def test_default_including_none() -> None:
    assert hardy.fallback(down, default=None)(down)() is None
    assert hardy.fallback(default=0)(down)() == 0


def test_all_failing_raises_with_every_error_from_the_last() -> None:
    errors = [Down(i) for i in range(3)]

    def raiser(index: int) -> Any:
        def func() -> Any:
            raise errors[index]

        return func

    wrapped = hardy.fallback(raiser(1), raiser(2))(raiser(0))
    with pytest.raises(AllFallbacksFailedError) as info:
        wrapped()
    assert info.value.errors == errors
    assert info.value.__cause__ is errors[2]
    assert "All fallbacks failed for" in str(info.value)
    assert isinstance(info.value, hardy.HardyError)
    assert isinstance(info.value, RuntimeError)


def test_exceptions_narrow_what_falls_through() -> None:
    wrapped = hardy.fallback(echo("spare"), exceptions=(KeyError,))(down)
    with pytest.raises(Down):
        wrapped()

    def missing() -> Any:
        raise KeyError("k")

    assert hardy.fallback(echo("spare"), exceptions=KeyError)(missing)()[0] == "spare"


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit, asyncio.CancelledError])
def test_interruptions_are_never_replaced_by_a_fallback(exc: type[BaseException]) -> None:
    def interrupted() -> None:
        raise exc()

    with pytest.raises(exc):
        hardy.fallback(echo("spare"), default="no")(interrupted)()


def test_each_failed_step_is_logged_with_its_name(caplog: pytest.LogCaptureFixture) -> None:
    class NoName:
        def __call__(self) -> Any:
            raise Down("callable object")

    anonymous = functools.partial(down)
    wrapped = hardy.fallback(NoName(), anonymous, default="ok")(down)
    with caplog.at_level(logging.WARNING, logger="hardy"):
        assert wrapped() == "ok"
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 3
    assert all(record.levelno == logging.WARNING for record in caplog.records)
    assert "test_fallback.down failed: Down" in messages[0]
    assert "NoName" in messages[1]
    assert "down failed" in messages[2]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hardy"):
        assert hardy.fallback(default=1, log_failures=False)(down)() == 1
    assert caplog.records == []


def test_works_on_methods() -> None:
    class Repo:
        def cached(self, key: str) -> str:
            return f"cached {key}"

        @hardy.fallback(cached)
        def get(self, key: str) -> str:
            raise Down()

    assert Repo().get("k") == "cached k"


# -- with_fallback --------------------------------------------------------------------


def test_with_fallback_sync() -> None:
    wrapped = hardy.with_fallback(down, [echo("b")], default="d")
    assert wrapped(3) == ("b", (3,), {})
    assert hardy.with_fallback(down, [down], default=None)(3) is None


def test_with_fallback_async_mixes_sync_and_async() -> None:
    async def primary(x: int) -> str:
        raise Down(x)

    async def second(x: int) -> str:
        raise Down(x)

    def third(x: int) -> str:
        return f"third {x}"

    wrapped = hardy.with_fallback(primary, [second, third])
    assert inspect.iscoroutinefunction(wrapped)
    assert asyncio.run(wrapped(5)) == "third 5"
    failing = hardy.with_fallback(primary, [second])
    with pytest.raises(AllFallbacksFailedError) as info:
        asyncio.run(failing(6))
    assert [type(e) for e in info.value.errors] == [Down, Down]
    assert asyncio.run(hardy.with_fallback(primary, [second], default=None)(1)) is None


def test_sync_primary_cannot_have_async_fallbacks() -> None:
    async def spare() -> None:
        pass

    with pytest.raises(TypeError, match="is sync but its fallbacks include async functions"):
        hardy.with_fallback(down, [spare])


def test_async_decorator_and_cancellation() -> None:
    async def spare(x: int) -> str:
        return "spare"

    @hardy.fallback(spare)
    async def primary(x: int) -> str:
        await asyncio.sleep(0)
        raise Down()

    @hardy.fallback(spare, default="never")
    async def slow(x: int) -> str:
        await asyncio.sleep(10)
        return "late"

    async def scenario() -> None:
        assert await primary(1) == "spare"
        task = asyncio.ensure_future(slow(1))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


# -- Fallback -----------------------------------------------------------------------------


def test_fallback_object_add_and_execute() -> None:
    chain = hardy.Fallback("profile")
    assert chain.add(down) is chain
    chain.add(echo("replica")).add(echo("cache"))
    assert chain.functions[0] is down
    assert chain.execute(7, full=True) == ("replica", (7,), {"full": True})
    with_default = hardy.Fallback("none", [down], default_value=None)
    assert with_default.execute() is None
    empty = hardy.Fallback("empty")
    with pytest.raises(AllFallbacksFailedError, match="All fallbacks failed for empty"):
        empty.execute()
    assert "profile" in repr(chain)


def test_execute_refuses_async_chains_and_execute_async_runs_them() -> None:
    async def async_step(x: int) -> str:
        raise Down()

    chain = hardy.Fallback("mixed", [async_step, echo("sync")])
    with pytest.raises(TypeError, match="use await execute_async"):
        chain.execute(1)
    assert asyncio.run(chain.execute_async(1)) == ("sync", (1,), {})
    failing = hardy.Fallback("failing", [async_step, down])
    with pytest.raises(AllFallbacksFailedError) as info:
        asyncio.run(failing.execute_async(2))
    assert len(info.value.errors) == 2


# -- validation ----------------------------------------------------------------------------


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="fallback_funcs must be callable, got 3"):
        hardy.fallback(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="exceptions must be Exception subclasses, got KeyboardInterrupt"):
        hardy.fallback(exceptions=KeyboardInterrupt)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one"):
        hardy.fallback(exceptions=())
    with pytest.raises(TypeError, match="log_failures must be a bool"):
        hardy.fallback(log_failures="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="func must be callable"):
        hardy.fallback()(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name must not be empty"):
        hardy.Fallback("")
    with pytest.raises(TypeError, match="func must be callable"):
        hardy.Fallback("x").add("nope")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="fallbacks must hold callables, got 1 "):
        hardy.with_fallback(down, [1])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("make", "parameter"),
    [
        (lambda v: hardy.Fallback("n", v), "functions"),
        (lambda v: hardy.Fallback("n", functions=v), "functions"),
        (lambda v: hardy.with_fallback(down, v), "fallbacks"),
    ],
    ids=["Fallback-positional", "Fallback-keyword", "with_fallback"],
)
@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (42, "got 42 (int)"),
        ("abc", "got 'abc' (str)"),
        (b"abc", "got b'abc' (bytes)"),
        ({down: 1}, "(dict)"),
        ({down}, "(set)"),
        (frozenset({down}), "(frozenset)"),
        (down, "wrap a single function in a list"),
    ],
    ids=lambda v: type(v).__name__,
)
def test_a_chain_that_is_not_a_list_of_callables_is_refused_at_once(
    make: Any, parameter: str, value: Any, shown: str
) -> None:
    with pytest.raises(TypeError) as info:
        make(value)
    message = str(info.value)
    assert message.startswith(f"{parameter} must be a list or tuple of callables"), message
    assert shown in message, message


def test_with_fallback_refuses_none_for_its_fallbacks() -> None:
    with pytest.raises(TypeError, match=r"fallbacks must be a list or tuple of callables, got None"):
        hardy.with_fallback(down, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "make",
    [
        lambda v: hardy.Fallback("n", v),
        lambda v: hardy.with_fallback(down, v),
    ],
    ids=["Fallback", "with_fallback"],
)
def test_a_chain_element_that_is_not_callable_is_named_with_its_index(make: Any) -> None:
    with pytest.raises(TypeError, match=r"must hold callables, got 42 \(int\) at index 1"):
        make([echo("a"), 42])
    with pytest.raises(TypeError, match=r"must hold callables, got None \(NoneType\) at index 0"):
        make((None,))


def test_functions_may_come_from_any_ordered_iterable() -> None:
    steps = [down, echo("b"), echo("c")]
    chain = hardy.Fallback("n", (step for step in steps))
    assert chain.functions == tuple(steps)
    assert chain.execute(1)[0] == "b"
    assert hardy.Fallback("n", None).functions == ()
    assert hardy.Fallback("n", ()).functions == ()
    fetch = hardy.with_fallback(down, iter([echo("spare")]))
    assert fetch(2) == ("spare", (2,), {})
