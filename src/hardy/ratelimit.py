"""Rate limiters by name: the ``rate_limit`` decorator and its registry.

The limiter itself (:class:`~hardy.RateLimiter`) lives in the core; this
module keeps the process-wide registry that lets functions share one by
name, and the decorator that uses it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import _core, _descriptors, _shared_limiter, _validate
from ._registry import NamedRegistry, default_name

if TYPE_CHECKING:
    from ._core import RateLimiter
    from .redis_store import RedisStore

__all__ = ["RateLimiterRegistry", "get_rate_limiter", "rate_limit", "rate_limiters"]


def _settings(limiter: RateLimiter) -> tuple[float, float, int, float, object]:
    return (limiter.rate, limiter.period, limiter.burst, limiter.max_wait, limiter.store)


class RateLimiterRegistry(NamedRegistry["RateLimiter"]):
    """The named rate limiters of a process (as :class:`~hardy.BreakerRegistry` is for breakers).

    Example::

        api = hardy.rate_limiters.get_or_create("api", rate=50)
        assert hardy.get_rate_limiter("api") is api
    """

    def __init__(self) -> None:
        super().__init__("rate limiter", _settings, "rate, period, burst, max_wait, store")

    def get_or_create(
        self,
        name: str,
        rate: float,
        period: float = 1.0,
        burst: int | None = None,
        max_wait: float = 0.0,
        store: RedisStore | None = None,
    ) -> RateLimiter:
        """Return the rate limiter named ``name``, creating it with these settings.

        Asking for an existing name with other settings raises :class:`ValueError`.
        """
        checked = _validate.rate_limiter_settings(name, rate, period, burst, max_wait, time.monotonic)
        wanted = (checked.rate, checked.period, checked.burst, checked.max_wait, store)
        return self.get_or_make(
            name, wanted, lambda: _core.RateLimiter(name, rate, period, burst=burst, max_wait=max_wait, store=store)
        )


rate_limiters: RateLimiterRegistry = RateLimiterRegistry()
"""The process-wide :class:`RateLimiterRegistry` that :func:`rate_limit` and :func:`get_rate_limiter` use."""


def get_rate_limiter(name: str) -> RateLimiter | None:
    """The rate limiter registered under ``name``, or ``None``.

    Example::

        @hardy.rate_limit("geocoder", rate=5)
        def geocode(address: str) -> tuple[float, float]: ...

        hardy.get_rate_limiter("geocoder").get_stats()
    """
    return rate_limiters.get(name)


def rate_limit(
    name: str | Callable[..., Any] | None = None,
    rate: float = 10.0,
    period: float = 1.0,
    burst: int | None = None,
    max_wait: float = 0.0,
    store: RedisStore | None = None,
) -> Any:
    """Let at most ``rate`` calls of a function start per ``period`` seconds.

    ``burst`` calls (default: ``rate``) may start at once after a quiet
    period. A call over the rate sleeps up to ``max_wait`` seconds for its
    permit (first come, first served), else it raises
    :class:`~hardy.RateLimitExceededError`. The name defaults to the
    function's ``module.qualname``; functions that use the same name share
    one limiter (from :data:`hardy.rate_limiters`). The wrapper exposes it as
    ``.rate_limiter``. Works bare and called, on functions, ``async def``
    functions (they await their permit), methods, static and class methods.
    With ``store=`` (a :class:`~hardy.RedisStore`) every process on that
    Redis shares the one rate (see the rate limiter docs).

    Example::

        @hardy.rate_limit(rate=5, period=1.0, max_wait=2.0)
        async def geocode(address: str) -> tuple[float, float]: ...

        geocode.rate_limiter.get_stats()
    """
    if isinstance(name, (staticmethod, classmethod)) or (callable(name) and not isinstance(name, str)):
        bare: Callable[[Any], Any] = rate_limit()
        return bare(name)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a str or None, got {name!r} ({type(name).__name__})")
    if name == "":
        raise ValueError("name must not be empty (pass None, or leave it out, for the function's module.qualname)")
    _validate.rate_limiter_settings("unnamed" if name is None else name, rate, period, burst, max_wait, time.monotonic)
    if store is not None:
        _shared_limiter.check_store(store)

    def decorate(func: Callable[..., Any]) -> Any:
        rewrapped = _descriptors.rewrap(func, decorate)
        if rewrapped is not None:
            return rewrapped
        _validate.callable_arg("func", func)
        limiter = rate_limiters.get_or_create(
            default_name(func) if name is None else name, rate, period, burst, max_wait, store
        )
        return _core.guard_rate_limit(limiter, func)

    return decorate
