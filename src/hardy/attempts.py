"""Retrying a block of code: ``for attempt in hardy.attempts(...): with attempt: ...``.

Example::

    for attempt in hardy.attempts(max_attempts=3, retryable_exceptions=(ConnectionError,)):
        with attempt:
            response = client.get(url)

    async for attempt in hardy.attempts(max_attempts=3):
        with attempt:
            response = await client.get(url)
"""

from __future__ import annotations

import random as _random
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from . import _core, _retry_run
from ._retry_state import RetryState
from .jitter import Jitter

if TYPE_CHECKING:
    from ._types import ExceptionsArg
    from .budget import RetryBudget

__all__ = ["Attempt", "Attempts", "attempts"]


class Attempt:
    """One attempt of a retried block: use it as ``with attempt:`` around the block.

    ``number`` is 1-based. An error the retry handles is swallowed here and
    retried by the loop; one it does not handle propagates at once. When
    attempts or the deadline run out, the last error propagates from the
    ``with`` statement (after ``on_giveup``). With ``retry_on_result``, hand
    the block's value over with :meth:`set_result`.

    Example::

        for attempt in hardy.attempts(retry_on_result=lambda r: r.status == 503):
            with attempt:
                response = client.get(url)
                attempt.set_result(response)
    """

    __slots__ = ("_attempts", "_entered", "_exited", "_has_result", "_result", "number")

    def __init__(self, owner: Attempts, number: int) -> None:
        self._attempts = owner
        self.number: int = number
        self._entered = False
        self._exited = False
        self._has_result = False
        self._result: Any = None

    def set_result(self, value: Any) -> None:
        """Give the block's value to ``retry_on_result`` (which may ask for another attempt)."""
        self._has_result = True
        self._result = value

    def __enter__(self) -> Attempt:
        if self._entered:
            raise RuntimeError(f"attempt {self.number} was already entered: each attempt is one with-block")
        self._entered = True
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> bool:
        self._exited = True
        return self._attempts._ended(self, exc)

    def __repr__(self) -> str:
        return f"<hardy.Attempt {self.number}>"


class Attempts:
    """The iterator :func:`attempts` returns; ``for`` and ``async for`` both work (a fresh run each time)."""

    __slots__ = ("_config", "_current", "_done", "_hooks", "_pending", "_run")

    def __init__(self, config: Any, hooks: _retry_run.Hooks) -> None:
        self._config = config
        self._hooks = hooks
        self._run: _retry_run.Run | None = None
        self._current: Attempt | None = None
        self._done = False
        # what the last attempt left: (verdict, exception, result)
        self._pending: tuple[int, BaseException | None, Any] | None = None

    def _start(self) -> None:
        c = self._config
        if c.budget is not None:
            c.budget._ledger._add_call()  # a run of the block is one call
        started = c._now() if (c.deadline is not None or self._hooks.reads_clock) else 0.0
        self._run = _retry_run.Run(c, self._hooks, None, (), {}, _retry_run.NO_COUNTERS, started)
        self._current = None
        self._done = False
        self._pending = None

    def __iter__(self) -> Iterator[Attempt]:
        name = self._hooks.first_async()
        if name is not None:
            raise TypeError(f"{name} {getattr(self._hooks, name)!r} is async: use `async for` to retry the block")
        self._start()
        return self

    def __aiter__(self) -> AsyncIterator[Attempt]:
        self._start()
        return self

    def _ended(self, attempt: Attempt, exc: BaseException | None) -> bool:
        run = self._run
        if run is None or attempt is not self._current:
            raise RuntimeError(f"{attempt!r} is not the current attempt of its loop")
        if exc is None:
            result = attempt._result if attempt._has_result else None
            if not attempt._has_result or run.config.retry_on_result is None:
                self._done = True
                return False
            verdict = run.settle(None, result)
        elif not isinstance(exc, Exception):
            self._done = True
            return False
        else:
            verdict = run.settle(exc, None)
            result = None
        if verdict in (_retry_run.ACCEPT, _retry_run.PROPAGATE):
            self._done = True
            return False
        if verdict == _retry_run.GIVE_UP:
            self._done = True
            if self._hooks.on_giveup_is_async:
                # Cannot be awaited in __exit__: the loop's __anext__ awaits it, then raises.
                self._pending = (verdict, exc, result)
                return True
            run.give_up(exc, result)
            return False
        self._pending = (verdict, exc, result)
        return True

    def _next_number(self) -> int:
        current = self._current
        if current is not None and not current._exited:
            raise RuntimeError(f"{current!r} was not used as `with attempt:` before the next one was asked for")
        return 1 if current is None else current.number + 1

    def __next__(self) -> Attempt:
        if self._run is None or self._done:
            raise StopIteration
        number = self._next_number()
        pending, self._pending = self._pending, None
        if pending is not None:
            _, exc, result = pending
            self._run.retry(exc, result)
        self._current = Attempt(self, number)
        return self._current

    async def __anext__(self) -> Attempt:
        if self._run is None:
            raise StopAsyncIteration
        pending, self._pending = self._pending, None
        if self._done:
            if pending is not None:  # an async on_giveup the with-block could not await
                _, exc, result = pending
                await self._run.give_up_async(exc, result)
                if exc is not None:
                    raise exc
            raise StopAsyncIteration
        number = self._next_number()
        if pending is not None:
            _, exc, result = pending
            await self._run.retry_async(exc, result)
        self._current = Attempt(self, number)
        return self._current


def attempts(
    *,
    max_attempts: int = 3,
    backoff_factor: float = 2.0,
    initial_delay: float = 1.0,
    max_delay: float = 60.0,
    jitter: bool | Jitter = True,
    retryable_exceptions: ExceptionsArg | None = None,
    on_retry: Callable[[BaseException | None, int], Any] | None = None,
    retry_on_result: Callable[[Any], object] | None = None,
    deadline: float | None = None,
    random: Callable[[], float] | None = None,
    clock: Callable[[], float] = time.monotonic,
    retry_after: Callable[[Any], float | None] | None = None,
    before_sleep: Callable[[RetryState], object] | None = None,
    on_giveup: Callable[[RetryState], object] | None = None,
    sleep: Callable[[float], object] | None = None,
    budget: RetryBudget | None = None,
) -> Attempts:
    """Retry a block of code with the settings, hooks and testing switch of :func:`hardy.retry`.

    Iterate with ``for`` (or ``async for`` in async code, where async hooks
    and an async ``sleep`` are awaited) and wrap the block in ``with
    attempt:``. The loop ends after the first attempt that succeeds; an error
    that is not retried, or the last one when attempts or the deadline run
    out, propagates from the ``with`` statement. Hooks receive a
    :class:`~hardy.RetryState` whose ``fn`` is ``None``.

    Example::

        for attempt in hardy.attempts(max_attempts=5, retryable_exceptions=(ConnectionError,),
                                      before_sleep=lambda s: log.info("retrying in %.1fs", s.delay)):
            with attempt:
                data = fetch()
    """
    config = _core.RetryConfig(
        max_attempts,
        backoff_factor,
        initial_delay,
        max_delay,
        jitter,
        (Exception,) if retryable_exceptions is None else retryable_exceptions,
        retry_on_result=retry_on_result,
        deadline=deadline,
        random=_random.random if random is None else random,
        clock=clock,
        retry_after=retry_after,
        sleep=sleep,
        budget=budget,
    )
    return Attempts(config, _retry_run.Hooks(on_retry, before_sleep, on_giveup))
