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


async def spare_async(*args: Any, **kwargs: Any) -> Any:
    await asyncio.sleep(0)
    return ("async spare", args, kwargs)


async def down_async(*args: Any, **kwargs: Any) -> Any:
    await asyncio.sleep(0)
    raise Down(args, kwargs)


def test_with_fallback_sync_primary_and_async_fallback_is_async() -> None:
    def primary(x: int) -> str:
        """Doc."""
        raise Down(x)

    wrapped = hardy.with_fallback(primary, [spare_async])
    assert inspect.iscoroutinefunction(wrapped)
    assert wrapped.__name__ == "primary"
    assert wrapped.__doc__ == "Doc."
    assert inspect.signature(wrapped) == inspect.signature(primary)
    assert asyncio.run(wrapped(5)) == ("async spare", (5,), {})


def test_a_mixed_chain_calls_nothing_until_awaited_and_returns_the_primary_result() -> None:
    calls: list[int] = []

    def primary(x: int) -> str:
        calls.append(x)
        return f"primary {x}"

    wrapped = hardy.with_fallback(primary, [spare_async])
    pending = wrapped(1)
    assert inspect.iscoroutine(pending)
    assert calls == []
    pending.close()
    assert asyncio.run(wrapped(2)) == "primary 2"
    assert calls == [2]


def test_fallback_decorator_with_an_async_fallback_on_a_sync_function_is_async() -> None:
    @hardy.fallback(down, spare_async, default="unused")
    def primary(x: int, *, key: str) -> str:
        raise Down(x)

    assert inspect.iscoroutinefunction(primary)
    assert asyncio.run(primary(3, key="k")) == ("async spare", (3,), {"key": "k"})


@pytest.mark.parametrize("position", [0, 1, 2], ids=["primary", "middle", "last"])
def test_any_async_member_makes_the_chain_async(position: int) -> None:
    members: list[Any] = [down, down, down]
    members[position] = down_async
    wrapped = hardy.with_fallback(members[0], [*members[1:], echo("sync last")])
    assert inspect.iscoroutinefunction(wrapped)
    assert asyncio.run(wrapped(4)) == ("sync last", (4,), {})
    decorated = hardy.fallback(*members[1:], default="d")(members[0])
    assert inspect.iscoroutinefunction(decorated)
    assert asyncio.run(decorated(4)) == "d"


def test_a_mixed_chain_that_fails_everywhere_raises_with_every_error() -> None:
    wrapped = hardy.with_fallback(down, [down_async, down])
    with pytest.raises(AllFallbacksFailedError) as info:
        asyncio.run(wrapped(6))
    assert [type(error) for error in info.value.errors] == [Down, Down, Down]
    assert info.value.__cause__ is info.value.errors[-1]
    assert asyncio.run(hardy.with_fallback(down, [down_async], default=None)(1)) is None


def test_a_mixed_chain_binds_as_a_method() -> None:
    class Repo:
        async def remote(self, key: str) -> str:
            return f"remote {key}"

        @hardy.fallback(remote)
        def get(self, key: str) -> str:
            raise Down(key)

    assert inspect.iscoroutinefunction(Repo.get)
    assert asyncio.run(Repo().get("k")) == "remote k"


def test_a_mixed_chain_lets_interruptions_through() -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(hardy.with_fallback(interrupted, [spare_async], default="no")())


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
    without = hardy.Fallback("without", [down])
    with pytest.raises(AllFallbacksFailedError, match="All fallbacks failed for without"):
        without.execute()
    assert "profile" in repr(chain)


def test_functions_is_a_list_that_can_be_changed_in_place() -> None:
    chain = hardy.Fallback("n")
    assert chain.functions == []
    assert isinstance(chain.functions, list)
    assert chain.functions is chain.functions
    chain.functions.append(down)
    chain.functions.append(echo("appended"))
    assert chain.execute(1) == ("appended", (1,), {})
    chain.functions.insert(0, echo("inserted"))
    assert chain.execute(2)[0] == "inserted"
    chain.functions.clear()
    assert len(chain.functions) == 0


def test_functions_are_the_chain_s_own_copy_and_may_be_replaced() -> None:
    given = [down]
    chain = hardy.Fallback("n", given)
    assert chain.functions == given
    assert chain.functions is not given
    given.append(echo("later"))
    assert chain.functions == [down]
    first, second = echo("a"), echo("b")
    chain.functions = (first, second)
    assert chain.functions == [first, second]
    assert isinstance(chain.functions, list)
    assert chain.execute()[0] == "a"
    with pytest.raises(TypeError, match=r"functions must hold callables, got 3 \(int\) at index 0"):
        chain.functions = [3]  # type: ignore[list-item]
    with pytest.raises(TypeError, match="functions must be a list or tuple of callables"):
        chain.functions = down  # type: ignore[assignment]


