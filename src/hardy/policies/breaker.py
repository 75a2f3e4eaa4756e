"""The circuit breaker's decisions: its state and the transitions over it.

A breaker's state is a :class:`BreakerState`. The transitions below take it,
the time and an outcome; they change the state and return what the caller
must do next. The caller (the dispatch of either core) holds the breaker's
lock around a transition and, after releasing it, does what was asked:
tells the listeners about the event left in ``_event``, asks the store, or
nothing. No transition reads a clock, calls user code or takes a lock.

Every admitted call carries the breaker's *epoch*, a number that grows each
time the breaker opens or is reset. An outcome whose epoch is no longer
current belongs to a call that started before the breaker opened: it is
counted in the totals but cannot move the state, so stale failures never
extend an open period and stale successes never close a circuit.

Example (what the dispatch does for a failure, without the lock)::

    action = settle_failure(state, epoch, now, shared=False, count=True)
    if state._event:
        notify(*event_states(take_event(state)))
"""

try:
    import cython
except ModuleNotFoundError:  # the twin, where Cython is not installed
    from hardy.policies import _shadow as cython  # type: ignore[no-redef]

# The states, as the cores keep them (hardy.state maps them to CircuitState).
CLOSED = cython.declare(cython.int, 0)
OPEN = cython.declare(cython.int, 1)
HALF_OPEN = cython.declare(cython.int, 2)
FORCED_OPEN = cython.declare(cython.int, 3)  # force_open(): rejects everything until reset()
DISABLED = cython.declare(cython.int, 4)  # disable(): admits everything, records nothing, until reset()
STATES = cython.declare(cython.int, 5)  # how many there are (event codes)

# What admit() returns besides an admitted call's epoch (>= 0).
REJECTED = cython.declare(cython.longlong, -1)
ASK_STORE = cython.declare(cython.longlong, -3)  # a trial: the store grants the permits

# What a breaker's dispatch must look at beyond the closed-and-clean count
# (``_flags``): with any of them set, every outcome goes through the policy.
FLAG_RESULT = cython.declare(cython.int, 1)  # failure_on_result: the returned value is judged
FLAG_WINDOW = cython.declare(cython.int, 2)  # window=: every outcome of a closed breaker goes into the window
FLAG_TIMED = cython.declare(cython.int, 4)  # the window needs each outcome's time (time-based, or slow calls)
FLAG_SLOW = cython.declare(cython.int, 8)  # the dispatch measures each call's duration (slow_call_duration)

# What a settling asks the caller to do next.
DONE = cython.declare(cython.int, 0)
STORE_TRIAL_SUCCESS = cython.declare(cython.int, 1)
STORE_CLEAR = cython.declare(cython.int, 2)
STORE_FAILURE = cython.declare(cython.int, 3)
# A success filled the window to its verdict but the dispatch read no clock
# (a count window without slow calls): read it, then open_by_window().
OPEN_PENDING = cython.declare(cython.int, 4)
NO_TIME = cython.declare(cython.double, float("nan"))  # settle_success_at(): the dispatch read no clock


# -- the rate-based window (window=) -------------------------------------------------------
# A closed breaker with a window records every outcome into it and opens when,
# with at least ``minimum_calls`` in the window, the failure rate or the slow-call
# rate reaches its threshold. Two layouts, both O(1) per outcome and without
# allocation: a count window keeps the last ``size`` outcomes as two bits each
# (failed, slow) in a ring of bytes, with running totals that subtract the
# outcome a new one evicts; a time window keeps one bucket of counts per second
# of the monotonic clock, and clears the buckets that fell out of the window as
# the newest second moves on (at most ``seconds`` of them, after a long pause).
#
# A count window that holds ``minimum_calls`` outcomes cannot be brought to
# its verdict by a clean one (it evicts one no better), so such a success only
# adds one to ``_pending``: the clean outcomes not yet written into the ring.
# Whatever reads or changes the window next writes them first
# (``window_flush``): a success costs one add, a later outcome at most ``size``
# slot writes for the successes before it, each written once.


@cython.final
@cython.cclass
class WindowBucket:
    """One second of a time window: how many outcomes, failed and slow."""

    __slots__ = ("_calls", "_failed", "_slow")

    _calls: cython.int
    _failed: cython.int
    _slow: cython.int


