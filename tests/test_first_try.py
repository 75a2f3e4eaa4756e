"""The awaitable of an async retry or fallback chain behaves as a coroutine, whatever drives it.

On the compiled core it is ``_FirstTry`` (``_c/first_try.pxi``): it awaits
the first attempt (the chain's primary) itself and hands any failure over to
the shared Python continuation. On the twin it is a coroutine. Every test
runs on both; probes that could crash the interpreter run in a subprocess.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

import pytest

import hardy

from .probes import run_python
from .stepping import Suspend, step, step_throw


class Boom(Exception):
    pass


class Stop(BaseException):
    pass


@pytest.fixture(params=["retry", "fallback"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def wrap(kind: str) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Any]]:
    """Wrap an async function in retry (retrying Boom) or a fallback chain (falling back on Boom)."""
    if kind == "retry":
        return hardy.retry(max_attempts=2, initial_delay=0.0, max_delay=0.0, jitter=False, retryable_exceptions=(Boom,))
    return hardy.fallback(spare, exceptions=(Boom,))


async def spare(*args: Any, **kwargs: Any) -> Any:
    return "spare"


def test_the_awaitable_type_cannot_be_made_directly(wrap: Any) -> None:
    async def work() -> int:
        return 1

    awaitable = wrap(work)()
    with pytest.raises(TypeError):
        type(awaitable)()
    awaitable.close()


def test_a_first_success_returns_its_value_and_arguments_reach_the_function(wrap: Any) -> None:
    async def work(a: int, *, b: int = 0) -> tuple[int, int]:
        await Suspend()
        return a, b

    awaitable = wrap(work)(1, b=2)
    assert step(awaitable) is None
    assert step(awaitable) == ("return", (1, 2))
    assert asyncio.run(wrap(work)(3)) == (3, 0)


def test_protocol_misuse_is_refused_as_by_a_coroutine(wrap: Any) -> None:
    async def work() -> int:
        await Suspend()
        return 1

    awaitable = wrap(work)()
    with pytest.raises(TypeError, match="non-None"):
        awaitable.send(1)
    assert step(awaitable) is None

    async def second_awaiter() -> Any:
        return await awaitable

    other = second_awaiter()
    with pytest.raises(RuntimeError, match="awaited already"):
        other.send(None)
    assert step(awaitable) == ("return", 1)
    with pytest.raises(RuntimeError, match="cannot reuse"):
        awaitable.send(None)
    with pytest.raises(RuntimeError, match="cannot reuse"):
        awaitable.throw(Boom)
    awaitable.close()  # closing a finished one is a no-op


def test_the_function_is_not_called_until_awaited_and_a_throw_before_start_ends_it(wrap: Any) -> None:
    calls: list[int] = []

    async def work() -> int:
        calls.append(1)
        return 1

    awaitable = wrap(work)()
    with pytest.raises(KeyError):
        awaitable.throw(KeyError("k"))
    with pytest.raises(RuntimeError, match="cannot reuse"):
        awaitable.send(None)
    wrap(work)().close()
    assert calls == []


def test_an_error_thrown_in_while_suspended_is_the_attempts_error(wrap: Any, kind: str) -> None:
    async def work() -> int:
        await Suspend()
        return 1

    awaitable = wrap(work)()
    assert step(awaitable) is None
    # Raised at the await in the first attempt: retried (then it succeeds), or the fallback answers.
    outcome = step_throw(awaitable, Boom("in"))
    if outcome is None:  # the retry's second attempt suspends
        outcome = step(awaitable)
    assert outcome == (("return", 1) if kind == "retry" else ("return", "spare"))


def test_a_fallback_answers_an_error_thrown_in() -> None:
    async def work() -> int:
        await Suspend()
        return 1

    awaitable = hardy.fallback(spare, exceptions=(Boom,))(work)()
    assert step(awaitable) is None
    with pytest.raises(StopIteration) as stop:
        awaitable.throw(Boom("in"))
    assert stop.value.value == "spare"


def test_a_cancellation_thrown_in_propagates_and_close_runs_the_functions_finally(wrap: Any) -> None:
    finished: list[str] = []

    async def work() -> int:
        try:
            await Suspend()
        finally:
            finished.append("finally")
        return 1

    awaitable = wrap(work)()
    assert step(awaitable) is None
    with pytest.raises(asyncio.CancelledError):
        awaitable.throw(asyncio.CancelledError())
    assert finished == ["finally"]
    awaitable = wrap(work)()
    assert step(awaitable) is None
    awaitable.close()
    assert finished == ["finally", "finally"]
    with pytest.raises(RuntimeError, match="cannot reuse"):
        awaitable.send(None)
    awaitable = wrap(work)()
    assert step(awaitable) is None
    with pytest.raises(GeneratorExit):
        awaitable.throw(GeneratorExit)
    assert finished == ["finally"] * 3


def test_a_base_exception_from_the_function_propagates_untouched(wrap: Any) -> None:
    async def body() -> int:
        raise Stop("body")

    def at_call() -> Any:
        raise Stop("call")

    async def after_suspend() -> int:
        await Suspend()
        raise Stop("later")

    for func, expected in ((body, "body"), (at_call, "call")):
        with pytest.raises(Stop, match=expected):
            asyncio.run(wrap(func)())
    awaitable = wrap(after_suspend)()
    assert step(awaitable) is None
    with pytest.raises(Stop, match="later"):
        awaitable.send(None)


def test_a_failure_is_handed_over_and_the_error_keeps_its_type_and_traceback() -> None:
    attempts: list[int] = []

    async def flaky() -> str:
        attempts.append(1)
        await Suspend()
        if len(attempts) < 3:
            raise Boom(len(attempts))
        return "ok"

    retried = hardy.retry(max_attempts=3, initial_delay=0.0, max_delay=0.0, retryable_exceptions=(Boom,))(flaky)
    assert asyncio.run(retried()) == "ok"
    assert len(attempts) == 3

    async def always() -> str:
        raise Boom("always")

    with pytest.raises(Boom, match="always") as info:
        asyncio.run(hardy.retry(max_attempts=2, initial_delay=0.0, max_delay=0.0)(always)())
    assert info.traceback[-1].name == "always"
    with pytest.raises(hardy.AllFallbacksFailedError) as failed:
        asyncio.run(hardy.fallback(always)(always)())
    assert [str(error) for error in failed.value.errors] == ["always", "always"]


def test_an_error_the_chain_does_not_handle_propagates_from_the_primary() -> None:
    async def primary() -> str:
        raise KeyError("not handled")

    with pytest.raises(KeyError) as info:
        asyncio.run(hardy.fallback(spare, exceptions=(Boom,))(primary)())
    assert info.traceback[-1].name == "primary"


def test_a_base_exception_from_a_hook_or_a_predicate_after_the_hand_over_propagates() -> None:
    async def fail() -> str:
        raise Boom("x")

    def hook(state: Any) -> None:
        raise Stop("hook")

    wrapped = hardy.retry(max_attempts=2, initial_delay=0.0, max_delay=0.0, before_sleep=hook)(fail)
    with pytest.raises(Stop, match="hook"):
        asyncio.run(wrapped())

    def predicate(error: BaseException) -> bool:
        raise Stop("predicate")

    with pytest.raises(Stop, match="predicate"):
        asyncio.run(hardy.fallback(spare, exceptions=(predicate,))(fail)())


@pytest.mark.parametrize("method", ["send", "throw", "close"])
def test_driving_it_from_inside_the_function_is_refused(core: ModuleType, method: str) -> None:
    result = run_python(
        core,
        f"""
        import asyncio

        holder = {{}}

        async def work():
            try:
                aw = holder["aw"]
                if {method!r} == "send":
                    aw.send(None)
                elif {method!r} == "throw":
                    aw.throw(KeyError("k"))
                else:
                    aw.close()
            except ValueError as exc:
                return "refused: " + str(exc)
            return "not refused"

        for wrapped in (
            hardy.retry(max_attempts=2, retryable_exceptions=(OSError,))(work),
            hardy.fallback(lambda: "spare", exceptions=(OSError,))(work),
        ):
            holder["aw"] = aw = wrapped()
            print(asyncio.run(aw))
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["refused: coroutine already executing"] * 2