def test_default_value_reads_none_without_a_default_and_has_default_tells_them_apart() -> None:
    without = hardy.Fallback("without", [down])
    assert without.default_value is None
    assert without.has_default is False
    with pytest.raises(AllFallbacksFailedError):
        without.execute()
    none = hardy.Fallback("none", [down], None)
    assert none.default_value is None
    assert none.has_default is True
    assert none.execute() is None
    zero = hardy.Fallback("zero", [down], default_value=0)
    assert (zero.default_value, zero.has_default, zero.execute()) == (0, True, 0)


def test_default_value_can_be_given_and_taken_away_later() -> None:
    chain = hardy.Fallback("n", [down])
    chain.default_value = None
    assert chain.has_default is True
    assert chain.execute() is None
    chain.default_value = "cached"
    assert chain.execute() == "cached"
    del chain.default_value
    assert (chain.default_value, chain.has_default) == (None, False)
    with pytest.raises(AllFallbacksFailedError):
        chain.execute()
    assert repr(chain) == "<Fallback 'n' with 1 function>"
    chain.add(down).default_value = None
    assert repr(chain) == "<Fallback 'n' with 2 functions, default None>"


@pytest.mark.parametrize("with_default", [False, True], ids=["no default", "default None"])
def test_an_empty_chain_says_it_has_no_functions_even_with_a_default(with_default: bool) -> None:
    chain = hardy.Fallback("empty")
    if with_default:
        chain.default_value = None
    with pytest.raises(ValueError, match="Fallback 'empty' has no functions to execute"):
        chain.execute()
    with pytest.raises(ValueError, match="Fallback 'empty' has no functions to execute"):
        asyncio.run(chain.execute_async())
    chain.add(down).functions.remove(down)
    with pytest.raises(ValueError, match="has no functions"):
        chain.execute()


def test_a_non_callable_put_in_the_list_is_named_at_execute() -> None:
    chain = hardy.Fallback("n", [down])
    chain.functions.append("not a function")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Fallback 'n': functions\[1\] must be callable, got 'not a function' \(str\)"):
        chain.execute()
    with pytest.raises(TypeError, match=r"functions\[1\] must be callable"):
        asyncio.run(chain.execute_async())
    chain.functions[1] = echo("fixed")
    assert chain.execute()[0] == "fixed"


def test_execute_returns_an_awaitable_for_a_chain_with_async_functions() -> None:
    chain = hardy.Fallback("mixed", [down_async, echo("sync")])
    pending = chain.execute(1)
    assert inspect.isawaitable(pending)
    assert asyncio.run(pending) == ("sync", (1,), {})
    assert asyncio.run(chain.execute_async(1)) == ("sync", (1,), {})
    failing = hardy.Fallback("failing", [down_async, down])
    with pytest.raises(AllFallbacksFailedError) as info:
        asyncio.run(failing.execute(2))
    assert len(info.value.errors) == 2


def test_execute_decides_sync_or_async_from_the_functions_at_that_call() -> None:
    chain = hardy.Fallback("n", [down, echo("sync")])
    assert chain.execute(1) == ("sync", (1,), {})
    chain.functions.insert(1, spare_async)
    assert asyncio.run(chain.execute(2)) == ("async spare", (2,), {})
    chain.functions.pop(1)
    assert chain.execute(3) == ("sync", (3,), {})
    assert asyncio.run(chain.execute_async(4)) == ("sync", (4,), {})


def test_a_default_that_answers_is_logged_at_info(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="hardy"):
        assert hardy.Fallback("profile", [down], default_value="cached").execute() == "cached"
        assert asyncio.run(hardy.with_fallback(down_async, [down], default=None)()) is None
    infos = [record.getMessage() for record in caplog.records if record.levelno == logging.INFO]
    assert infos == [
        "fallback chain profile: every function failed; the default answered",
        "fallback chain tests.test_fallback.down_async: every function failed; the default answered",
    ]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hardy"):
        assert hardy.fallback(default=1, log_failures=False)(down)() == 1
        assert hardy.fallback(echo("spare"), default=1)(down)()[0] == "spare"
    assert [record for record in caplog.records if record.levelno == logging.INFO] == []


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
    assert chain.functions == steps
    assert chain.execute(1)[0] == "b"
    assert hardy.Fallback("n", None).functions == []
    assert hardy.Fallback("n", ()).functions == []
    fetch = hardy.with_fallback(down, iter([echo("spare")]))
    assert fetch(2) == ("spare", (2,), {})
