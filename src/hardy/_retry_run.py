"""One retried call after its first attempt, for the twin, async functions, generators and blocks.

Both cores run a function's first attempt in their own dispatch (the
compiled core also its whole sync loop, in C). Whatever comes after a first
attempt that failed, or whose result must be checked, in the twin, in an
async function on either core, in a generator and in a :func:`hardy.attempts`
block, goes through :class:`Run`: the decisions are the policy's, reached
through the config (``_retries``, ``_next_wait``); here are the hooks, the
counters and the sleep. Nothing here runs on a first-attempt success.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, cast

from . import _retry_events, _sleep, _validate
from ._retry_state import RetryState

__all__ = ["ACCEPT", "GIVE_UP", "PROPAGATE", "RETRY", "Hooks", "Run", "finish_async", "finish_sync", "retry_with"]

RETRY = 0
ACCEPT = 1
PROPAGATE = 2
GIVE_UP = 3

HOOK_NAMES = ("on_retry", "before_sleep", "on_giveup")


class CounterSink(Protocol):
    def _add(self, calls: int, retries: int, successes: int, giveups: int, slept: float) -> None: ...


class _NoCounters:
    def _add(self, calls: int, retries: int, successes: int, giveups: int, slept: float) -> None:
        pass


NO_COUNTERS = _NoCounters()


class Hooks:
    """The hooks of a retried function or block, checked once; whether each is async."""

    __slots__ = (
        "before_sleep",
        "before_sleep_is_async",
        "on_giveup",
        "on_giveup_is_async",
        "on_retry",
        "on_retry_is_async",
        "reads_clock",
    )

    def __init__(
        self,
        on_retry: Callable[..., Any] | None,
        before_sleep: Callable[..., Any] | None,
        on_giveup: Callable[..., Any] | None,
    ) -> None:
        for name, hook in (("on_retry", on_retry), ("before_sleep", before_sleep), ("on_giveup", on_giveup)):
            if hook is not None:
                _validate.callable_arg(name, hook)
        self.on_retry: Callable[..., Any] | None = on_retry
        self.before_sleep: Callable[..., Any] | None = before_sleep
        self.on_giveup: Callable[..., Any] | None = on_giveup
        self.on_retry_is_async: bool = on_retry is not None and _validate.is_async_hook(on_retry)
        self.before_sleep_is_async: bool = before_sleep is not None and _validate.is_async_hook(before_sleep)
        self.on_giveup_is_async: bool = on_giveup is not None and _validate.is_async_hook(on_giveup)
        # A RetryState carries ``elapsed``: the call's start is read only when a hook will want it.
        self.reads_clock: bool = before_sleep is not None or on_giveup is not None

    @property
    def any_async(self) -> bool:
        return self.on_retry_is_async or self.before_sleep_is_async or self.on_giveup_is_async

    def first_async(self) -> str | None:
        for name in HOOK_NAMES:
            if getattr(self, name + "_is_async"):
                return name
        return None

    def check_sync(self, func: object) -> None:
        """Async hooks cannot be awaited around a sync function."""
        name = self.first_async()
        if name is not None:
            raise TypeError(f"{name} {getattr(self, name)!r} is async but {func!r} is not: it could not be awaited")

    def as_dict(self) -> dict[str, Any]:
        return {"on_retry": self.on_retry, "before_sleep": self.before_sleep, "on_giveup": self.on_giveup}


def _chain(error: BaseException, cause: BaseException | None) -> None:
    """An error raised while handling an attempt's error has it as its ``__context__``, as in the C loop."""
    if cause is not None and error is not cause and error.__context__ is None:
        error.__context__ = cause


