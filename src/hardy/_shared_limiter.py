"""A rate limit shared by every process on one Redis (``RateLimiter(..., store=RedisStore(...))``).

The limit itself is a GCRA in Redis (``_redis_lua.LEASE_SCRIPT``, on the
server's clock). A process takes permits from it in leases, one round trip
for ``ratelimit_lease_size`` permits, and spends them on its own limiter's
hot path (``policies/ratelimit.py``: ``ratelimit_lease_next``), which both
cores run in their dispatch. This module is what runs when a lease cannot
serve a call: it asks Redis for the next lease (one thread of the process at
a time), sleeps for a lease that starts later, and falls back to the local
share of the rate when Redis is away (``RedisStore`` switches every shared
limiter when an outage starts and when it ends). The decisions stay in the
policy; this is I/O and waiting.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from . import _aio
from .errors import RateLimitExceededError
from .policies.ratelimit import RL_ASK_STORE, RL_FALLBACK, RL_NOT_SHARED, RL_SHARED

if TYPE_CHECKING:
    from .redis_store import RedisStore

__all__ = ["SharedLimit", "bind", "check_store"]

# With a clock of its own (a test's), a waiter looks at it this often.
_CLOCK_POLL = 0.005
_LOCAL = object()  # "not shared now: take the permit the local way"


def check_store(store: object) -> RedisStore:
    """``store`` if a rate limiter can share its rate through it: a :class:`hardy.RedisStore` with a blocking client."""
    from .redis_store import RedisStore

    if not isinstance(store, RedisStore):
        raise TypeError(f"store must be a hardy.RedisStore or None, got {store!r}")
    if not store.blocking:
        raise TypeError(
            f"store={store!r} has an asyncio client; a shared rate limiter needs a blocking one "
            "(redis.Redis, redis.cluster.RedisCluster, or a Sentinel's master_for(...)): its one "
            "round trip per lease is short and shared by sync and async callers"
        )
    return store


def bind(limiter: Any, store: object) -> SharedLimit:
    """Share ``limiter``'s rate through ``store`` (see :func:`check_store`)."""
    checked = check_store(store)
    sharing = SharedLimit(limiter, checked)
    checked._attach_limit(sharing)
    return sharing


class SharedLimit:
    """One limiter's binding to its store: asks for leases, waits, falls back."""

    __slots__ = (
        "__weakref__",  # the store holds its bindings weakly
        "broken",
        "burst",
        "interval_us",
        "limiter",
        "lock",
        "name",
        "processes",
        "round_trips",
        "store",
    )

    def __init__(self, limiter: Any, store: RedisStore) -> None:
        self.limiter = limiter
        self.store = store
        self.name: str = limiter.name
        self.lock = threading.Lock()  # one round trip at a time per limiter and process
        self.processes = 1  # how many processes shared the limit at the last lease
        self.round_trips = 0
        self.broken = False  # its key holds something else: local share until the process restarts
        self.interval_us: float = limiter.period / limiter.rate * 1e6
        self.burst: int = limiter.burst

    def __repr__(self) -> str:
        return f"<SharedLimit {self.name!r} on {self.store!r}>"

    # -- modes (called by the store) ---------------------------------------------------

    def fall_back(self) -> None:
        """The store is away: spend this process's share of the rate locally."""
        # Once per outage: every switch starts the share with a full burst of it.
        if self.limiter._share_mode() != RL_FALLBACK:
            self.limiter._share(RL_FALLBACK, self.processes)

    def share_again(self) -> None:
        """The store is back: spend leases again (unless the key is unusable)."""
        # Already sharing (the store's first connection): keep the lease it holds.
        if not self.broken and self.limiter._share_mode() != RL_SHARED:
            self.limiter._share(RL_SHARED, self.processes)

    def after_fork(self) -> None:
        """A forked child must not spend its parent's lease as well: it starts from a new one."""
        self.lock = threading.Lock()
        self.limiter._share(self.limiter._share_mode(), self.processes)

    # -- the slow path of a call -------------------------------------------------------

    def _ask(self) -> None:
        """Under ``lock``: one round trip for a lease, or the fallback if the store is away."""
        store = self.store
        if self.broken or not store._limits_usable():
            self.fall_back()
            return
        limiter = self.limiter
        try:
            granted, delay, processes = store._lease_round_trip(self, limiter._lease_size())
        except store._errors as exc:
            if store._is_key_error(exc):
                self.broken = True
                self.fall_back()
                store._limit_unusable(self, exc)
            else:
                store._down(exc)  # every limiter of the store falls back; one warning per outage
            return
        self.round_trips += 1
        self.processes = max(1, processes)
        limiter._lease_grant(granted, delay)

    def _next(self, now: float, deadline: float) -> Any:
        """``None``: the permit is taken; a float: wait that long, then try again; ``_LOCAL``; or raise."""
        limiter = self.limiter
        with self.lock:
            result = limiter._lease_next(now, max(0.0, deadline - now))
            if result == RL_ASK_STORE:
                self._ask()
                now = limiter._clock_now()
                result = limiter._lease_next(now, max(0.0, deadline - now))
        if result == 0.0:
            return None
        if result == RL_NOT_SHARED:
            return _LOCAL
        if result == RL_ASK_STORE:
            return 0.0  # other threads spent the new lease first: ask again
        if result < 0.0:
            raise RateLimitExceededError(self.name, -result)
        return result

    def try_acquire(self, now: float) -> bool:
        """``try_acquire()`` of a shared limiter whose lease could not serve it."""
        try:
            while True:
                wait = self._next(now, now)
                if wait is None:
                    return True
                if wait is _LOCAL:
                    return bool(self.limiter.try_acquire())
                now = self.limiter._clock_now()
        except RateLimitExceededError:
            return False

    def acquire(self, now: float) -> None:
        """A call whose lease could not serve it: a new lease, a wait for one, the fallback, or the error."""
        limiter = self.limiter
        deadline = now + limiter.max_wait
        while True:
            wait = self._next(now, deadline)
            if wait is None:
                return
            if wait is _LOCAL:
                limiter.acquire()
                return
            if wait > 0.0:
                if limiter._own_clock():
                    time.sleep(min(wait, _CLOCK_POLL))
                else:
                    time.sleep(wait)
            now = limiter._clock_now()

    async def acquire_async(self, now: float) -> None:
        """:meth:`acquire` for ``acquire_async()``, ``async with`` and async functions: the waits are awaited."""
        limiter = self.limiter
        deadline = now + limiter.max_wait
        while True:
            wait = self._next(now, deadline)
            if wait is None:
                return
            if wait is _LOCAL:
                await limiter.acquire_async()
                return
            if limiter._own_clock():
                await _aio.sleep(min(wait, _CLOCK_POLL))
            else:
                await _aio.sleep(wait)
            now = limiter._clock_now()