@cython.final
@cython.cclass
class BreakerWindow:
    """A breaker's window: its thresholds and the outcomes it holds (``_tuning._window``)."""

    __slots__ = (
        "_buckets",
        "_calls",
        "_failed",
        "_failure_rate",
        "_head",
        "_minimum",
        "_pending",
        "_pos",
        "_ring",
        "_settled",
        "_size",
        "_slow",
        "_slow_after",
        "_slow_rate",
        "_timed",
    )

    _size: cython.int  # count: slots; time: seconds (one bucket each)
    _minimum: cython.int  # minimum_calls
    _pos: cython.int  # count: the slot the next outcome goes to
    _calls: cython.int  # outcomes in the window
    _failed: cython.int  # of which failed
    _slow: cython.int  # of which slow
    _timed: cython.bint
    _settled: cython.bint  # count: ``minimum_calls`` outcomes held, a clean one may go to ``_pending``
    _head: cython.longlong  # time: the second of the newest bucket
    _pending: cython.longlong  # count: clean outcomes not yet in the ring (the newest ones)
    _failure_rate: cython.double
    _slow_rate: cython.double
    _slow_after: cython.double  # slow_call_duration in seconds; 0.0: slow calls are not tracked
    _ring: bytearray  # count: two bits a slot, four slots a byte (bit 0 failed, bit 1 slow)
    _buckets: list[WindowBucket] | None  # time: a WindowBucket per second, by the second modulo ``_size``


