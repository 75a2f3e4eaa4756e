"""Fallback chains: ``Fallback``, ``fallback`` and ``with_fallback``.

A chain calls its functions in order with the same arguments and returns the
first result that does not raise; when every function fails it returns the
default, if one was given (``None`` is a valid default), or raises
:class:`~hardy.AllFallbacksFailedError`, which carries every error in order
and is raised from the last one. Only ``Exception`` subclasses fall through
(``exceptions=`` narrows them further); anything else propagates at once.
Each failed step is logged at WARNING on the ``hardy`` logger, and a default
that answers at INFO.

A chain with any async function is async: ``fallback`` and ``with_fallback``
then return a coroutine function, and ``Fallback.execute`` an awaitable. Its
async functions are awaited and its sync ones called.

Typing: a default widens the return type (``default=None`` over ``-> str``
gives ``str | None``), and a sync function with async fallbacks types as a
coroutine function (see :class:`ChainDecorator` for what type checkers can
see).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any, NoReturn, Protocol, TypeVar, cast, overload

from . import _chain, _core, _descriptors, _validate, _wrapping
from ._sentinel import NO_DEFAULT
from ._types import ExceptionsArg, P, R, WrappedCallable, WrappedClassMethod, WrappedStaticMethod

__all__ = ["AsyncChainDecorator", "ChainDecorator", "EmptyChainError", "Fallback", "fallback", "with_fallback"]

D = TypeVar("D")
D_co = TypeVar("D_co", covariant=True)

# What an async fallback looks like to a type checker.
_AsyncFunc = Callable[..., Awaitable[Any]]
_AnyFunc = Callable[..., Any]
_Exceptions = ExceptionsArg
_OnResult = Callable[[Any], object] | None


def _check_functions(parameter: str, value: object) -> list[Callable[..., Any]]:
    """The functions of a chain: a list, tuple or other ordered iterable of callables.

    A string, a mapping, a set (no order) and a single callable are refused
    with a ``TypeError`` naming ``parameter``, as is any element that is not
    callable.
    """
    wanted = f"{parameter} must be a list or tuple of callables"
    kind = type(value).__name__
    if not isinstance(value, (list, tuple)):
        if callable(value):
            raise TypeError(f"{wanted}, got the callable {value!r}: wrap a single function in a list")
        if isinstance(value, (str, bytes, Mapping, AbstractSet)) or not isinstance(value, Iterable):
            raise TypeError(f"{wanted}, got {value!r} ({kind})")
    functions: list[Callable[..., Any]] = []
    for index, func in enumerate(cast("Iterable[object]", value)):
        if not callable(func):
            raise TypeError(f"{parameter} must hold callables, got {func!r} ({type(func).__name__}) at index {index}")
        functions.append(func)
    return functions


class EmptyChainError(ValueError, RuntimeError):
    """:meth:`Fallback.execute` of a chain with no functions.

    A ``ValueError`` (the chain was used before it was built), and also the
    ``RuntimeError`` the reference raised for it, so ``except RuntimeError``
    written for the reference still catches it.

    Example::

        try:
            hardy.Fallback("empty").execute()
        except ValueError as exc:  # or RuntimeError
            print(exc)  # Fallback 'empty' has no functions to execute: ...
    """


def _check_log(log_failures: object) -> bool:
    if not isinstance(log_failures, bool):
        raise TypeError(f"log_failures must be a bool, got {log_failures!r}")
    return log_failures


class Fallback:
    """A named chain of functions tried in order, built up with :meth:`add`.

    ``functions`` is a list (the chain's own copy of what was passed) and may
    be changed in place; it is checked at each :meth:`execute`.
    ``default_value`` is ``None`` when no default was given: ``has_default``
    tells that apart from a default of ``None``, which is a valid default.
    Assigning ``default_value`` gives the chain a default, and ``del
    chain.default_value`` takes it away.

    Example::

        chain = hardy.Fallback("user-profile", default_value=None)
        chain.add(from_primary_db).add(from_replica)
        chain.functions.append(from_cache)
        profile = chain.execute(user_id)              # all sync: the result
        profile = await chain.execute(user_id)        # any async function: an awaitable
        profile = await chain.execute_async(user_id)  # always an awaitable
    """

    def __init__(
        self,
        name: str,
        functions: Iterable[Callable[..., Any]] | None = None,
        default_value: object = NO_DEFAULT,
        *,
        exceptions: _Exceptions = (Exception,),
        log_failures: bool = True,
        fallback_on_result: _OnResult = None,
    ) -> None:
        self.name: str = _validate.non_empty_name(name)
        self._default: object = default_value
        self._exceptions = _validate.fallback_exceptions(exceptions)
        self._on_result = _validate.result_predicate("fallback_on_result", fallback_on_result)
        self._log = _check_log(log_failures)
        self._functions: list[Callable[..., Any]] = (
            [] if functions is None else _check_functions("functions", functions)
        )

    @property
    def functions(self) -> list[Callable[..., Any]]:
        """The functions of the chain, in the order they are tried (a list: append, insert, remove)."""
        return self._functions

    @functions.setter
    def functions(self, value: Iterable[Callable[..., Any]]) -> None:
        self._functions = _check_functions("functions", value)

    @property
    def default_value(self) -> Any:
        """What :meth:`execute` returns when every function fails, or ``None`` when there is no default."""
        return None if self._default is NO_DEFAULT else self._default

    @default_value.setter
    def default_value(self, value: object) -> None:
        self._default = value

    @default_value.deleter
    def default_value(self) -> None:
        self._default = NO_DEFAULT

    @property
    def has_default(self) -> bool:
        """Whether the chain has a default (``None`` included); without one, a total failure raises."""
        return self._default is not NO_DEFAULT

    def add(self, func: Callable[..., Any]) -> Fallback:
        """Append ``func`` to the chain and return the chain, so calls can be chained."""
        self._functions.append(_validate.callable_arg("func", func))
        return self

    def _snapshot(self) -> tuple[Callable[..., Any], ...]:
        # The list is the user's to change, so it is checked when it is used.
        functions = tuple(self._functions)
        if not functions:
            raise EmptyChainError(
                f"Fallback {self.name!r} has no functions to execute: add() at least one before execute()"
            )
        for index, func in enumerate(functions):
            if not callable(func):
                raise TypeError(
                    f"Fallback {self.name!r}: functions[{index}] must be callable, got {func!r} ({type(func).__name__})"
                )
        return functions

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        """Run the chain with these arguments.

        With only sync functions, the result (or the default) is returned, or
        :class:`~hardy.AllFallbacksFailedError` raised. With any async
        function, an awaitable that does the same is returned, as
        :meth:`execute_async` would. An empty chain is an
        :class:`EmptyChainError` (a ``ValueError`` and a ``RuntimeError``), and
        an element that is not callable a ``TypeError``, raised here.
        """
        functions = self._snapshot()
        awaited = tuple(_wrapping.is_async_callable(func) for func in functions)
        if any(awaited):
            return _chain.run_chain_async(
                self.name, functions, awaited, args, kwargs, self._default, self._exceptions, self._log, self._on_result
            )
        return _chain.continue_chain(
            self.name, functions, 0, args, kwargs, [], self._default, self._exceptions, self._log, self._on_result
        )

    async def execute_async(self, *args: Any, **kwargs: Any) -> Any:
        """Run the chain, awaiting its async functions and calling its sync ones."""
        functions = self._snapshot()
        awaited = tuple(_wrapping.is_async_callable(func) for func in functions)
        return await _chain.run_chain_async(
            self.name, functions, awaited, args, kwargs, self._default, self._exceptions, self._log, self._on_result
        )

    def __repr__(self) -> str:
        count = len(self._functions)
        default = f", default {self._default!r}" if self.has_default else ""
        return f"<Fallback {self.name!r} with {count} function{'' if count == 1 else 's'}{default}>"


# -- typing -------------------------------------------------------------------------------


class ChainDecorator(Protocol[D_co]):
    """What :func:`fallback` returns: a decorator whose result is sync or async like the function.

    ``D_co`` is the type of the default, added to the return type
    (``NoReturn`` without a default: it adds nothing). Type checkers see a
    chain as async when the decorated function is async or one of the first
    three fallbacks is (:class:`AsyncChainDecorator`); at run time any async
    member makes it so. Above ``@staticmethod`` / ``@classmethod`` the result
    stays a static or class method.

    Example::

        @hardy.fallback(read_cache, default=None)
        def read(key: str) -> bytes: ...     # (key: str) -> bytes | None
    """

    # staticmethod objects are callable: their overloads come first, on purpose.
    @overload
    def __call__(  # type: ignore[overload-overlap]  # pyright: ignore[reportOverlappingOverload]
        self, func: staticmethod[P, Coroutine[Any, Any, R]], /
    ) -> WrappedStaticMethod[P, Coroutine[Any, Any, R | D_co]]: ...

    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, func: staticmethod[P, R], /
    ) -> WrappedStaticMethod[P, R | D_co]: ...

    @overload
    def __call__(
        self, func: classmethod[Any, P, Coroutine[Any, Any, R]], /
    ) -> WrappedClassMethod[P, Coroutine[Any, Any, R | D_co]]: ...

    @overload
    def __call__(self, func: classmethod[Any, P, R], /) -> WrappedClassMethod[P, R | D_co]: ...

    @overload
    def __call__(
        self, func: Callable[P, Coroutine[Any, Any, R]], /
    ) -> WrappedCallable[P, Coroutine[Any, Any, R | D_co]]: ...

    @overload
    def __call__(self, func: Callable[P, R], /) -> WrappedCallable[P, R | D_co]: ...


class AsyncChainDecorator(Protocol[D_co]):
    """What :func:`fallback` with an async fallback returns: its result is a coroutine function.

    Example::

        async def read_remote(key: str) -> bytes: ...

        @hardy.fallback(read_remote)
        def read(key: str) -> bytes: ...     # (key: str) -> Coroutine[Any, Any, bytes]
    """

    @overload
    def __call__(  # type: ignore[overload-overlap]  # pyright: ignore[reportOverlappingOverload]
        self, func: staticmethod[P, Coroutine[Any, Any, R]], /
    ) -> WrappedStaticMethod[P, Coroutine[Any, Any, R | D_co]]: ...

    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, func: staticmethod[P, R], /
    ) -> WrappedStaticMethod[P, Coroutine[Any, Any, R | D_co]]: ...

    @overload
    def __call__(
        self, func: classmethod[Any, P, Coroutine[Any, Any, R]], /
    ) -> WrappedClassMethod[P, Coroutine[Any, Any, R | D_co]]: ...

    @overload
    def __call__(self, func: classmethod[Any, P, R], /) -> WrappedClassMethod[P, Coroutine[Any, Any, R | D_co]]: ...

    @overload
    def __call__(
        self, func: Callable[P, Coroutine[Any, Any, R]], /
    ) -> WrappedCallable[P, Coroutine[Any, Any, R | D_co]]: ...

    @overload
    def __call__(self, func: Callable[P, R], /) -> WrappedCallable[P, Coroutine[Any, Any, R | D_co]]: ...


# The overloads of ``with_fallback`` and ``fallback``, first match wins: an
# async primary, then async fallbacks, then sync; each without and with a
# default (``NoReturn`` stands for "no default": it adds nothing).


@overload
def with_fallback(
    primary: Callable[P, Coroutine[Any, Any, R]],
    fallbacks: Iterable[_AnyFunc],
    *,
    exceptions: _Exceptions = ...,
    fallback_on_result: _OnResult = ...,
    log_failures: bool = ...,
) -> WrappedCallable[P, Coroutine[Any, Any, R]]: ...


@overload
def with_fallback(
    primary: Callable[P, Coroutine[Any, Any, R]],
    fallbacks: Iterable[_AnyFunc],
    default: D,
    *,
    exceptions: _Exceptions = ...,
    fallback_on_result: _OnResult = ...,
    log_failures: bool = ...,
) -> WrappedCallable[P, Coroutine[Any, Any, R | D]]: ...


@overload
def with_fallback(
    primary: Callable[P, R],
    fallbacks: Iterable[_AsyncFunc],
    *,
    exceptions: _Exceptions = ...,
    fallback_on_result: _OnResult = ...,
    log_failures: bool = ...,
) -> WrappedCallable[P, Coroutine[Any, Any, R]]: ...


@overload
def with_fallback(
    primary: Callable[P, R],
    fallbacks: Iterable[_AsyncFunc],
    default: D,
    *,
    exceptions: _Exceptions = ...,
    fallback_on_result: _OnResult = ...,
    log_failures: bool = ...,
) -> WrappedCallable[P, Coroutine[Any, Any, R | D]]: ...


@overload
def with_fallback(
    primary: Callable[P, R],
    fallbacks: Iterable[_AnyFunc],
    *,
    exceptions: _Exceptions = ...,
    fallback_on_result: _OnResult = ...,
    log_failures: bool = ...,
) -> WrappedCallable[P, R]: ...


@overload
def with_fallback(
    primary: Callable[P, R],
    fallbacks: Iterable[_AnyFunc],
    default: D,
    *,
    exceptions: _Exceptions = ...,
    fallback_on_result: _OnResult = ...,
    log_failures: bool = ...,
) -> WrappedCallable[P, R | D]: ...


def with_fallback(
    primary: Callable[..., Any],
    fallbacks: Iterable[_AnyFunc],
    default: object = NO_DEFAULT,
    *,
    exceptions: _Exceptions = (Exception,),
    log_failures: bool = True,
    fallback_on_result: _OnResult = None,
) -> Callable[..., Any]:
    """A function that calls ``primary``, then each fallback in turn, then gives ``default``.

    The result is sync when every function is sync, and a coroutine function
    when any is (its async functions are awaited, its sync ones called). It
    keeps ``primary``'s name, docstring and signature. A default widens the
    return type for type checkers (``default=None``: ``R | None``).

    Example::

        fetch = hardy.with_fallback(fetch_live, [fetch_cached], default=None)
    """
    _validate.callable_arg("primary", primary)
    functions = (primary, *_check_functions("fallbacks", fallbacks))
    return _core.chain(
        _chain.describe(primary),
        functions,
        default,
        _validate.fallback_exceptions(exceptions),
        _check_log(log_failures),
        _validate.result_predicate("fallback_on_result", fallback_on_result),
    )


# An async first fallback makes the chain async: first match wins, on purpose.
@overload
def fallback(  # pyright: ignore[reportOverlappingOverload]
    first: _AsyncFunc,
    /,
    *fallback_funcs: _AnyFunc,
    log_failures: bool = ...,
    exceptions: _Exceptions = ...,
    fallback_on_result: _OnResult = ...,
) -> AsyncChainDecorator[NoReturn]: ...


@overload
def fallback(
    first: _AsyncFunc,
    /,
    *fallback_funcs: _AnyFunc,
    default: D,
    log_failures: bool = ...,
    exceptions: _Exceptions = ...,
    fallback_on_result: _OnResult = ...,
) -> AsyncChainDecorator[D]: ...


@overload
def fallback(
    first: _AnyFunc,
    second: _AsyncFunc,
    /,
    *fallback_funcs: _AnyFunc,
    log_failures: bool = ...,
    exceptions: _Exceptions = ...,
    fallback_on_result: _OnResult = ...,
) -> AsyncChainDecorator[NoReturn]: ...


@overload
def fallback(
    first: _AnyFunc,
    second: _AsyncFunc,
    /,
    *fallback_funcs: _AnyFunc,
    default: D,
    log_failures: bool = ...,
    exceptions: _Exceptions = ...,
    fallback_on_result: _OnResult = ...,
) -> AsyncChainDecorator[D]: ...


@overload
def fallback(
    first: _AnyFunc,
    second: _AnyFunc,
    third: _AsyncFunc,
    /,
    *fallback_funcs: _AnyFunc,
    log_failures: bool = ...,
    exceptions: _Exceptions = ...,
    fallback_on_result: _OnResult = ...,
) -> AsyncChainDecorator[NoReturn]: ...


@overload
def fallback(
    first: _AnyFunc,
    second: _AnyFunc,
    third: _AsyncFunc,
    /,
    *fallback_funcs: _AnyFunc,
    default: D,
    log_failures: bool = ...,
    exceptions: _Exceptions = ...,
    fallback_on_result: _OnResult = ...,
) -> AsyncChainDecorator[D]: ...


@overload
def fallback(
    *fallback_funcs: _AnyFunc,
    log_failures: bool = ...,
    exceptions: _Exceptions = ...,
    fallback_on_result: _OnResult = ...,
) -> ChainDecorator[NoReturn]: ...


@overload
def fallback(
    *fallback_funcs: _AnyFunc,
    default: D,
    log_failures: bool = ...,
    exceptions: _Exceptions = ...,
    fallback_on_result: _OnResult = ...,
) -> ChainDecorator[D]: ...


def fallback(
    *fallback_funcs: _AnyFunc,
    default: object = NO_DEFAULT,
    log_failures: bool = True,
    exceptions: _Exceptions = (Exception,),
    fallback_on_result: _OnResult = None,
) -> Any:
    """Decorate a function with fallbacks: on failure, try each in turn, then ``default``.

    The decorated function is sync when it and every fallback are, and a
    coroutine function when any of them is async. A default widens the
    return type for type checkers (``default=None``: ``R | None``).

    Example::

        @hardy.fallback(read_from_replica, read_from_cache, default=None, exceptions=(ConnectionError,))
        def read_user(user_id: int) -> dict[str, str] | None: ...
    """
    funcs = tuple(_validate.callable_arg("fallback_funcs", func) for func in fallback_funcs)
    checked = _validate.fallback_exceptions(exceptions)
    log = _check_log(log_failures)
    on_result = _validate.result_predicate("fallback_on_result", fallback_on_result)

    def decorate(func: Any) -> Any:  # a callable, a staticmethod or a classmethod
        rewrapped = _descriptors.rewrap(func, decorate)
        if rewrapped is not None:
            return rewrapped
        _validate.callable_arg("func", func)
        return _core.chain(_chain.describe(func), (func, *funcs), default, checked, log, on_result)

    return decorate
