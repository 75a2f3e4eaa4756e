"""Running a fallback chain past its first function; shared by both cores.

The cores call the first function themselves (the fast path, in C for the
compiled core); once it has failed, everything else happens here, written
once: the remaining functions in order, one WARNING per failed step, then
the default (logged at INFO) or :class:`~hardy.AllFallbacksFailedError`.
A fallback or default that answers is also a ``"fallback"`` event and one
more fallback used in :mod:`hardy._tallies` (the metrics' count).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from . import _log, _match, _tallies, events
from ._sentinel import NO_DEFAULT
from .errors import AllFallbacksFailedError

__all__ = ["continue_chain", "describe", "rejects", "run_chain_async"]

logger = _log.component("fallback")

_NOTHING: Any = object()  # no function of the chain returned (every one raised)


def describe(func: object) -> str:
    """A readable name for any callable, even one without ``__name__``."""
    # Functions and hardy's wrappers first: this runs on every retry (hardy._retry_events).
    qualname = getattr(func, "__qualname__", None)
    if type(qualname) is str:
        module = getattr(func, "__module__", None)
        return f"{module}.{qualname}" if type(module) is str else qualname
    target = getattr(func, "func", None) if not hasattr(func, "__qualname__") else None
    named = target if target is not None else func
    qualname = getattr(named, "__qualname__", None) or getattr(named, "__name__", None)
    if not isinstance(qualname, str):
        return repr(func)
    module = getattr(named, "__module__", None)
    return f"{module}.{qualname}" if isinstance(module, str) else qualname


def _log_failure(name: str, func: object, error: BaseException) -> None:
    # Every failure, not rate-limited: the spec promises one WARNING per failed step
    # while log_failures is on (and log_failures=False turns them off).
    if logger.isEnabledFor(logging.WARNING):
        described = describe(func)
        logger.warning(
            "fallback chain %s: %s failed: %r",
            name,
            described,
            error,
            extra=_log.fields("fallback", name, "step_failed", error_type=type(error).__name__, function=described),
        )


def _log_rejected(name: str, func: object, value: object) -> None:
    if logger.isEnabledFor(logging.WARNING):
        described = describe(func)
        logger.warning(
            "fallback chain %s: %s returned a rejected result: %r",
            name,
            described,
            value,
            extra=_log.fields("fallback", name, "step_rejected", function=described),
        )


def _used(name: str, func: object, errors: list[BaseException]) -> None:
    """A fallback (``func``, or the default when ``None``) answered after ``errors``."""
    _tallies.count(_tallies.fallbacks, name)
    if events.active:
        events.emit(
            "fallback",
            name,
            {
                "via": "default" if func is None else "function",
                "function": None if func is None else describe(func),
                "error_type": type(errors[-1]).__name__ if errors else None,
            },
        )


def _finish(name: str, errors: list[BaseException], default: object, log: bool, rejected: object = _NOTHING) -> Any:
    if default is not NO_DEFAULT:
        _used(name, None, errors)
        if log and logger.isEnabledFor(logging.INFO):
            # One record each time, never rate-limited: the spec promises it.
            logger.info(
                "fallback chain %s: every function failed; the default answered",
                name,
                extra=_log.fields(
                    "fallback", name, "default_answered", error_type=type(errors[-1]).__name__ if errors else None
                ),
            )
        return default
    if rejected is not _NOTHING:
        # No default, and a function did return: its (last) rejected result
        # is a better answer than an error that hides it, as retry_on_result.
        return rejected
    raise AllFallbacksFailedError(name, errors) from (errors[-1] if errors else None)


def rejects(on_result: Callable[[Any], object] | None, value: object, name: str) -> bool:
    """Whether ``fallback_on_result`` turns ``value`` down."""
    return on_result is not None and _match.result_matches(on_result, value, "fallback_on_result", name)


def continue_chain(
    name: str,
    funcs: Sequence[Callable[..., Any]],
    start: int,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    errors: list[BaseException],
    default: object,
    exceptions: tuple[Any, ...],
    log: bool,
    on_result: Callable[[Any], object] | None = None,
    rejected: object = _NOTHING,
) -> Any:
    """Run ``funcs[start:]`` after ``errors`` (the failures so far, already raised).

    ``rejected`` is the last result ``on_result`` turned down so far, if any.
    """
    if log and start > 0:  # the core called funcs[0] itself: it failed, or its result was turned down
        if rejected is not _NOTHING:
            _log_rejected(name, funcs[start - 1], rejected)
        elif errors:
            _log_failure(name, funcs[start - 1], errors[-1])
    for func in funcs[start:]:
        try:
            result = func(*args, **kwargs)
        except Exception as exc:
            if not _match.matches(exc, exceptions, "exceptions", name):
                raise
            errors.append(exc)
            if log:
                _log_failure(name, func, exc)
            continue
        if not rejects(on_result, result, name):
            if errors or rejected is not _NOTHING:  # a fallback answered, not the first function
                _used(name, func, errors)
            return result
        rejected = result
        if log:
            _log_rejected(name, func, result)
    return _finish(name, errors, default, log, rejected)


async def run_chain_async(
    name: str,
    funcs: Sequence[Callable[..., Any]],
    awaited: Sequence[bool],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    default: object,
    exceptions: tuple[Any, ...],
    log: bool,
    on_result: Callable[[Any], object] | None = None,
    start: int = 0,
    errors: list[BaseException] | None = None,
) -> Any:
    """Run a chain that holds async functions; ``awaited[i]`` says whether to await ``funcs[i]``.

    Any member may be sync, the first one included: a chain is async as soon
    as one of its functions is. The compiled core awaits ``funcs[0]`` itself
    and comes here with ``start=1`` and its error once it failed.
    """
    if errors is None:
        errors = []
    rejected: object = _NOTHING
    if start:
        if log and errors:
            _log_failure(name, funcs[start - 1], errors[-1])
        funcs = funcs[start:]
        awaited = awaited[start:]
    for func, is_async in zip(funcs, awaited, strict=True):
        try:
            result = func(*args, **kwargs)
            if is_async:
                result = await result
        except Exception as exc:
            if not _match.matches(exc, exceptions, "exceptions", name):
                raise
            errors.append(exc)
            if log:
                _log_failure(name, func, exc)
            continue
        if not rejects(on_result, result, name):
            if errors or rejected is not _NOTHING:
                _used(name, func, errors)
            return result
        rejected = result
        if log:
            _log_rejected(name, func, result)
    return _finish(name, errors, default, log, rejected)
