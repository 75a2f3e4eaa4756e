"""The awaitable of an async ``hardy.timeout`` behaves as a coroutine, whatever drives it.

On the compiled core it is ``_FirstTry`` (``_c/first_try.pxi``), which enters
the deadline in the shared registry (``hardy.policies.async_deadlines``),
awaits the call and hands a timeout over to the shared continuation; on the
twin it is a coroutine. Every test runs on both cores, inside an asyncio task
(a deadline needs one), and checks that the loop's lanes are left empty.
Probes that could crash the interpreter or fork run in a subprocess.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
from types import ModuleType
from typing import Any

import pytest

import hardy

from .probes import run_python
from .stepping import Suspend, step


class Stop(BaseException):
    pass


def lanes(core: ModuleType) -> dict[float, int]:
    return core.async_deadlines(asyncio.get_running_loop()).lane_sizes()  # type: ignore[no-any-return]


def test_the_awaitable_type_cannot_be_made_directly() -> None:
    async def work() -> int:
        return 1

    awaitable = hardy.timeout(1.0)(work)()
    with pytest.raises(TypeError):
        type(awaitable)()
    awaitable.close()


def test_protocol_misuse_is_refused_as_by_a_coroutine(core: ModuleType) -> None:
    async def work() -> int:
        await Suspend()
        return 1

    timed = hardy.timeout(10.0)(work)

    async def scenario() -> None:
        awaitable = timed()
        with pytest.raises(TypeError, match="non-None"):
            awaitable.send(1)
        assert step(awaitable) is None
        assert lanes(core) == {10.0: 1}

        async def second_awaiter() -> Any:
            return await awaitable

        other = second_awaiter()
        with pytest.raises(RuntimeError, match="awaited already"):
            other.send(None)
        assert step(awaitable) == ("return", 1)
        assert lanes(core) == {10.0: 0}
        with pytest.raises(RuntimeError, match="cannot reuse"):
            awaitable.send(None)
        awaitable.close()  # closing a finished one is a no-op

    asyncio.run(scenario())


@pytest.mark.parametrize("how", ["close", "drop", "throw"])
def test_a_call_closed_dropped_or_thrown_into_mid_flight_leaves_its_lane(core: ModuleType, how: str) -> None:
    cleaned: list[str] = []

    async def work() -> int:
        try:
            await Suspend()
        finally:
            cleaned.append("finally")
        return 1

    timed = hardy.timeout(10.0)(work)

    async def scenario() -> None:
        awaitable = timed()
        assert step(awaitable) is None
        assert lanes(core) == {10.0: 1}
        if how == "close":
            awaitable.close()
        elif how == "drop":
            del awaitable
            gc.collect()
        else:
            with pytest.raises(Stop):
                awaitable.throw(Stop())
        assert lanes(core) == {10.0: 0}
        assert await timed() == 1  # and the next call runs as usual

    asyncio.run(scenario())
    assert cleaned == ["finally", "finally"]


def test_a_base_exception_from_the_function_propagates_untouched(core: ModuleType) -> None:
    error = Stop("out")

    async def at_once() -> None:
        raise error

    async def after_a_suspension() -> None:
        await Suspend()
        raise error

    async def scenario() -> None:
        for work in (at_once, after_a_suspension):
            with pytest.raises(Stop) as caught:
                await hardy.timeout(10.0)(work)()
            assert caught.value is error
            assert caught.value.__traceback__ is not None
            assert lanes(core) == {10.0: 0}

    asyncio.run(scenario())


@pytest.mark.parametrize("method", ["send", "throw", "close"])
def test_driving_it_from_inside_the_function_is_refused(core: ModuleType, method: str) -> None:
    holder: dict[str, Any] = {}

    async def work() -> str:
        aw = holder["aw"]
        try:
            if method == "send":
                aw.send(None)
            elif method == "throw":
                aw.throw(KeyError("k"))
            else:
                aw.close()
        except ValueError as exc:
            return "refused: " + str(exc)
        return "not refused"

    timed = hardy.timeout(10.0)(work)

    async def scenario() -> str:
        holder["aw"] = aw = timed()
        result: str = await aw
        assert lanes(core) == {10.0: 0}
        return result

    assert asyncio.run(scenario()) == "refused: coroutine already executing"


@pytest.mark.parametrize("count", [0, 1, 3, 4])
@pytest.mark.parametrize("keywords", [False, True])
@pytest.mark.parametrize("fallback_is_async", [False, True])
def test_the_fallback_gets_the_arguments_of_the_call(count: int, keywords: bool, fallback_is_async: bool) -> None:
    seen: list[Any] = []

    def sync_spare(*args: Any, **kwargs: Any) -> str:
        seen.append((args, kwargs))
        return "spare"

    async def async_spare(*args: Any, **kwargs: Any) -> str:
        await asyncio.sleep(0)
        return sync_spare(*args, **kwargs)

    @hardy.timeout(0.01, fallback=async_spare if fallback_is_async else sync_spare)
    async def slow(*args: Any, **kwargs: Any) -> str:
        await asyncio.sleep(10)
        return "late"

    args = tuple(range(count))
    kwargs = {"k": "v"} if keywords else {}
    assert asyncio.run(slow(*args, **kwargs)) == "spare"
    assert seen == [(args, kwargs)]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="Task.cancelling() and uncancel() are 3.11+")
@pytest.mark.parametrize("ends", ["returns", "raises"])
def test_a_call_that_ends_its_own_way_after_its_deadline_keeps_that_outcome(core: ModuleType, ends: str) -> None:
    async def work() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            if ends == "raises":
                raise LookupError("its own") from None
            return "caught"
        return "late"

    timed = hardy.timeout(0.01)(work)

    async def scenario() -> tuple[str, int]:
        try:
            outcome = await timed()
        except LookupError as error:
            outcome = str(error)
        task = asyncio.current_task()
        assert task is not None
        assert lanes(core) == {0.01: 0}
        return outcome, task.cancelling()

    assert asyncio.run(scenario()) == ("caught" if ends == "returns" else "its own", 0)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="Task.uncancel() is 3.11+")
def test_a_task_whose_uncancel_raises_gets_that_error_with_the_cancellation_as_context() -> None:
    class Refusing(asyncio.Task):  # type: ignore[type-arg]
        def uncancel(self) -> int:
            raise Stop("uncancel")

    @hardy.timeout(0.01)
    async def slow() -> None:
        await asyncio.sleep(10)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        loop.set_task_factory(lambda loop, coro, **kw: Refusing(coro, loop=loop, **kw))
        with pytest.raises(Stop) as caught:
            await loop.create_task(slow())
        assert isinstance(caught.value.__context__, asyncio.CancelledError)

    asyncio.run(scenario())


def test_many_calls_at_once_and_one_after_another_each_get_their_own_result(core: ModuleType) -> None:
    async def work(x: int) -> int:
        await asyncio.sleep(0)
        return x

    timed = hardy.timeout(10.0)(work)

    async def scenario() -> None:
        assert [await timed(i) for i in range(50)] == list(range(50))
        held = [timed(i) for i in range(5)]
        assert await asyncio.gather(*held) == list(range(5))
        assert lanes(core) == {10.0: 0}

    asyncio.run(scenario())


def test_driven_by_hand_outside_a_task_it_is_refused_and_leaves_nothing() -> None:
    calls: list[int] = []

    async def work() -> int:
        calls.append(1)
        return 1

    timed = hardy.timeout(1.0)(work)
    loop = asyncio.new_event_loop()
    asyncio.events._set_running_loop(loop)
    try:
        with pytest.raises(RuntimeError, match="inside an asyncio task"):
            timed().send(None)
    finally:
        asyncio.events._set_running_loop(None)
        loop.close()
    assert calls == []


def test_after_a_fork_the_child_finds_its_own_loop_or_none(core: ModuleType) -> None:
    # The compiled core reads asyncio's record of the running loop itself on
    # 3.10 and 3.11 (without asyncio's getpid() per call): a record the
    # parent left behind must not count in a forked child.
    result = run_python(
        core,
        """
        import asyncio, os

        @hardy.timeout(0.05)
        async def slow():
            await asyncio.sleep(10)

        @hardy.timeout(1.0)
        async def quick():
            return "quick"

        async def parent():
            pid = os.fork()
            if pid == 0:
                try:
                    slow().send(None)
                    os._exit(3)
                except RuntimeError:
                    os._exit(0)  # no loop runs here: not the parent's, which it left behind
                except BaseException:
                    os._exit(5)
            _, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status), await quick()

        print(asyncio.run(parent()))

        def child_with_its_own_loop():
            pid = os.fork()
            if pid == 0:
                try:
                    assert asyncio.run(quick()) == "quick"
                    try:
                        asyncio.run(slow())
                    except hardy.TimeoutError:
                        os._exit(0)
                    os._exit(6)
                except BaseException:
                    os._exit(7)
            _, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status)

        async def parent_again():
            return child_with_its_own_loop()

        print(asyncio.run(parent_again()))
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["(0, 'quick')", "0"]