@cython.cfunc
def configure_window(
    w: BreakerWindow,
    timed: cython.bint,
    size: cython.int,
    minimum: cython.int,
    failure_rate: cython.double,
    slow_after: cython.double,
    slow_rate: cython.double,
) -> None:
    """A new, empty window (its storage is allocated here, once)."""
    _slot: cython.int
    w._timed = timed
    w._size = size
    w._minimum = minimum
    w._failure_rate = failure_rate
    w._slow_after = slow_after
    w._slow_rate = slow_rate
    w._ring = bytearray(0 if timed else (size + 3) // 4)
    w._buckets = None  # a count window keeps no list (the memory benchmark)
    if timed:
        buckets: list[WindowBucket] = []
        for _slot in range(size):
            buckets.append(WindowBucket.__new__(WindowBucket))
        w._buckets = buckets
    window_clear(w)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def window_clear(w: BreakerWindow) -> None:
    """Forget every outcome (the breaker closed or was reset)."""
    i: cython.int
    b: WindowBucket
    ring: bytearray = w._ring
    w._pos = 0
    w._calls = 0
    w._failed = 0
    w._slow = 0
    w._head = 0
    w._pending = 0
    w._settled = False
    for i in range(len(ring)):
        ring[i] = 0
    if w._buckets is None:
        return
    buckets: list[WindowBucket] = w._buckets
    for i in range(len(buckets)):
        b = buckets[i]
        b._calls = 0
        b._failed = 0
        b._slow = 0


@cython.cfunc
@cython.exceptval(check=False)
def window_flush(w: BreakerWindow) -> None:
    """Write the clean outcomes of ``_pending`` into a count window's ring, evicting what they push out."""
    # Taken and zeroed in two adjacent statements: the twin's wrapper adds to
    # ``_pending`` without the lock, and no other thread runs between them.
    k: cython.longlong = w._pending
    w._pending = 0
    if k == 0:
        return
    ring: bytearray = w._ring
    i: cython.int
    _slot: cython.int
    if k >= w._size:  # every outcome held is pushed out: the ring is all clean
        for i in range(len(ring)):
            ring[i] = 0
        w._calls = w._size
        w._failed = 0
        w._slow = 0
        w._pos = cython.cast(cython.int, (w._pos + k) % w._size)
        return
    for _slot in range(cython.cast(cython.int, k)):
        _ring_put(w, ring, 0)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _ring_put(w: BreakerWindow, ring: bytearray, bits: cython.int) -> None:
    """Write one outcome's two bits at the count window's next slot, subtracting the outcome it evicts."""
    index: cython.int = w._pos >> 2
    shift: cython.int = (w._pos & 3) << 1
    byte: cython.int = ring[index]
    old: cython.int
    if w._calls == w._size:
        # Full: the new outcome evicts the one ``size`` calls older.
        old = (byte >> shift) & 3
        w._failed -= old & 1
        w._slow -= old >> 1
    else:
        w._calls += 1
    ring[index] = (byte & ~(3 << shift)) | (bits << shift)
    w._pos += 1
    if w._pos == w._size:
        w._pos = 0


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def window_count_clean(w: BreakerWindow) -> cython.bint:
    """Count a clean outcome only (``_pending``) if the window is settled; False: record it with ``window_add``."""
    if not w._settled:
        return False
    w._pending += 1
    return True


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def window_is_slow(w: BreakerWindow, duration: cython.double) -> cython.bint:
    """Whether a call that took ``duration`` seconds is slow (longer than ``slow_call_duration``)."""
    return w._slow_after > 0.0 and duration > w._slow_after


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def window_tripped(w: BreakerWindow) -> cython.bint:
    """Whether the outcomes held call for opening: enough of them, and a rate at its threshold."""
    window_flush(w)
    if w._calls == 0 or w._calls < w._minimum:
        return False
    calls: cython.double = w._calls  # a C int over a C int would divide as integers
    if w._failed / calls >= w._failure_rate:
        return True
    return w._slow_after > 0.0 and w._slow / calls >= w._slow_rate


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _window_bucket_index(w: BreakerWindow, second: cython.longlong) -> cython.int:
    index: cython.longlong = second % w._size
    if index < 0:  # C's remainder of a negative second (a test clock below zero)
        index += w._size
    return cython.cast(cython.int, index)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _window_advance(w: BreakerWindow, second: cython.longlong) -> None:
    """Move a time window's newest second to ``second``, emptying the buckets that fell out."""
    k: cython.longlong
    b: WindowBucket
    if w._calls == 0:
        w._head = second  # every bucket is empty: nothing falls out
        return
    if second <= w._head:
        return  # a reading older than the newest (read before another thread's): it counts as the newest
    if second - w._head >= w._size:
        window_clear(w)
        w._head = second
        return
    buckets: list[WindowBucket] | None = w._buckets
    assert buckets is not None  # a time window's
    for k in range(w._head + 1, second + 1):
        b = buckets[_window_bucket_index(w, k)]
        w._calls -= b._calls
        w._failed -= b._failed
        w._slow -= b._slow
        b._calls = 0
        b._failed = 0
        b._slow = 0
    w._head = second


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def window_add(w: BreakerWindow, failed: cython.bint, slow: cython.bint, now: cython.double) -> cython.bint:
    """Record one outcome at ``now`` (read only for a time window); whether the window now calls for opening."""
    second: cython.longlong
    b: WindowBucket
    bits: cython.int = (1 if failed else 0) | (2 if slow else 0)
    if not w._timed:
        window_flush(w)
        _ring_put(w, w._ring, bits)
        w._settled = w._calls >= w._minimum
    else:
        second = cython.cast(cython.longlong, now)
        if second > now:  # the cast truncates towards zero: floor below it
            second -= 1
        _window_advance(w, second)
        buckets: list[WindowBucket] | None = w._buckets
        assert buckets is not None  # a time window's
        b = buckets[_window_bucket_index(w, w._head)]
        b._calls += 1
        b._failed += bits & 1
        b._slow += bits >> 1
        w._calls += 1
    w._failed += bits & 1
    w._slow += bits >> 1
    if bits == 0 and not w._timed and w._calls != w._minimum:
        # In a count window a clean outcome lowers both rates (what it evicts
        # is no better), except the one that brings the window to
        # minimum_calls: the verdict it had (not open) stands. A time window's
        # evictions can raise a rate: it is judged every time.
        return False
    return window_tripped(w)


@cython.cclass
class BreakerTuning:
    """What only tuned breakers have (``success_threshold``, open-state backoff, ``half_open_max_wait``).

    A plain breaker points at none (``_tuning`` is ``None``), so it stays
    small. A tuning with ``success_threshold == half_open_max_calls``, a
    backoff of 1.0 and no ``half_open_max_wait`` decides exactly as none: the
    compiled dispatch subclasses it to hold its other extras. ``_base_timeout`` is the configured ``reset_timeout``; the
    breaker's own ``_reset_timeout`` is the current one, which the backoff
    lengthens after each failed half-open period.
    """

    __slots__ = (
        "_backoff",
        "_base_timeout",
        "_last_trial",
        "_max_timeout",
        "_max_wait",
        "_success_threshold",
        "_window",
    )

    _success_threshold: cython.int
    _backoff: cython.double  # factor applied to the reset timeout on each re-opening (1.0: none)
    _max_timeout: cython.double  # the cap of that growth
    _base_timeout: cython.double
    _max_wait: cython.double  # half_open_max_wait; 0.0: none
    _last_trial: cython.double  # when the newest trial was admitted
    _window: BreakerWindow | None  # window=: the rate-based window, or None (consecutive failures)


@cython.cclass
class BreakerState:
    """What a breaker decides from; both cores' ``CircuitBreaker`` extend it.

    Field order packs the small ones together (see the memory benchmark).
    ``_guard`` is the byte the compiled core's lock lives in on free-threaded
    builds (a ``PyMutex`` is one byte); nothing here touches it.
    """

    __slots__ = (
        "_epoch",
        "_event",
        "_failure_count",
        "_failures",
        "_flags",
        "_guard",
        "_half_open_max",
        "_ignored",
        "_opened",
        "_opened_at",
        "_rejections",
        "_reset_timeout",
        "_state",
        "_successes",
        "_threshold",
        "_trial_successes",
        "_trials",
        "_tuning",
    )

    _threshold: cython.int
    _half_open_max: cython.int
    _failure_count: cython.int
    _trials: cython.int
    _trial_successes: cython.int
    _epoch: cython.uint
    _opened: cython.uint
    _state: cython.char
    _guard: cython.char
    _event: cython.char  # the last transition not yet told (see event()), 0 if none
    _flags: cython.char  # what the dispatch must do beyond counting a success (FLAG_*); set once
    _reset_timeout: cython.double
    _opened_at: cython.double
    _successes: cython.longlong
    _failures: cython.longlong
    _ignored: cython.longlong
    _rejections: cython.longlong
    _tuning: BreakerTuning | None  # None for a plain breaker


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def configure_breaker(
    s: BreakerState, threshold: cython.int, reset_timeout: cython.double, half_open_max: cython.int
) -> None:
    """A new breaker: closed, nothing counted."""
    s._threshold = threshold
    s._half_open_max = half_open_max
    s._failure_count = 0
    s._trials = 0
    s._trial_successes = 0
    s._epoch = 0
    s._opened = 0
    s._state = CLOSED
    s._guard = 0
    s._event = 0
    s._flags = 0
    s._reset_timeout = reset_timeout
    s._opened_at = 0.0
    s._successes = 0
    s._failures = 0
    s._ignored = 0
    s._rejections = 0
    s._tuning = None


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def tune_breaker(
    s: BreakerState,
    t: BreakerTuning,
    success_threshold: cython.int,
    backoff: cython.double,
    max_timeout: cython.double,
    max_wait: cython.double,
) -> None:
    """Give a new breaker the settings of a tuned one."""
    t._success_threshold = success_threshold
    t._backoff = backoff
    t._max_timeout = max_timeout
    t._base_timeout = s._reset_timeout
    t._max_wait = max_wait
    t._last_trial = 0.0
    t._window = None
    s._tuning = t


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def attach_window(s: BreakerState, t: BreakerTuning, w: BreakerWindow) -> None:
    """Give a new breaker (tuned with ``t``) the window ``w``: it replaces the consecutive failure count."""
    t._window = w
    s._flags |= FLAG_WINDOW
    if w._timed or w._slow_after > 0.0:
        s._flags |= FLAG_TIMED
    if w._slow_after > 0.0:
        s._flags |= FLAG_SLOW


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def window_of(s: BreakerState) -> BreakerWindow | None:
    """The breaker's window, or None."""
    if s._tuning is None:
        return None
    return s._tuning._window


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def slow_call(s: BreakerState, start: cython.double, now: cython.double) -> cython.bint:
    """Whether a call that started at ``start`` (NaN: not measured) and ended at ``now`` was slow."""
    if not s._flags & FLAG_SLOW or start != start:
        return False
    return window_is_slow(_window_in(s), now - start)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _window_in(s: BreakerState) -> BreakerWindow:
    """The window of a breaker that has one (``FLAG_WINDOW``): no test, no reference taken."""
    # No cython.cast: in the twin it is a Python call, the costliest step of a success.
    return s._tuning._window  # type: ignore[union-attr,return-value]  # pyright: ignore[reportOptionalMemberAccess, reportReturnType]


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _forget_window(s: BreakerState) -> None:
    if s._tuning is not None and s._tuning._window is not None:
        window_clear(s._tuning._window)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def success_threshold_of(s: BreakerState) -> cython.int:
    """Trial successes that close a half-open breaker (``half_open_max_calls`` unless tuned)."""
    if s._tuning is None:
        return s._half_open_max
    return s._tuning._success_threshold


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def base_timeout(s: BreakerState) -> cython.double:
    """The configured reset timeout (the current one may be longer, after backoff)."""
    if s._tuning is None:
        return s._reset_timeout
    return s._tuning._base_timeout


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def needs_clock(s: BreakerState) -> cython.bint:
    """Whether admitting a call in the current state needs a clock reading."""
    return s._state == OPEN or s._state == HALF_OPEN


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def event(old: cython.int, new: cython.int) -> cython.int:
    """The code of a transition from ``old`` to ``new`` (never 0)."""
    return 1 + old * STATES + new


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def take_event(s: BreakerState) -> cython.int:
    """The transition left by the last call, cleared."""
    code: cython.int = s._event
    s._event = 0
    return code


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def event_old(code: cython.int) -> cython.int:
    return (code - 1) // STATES


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def event_new(code: cython.int) -> cython.int:
    return (code - 1) % STATES


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _open(s: BreakerState, now: cython.double) -> None:
    t: BreakerTuning | None = s._tuning
    if t is not None:
        # Open-state backoff: a failed half-open period waits longer next
        # time, up to the cap; opening from closed starts again from the base.
        if s._state == HALF_OPEN:
            s._reset_timeout = s._reset_timeout * t._backoff
            if s._reset_timeout > t._max_timeout:
                s._reset_timeout = t._max_timeout
        else:
            s._reset_timeout = t._base_timeout
    s._event = event(s._state, OPEN)
    s._state = OPEN
    s._epoch += 1
    s._opened_at = now
    s._trials = 0
    s._trial_successes = 0
    s._opened += 1


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _close(s: BreakerState) -> None:
    s._event = event(s._state, CLOSED)
    s._state = CLOSED
    s._failure_count = 0
    s._trials = 0
    s._trial_successes = 0
    if s._tuning is not None:
        s._reset_timeout = s._tuning._base_timeout
        _forget_window(s)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def admit(s: BreakerState, now: cython.double, shared: cython.bint) -> cython.longlong:
    """May a call start? Its epoch if so, ``REJECTED`` (counted) if not, ``ASK_STORE`` for a shared trial.

    Past the reset timeout an open breaker turns half-open here, on the
    first admission (leaving the event); half-open, it admits at most
    ``half_open_max_calls`` trials at a time. With ``half_open_max_wait``,
    trials that have all been running that long count as a failed period:
    the breaker opens again (and this call is rejected).
    """
    if s._state == CLOSED or s._state == DISABLED:
        return s._epoch
    if s._state == FORCED_OPEN:
        s._rejections += 1
        return REJECTED
    if s._state == OPEN:
        if now - s._opened_at < s._reset_timeout:
            s._rejections += 1
            return REJECTED
        if shared:
            return ASK_STORE
        s._event = event(OPEN, HALF_OPEN)
        s._state = HALF_OPEN
        s._trials = 0
        s._trial_successes = 0
    if s._trials < s._half_open_max:
        if shared:
            return ASK_STORE
        s._trials += 1
        if s._tuning is not None:
            s._tuning._last_trial = now
        return s._epoch
    if (
        not shared
        and s._tuning is not None
        and s._tuning._max_wait > 0.0
        and now - s._tuning._last_trial >= s._tuning._max_wait
    ):
        # Every slot is held by a trial admitted at least max_wait ago (the
        # newest is that old): they free their slots and count as a failure.
        _open(s, now)
    s._rejections += 1
    return REJECTED


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def settle_success(s: BreakerState, epoch: cython.longlong, shared: cython.bint, count: cython.bint) -> cython.int:
    """A call of ``epoch`` succeeded, its time not read and not slow: see ``settle_success_at``."""
    return settle_success_at(s, epoch, NO_TIME, False, shared, count)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def settle_success_at(
    s: BreakerState,
    epoch: cython.longlong,
    now: cython.double,
    slow: cython.bint,
    shared: cython.bint,
    count: cython.bint,
) -> cython.int:
    """A call of ``epoch`` succeeded (at ``now``, NaN if not read; ``slow``): ``DONE``, or what to do next.

    With a window, a success that brings the window to its verdict (the
    ``minimum_calls``-th call, or a slow one) opens the breaker; without a
    reading of the time that needs, it answers ``OPEN_PENDING``. ``count``
    false: the store's binding settles what the breaker counted (and a window
    recorded) already.
    """
    if s._state == DISABLED:
        return DONE
    if count:
        s._successes += 1
    if epoch != s._epoch:
        return DONE
    if s._state == CLOSED:
        if s._flags & FLAG_WINDOW:
            if not count:
                return DONE
            w: BreakerWindow = _window_in(s)
            if not slow and window_count_clean(w):
                return DONE
            if not window_add(w, False, slow, now):
                return DONE
            if shared:
                return STORE_FAILURE
            if now != now:  # NaN: no reading
                return OPEN_PENDING
            _open(s, now)
            return DONE
        cleared: cython.bint = shared and s._failure_count != 0
        s._failure_count = 0
        return STORE_CLEAR if cleared else DONE
    if s._state == HALF_OPEN:
        if shared:
            return STORE_TRIAL_SUCCESS
        s._trial_successes += 1
        if s._trial_successes >= success_threshold_of(s):
            _close(s)
    return DONE


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def settle_failure(
    s: BreakerState, epoch: cython.longlong, now: cython.double, shared: cython.bint, count: cython.bint
) -> cython.int:
    """A call of ``epoch`` failed at ``now``, not slow: see ``settle_failure_at``."""
    return settle_failure_at(s, epoch, now, False, shared, count)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def settle_failure_at(
    s: BreakerState,
    epoch: cython.longlong,
    now: cython.double,
    slow: cython.bint,
    shared: cython.bint,
    count: cython.bint,
) -> cython.int:
    """A call of ``epoch`` failed at ``now`` (``slow`` too): ``DONE``, or ``STORE_FAILURE`` to let the store decide.

    A closed breaker with a window records the failure there and opens (or,
    shared, reports the one failure that opens the shared circuit) only when
    the window calls for it; ``count`` false is the binding's echo of that
    report.
    """
    if s._state == DISABLED:
        return DONE
    if count:
        s._failures += 1
    if epoch != s._epoch:
        return DONE
    if s._state == CLOSED and s._flags & FLAG_WINDOW:
        if count and not window_add(_window_in(s), True, slow, now):
            return DONE
        if shared:
            return STORE_FAILURE
        _open(s, now)
        return DONE
    if shared:
        return STORE_FAILURE
    if s._state == CLOSED:
        s._failure_count += 1
        if s._failure_count >= s._threshold:
            _open(s, now)
    elif s._state == HALF_OPEN:
        _open(s, now)
    return DONE


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def record_window_success(s: BreakerState, epoch: cython.longlong) -> cython.bint:
    """The success of a call of ``epoch``, not slow, to a breaker whose only flag is a count window.

    True: counted and recorded, nothing else to do (no event, nothing to ask).
    False: nothing done; settle it with ``settle_success_at``. That is another
    state or period, or the one success that could complete the verdict: the
    one that brings a filling window to ``minimum_calls``: until the window
    holds that many, every success goes the long way. Once it does, a clean
    success cannot complete the verdict (it evicts no better outcome) and is
    only added to ``_pending``. The twin's wrapper makes these two adds itself
    under the GIL (``hardy/_py/protect.py``).
    """
    if s._state != CLOSED or epoch != s._epoch:
        return False
    if not window_count_clean(_window_in(s)):
        return False
    s._successes += 1
    return True


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def open_by_window(s: BreakerState, epoch: cython.longlong, now: cython.double) -> None:
    """After ``OPEN_PENDING``: open at ``now`` if the window still calls for it in the same period."""
    if epoch == s._epoch and s._state == CLOSED and s._flags & FLAG_WINDOW and window_tripped(_window_in(s)):
        _open(s, now)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def release(s: BreakerState, epoch: cython.longlong, ignored: cython.bint) -> cython.bint:
    """A call ended without an outcome (interrupted, or an excluded error): give its trial slot back.

    True when it held one (a shared breaker then gives its permit back).
    """
    if ignored and s._state != DISABLED:
        s._ignored += 1
    if epoch == s._epoch and s._state == HALF_OPEN and s._trials > 0:
        s._trials -= 1
        return True
    return False


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def promote(s: BreakerState, now: cython.double) -> None:
    """An open breaker past its reset timeout is half-open: make it so (for outcomes recorded by hand)."""
    if s._state == OPEN and now - s._opened_at >= s._reset_timeout:
        s._event = event(OPEN, HALF_OPEN)
        s._state = HALF_OPEN
        s._trials = 0
        s._trial_successes = 0


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def reset(s: BreakerState) -> None:
    """Back to closed (from any state, the manual ones too); the counts of the state and the window
    are cleared, the lifetime totals kept, the backoff forgotten."""
    if s._state != CLOSED:
        s._event = event(s._state, CLOSED)
    s._state = CLOSED
    s._epoch += 1
    s._failure_count = 0
    s._trials = 0
    s._trial_successes = 0
    if s._tuning is not None:
        s._reset_timeout = s._tuning._base_timeout
        _forget_window(s)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def steer(s: BreakerState, state: cython.int) -> None:
    """Put the breaker in a manual state (``FORCED_OPEN`` or ``DISABLED``) until ``reset``.

    Calls running now become stale: their outcomes count in the totals (a
    forced-open breaker's) but move nothing.
    """
    if s._state != state:
        s._event = event(s._state, state)
        if state == FORCED_OPEN:
            s._opened += 1
    s._state = state
    s._epoch += 1
    s._failure_count = 0
    s._trials = 0
    s._trial_successes = 0
    _forget_window(s)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def count_rejection(s: BreakerState) -> None:
    s._rejections += 1


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def adopt(
    s: BreakerState,
    state: cython.int,
    failure_count: cython.int,
    trials: cython.int,
    trial_successes: cython.int,
    opened_at: cython.double,
    new_period: cython.bint,
) -> cython.longlong:
    """Take a state read from a store; the epoch from now on. ``new_period``: calls running now are stale.

    A manual state is the process's own: the store's state does not replace it.
    """
    old: cython.int = s._state
    if old >= FORCED_OPEN:  # FORCED_OPEN or DISABLED
        return s._epoch
    if new_period:
        s._epoch += 1
        if state == OPEN and old != OPEN:
            s._opened += 1
    s._state = state
    s._failure_count = failure_count
    s._trials = trials
    s._trial_successes = trial_successes
    if state != CLOSED:
        s._opened_at = opened_at
    elif old != CLOSED:
        _forget_window(s)  # closed by another process: the window starts afresh, as here
    if old != state:
        s._event = event(old, state)
    return s._epoch


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def effective_state(s: BreakerState, now: cython.double) -> cython.int:
    """The state as a caller sees it at ``now``: open past the reset timeout reads as half-open."""
    if s._state == OPEN and now - s._opened_at >= s._reset_timeout:
        return HALF_OPEN
    return s._state


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def time_until_reset(s: BreakerState, now: cython.double) -> cython.double:
    """Seconds until an open breaker admits a trial; 0.0 in any other state."""
    if s._state != OPEN:
        return 0.0
    left: cython.double = s._reset_timeout - (now - s._opened_at)
    return left if left > 0.0 else 0.0
