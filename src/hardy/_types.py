"""Types shared by the public modules: what a decorated function looks like.

A hardy decorator returns an object, not a function, so a type checker binds
it as a method only through ``__get__``: the protocols below declare one.
Read through an instance, a wrapper whose first parameter accepts that
instance loses that parameter (it is the bound ``self``); read through the
class, or when the first parameter does not accept the instance, it keeps
its whole signature. See ``docs/typing.md``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Concatenate, Final, ParamSpec, Protocol, TypeVar, overload

if TYPE_CHECKING:
    # Annotations only (never evaluated): hardy has no run-time dependencies.
    if sys.version_info >= (3, 11):
        from typing import Self
    else:
        from typing_extensions import Self

    from ._core import CircuitBreaker

__all__ = [
    "BreakerDecorator",
    "Decorator",
    "P",
    "R",
    "ProtectedCallable",
    "ProtectedClassMethod",
    "ProtectedStaticMethod",
    "WrappedCallable",
    "WrappedClassMethod",
    "WrappedStaticMethod",
]

# mypy takes ``MYPY`` as always true; pyright reads the Final value (false).
MYPY: Final = False

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
# The bound instance and the rest of a method's signature, for ``__get__``.
_S = TypeVar("_S")
_P2 = ParamSpec("_P2")
_R2 = TypeVar("_R2")


class WrappedCallable(Protocol[P, R_co]):
    """A function wrapped by a hardy decorator: the same signature, and a method when bound.

    ``__wrapped__`` is the decorated function as it was given (read through an
    instance it is still the unbound function, hence ``Callable[..., Any]``).

    Example::

        class Client:
            @hardy.retry(max_attempts=3)
            def get(self, url: str) -> bytes: ...

        Client().get("https://example.org")   # type-checked as (url: str) -> bytes
        Client.get.__wrapped__
    """

    __name__: str
    __qualname__: str

    @property
    def __wrapped__(self) -> Callable[..., Any]: ...

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    if MYPY:
        # mypy solves the self-types below too loosely to tell a ``cls`` from
        # a ``self``; it gets methods and static methods read through the class.
        @overload
        def __get__(self, instance: None, owner: type[Any] | None = None, /) -> Self: ...

        @overload
        def __get__(
            self: WrappedCallable[Concatenate[_S, _P2], _R2], instance: _S, owner: type[Any] | None = None, /
        ) -> WrappedCallable[_P2, _R2]: ...

        @overload
        def __get__(self, instance: object, owner: type[Any] | None = None, /) -> Self: ...

    else:
        # A class method (read through the class or an instance) binds the
        # class; a method read through an instance binds it; anything else,
        # a static method included, keeps its signature.
        @overload
        def __get__(
            self: WrappedCallable[Concatenate[type[_S], _P2], _R2], instance: None, owner: type[_S], /
        ) -> WrappedCallable[_P2, _R2]: ...

        @overload
        def __get__(self, instance: None, owner: type[Any] | None = None, /) -> Self: ...

        @overload
        def __get__(
            self: WrappedCallable[Concatenate[_S, _P2], _R2], instance: _S, owner: type[Any] | None = None, /
        ) -> WrappedCallable[_P2, _R2]: ...

        @overload
        def __get__(
            self: WrappedCallable[Concatenate[type[_S], _P2], _R2], instance: _S, owner: type[_S], /
        ) -> WrappedCallable[_P2, _R2]: ...

        @overload
        def __get__(self, instance: object, owner: type[Any] | None = None, /) -> Self: ...


class ProtectedCallable(Protocol[P, R_co]):
    """A function wrapped by a circuit breaker: a ``WrappedCallable`` with ``.breaker``.

    Example::

        @hardy.circuit_breaker
        def fetch(url: str) -> bytes: ...

        fetch("https://example.org")   # type-checked as (url: str) -> bytes
        fetch.breaker.get_stats()
    """

    __name__: str
    __qualname__: str

    @property
    def __wrapped__(self) -> Callable[..., Any]: ...

    @property
    def breaker(self) -> CircuitBreaker: ...

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    if MYPY:
        # mypy solves the self-types below too loosely to tell a ``cls`` from
        # a ``self``; it gets methods and static methods read through the class.
        @overload
        def __get__(self, instance: None, owner: type[Any] | None = None, /) -> Self: ...

        @overload
        def __get__(
            self: ProtectedCallable[Concatenate[_S, _P2], _R2], instance: _S, owner: type[Any] | None = None, /
        ) -> ProtectedCallable[_P2, _R2]: ...

        @overload
        def __get__(self, instance: object, owner: type[Any] | None = None, /) -> Self: ...

    else:
        # A class method (read through the class or an instance) binds the
        # class; a method read through an instance binds it; anything else,
        # a static method included, keeps its signature.
        @overload
        def __get__(
            self: ProtectedCallable[Concatenate[type[_S], _P2], _R2], instance: None, owner: type[_S], /
        ) -> ProtectedCallable[_P2, _R2]: ...

        @overload
        def __get__(self, instance: None, owner: type[Any] | None = None, /) -> Self: ...

        @overload
        def __get__(
            self: ProtectedCallable[Concatenate[_S, _P2], _R2], instance: _S, owner: type[Any] | None = None, /
        ) -> ProtectedCallable[_P2, _R2]: ...

        @overload
        def __get__(
            self: ProtectedCallable[Concatenate[type[_S], _P2], _R2], instance: _S, owner: type[_S], /
        ) -> ProtectedCallable[_P2, _R2]: ...

        @overload
        def __get__(self, instance: object, owner: type[Any] | None = None, /) -> Self: ...


class WrappedStaticMethod(Protocol[P, R_co]):
    """A hardy decorator put above ``@staticmethod``: still a static method.

    Example::

        class Client:
            @hardy.retry
            @staticmethod
            def ping(host: str) -> bool: ...

        Client().ping("db")   # (host: str) -> bool, through the class or an instance
    """

    @property
    def __func__(self) -> WrappedCallable[P, R_co]: ...

    def __get__(self, instance: object, owner: type[Any] | None = None, /) -> WrappedCallable[P, R_co]: ...


class WrappedClassMethod(Protocol[P, R_co]):
    """A hardy decorator put above ``@classmethod``: still a class method (``P`` is without ``cls``).

    Example::

        class Client:
            @hardy.retry
            @classmethod
            def connect(cls, url: str) -> Client: ...

        Client.connect("db://")   # (url: str) -> Client
    """

    @property
    def __func__(self) -> WrappedCallable[..., Any]: ...

    def __get__(self, instance: object, owner: type[Any] | None = None, /) -> WrappedCallable[P, R_co]: ...


class ProtectedStaticMethod(Protocol[P, R_co]):
    """A circuit breaker put above ``@staticmethod``: still a static method, with ``.breaker``."""

    @property
    def __func__(self) -> ProtectedCallable[P, R_co]: ...

    def __get__(self, instance: object, owner: type[Any] | None = None, /) -> ProtectedCallable[P, R_co]: ...


class ProtectedClassMethod(Protocol[P, R_co]):
    """A circuit breaker put above ``@classmethod``: still a class method, with ``.breaker``."""

    @property
    def __func__(self) -> ProtectedCallable[..., Any]: ...

    def __get__(self, instance: object, owner: type[Any] | None = None, /) -> ProtectedCallable[P, R_co]: ...


class Decorator(Protocol):
    """What ``@hardy.retry(...)`` and ``@hardy.timeout(...)`` return: a decorator for functions and methods.

    Example::

        bounded = hardy.timeout(2.0)        # a Decorator
        read = bounded(read_file)           # WrappedCallable[(path: str), bytes]
    """

    @overload
    def __call__(self, func: staticmethod[P, R], /) -> WrappedStaticMethod[P, R]: ...  # type: ignore[overload-overlap]  # pyright: ignore[reportOverlappingOverload]

    @overload
    def __call__(self, func: classmethod[Any, P, R], /) -> WrappedClassMethod[P, R]: ...

    @overload
    def __call__(self, func: Callable[P, R], /) -> WrappedCallable[P, R]: ...


class BreakerDecorator(Protocol):
    """What ``@hardy.circuit_breaker(...)`` returns: a decorator whose functions carry ``.breaker``.

    Example::

        guard = hardy.circuit_breaker(name="db")
        query = guard(run_query)            # ProtectedCallable[(sql: str), list[Row]]
    """

    @overload
    def __call__(self, func: staticmethod[P, R], /) -> ProtectedStaticMethod[P, R]: ...  # type: ignore[overload-overlap]  # pyright: ignore[reportOverlappingOverload]

    @overload
    def __call__(self, func: classmethod[Any, P, R], /) -> ProtectedClassMethod[P, R]: ...

    @overload
    def __call__(self, func: Callable[P, R], /) -> ProtectedCallable[P, R]: ...


# What an exception parameter takes (excluded_exceptions, failure_exceptions,
# retryable_exceptions, a fallback's exceptions): classes and predicates on
# the exception, alone or in a tuple or list (hardy._match).
ExceptionMatcher = type[BaseException] | Callable[[BaseException], object]
ExceptionsArg = ExceptionMatcher | tuple[ExceptionMatcher, ...] | list[ExceptionMatcher]
