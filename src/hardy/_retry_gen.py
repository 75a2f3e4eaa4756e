"""Generators and async generators under ``@retry`` and under a circuit breaker (both cores).

A retried generator function is re-run only until it has produced its first
item: before that nothing has reached the caller, so starting again is safe;
after it, an error propagates, since items already consumed cannot be taken
back. For a breaker, one iteration is one call: admitted when iteration
starts (the first ``next()``), a success when the generator finishes or the
consumer closes it, a failure when it raises. The wrappers are generator
functions themselves, so ``inspect.isgeneratorfunction`` and
``isasyncgenfunction`` stay true and frameworks that look (pytest fixtures,
Starlette's streaming responses) still see a generator.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

from . import _retry_run, _wrapping
from ._retry_state import Counters, RetryStatistics
from .errors import CircuitOpenError

__all__ = ["is_generator_function", "protect_generator", "retry_generator"]


def is_generator_function(func: object) -> bool:
    return inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func)


def _delegate(gen: Generator[Any, Any, Any], first: Any) -> Generator[Any, Any, Any]:
    """Yield ``first``, then everything else of ``gen``, passing ``send`` / ``throw`` / ``close`` on."""
    item = first
    while True:
        try:
            sent = yield item
        except GeneratorExit:
            gen.close()
            raise
        except BaseException as exc:  # thrown in by the consumer: gen's to handle
            try:
                item = gen.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                item = gen.send(sent)
            except StopIteration as stop:
                return stop.value


def retry_generator(
    retrying: Callable[..., Any], config: Any, func: Callable[..., Any], hooks: _retry_run.Hooks
) -> Any:
    """``func`` (a generator or async generator function) retried until its first item."""
    if config.retry_on_result is not None:
        raise TypeError(f"retry_on_result does not apply to the generator function {func!r}: it returns no result")
    counters = Counters()
    reads_clock = config.deadline is not None or hooks.reads_clock
    Run = _retry_run.Run
    budget = getattr(config, "budget", None)
    ledger = None if budget is None else budget._ledger  # a call of the generator function deposits once

    if inspect.isasyncgenfunction(func):

        async def retried_agen(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
            run = Run(config, hooks, func, args, kwargs, counters, config._now() if reads_clock else 0.0)
            counters._add(1, 0, 0, 0, 0.0)
            if ledger is not None:
                ledger._add_call()
            while True:
                agen = func(*args, **kwargs)
                try:
                    first = await agen.__anext__()
                except StopAsyncIteration:
                    counters._add(0, 0, 1, 0, 0.0)
                    return
                except Exception as exc:
                    verdict = run.settle(exc, None)
                    if verdict == _retry_run.PROPAGATE:
                        raise
                    if verdict == _retry_run.GIVE_UP:
                        await run.give_up_async(exc, None)
                        raise
                    await run.retry_async(exc, None)
                    continue
                counters._add(0, 0, 1, 0, 0.0)
                break
            # No ``yield from`` in an async generator: pass asend/athrow/aclose on by hand.
            item = first
            while True:
                try:
                    sent = yield item
                except GeneratorExit:
                    await agen.aclose()
                    raise
                except BaseException as thrown:
                    try:
                        item = await agen.athrow(thrown)
                    except StopAsyncIteration:
                        return
                else:
                    try:
                        item = await agen.asend(sent)
                    except StopAsyncIteration:
                        return

        wrapper = _wrapping.copy_metadata(retried_agen, func, is_async=False)
    else:
        hooks.check_sync(func)

        def retried_gen(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            run = Run(config, hooks, func, args, kwargs, counters, config._now() if reads_clock else 0.0)
            counters._add(1, 0, 0, 0, 0.0)
            if ledger is not None:
                ledger._add_call()
            while True:
                gen = func(*args, **kwargs)
                try:
                    first = next(gen)
                except StopIteration as stop:
                    counters._add(0, 0, 1, 0, 0.0)
                    return stop.value
                except Exception as exc:
                    verdict = run.settle(exc, None)
                    if verdict == _retry_run.PROPAGATE:
                        raise
                    if verdict == _retry_run.GIVE_UP:
                        run.give_up(exc, None)
                        raise
                    run.retry(exc, None)
                    continue
                counters._add(0, 0, 1, 0, 0.0)
                break
            return (yield from _delegate(gen, first))

        wrapper = _wrapping.copy_metadata(retried_gen, func, is_async=False)
    wrapper.retry_config = config
    wrapper.statistics = RetryStatistics(counters._counters)
    wrapper.retry_with = _retry_run.bind_retry_with(retrying, config, func, hooks)
    return wrapper


def protect_generator(breaker: Any, func: Callable[..., Any], fallback: Callable[..., Any] | None) -> Any:
    """``func`` (a generator or async generator function) with each iteration one call through ``breaker``."""
    if inspect.isasyncgenfunction(func):

        async def protected_agen(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
            agen = func(*args, **kwargs)
            try:
                breaker.__enter__()
            except CircuitOpenError:
                await agen.aclose()
                if fallback is None:
                    raise
                async for item in fallback(*args, **kwargs):
                    yield item
                return
            try:
                try:
                    item = await agen.asend(None)
                except StopAsyncIteration:
                    breaker.__exit__(None, None, None)
                    return
                while True:
                    try:
                        sent = yield item
                    except GeneratorExit:
                        await agen.aclose()
                        raise
                    except BaseException as thrown:
                        try:
                            item = await agen.athrow(thrown)
                        except StopAsyncIteration:
                            break
                    else:
                        try:
                            item = await agen.asend(sent)
                        except StopAsyncIteration:
                            break
            except GeneratorExit:
                breaker.__exit__(None, None, None)  # the consumer stopped: what ran succeeded
                raise
            except BaseException as exc:
                breaker.__exit__(type(exc), exc, exc.__traceback__)
                raise
            breaker.__exit__(None, None, None)

        wrapper = _wrapping.copy_metadata(protected_agen, func, is_async=False)
    else:

        def protected_gen(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            gen: Generator[Any, Any, Any] = func(*args, **kwargs)
            try:
                breaker.__enter__()
            except CircuitOpenError:
                gen.close()
                if fallback is None:
                    raise
                fallback_gen: Generator[Any, Any, Any] = fallback(*args, **kwargs)
                return (yield from fallback_gen)
            try:
                value: Any = yield from gen
            except GeneratorExit:
                breaker.__exit__(None, None, None)  # the consumer stopped: what ran succeeded
                raise
            except BaseException as exc:
                breaker.__exit__(type(exc), exc, exc.__traceback__)
                raise
            breaker.__exit__(None, None, None)
            return value

        wrapper = _wrapping.copy_metadata(protected_gen, func, is_async=False)
    wrapper.breaker = breaker
    return wrapper
