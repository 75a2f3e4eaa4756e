"""Sharing a circuit breaker's state between processes.

A breaker made with ``store=`` keeps deciding every call from its local
state, and its :class:`SharedBreaker` binding keeps that local state a mirror
of the shared one:

* the core hands the binding only what the shared circuit must decide:
  failures, trial admissions and trial outcomes, permits given back, and
  :meth:`~hardy.CircuitBreaker.reset`; a success while closed, and a
  rejection while open, never reach it (a success after failures only queues
  a "clear the failures I have seen", sent in the background);
* every reply, push and periodic re-read of the shared state is adopted
  locally through :meth:`SharedBreaker.apply`;
* when the store is unavailable, or cannot use this breaker's shared state
  (:attr:`SharedBreaker.detached`), the binding lets the local state machine
  decide, exactly as for a breaker without a store.

:class:`~hardy.RedisStore` is the store that ships with hardy.
"""

from __future__ import annotations

import abc
import enum
import math
import sys
import threading
from collections.abc import Callable
from typing import NamedTuple, Protocol

from .policies.breaker import CLOSED, HALF_OPEN, OPEN

__all__ = ["BreakerSettingsView", "BreakerStore", "LocalState", "Op", "SharedBreaker", "Snapshot"]


class Op(str, enum.Enum):
    """What a binding asks its store to do to the shared state."""

    READ = "read"  # nothing: the state as it is
    ACQUIRE = "acquire"  # a trial permit (the argument is its id)
    FAIL = "fail"  # a failure of a current call (the argument is its permit, if a trial)
    FAIL_SLOW = "fail_slow"  # the same, of a slow call
    OK = "ok"  # a trial succeeded (the argument is its permit)
    OK_SLOW = "ok_slow"  # a slow trial succeeded
    CLEAR = "clear"  # a success: forget the failures seen so far
    RELEASE = "release"  # a trial ended without an outcome: its permit back
    RESET = "reset"  # close the circuit for every process


class BreakerSettingsView(Protocol):
    """What a store reads of a breaker: its public name and settings (a :class:`~hardy.CircuitBreaker` is one)."""

    @property
    def name(self) -> str: ...
    @property
    def failure_threshold(self) -> int: ...
    @property
    def reset_timeout(self) -> float: ...
    @property
    def half_open_max_calls(self) -> int: ...
    @property
    def success_threshold(self) -> int: ...
    @property
    def reset_backoff(self) -> float: ...
    @property
    def max_reset_timeout(self) -> float | None: ...


class LocalState(Protocol):
    """What a binding may do to its breaker's local state machine.

    Each core hands one to :meth:`BreakerStore.bind`; the binding uses it to
    decide locally while the store is unavailable, and to adopt the shared
    state. Nothing else of the breaker's internals is visible to a store.
    """

    @property
    def epoch(self) -> int:
        """The current epoch: what the calls admitted now carry."""
        ...

    def admit(self) -> int:
        """Decide an admission locally: the call's epoch, or -1 after counting a rejection."""
        ...

    def succeed(self, epoch: int, slow: bool = False) -> None:
        """Settle a success locally (already counted); ``slow``: the call was slow."""
        ...

    def fail(self, epoch: int, slow: bool = False) -> None:
        """Settle a failure locally (already counted); ``slow``: the call was slow."""
        ...

    def count_rejection(self) -> None:
        """Count a call the shared circuit rejected."""
        ...

    def reset(self) -> None:
        """Close the local circuit."""
        ...

    def adopt(
        self,
        state: int,
        failure_count: int,
        trials: int,
        trial_successes: int,
        open_elapsed: float,
        new_period: bool,
        open_for: float = -1.0,
        trial_slow: int = 0,
    ) -> int:
        """Take a shared state as the local one; the epoch from now on (``new_period``: running calls are stale).

        ``open_for``: how long the shared circuit stays open this time (negative: the breaker's own timeout).
        Half-open, a windowed breaker whose trials are judged by rate takes the period's failed trials as
        ``failure_count`` and its slow ones as ``trial_slow``.
        """
        ...


class Snapshot(NamedTuple):
    """One breaker's shared state as the store read or wrote it."""

    incarnation: str  # changes when the shared state is created anew (expiry, data loss)
    version: int  # grows with every write
    state: int  # CLOSED or OPEN; HALF_OPEN is OPEN past the reset timeout
    generation: int  # grows when the circuit opens or is reset
    failure_count: int
    open_elapsed: float  # seconds since the circuit opened, by the store's clock
    issued: int  # trial permits given out in this half-open period
    trial_successes: int
    granted: bool  # the permit this operation asked for was given
    failure_seq: int  # failures ever recorded: what a success has seen
    # Half-open periods that failed since the circuit last closed: each
    # process backs its own reset_timeout off by them (0 from a store that
    # keeps no count).
    backoffs: int = 0
    # The half-open period's failed and slow trials, where its trials are
    # judged by rate (see trial_rates); 0 from a store that keeps no tally.
    trial_failures: int = 0
    trial_slow: int = 0


