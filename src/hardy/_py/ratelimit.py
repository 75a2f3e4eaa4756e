"""The rate limiter in the twin (the compiled one is ``hardy/_c/ratelimit.pxi``).

Its decisions are ``hardy/policies/ratelimit.py``; this is the dispatch: the
lock around each decision, the sleeps of waiting calls, and the
Python-facing class. A call that may wait has its permit reserved under the
lock and then sleeps outside it, so waiters neither hold the lock nor queue:
the reservation order is the service order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from .. import _aio, _live, _shared_limiter, _validate, _wrapping
from ..errors import RateLimitExceededError
from ..policies.ratelimit import (
    RL_ASK_STORE,
    RateLimiterState,
    ratelimit_available,
    ratelimit_configure,
    ratelimit_give_back,
    ratelimit_lease_grant,
    ratelimit_lease_next,
    ratelimit_lease_size,
    ratelimit_share,
    ratelimit_take,
)
from . import breaker as _breaker  # its rejection hook (hardy._rejections)

if TYPE_CHECKING:
    from ..redis_store import RedisStore

__all__ = ["RateLimiter", "guard_rate_limit"]

_monotonic = time.monotonic
_sleep = time.sleep
# With a clock of its own (a test's), a waiter looks at it this often: the
# clock may be moved by hand while it waits.
_CLOCK_POLL = 0.005


class RateLimiter(RateLimiterState):
    """A rate limiter: at most ``rate`` calls per ``period`` seconds, ``burst`` at once after a quiet spell.

    With ``store=`` (a :class:`~hardy.RedisStore`) every process on that
    Redis shares the one rate (see the rate limiter docs).

    Example::

        api = hardy.RateLimiter("api", rate=10, period=1.0, max_wait=0.5)

        with api:
            call_api()
    """

    def __init__(
        self,
        name: str,
        rate: float,
        period: float = 1.0,
        burst: int | None = None,
        max_wait: float = 0.0,
        store: RedisStore | None = None,
        *,
        clock: Callable[[], float] = _monotonic,
    ) -> None:
        if getattr(self, "_name", None) is not None:
            raise RuntimeError(_validate.ALREADY_INITIALISED.format(kind=type(self).__name__, obj=self))
        settings = _validate.rate_limiter_settings(name, rate, period, burst, max_wait, clock)
        self._lock = threading.Lock()
        ratelimit_configure(self, settings.period / settings.rate, settings.burst)
        self._rate = settings.rate
        self._period = settings.period
        self._max_wait = settings.max_wait
        self._clock = settings.clock
        self._name: str | None = settings.name
        self._sharing: _shared_limiter.SharedLimit | None = None
        if store is not None:
            self._sharing = _shared_limiter.bind(self, store)
        _live.rate_limiters.track(self)  # for hardy.metrics

    def __reduce__(self) -> Any:
        raise TypeError(f"cannot pickle {self!r}: a rate limiter's permits belong to its process")

    def __repr__(self) -> str:
        return f"<RateLimiter {self._name!r} rate={self._rate:g}/{self._period:g}s burst={self._burst}>"

    def _ready(self) -> None:
        _validate.initialised(self, getattr(self, "_name", None) is not None)

    def _now(self) -> float:
        clock = self._clock
        if clock is _monotonic:
            return _monotonic()
        reading = clock()
        if type(reading) is float and reading - reading == 0.0:  # a finite float: the fast case
            return reading
        return _validate.clock_reading(clock, reading)

    # -- reading ---------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The limiter's name."""
        self._ready()
        return cast("str", self._name)

    @property
    def rate(self) -> float:
        """Permits per ``period`` at steady state."""
        return self._rate

    @property
    def period(self) -> float:
        """The period ``rate`` is counted over, in seconds."""
        return self._period

    @property
    def burst(self) -> int:
        """Permits that may be taken at once after a quiet period."""
        return self._burst

    @property
    def max_wait(self) -> float:
        """Seconds a call over the rate waits for a permit before it is rejected."""
        return self._max_wait

    @property
    def store(self) -> RedisStore | None:
        """The store the rate is shared through, or ``None`` (this process's own limit)."""
        return None if self._sharing is None else self._sharing.store

    @property
    def available(self) -> int:
        """Permits that could be taken now without waiting."""
        self._ready()
        now = self._now()
        with self._lock:
            return int(ratelimit_available(self, now))

    def get_stats(self) -> dict[str, Any]:
        """A snapshot of the settings, the permits available now and the lifetime totals.

        Example::

            >>> hardy.RateLimiter("api", 5).get_stats()["available"]
            5
        """
        self._ready()
        now = self._now()
        with self._lock:
            return {
                "name": self._name,
                "rate": self._rate,
                "period": self._period,
                "burst": self._burst,
                "max_wait": self._max_wait,
                "available": int(ratelimit_available(self, now)),
                "admitted": self._admitted,
                "waited": self._waited,
                "rejections": self._rejected,
            }

    # -- by hand ---------------------------------------------------------------------

    def try_acquire(self) -> bool:
        """Take a permit if one is free now (never waits); ``False`` (counted as a rejection) if not."""
        self._ready()
        now = self._now()
        with self._lock:
            delay = ratelimit_take(self, now, 0.0)
        if delay == RL_ASK_STORE:
            return cast("_shared_limiter.SharedLimit", self._sharing).try_acquire(now)
        return delay >= 0.0

    def _refused(self, retry_after: float) -> RateLimitExceededError:
        """The error of a refused permit (counted by ratelimit_take), told to the rejection hook if one is set."""
        error = RateLimitExceededError(cast("str", self._name), retry_after)
        hook = _breaker._rejection_hook
        if hook is not None:
            hook(self, error)
        return error

    def acquire(self) -> None:
        """Take a permit, sleeping up to ``max_wait``; :class:`~hardy.RateLimitExceededError` if none frees up."""
        self._ready()
        now = self._now()
        with self._lock:
            delay = ratelimit_take(self, now, self._max_wait)
            reserved = self._tat
        if delay != 0.0:
            self._spend(now, delay, reserved)

    def _spend(self, now: float, delay: float, reserved: float) -> None:
        """Refuse (``delay < 0``) or sleep until the reserved permit is due; give it back if interrupted."""
        if delay == RL_ASK_STORE:
            cast("_shared_limiter.SharedLimit", self._sharing).acquire(now)
            return
        if delay < 0.0:
            raise self._refused(-delay)
        try:
            if self._clock is _monotonic:
                _sleep(delay)
            else:
                due = now + delay
                while True:
                    remaining = due - self._now()
                    if remaining <= 0.0:
                        break
                    _sleep(min(remaining, _CLOCK_POLL))
        except BaseException:
            with self._lock:
                ratelimit_give_back(self, reserved)
            raise

    async def acquire_async(self) -> None:
        """Take a permit, awaiting up to ``max_wait``; :class:`~hardy.RateLimitExceededError` if none frees up."""
        self._ready()
        now = self._now()
        with self._lock:
            delay = ratelimit_take(self, now, self._max_wait)
            reserved = self._tat
        if delay == 0.0:
            return
        if delay == RL_ASK_STORE:
            await cast("_shared_limiter.SharedLimit", self._sharing).acquire_async(now)
            return
        if delay < 0.0:
            raise self._refused(-delay)
        try:
            if self._clock is _monotonic:
                await _aio.sleep(delay)
            else:
                due = now + delay
                while True:
                    remaining = due - self._now()
                    if remaining <= 0.0:
                        break
                    await _aio.sleep(min(remaining, _CLOCK_POLL))
        except BaseException:
            with self._lock:
                ratelimit_give_back(self, reserved)
            raise

    # -- for the shared limit (hardy/_shared_limiter.py) --------------------------------

    def _clock_now(self) -> float:
        return self._now()

    def _own_clock(self) -> bool:
        return self._clock is not _monotonic

    def _lease_next(self, now: float, max_wait: float) -> float:
        with self._lock:
            return ratelimit_lease_next(self, now, max_wait)

    def _lease_size(self) -> int:
        return ratelimit_lease_size(self)

    def _lease_grant(self, count: int, delay: float) -> None:
        now = self._now()
        with self._lock:
            ratelimit_lease_grant(self, now, count, delay)

    def _share(self, mode: int, processes: int) -> None:
        with self._lock:
            ratelimit_share(self, mode, processes)

    def _share_mode(self) -> int:
        return self._mode

    # -- as a context manager and a decorator -----------------------------------------

    def __enter__(self) -> RateLimiter:
        self.acquire()
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        return None

    async def __aenter__(self) -> RateLimiter:
        await self.acquire_async()
        return self

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        return None

    def __call__(self, func: Callable[..., Any]) -> Any:
        """Decorate ``func``: every call takes a permit first."""
        return guard_rate_limit(self, func)


