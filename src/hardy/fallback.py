"""Fallback chains: ``Fallback``, ``fallback`` and ``with_fallback``.

A chain calls its functions in order with the same arguments and returns the
first result that does not raise; when every function fails it returns the
default, if one was given (``None`` is a valid default), or raises
:class:`~hardy.AllFallbacksFailedError`, which carries every error in order
and is raised from the last one. Only ``Exception`` subclasses fall through
(``exceptions=`` narrows them further); anything else propagates at once.
Each failed step is logged at WARNING on the ``hardy`` logger.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from . import _chain, _core, _validate, _wrapping
from ._sentinel import NO_DEFAULT
from ._types import P, R

__all__ = ["Fallback", "fallback", "with_fallback"]


def _check_functions(parameter: str, value: object) -> tuple[Callable[..., Any], ...]:
    """The functions of a chain: a list, tuple or other ordered iterable of callables.

    A string, a mapping, a set (no order) and a single callable are refused
    with a ``TypeError`` naming ``parameter``, as is any element that is not
    callable.
    """
    wanted = f"{parameter} must be a list or tuple of callables"
    if not isinstance(value, (list, tuple)):
        if callable(value):
            raise TypeError(f"{wanted}, got the callable {value!r}: wrap a single function in a list")
        if isinstance(value, (str, bytes, Mapping, AbstractSet)) or not isinstance(value, Iterable):
            raise TypeError(f"{wanted}, got {value!r} ({type(value).__name__})")
    functions = tuple(value)
    for index, func in enumerate(functions):
        if not callable(func):
            raise TypeError(f"{parameter} must hold callables, got {func!r} ({type(func).__name__}) at index {index}")
    return functions


def _check_log(log_failures: object) -> bool:
    if not isinstance(log_failures, bool):
        raise TypeError(f"log_failures must be a bool, got {log_failures!r}")
    return log_failures


class Fallback:
    """A named chain of functions tried in order, built up with :meth:`add`.

    Example::

        chain = hardy.Fallback("user-profile", default_value=None)
        chain.add(from_primary_db).add(from_replica).add(from_cache)
        profile = chain.execute(user_id)                  # sync functions
        profile = await chain.execute_async(user_id)      # any mix of sync and async
    """

    def __init__(
        self,
        name: str,
        functions: Iterable[Callable[..., Any]] | None = None,
        default_value: object = NO_DEFAULT,
        *,
        exceptions: type[Exception] | tuple[type[Exception], ...] = (Exception,),
        log_failures: bool = True,
    ) -> None:
        self.name = _validate.non_empty_name(name)
        self.default_value = default_value
        self._exceptions = _validate.fallback_exceptions(exceptions)
        self._log = _check_log(log_failures)
        self._functions: list[Callable[..., Any]] = (
            [] if functions is None else list(_check_functions("functions", functions))
        )

    @property
    def functions(self) -> tuple[Callable[..., Any], ...]:
        """The functions of the chain, in the order they are tried."""
        return tuple(self._functions)

    def add(self, func: Callable[..., Any]) -> Fallback:
        """Append ``func`` to the chain and return the chain, so calls can be chained."""
        self._functions.append(_validate.callable_arg("func", func))
        return self

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        """Run the chain of sync functions with these arguments.

        Raises :class:`TypeError` if the chain holds an async function: use
        :meth:`execute_async` for those.
        """
        functions = tuple(self._functions)
        asynchronous = [func for func in functions if _wrapping.is_async_callable(func)]
        if asynchronous:
            names = ", ".join(_chain.describe(func) for func in asynchronous)
            raise TypeError(f"Fallback {self.name!r} holds async functions ({names}): use await execute_async()")
        return _chain.continue_chain(
            self.name, functions, 0, args, kwargs, [], self.default_value, self._exceptions, self._log
        )

    async def execute_async(self, *args: Any, **kwargs: Any) -> Any:
        """Run the chain, awaiting its async functions and calling its sync ones."""
        functions = tuple(self._functions)
        awaited = tuple(_wrapping.is_async_callable(func) for func in functions)
        return await _chain.run_chain_async(
            self.name, functions, awaited, args, kwargs, self.default_value, self._exceptions, self._log
        )

    def __repr__(self) -> str:
        return f"<Fallback {self.name!r} with {len(self._functions)} functions>"


def with_fallback(
    primary: Callable[P, R],
    fallbacks: Iterable[Callable[..., Any]],
    default: object = NO_DEFAULT,
    *,
    exceptions: type[Exception] | tuple[type[Exception], ...] = (Exception,),
    log_failures: bool = True,
) -> Callable[P, R]:
    """A function that calls ``primary``, then each fallback in turn, then gives ``default``.

    The result is sync or async like ``primary``; an async one may have sync
    fallbacks. It keeps ``primary``'s name, docstring and signature.

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
    )


def fallback(
    *fallback_funcs: Callable[..., Any],
    default: object = NO_DEFAULT,
    log_failures: bool = True,
    exceptions: type[Exception] | tuple[type[Exception], ...] = (Exception,),
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function with fallbacks: on failure, try each in turn, then ``default``.

    Example::

        @hardy.fallback(read_from_replica, read_from_cache, default=None, exceptions=(ConnectionError,))
        def read_user(user_id: int) -> dict[str, str] | None: ...
    """
    funcs = tuple(_validate.callable_arg("fallback_funcs", func) for func in fallback_funcs)
    checked = _validate.fallback_exceptions(exceptions)
    log = _check_log(log_failures)

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        _validate.callable_arg("func", func)
        return _core.chain(_chain.describe(func), (func, *funcs), default, checked, log)

    return decorate