class BreakerStore(abc.ABC):
    """Where breakers that share a circuit keep its state.

    A store is passed as ``store=`` to :class:`~hardy.CircuitBreaker` or
    :func:`~hardy.circuit_breaker`; it makes one :class:`SharedBreaker` per
    breaker. ``blocking`` stores answer on the calling thread; the others
    (asyncio clients) answer later, and the breaker acts on its local view
    meanwhile.

    Example::

        store = hardy.RedisStore(redis.Redis(host="redis"))
        breaker = hardy.CircuitBreaker("payments", store=store)
    """

    blocking: bool = True

    def bind(self, breaker: BreakerSettingsView, local: LocalState) -> SharedBreaker:
        """Attach ``breaker``, whose local state machine is ``local``, to this store; called once, by the breaker.

        The store reads the shared state as it attaches the breaker (a
        blocking store before this returns), so a breaker made while the
        shared circuit is open rejects from its first call.
        """
        binding = SharedBreaker(self, breaker, local)
        self._attach(binding)
        return binding

    @property
    @abc.abstractmethod
    def available(self) -> bool:
        """False while the store cannot be reached (the breakers run locally)."""

    @abc.abstractmethod
    def _attach(self, binding: SharedBreaker) -> None:
        """Start keeping ``binding`` in sync, starting with the shared state as it is now."""

    @abc.abstractmethod
    def _run(self, binding: SharedBreaker, op: Op, arg: str = "") -> Snapshot | None:
        """Run ``op`` now and return the new state, or ``None`` if the store is unavailable.

        Only blocking stores are asked this.
        """

    @abc.abstractmethod
    def _submit(self, binding: SharedBreaker, op: Op, arg: str = "") -> None:
        """Run ``op`` in the background; its result is applied to ``binding`` when it arrives."""

    @abc.abstractmethod
    def _new_permit(self) -> str:
        """A permit id no other process will use."""


def _backed_off(breaker: BreakerSettingsView, periods: int) -> float:
    """How long ``breaker`` stays open after ``periods`` failed half-open periods in a row (as it
    lengthens its own reset timeout: times ``reset_backoff`` each, at most ``max_reset_timeout``)."""
    timeout = breaker.reset_timeout
    cap = breaker.max_reset_timeout
    factor = breaker.reset_backoff
    if periods <= 0 or factor <= 1.0 or timeout <= 0.0:
        return timeout
    limit = sys.float_info.max if cap is None else cap  # no cap: as the breaker's own, the largest float
    # In logarithms: the power itself would overflow after enough failed periods.
    if math.log(timeout) + periods * math.log(factor) >= math.log(limit):
        return limit
    return min(timeout * factor**periods, limit)


