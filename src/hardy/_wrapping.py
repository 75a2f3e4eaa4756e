"""Decoration-time helpers shared by both cores: async detection and metadata.

Nothing here runs per call; it runs once, when a function is wrapped.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["copy_metadata", "is_async_callable", "qualname"]


def is_async_callable(func: object) -> bool:
    """Tell whether calling ``func`` returns a coroutine.

    ``inspect.iscoroutinefunction`` already sees through ``functools.partial``
    and bound methods; this also recognises instances whose class defines
    ``async def __call__``.
    """
    if inspect.iscoroutinefunction(func):
        return True
    while isinstance(func, functools.partial):
        func = func.func
    if inspect.isroutine(func) or isinstance(func, type):
        return False
    return inspect.iscoroutinefunction(getattr(type(func), "__call__", None))  # noqa: B004


def qualname(func: object) -> str:
    """The qualified name of a callable (``Class.method``), seen through ``functools.partial``.

    Objects without one (a callable instance) are named by their class.
    """
    while isinstance(func, functools.partial):
        func = func.func
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    if isinstance(name, str):
        return name
    return type(func).__qualname__


async def _coroutine_code_template(*args: Any, **kwargs: Any) -> Any:  # pragma: no cover - never run
    """Supplies a code object flagged CO_COROUTINE."""


def copy_metadata(wrapper: Any, func: Callable[..., Any], *, is_async: bool) -> Any:
    """Make ``wrapper`` look like ``func`` and return it.

    ``functools.update_wrapper`` copies ``__name__``, ``__qualname__``,
    ``__doc__``, ``__module__`` and the annotations and sets ``__wrapped__``,
    which ``inspect.signature`` follows. The compiled core's wrappers are not
    functions, so an async one is also marked as a coroutine function: through
    ``inspect.markcoroutinefunction`` on Python 3.12+, and on older versions
    by carrying the ``__code__``, ``__defaults__`` and ``__kwdefaults__`` that
    ``inspect.iscoroutinefunction`` reads from function-like objects.
    """
    functools.update_wrapper(wrapper, func)
    if is_async and not inspect.iscoroutinefunction(wrapper):
        if sys.version_info >= (3, 12):
            inspect.markcoroutinefunction(wrapper)
        else:
            code = getattr(func, "__code__", None)
            if not (inspect.iscode(code) and code.co_flags & inspect.CO_COROUTINE):
                code = _coroutine_code_template.__code__
            wrapper.__code__ = code
            wrapper.__defaults__ = getattr(func, "__defaults__", None)
            wrapper.__kwdefaults__ = getattr(func, "__kwdefaults__", None)
            if not isinstance(getattr(wrapper, "__annotations__", None), dict):
                wrapper.__annotations__ = {}
            if not isinstance(getattr(wrapper, "__name__", None), str):
                wrapper.__name__ = type(func).__name__
    return wrapper
