"""Running a fallback chain past its first function; shared by both cores.

The cores call the first function themselves (the fast path, in C for the
compiled core); once it has failed, everything else happens here, written
once: the remaining functions in order, one WARNING per failed step, then
the default (logged at INFO) or :class:`~hardy.AllFallbacksFailedError`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from . import _match
from ._sentinel import NO_DEFAULT
from .errors import AllFallbacksFailedError

__all__ = ["continue_chain", "describe", "run_chain_async"]

logger = logging.getLogger("hardy")


def describe(func: object) -> str:
    """A readable name for any callable, even one without ``__name__``."""
    target = getattr(func, "func", None) if not hasattr(func, "__qualname__") else None
    named = target if target is not None else func
    qualname = getattr(named, "__qualname__", None) or getattr(named, "__name__", None)
    if not isinstance(qualname, str):
        return repr(func)
    module = getattr(named, "__module__", None)
    return f"{module}.{qualname}" if isinstance(module, str) else qualname


def _log(name: str, func: object, error: BaseException) -> None:
    if logger.isEnabledFor(logging.WARNING):
        logger.warning("fallback chain %s: %s failed: %r", name, describe(func), error)


_NOTHING: Any = object()  # no function of the chain returned (every one raised)


def _log_rejected(name: str, func: object, value: object) -> None:
    if logger.isEnabledFor(logging.WARNING):
        logger.warning("fallback chain %s: %s returned a rejected result: %r", name, describe(func), value)


def _finish(name: str, errors: list[BaseException], default: object, log: bool, rejected: object = _NOTHING) -> Any:
    if default is not NO_DEFAULT:
        if log and logger.isEnabledFor(logging.INFO):
            logger.info("fallback chain %s: every function failed; the default answered", name)
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
            _log(name, funcs[start - 1], errors[-1])
    for func in funcs[start:]:
        try:
            result = func(*args, **kwargs)
        except Exception as exc:
            if not _match.matches(exc, exceptions, "exceptions", name):
                raise
            errors.append(exc)
            if log:
                _log(name, func, exc)
            continue
        if not rejects(on_result, result, name):
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
            _log(name, funcs[start - 1], errors[-1])
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
                _log(name, func, exc)
            continue
        if not rejects(on_result, result, name):
            return result
        rejected = result
        if log:
            _log_rejected(name, func, result)
    return _finish(name, errors, default, log, rejected)