class Run:
    """One retried call (or block) after an attempt ended: what to do next, the hooks and the sleep."""

    __slots__ = (
        "args",
        "attempt",
        "budget_exhausted",
        "config",
        "counters",
        "fn",
        "hooks",
        "kwargs",
        "previous",
        "started",
        "wait",
    )

    def __init__(
        self,
        config: Any,
        hooks: Hooks,
        fn: Callable[..., Any] | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        counters: CounterSink,
        started: float,
    ) -> None:
        self.config = config
        self.hooks = hooks
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.counters = counters
        self.started = started
        self.attempt = 1
        self.previous = -1.0
        self.wait = 0.0
        self.budget_exhausted = False  # the last GIVE_UP came from the retry budget

    def settle(self, exc: BaseException | None, result: Any) -> int:
        """RETRY (``self.wait`` is set), ACCEPT the result, PROPAGATE the error, or GIVE_UP."""
        try:
            c = self.config
            if exc is not None:
                if not c._retries(exc):
                    return PROPAGATE
                outcome: Any = exc
            else:
                predicate = c.retry_on_result
                if predicate is None or not predicate(result):
                    return ACCEPT
                outcome = result
            wait = c._next_wait(self.attempt, self.previous, outcome, self.started)
        except BaseException as error:
            _chain(error, exc)
            raise
        if wait < 0.0:
            self.budget_exhausted = wait < -1.5  # _next_wait's -2.0
            return GIVE_UP
        self.wait = wait
        return RETRY

    def state(self, exc: BaseException | None, result: Any, delay: float | None) -> RetryState:
        return RetryState(
            self.attempt,
            delay,
            self.config._now() - self.started,
            exc,
            None if exc is not None else result,
            self.fn,
            self.args,
            self.kwargs,
        )

    def _advance(self) -> None:
        self.previous = self.wait
        self.attempt += 1

    # -- sync ---------------------------------------------------------------

    def _report_retry(self, exc: BaseException | None) -> None:
        # Metrics, events and the log (hardy._retry_events): for wrapped functions, not blocks.
        if self.fn is not None:
            _retry_events.retried(self.fn, exc, self.attempt, self.wait, self.counters)

    def _report_give_up(self, exc: BaseException | None) -> None:
        if self.fn is not None:
            _retry_events.gave_up(self.fn, exc, self.attempt, self.counters, self.budget_exhausted)

    def retry(self, exc: BaseException | None, result: Any) -> None:
        """The hooks and the sleep before the next attempt."""
        wait = self.wait
        h = self.hooks
        self.counters._add(0, 1, 0, 0, wait)
        try:
            self._report_retry(exc)
            if h.on_retry is not None:
                h.on_retry(exc, self.attempt)
            if h.before_sleep is not None:
                h.before_sleep(self.state(exc, result, wait))
            if wait > 0.0:
                _sleep.sync_sleep(wait, self.config.sleep)
        except BaseException as error:
            _chain(error, exc)
            raise
        self._advance()

    def give_up(self, exc: BaseException | None, result: Any) -> None:
        self.counters._add(0, 0, 0, 1, 0.0)
        h = self.hooks
        if h.on_giveup is not None:
            try:
                h.on_giveup(self.state(exc, result, None))
            except BaseException as error:
                _chain(error, exc)
                raise
        try:
            self._report_give_up(exc)
        except BaseException as error:
            _chain(error, exc)
            raise

    # -- async --------------------------------------------------------------

    async def retry_async(self, exc: BaseException | None, result: Any) -> None:
        wait = self.wait
        h = self.hooks
        self.counters._add(0, 1, 0, 0, wait)
        try:
            self._report_retry(exc)
            if h.on_retry is not None:
                done = h.on_retry(exc, self.attempt)
                if h.on_retry_is_async:
                    await done
            if h.before_sleep is not None:
                done = h.before_sleep(self.state(exc, result, wait))
                if h.before_sleep_is_async:
                    await done
            if wait > 0.0:
                await _sleep.async_sleep(wait, self.config.sleep)
        except BaseException as error:
            _chain(error, exc)
            raise
        self._advance()

    async def give_up_async(self, exc: BaseException | None, result: Any) -> None:
        self.counters._add(0, 0, 0, 1, 0.0)
        h = self.hooks
        if h.on_giveup is not None:
            try:
                done = h.on_giveup(self.state(exc, result, None))
                if h.on_giveup_is_async:
                    await done
            except BaseException as error:
                _chain(error, exc)
                raise
        try:
            self._report_give_up(exc)
        except BaseException as error:
            _chain(error, exc)
            raise


def finish_sync(run: Run, func: Callable[..., Any], exc: BaseException | None, result: Any) -> Any:
    """The rest of a sync call whose first attempt raised ``exc`` or returned ``result``."""
    run.counters._add(1, 0, 0, 0, 0.0)
    args = run.args
    kwargs = run.kwargs
    while True:
        verdict = run.settle(exc, result)
        if verdict == ACCEPT:
            run.counters._add(0, 0, 1, 0, 0.0)
            return result
        if verdict == PROPAGATE:
            raise cast(BaseException, exc)  # settle() propagates only an error
        if verdict == GIVE_UP:
            run.give_up(exc, result)
            if exc is not None:
                raise exc
            return result
        run.retry(exc, result)
        exc = None
        try:
            result = func(*args, **kwargs)
        except Exception as error:
            exc = error
            result = None


async def finish_async(run: Run, func: Callable[..., Awaitable[Any]], exc: BaseException | None, result: Any) -> Any:
    """The rest of an async call whose first attempt raised ``exc`` or returned ``result``."""
    run.counters._add(1, 0, 0, 0, 0.0)
    args = run.args
    kwargs = run.kwargs
    while True:
        verdict = run.settle(exc, result)
        if verdict == ACCEPT:
            run.counters._add(0, 0, 1, 0, 0.0)
            return result
        if verdict == PROPAGATE:
            raise cast(BaseException, exc)  # settle() propagates only an error
        if verdict == GIVE_UP:
            await run.give_up_async(exc, result)
            if exc is not None:
                raise exc
            return result
        await run.retry_async(exc, result)
        exc = None
        try:
            result = await func(*args, **kwargs)
        except Exception as error:
            exc = error
            result = None


def retry_with(
    retrying: Callable[..., Any], config: Any, func: Callable[..., Any], hooks: Hooks, /, **changes: Any
) -> Any:
    """A new retried ``func`` with some settings (of the config, or hooks) changed; fresh statistics."""
    settings = config._settings()
    unknown = sorted(name for name in changes if name not in settings and name not in HOOK_NAMES)
    if unknown:
        known = ", ".join(sorted([*settings, *HOOK_NAMES]))
        raise TypeError(f"retry_with() got unknown settings {', '.join(map(repr, unknown))} (known: {known})")
    config_changes = {name: value for name, value in changes.items() if name in settings}
    new_config = type(config)(**{**settings, **config_changes}) if config_changes else config
    new_hooks = {**hooks.as_dict(), **{name: changes[name] for name in HOOK_NAMES if name in changes}}
    return retrying(new_config, func, **new_hooks)


def bind_retry_with(retrying: Callable[..., Any], config: Any, func: Callable[..., Any], hooks: Hooks) -> Any:
    return functools.partial(retry_with, retrying, config, func, hooks)