def guard_rate_limit(limiter: RateLimiter, func: Callable[..., Any]) -> Any:
    """Wrap ``func`` so that every call takes a permit of ``limiter`` first."""
    if not isinstance(limiter, RateLimiter):
        raise TypeError(f"limiter must be a RateLimiter, got {limiter!r}")
    limiter._ready()
    _validate.callable_arg("func", func)
    r = limiter
    if _wrapping.is_async_callable(func):
        async_func = cast("Callable[..., Awaitable[Any]]", func)

        async def limited_async(*args: Any, **kwargs: Any) -> Any:
            await r.acquire_async()
            return await async_func(*args, **kwargs)

        wrapper = _wrapping.copy_metadata(limited_async, func, is_async=True)
        wrapper.rate_limiter = limiter
        return wrapper

    lock = r._lock
    max_wait = r._max_wait
    if r._clock is _monotonic and _breaker.GIL_ENABLED:

        def limited(*args: Any, **kwargs: Any) -> Any:
            now = _monotonic()
            # No lock under the GIL: ratelimit_take's local decision calls
            # nothing, so no other thread runs between its reads and writes,
            # nor before the reading of the time it reserved (as for the
            # breaker's closed-state count, hardy/_py/protect.py). A shared
            # limiter's lease decision is one such call of its own, and writes
            # nothing after it returns. A free-threaded build locks.
            delay = ratelimit_take(r, now, max_wait)
            if delay != 0.0:
                r._spend(now, delay, r._tat)
            # Without keywords, f(*args): a call through ** costs a mapping more.
            return func(*args, **kwargs) if kwargs else func(*args)

    elif r._clock is _monotonic:

        def limited(*args: Any, **kwargs: Any) -> Any:
            now = _monotonic()
            with lock:
                delay = ratelimit_take(r, now, max_wait)
                reserved = r._tat
            if delay != 0.0:
                r._spend(now, delay, reserved)
            # Without keywords, f(*args): a call through ** costs a mapping more.
            return func(*args, **kwargs) if kwargs else func(*args)

    else:

        def limited(*args: Any, **kwargs: Any) -> Any:
            r.acquire()
            return func(*args, **kwargs)

    wrapper = _wrapping.copy_metadata(limited, func, is_async=False)
    wrapper.rate_limiter = limiter
    return wrapper
