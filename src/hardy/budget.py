"""Retry budgets: a cap on retries shared by the functions that name it (``hardy.RetryBudget``).

A retry storm turns a partial outage into a full one: every client retries
every failure, and the struggling service gets several times its usual load.
A budget caps the retries of all the functions that share it to a ratio of
their recent calls, plus a small floor for quiet clients (Finagle's
``RetryBudget``, Envoy's retry budgets, gRPC's retry throttling). A retry the
budget does not allow is not attempted: the call gives up at once with its
last error. The arithmetic is :mod:`hardy.policies.budget`'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import _budget_store, _core, _validate
from .redis_store import RedisStore

__all__ = ["RetryBudget", "RetryBudgetStatistics"]


@dataclass(frozen=True, slots=True)
class RetryBudgetStatistics:
    """What a :class:`RetryBudget` counted: calls (deposits), retries allowed, retries refused, and the balance.

    Example::

        budget.statistics.exhausted   # retries the budget stopped
    """

    calls: int
    retries: int
    exhausted: int
    balance: int


class RetryBudget:
    """A budget of retries, shared by every retried function that names it.

    Each call of a function retried with ``budget=`` deposits; each retry
    withdraws. Over any ``window`` seconds the retries stay within
    ``ratio`` of the calls made in it plus a floor of
    ``min_per_second * window`` retries (for clients that have just started
    or call rarely). A retry beyond that is not attempted: the call gives up at
    once with its last error (type and traceback kept), as when attempts run
    out (``on_giveup`` runs, ``fn.statistics`` counts a give-up, the
    ``giveup`` event carries ``budget_exhausted=True``), and the budget counts
    it in :attr:`statistics`. ``ratio`` is in ``[0, 1000]`` (``0``: only the
    floor; ``2.0``: two retries per call), ``clock`` returns monotonic seconds
    and may be replaced in tests. Thread-safe; the arithmetic is Finagle's
    (``docs/retry.md``). With ``store`` (a :class:`~hardy.RedisStore` with a
    sync client) and ``name``, every process with the same store and name
    shares one budget: calls still make no round trip, each retry asked makes
    one, and while Redis is down each process decides on its own accounting.

    Example::

        budget = hardy.RetryBudget(ratio=0.1, min_per_second=5)

        @hardy.retry(max_attempts=4, budget=budget)
        def fetch(url: str) -> bytes: ...

        @hardy.retry(max_attempts=3, budget=budget)   # the same budget
        def store(key: str, data: bytes) -> None: ...
    """

    __slots__ = ("__weakref__", "_ledger", "_name", "_settings", "_store")

    def __init__(
        self,
        ratio: float = 0.2,
        min_per_second: float = 10,
        window: float = 10.0,
        store: RedisStore | None = None,
        *,
        name: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        settings = _validate.retry_budget_settings(ratio, min_per_second, window, clock)
        if store is not None:
            if not isinstance(store, RedisStore):
                raise TypeError(f"store must be a hardy.RedisStore, got {store!r} ({type(store).__name__})")
            if not store.blocking:
                raise TypeError(
                    f"store {store!r} has an asyncio client: a retry budget asks it from sync code, "
                    "give it a redis.Redis client"
                )
            if name is None:
                raise TypeError("a RetryBudget shared through a store needs a name= (the processes find it by name)")
        self._name = None if name is None else _validate.non_empty_name(name)
        self._settings = settings
        self._store = store
        # The core in use keeps the state: its retry loops read it in C (or in the twin).
        self._ledger: Any = _core.RetryConfig._budget_ledger(settings)
        if store is not None and self._name is not None:
            _, withdrawal, reserve = self._ledger._amounts()
            self._ledger._share(
                _budget_store.SharedBudget(store, self._name, settings.window, reserve, withdrawal, self._ledger._now())
            )

    @property
    def name(self) -> str | None:
        """The name the processes sharing the budget through its store know it by, if any."""
        return self._name

    @property
    def store(self) -> RedisStore | None:
        """The store the budget is shared through, if any (``None``: this process's own)."""
        return self._store

    @property
    def ratio(self) -> float:
        """The share of recent calls that may be retried."""
        return self._settings.ratio

    @property
    def min_per_second(self) -> float:
        """The floor: retries per second allowed whatever the calls."""
        return self._settings.min_per_second

    @property
    def window(self) -> float:
        """How long deposits and withdrawals count, in seconds."""
        return self._settings.window

    @property
    def clock(self) -> Callable[[], float]:
        """The monotonic clock the window is read from."""
        return self._settings.clock

    @property
    def balance(self) -> int:
        """How many retries the budget would allow now (reads the clock)."""
        return int(self._ledger._balance())

    @property
    def statistics(self) -> RetryBudgetStatistics:
        """Calls counted, retries allowed and refused (ever), and the balance now."""
        calls, retries, exhausted = self._ledger._counts()
        return RetryBudgetStatistics(calls, retries, exhausted, self.balance)

    def __reduce__(self) -> Any:
        # A copy in another process would be another budget: sharing one needs a store.
        raise TypeError(f"{self!r} cannot be pickled: a retry budget is shared within its process")

    def __repr__(self) -> str:
        s = self._settings
        shared = "" if self._name is None else f", name={self._name!r}"
        return f"RetryBudget(ratio={s.ratio!r}, min_per_second={s.min_per_second!r}, window={s.window!r}{shared})"
