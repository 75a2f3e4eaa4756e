"""Decorators above ``@staticmethod`` and ``@classmethod``: wrap the function, keep the descriptor.

``@hardy.retry`` over ``@staticmethod`` would otherwise wrap the
``staticmethod`` object itself: the wrapper, a function, is then bound like
a method and the static method receives the instance as an extra argument;
a ``classmethod`` object is not even callable. Wrapping its ``__func__`` and
re-wrapping the result in the same descriptor type makes both decorator
orders mean the same thing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

__all__ = ["rewrap"]

_Decorate = Callable[[Callable[..., Any]], Callable[..., Any]]


def rewrap(func: object, decorate: _Decorate) -> staticmethod[..., Any] | classmethod[Any, ..., Any] | None:
    """``decorate`` applied under the ``staticmethod``/``classmethod`` ``func``, or ``None`` for anything else.

    Example::

        def decorate(func):
            rewrapped = _descriptors.rewrap(func, decorate)
            if rewrapped is not None:
                return rewrapped
            ...  # wrap a plain callable
    """
    if isinstance(func, staticmethod):
        static = cast("staticmethod[..., Any]", func)
        return staticmethod(decorate(static.__func__))
    if isinstance(func, classmethod):
        method = cast("classmethod[Any, ..., Any]", func)
        return classmethod(decorate(method.__func__))
    return None
