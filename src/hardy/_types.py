"""Types shared by the public modules: what a decorated function looks like."""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, ParamSpec, Protocol, TypeVar

if TYPE_CHECKING:
    from ._core_py import CircuitBreaker

__all__ = ["P", "R", "ProtectedCallable"]

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class ProtectedCallable(Protocol, Generic[P, R_co]):
    """A function wrapped by a circuit breaker: the same signature, plus ``.breaker``.

    Example::

        @hardy.circuit_breaker
        def fetch(url: str) -> bytes: ...

        fetch("https://example.org")   # type-checked as (url: str) -> bytes
        fetch.breaker.get_stats()
    """

    @property
    def breaker(self) -> CircuitBreaker: ...

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...
