"""The part of Cython's pure-mode ``cython`` module that the policies use.

The policy modules run uncompiled in the twin, where Cython need not be
installed. When it is, they import the real ``cython`` module (its shadow
behaves the same); when it is not, they import this one. Compiled, none of
it exists: Cython reads the names at compile time. Type checkers read
``typings/cython.pyi`` instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)

compiled = False

int = int  # noqa: A001 - the C types, as Python sees them
uint = int
long = int
char = int
longlong = int
double = float
bint = bool
void: TypeAlias = None  # a cfunc that returns nothing


def cclass(cls: C) -> C:
    return cls


def cfunc(func: F) -> F:
    return func


def ccall(func: F) -> F:
    return func


def inline(func: F) -> F:
    return func


def exceptval(*args: object, **kwargs: object) -> Callable[[F], F]:
    def keep(func: F) -> F:
        return func

    return keep


def declare(kind: object = None, value: Any = None, **kwargs: object) -> Any:
    return value


def final(obj: F) -> F:
    return obj


def cast(kind: Any, value: Any) -> Any:
    """A C cast: to a number type it converts (int() truncates toward zero); to a class it is the object itself."""
    return kind(value) if kind is int or kind is float else value