class SharedBreaker:
    """The link between one breaker and its store; the core calls it.

    Calls that happen while the store is unavailable are decided by the local
    state machine; the shared state takes over again at the next snapshot.
    """

    __slots__ = (
        "__weakref__",
        "_acquiring",
        "_adopted",
        "_clearing",
        "_failure_seq",
        "_generation",
        "_incarnation",
        "_lock",
        "_permits",
        "_prefetched",
        "_version",
        "breaker",
        "detached",
        "local",
        "store",
    )

    def __init__(self, store: BreakerStore, breaker: BreakerSettingsView, local: LocalState) -> None:
        self.store: BreakerStore = store
        self.breaker: BreakerSettingsView = breaker
        self.local: LocalState = local
        # Re-entrant: applying a state notifies listeners, which may reset.
        self._lock = threading.RLock()
        self._incarnation: str | None = None
        self._version = -1
        self._generation = 0
        self._failure_seq = 0
        self._permits: list[str] = []  # trial permits held by calls of this process
        self._prefetched: list[str] = []  # permits granted to a non-blocking store, not yet used
        self._acquiring = False
        self._clearing = False
        self._adopted = 0  # snapshots adopted so far (see read_mark)
        # Set by the store while this breaker's shared state is unusable (its
        # key holds a value that is not a hardy circuit): the breaker decides
        # locally, and the store re-reads the key to attach it again.
        self.detached: bool = False
        """``True`` while the store cannot use this breaker's shared state; the breaker then decides locally."""

    # -- what the store needs to know --------------------------------------

    @property
    def generation(self) -> int:
        """The shared generation the local state mirrors."""
        return self._generation

    @property
    def failure_seq(self) -> int:
        """The shared failure sequence last seen."""
        return self._failure_seq

    def after_fork(self) -> None:
        """In a forked child: the parent's threads, their locks and what they had in flight are gone."""
        self._lock = threading.RLock()
        self._permits.clear()
        self._prefetched.clear()
        self._acquiring = False
        self._clearing = False

    def forget_version(self) -> None:
        """Take the next snapshot whatever its version (after an outage)."""
        with self._lock:
            self._version = -1

    def read_mark(self) -> int:
        """Taken before a read is sent; pass it to :meth:`apply` with the read's reply."""
        with self._lock:
            return self._adopted

    def apply(self, snap: Snapshot, read_from: int | None = None) -> int:
        """Adopt ``snap`` as the local state unless a newer one was adopted; the breaker's epoch.

        ``read_from`` (a :meth:`read_mark`) says ``snap`` answers a read sent
        then. Versions order the snapshots of one incarnation only: a read
        that was in flight while a write created the shared state anew (the
        first failure after its keys expired, say) may answer with the state
        before it, of another incarnation, after the write's reply was
        adopted. Such a reply is dropped; the next re-read brings the state.
        """
        with self._lock:
            if snap.incarnation == self._incarnation and snap.version < self._version:
                return self.local.epoch
            if read_from is not None and read_from != self._adopted and snap.incarnation != self._incarnation:
                return self.local.epoch
            self._adopted += 1
            new_period = snap.generation != self._generation or snap.incarnation != self._incarnation
            self._incarnation = snap.incarnation
            self._version = snap.version
            self._generation = snap.generation
            self._failure_seq = snap.failure_seq
            if new_period:
                self._permits.clear()
                self._prefetched.clear()
            open_for = _backed_off(self.breaker, snap.backoffs)
            trial_slow = 0
            if snap.state == CLOSED:
                local = (CLOSED, snap.failure_count, 0, 0)
            elif snap.open_elapsed < open_for:
                local = (OPEN, 0, 0, 0)
            elif snap.issued > 0:
                # Permits held for later calls are this process's to use: the
                # core must still ask for them.
                local = (HALF_OPEN, snap.trial_failures, snap.issued - len(self._prefetched), snap.trial_successes)
                trial_slow = snap.trial_slow
            else:
                local = (OPEN, 0, 0, 0)
            return self.local.adopt(*local, snap.open_elapsed, new_period, open_for, trial_slow)

    # -- called by the core -------------------------------------------------

    def _local(self) -> bool:
        return self.detached or not self.store.available

    def admit(self) -> int:
        """Decide a trial admission: the call's epoch, or -1 after counting a rejection."""
        if self._local():
            return self.local.admit()
        if not self.store.blocking:
            return self._admit_prefetched()
        permit = self.store._new_permit()
        snap = self.store._run(self, Op.ACQUIRE, permit)
        if snap is None:
            return self.local.admit()
        epoch = self.apply(snap)
        if snap.state == CLOSED:
            return epoch  # closed meanwhile: an ordinary call
        if snap.granted:
            with self._lock:
                if snap.generation == self._generation:
                    self._permits.append(permit)
                    return epoch
        self.local.count_rejection()
        return -1

    def _admit_prefetched(self) -> int:
        # A non-blocking store cannot answer now: use a permit granted
        # earlier, or ask for one and reject this call.
        with self._lock:
            if self._prefetched:
                self._permits.append(self._prefetched.pop())
                return self.local.epoch
            ask = not self._acquiring
            self._acquiring = True
        if ask:
            self.store._submit(self, Op.ACQUIRE, self.store._new_permit())
        self.local.count_rejection()
        return -1

    def acquired(self, permit: str, generation: int) -> None:
        """A non-blocking store's answer to ``acquire``: the permit, or ``""`` if none was granted."""
        with self._lock:
            self._acquiring = False
            if permit and generation == self._generation:
                self._prefetched.append(permit)

    def failure(self, epoch: int, slow: bool = False) -> None:
        """A failure of a current call (already counted by the breaker); ``slow``: the call was slow.

        A trial's failure gives its permit back with it: where trials are
        judged by rate, a failed one does not end the period.
        """
        op = Op.FAIL_SLOW if slow else Op.FAIL
        self._shared(op, self._take_permit(), lambda: self.local.fail(epoch, slow))

    def trial_success(self, epoch: int, slow: bool = False) -> None:
        """A success of a half-open trial (already counted by the breaker); ``slow``: the call was slow."""
        op = Op.OK_SLOW if slow else Op.OK
        self._shared(op, self._take_permit(), lambda: self.local.succeed(epoch, slow))

    def _shared(self, op: Op, arg: str, local: Callable[[], object]) -> None:
        # A blocking store decides now; otherwise the local state decides and
        # a non-blocking store hears of it in the background.
        store = self.store
        if self._local():
            local()
            return
        if store.blocking:
            snap = store._run(self, op, arg)
            if snap is not None:
                self.apply(snap)
                return
            local()
            return
        local()
        store._submit(self, op, arg)

    def clear(self, epoch: int) -> None:
        """A success after failures: clear, in the background, the failures seen so far."""
        if self._local():
            return
        with self._lock:
            if self._clearing:
                return
            self._clearing = True
        self.store._submit(self, Op.CLEAR)

    def cleared(self) -> None:
        """The background clear was sent (or dropped)."""
        with self._lock:
            self._clearing = False

    def release(self, epoch: int) -> None:
        """A trial that ended without an outcome gives its permit back (never blocks)."""
        permit = self._take_permit()
        if permit and not self._local():
            self.store._submit(self, Op.RELEASE, permit)

    def reset(self) -> None:
        """Close the circuit for every process."""
        self._shared(Op.RESET, "", self.local.reset)

    def _take_permit(self) -> str:
        with self._lock:
            return self._permits.pop() if self._permits else ""