def test_the_running_loop_is_read_as_asyncio_answers_everywhere(core: ModuleType) -> None:
    # The compiled core reads asyncio's record of the running loop without
    # asking it (no call, and no getpid() on 3.10 and 3.11): it must give
    # asyncio's answer inside a loop, outside one, after one ended and in
    # another thread running its own.
    seen = getattr(core, "_running_loop_as_seen", asyncio.events._get_running_loop)
    answers: list[tuple[object, object]] = []

    async def inside() -> None:
        answers.append((seen(), asyncio.events._get_running_loop()))

    def record() -> None:
        answers.append((seen(), asyncio.events._get_running_loop()))
        asyncio.run(inside())
        asyncio.run(inside())
        answers.append((seen(), asyncio.events._get_running_loop()))

    record()
    worker = threading.Thread(target=record)
    worker.start()
    worker.join()
    assert len(answers) == 8
    assert all(mine is theirs for mine, theirs in answers)
    assert [mine is None for mine, _ in answers] == [True, False, False, True] * 2


@pytest.mark.skipif(sys.version_info < (3, 11), reason="Task.cancelling() is 3.11+")
def test_a_task_subclass_is_asked_for_its_own_cancel_count() -> None:
    # The compiled core calls asyncio's own Task.cancelling() directly, but
    # only for that exact type: a subclass's override is what it asks.
    asked: list[int] = []

    class Counting(asyncio.Task):  # type: ignore[type-arg]
        def cancelling(self) -> int:
            count = super().cancelling()
            asked.append(count)
            return count

    @hardy.timeout(10.0)
    async def quick() -> str:
        return "quick"

    async def scenario() -> str:
        loop = asyncio.get_running_loop()
        loop.set_task_factory(lambda loop, coro, **kw: Counting(coro, loop=loop, **kw))
        return await loop.create_task(quick())

    assert asyncio.run(scenario()) == "quick"
    assert asked == [0]
