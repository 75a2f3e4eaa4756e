"""The timed wrapper of a sync function in the twin (the compiled one is ``hardy/_c/deadlines.pxi``).

The deadlines themselves are kept by :mod:`hardy._deadlines`, whose timer
thread serves both cores; what to do with a due one is decided in
:mod:`hardy.policies.deadlines`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import _deadlines, _timeout_log, _wrapping
from ..policies.deadlines import late

if TYPE_CHECKING:
    from .._types import P, R

__all__ = ["timed"]

_monotonic = time.monotonic


def timed(
    func: Callable[P, R],
    seconds: float,
    operation: str,
    fallback: Callable[..., Any] | None = None,
) -> Callable[P, R]:
    """Run each call of the sync ``func`` under a deadline of ``seconds``.

    At the deadline the call is interrupted and ``hardy.TimeoutError(operation,
    seconds)`` raised, or ``fallback(*args, **kwargs)`` returned. A call that
    returns after its deadline (the timer could not interrupt it) times out
    all the same: its result is dropped.
    """

    def timed_call(*args: Any, **kwargs: Any) -> Any:
        entry = _deadlines.prepare(seconds)
        try:
            try:
                _deadlines.enter(entry)
                result = func(*args, **kwargs)
                is_late = late(_monotonic(), entry.deadline)
            finally:
                _deadlines.leave(entry)
        except _deadlines.Expired:
            # Make sure ours is gone even if the delivery interrupted leave()
            # itself; then it is ours, unless it came for an outer deadline
            # (re-raised for that one's own wrapper).
            _leave_surely(entry)
            if not (entry.fired or late(_monotonic(), entry.deadline)) and _deadlines.claimed_elsewhere(entry):
                raise
        else:
            if not is_late:
                return result
        error = _timeout_log.timed_out(operation, seconds)
        if fallback is None:
            raise error
        value = fallback(*args, **kwargs)
        _timeout_log.fallback_answered(operation)
        return value

    return _wrapping.copy_metadata(timed_call, func, is_async=False)  # type: ignore[no-any-return]


def _leave_surely(entry: _deadlines.Entry) -> None:
    for _ in range(3):
        try:
            _deadlines.leave(entry)
            return
        except _deadlines.Expired:
            continue
