"""The timed wrapper of an ``async def`` function in the twin (the compiled one is ``hardy/_c/first_try.pxi``).

The registry it enters is :mod:`hardy.policies.async_deadlines`; the twin's
way into it, and the answer after a timeout, are :mod:`hardy._async_deadlines`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from .. import _async_deadlines, _wrapping
from ..policies.async_deadlines import DeadlineRegistry

__all__ = ["async_deadlines", "timed_async"]

_await_within = _async_deadlines.await_within
_Elapsed = _async_deadlines.Elapsed
_timed_out_answer = _async_deadlines.timed_out_answer


def timed_async(
    func: Callable[..., Any],
    seconds: float,
    operation: str,
    fallback: Callable[..., Any] | None,
    fallback_is_async: bool,
) -> Callable[..., Any]:
    """Await each call of the async ``func`` under a deadline of ``seconds`` on the running loop.

    At the deadline the call is cancelled and ``hardy.TimeoutError(operation,
    seconds)`` raised, or ``fallback(*args, **kwargs)`` returned (awaited
    when ``fallback_is_async``).

    Example::

        fetch = timed_async(fetch_page, 5.0, "fetch_page", None, False)
    """

    async def timed(*args: Any, **kwargs: Any) -> Any:
        try:
            return await _await_within(func(*args, **kwargs), seconds)
        except _Elapsed:
            pass
        return await _timed_out_answer(operation, seconds, fallback, fallback_is_async, args, kwargs)

    return _wrapping.copy_metadata(timed, func, is_async=True)  # type: ignore[no-any-return]


def async_deadlines(loop: asyncio.AbstractEventLoop) -> DeadlineRegistry:
    """This core's deadline registry of ``loop`` (made on first use).

    Example::

        async_deadlines(asyncio.get_running_loop()).lane_sizes()  # {seconds: pending calls}
    """
    return _async_deadlines.registry_of(loop)