def test_dropped_unfinished_and_reused_many_times_nothing_crashes(core: ModuleType) -> None:
    result = run_python(
        core,
        """
        import asyncio, gc

        class Suspend:
            def __await__(self):
                yield None

        async def work(x):
            await Suspend()
            return x

        async def fail(x):
            raise ValueError(x)

        import logging
        logging.disable(logging.CRITICAL)
        wrapped = [
            hardy.retry(max_attempts=2, initial_delay=0, max_delay=0)(work),
            hardy.fallback(work)(fail),
            hardy.fallback(fail, default=7)(fail),
        ]
        kept = []
        for f in wrapped:
            for i in range(2000):
                aw = f(i)
                try:
                    aw.send(None)
                except StopIteration:
                    continue
                if i % 3 == 0:
                    del aw  # dropped while suspended
                elif i % 3 == 1:
                    kept.append(aw)
                else:
                    try:
                        aw.send(None)
                    except StopIteration:
                        pass
                    except ValueError:
                        pass
        kept.clear()
        gc.collect()

        async def main():
            f = hardy.retry(max_attempts=2, initial_delay=0, max_delay=0)(work)
            return sum(await asyncio.gather(*(f(i) for i in range(100))))

        print(asyncio.run(main()))
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(sum(range(100)))


def test_a_reused_awaitable_does_not_keep_the_previous_call_alive(wrap: Any) -> None:
    class Arg:
        pass

    async def work(arg: Arg) -> int:
        return 1

    wrapped = wrap(work)
    arg = Arg()
    import weakref

    ref = weakref.ref(arg)
    assert asyncio.run(wrapped(arg)) == 1
    del arg
    gc.collect()
    assert ref() is None


@pytest.mark.parametrize("count", [0, 1, 2, 3, 4, 6])
@pytest.mark.parametrize("keywords", [False, True])
def test_every_attempt_and_the_fallback_get_the_arguments_of_the_call(kind: str, count: int, keywords: bool) -> None:
    """Up to three positional arguments are kept as they are on the compiled core, more (or keywords) packed:
    either way the first attempt, a retry and a fallback each receive exactly the call's arguments."""
    seen: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    async def work(*args: Any, **kwargs: Any) -> str:
        seen.append((args, kwargs))
        if len(seen) == 1:
            raise Boom
        return "again"

    async def second(*args: Any, **kwargs: Any) -> str:
        seen.append((args, kwargs))
        return "second"

    if kind == "retry":
        wrapped = hardy.retry(max_attempts=2, initial_delay=0.0, jitter=False, retryable_exceptions=(Boom,))(work)
    else:
        wrapped = hardy.fallback(second, exceptions=(Boom,))(work)
    args = tuple(object() for _ in range(count))
    kwargs = {"k": object()} if keywords else {}
    for _ in range(2):  # the second call reuses the first one's finished awaitable on the compiled core
        seen.clear()
        assert asyncio.run(wrapped(*args, **kwargs)) == ("again" if kind == "retry" else "second")
        assert seen == [(args, kwargs), (args, kwargs)]


def test_an_argument_that_holds_its_own_awaitable_is_collected(wrap: Any) -> None:
    """The arguments kept by the awaitable are seen by the garbage collector: a cycle through them is freed."""
    import weakref

    class Holder:
        awaitable: Any = None

    async def work(holder: Holder) -> int:
        await Suspend()
        return 1

    holder = Holder()
    holder.awaitable = wrap(work)(holder)
    assert step(holder.awaitable) is None  # suspended in the first attempt, the arguments held
    ref = weakref.ref(holder)
    del holder
    gc.collect()
    assert ref() is None


def test_a_returned_value_travels_in_a_stop_iteration_whose_args_hold_it_even_when_kept() -> None:
    # From 3.12 the compiled awaiters return through StopIteration, whose
    # memory (and its args tuple) is reused from one return to the next:
    # an exception, or the args of one, that the caller keeps must keep its
    # own value while later calls return theirs.
    async def work(x: object) -> object:
        return x

    wrappers = [
        hardy.retry(max_attempts=2)(work),
        hardy.fallback(spare)(work),
        hardy.timeout(10.0)(work),
        hardy.CircuitBreaker("stop-iteration")(work),
    ]

    async def scenario() -> None:
        for wrapped in wrappers:
            kept: list[StopIteration] = []
            kept_args: list[tuple[object, ...]] = []
            for i in range(6):
                value = ("value", i)
                with pytest.raises(StopIteration) as caught:
                    wrapped(value).send(None)
                assert caught.value.value is value
                assert caught.value.args == (value,)
                if i % 2:
                    kept.append(caught.value)
                else:
                    kept_args.append(caught.value.args)
                del caught
            assert [stop.value for stop in kept] == [("value", i) for i in (1, 3, 5)]
            assert [stop.args for stop in kept] == [(("value", i),) for i in (1, 3, 5)]
            assert kept_args == [(("value", i),) for i in (0, 2, 4)]

    asyncio.run(scenario())
