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

# The twin's window classes are defined under ``if not cython.compiled:`` (compiled,
# the names are C structs): pyright cannot tell that the branch is always taken here.
# pyright: reportPossiblyUnboundVariable=false

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
# An outcome filled the window to its verdict but the dispatch read no clock
# (a count window without slow calls): read it, then open_by_window().
OPEN_PENDING = cython.declare(cython.int, 4)
# settle_failure_at() was given no time where it needs one (the state changed
# since failure_reads_clock() was asked), or settle_success_at() for a success
# that re-opens a half-open period: nothing done; read it and ask again.
NEEDS_TIME = cython.declare(cython.int, 5)
NO_TIME = cython.declare(cython.double, float("nan"))  # settle_success_at(): the dispatch read no clock


# -- the rate-based window (window=) -------------------------------------------------------
# A closed breaker with a window records every outcome into it and opens when,
# with at least ``minimum_calls`` in the window, the failure rate or the slow-call
# rate reaches its threshold. Two layouts, both O(1) per outcome and without
# allocation: a count window keeps the last ``size`` outcomes in a ring of bits
# (one a slot, failed; two when slow calls are tracked, failed and slow), with
# running totals that subtract the outcome a new one evicts; a time window keeps
# one bucket of counts per second of the monotonic clock, and clears the buckets
# that fell out of the window as the newest second moves on (at most ``seconds``
# of them, after a long pause).
#
# What a window decides by (its ``WindowSettings``) is shared by every breaker
# made with the same CountWindow or TimeWindow; each breaker holds only its
# outcomes. Compiled, those are one C block (``hardy_window`` in hardy.h: the
# counts, then the ring or the time window's buckets), with no object header:
# a breaker with a CountWindow(100) costs its 152 bytes and 42 more (the memory
# benchmark). The twin keeps them in the objects below.
#
# A count window that holds ``minimum_calls`` outcomes cannot be brought to
# its verdict by a clean one (it evicts one no better), so such a success only
# adds one to ``_pending``: the clean outcomes not yet written into the ring.
# Whatever reads or changes the window next writes them first
# (``window_flush``): a success costs one add, a later outcome at most ``size``
# slot writes for the successes before it, each written once.

# ``_pending`` stops growing here (compiled, it is a C int): any count of at
# least ``size`` clean outcomes leaves the same window, an all-clean one.
PENDING_CAP = cython.declare(cython.int, 1 << 30)


@cython.final
@cython.cclass
class WindowSettings:
    """What a window decides by: its CountWindow's or TimeWindow's fields, as the policy reads them."""

    __slots__ = (
        "__weakref__",
        "_bits",
        "_failure_rate",
        "_minimum",
        "_ring_bytes",
        "_size",
        "_slot_mask",
        "_slot_shift",
        "_slow_after",
        "_slow_rate",
        "_spec",
        "_timed",
    )

    __weakref__: object  # shared through hardy.window.SettingsCache
    _size: cython.int  # count: slots; time: seconds (one bucket each)
    _minimum: cython.int  # minimum_calls
    _bits: cython.int  # count: bits a slot, 1 (failed) or 2 (failed, slow: slow calls are tracked)
    _slot_shift: cython.int  # count: log2 of the slots a byte holds
    _slot_mask: cython.int  # count: the slots a byte holds, less one
    _ring_bytes: cython.int  # count: the ring's length
    _timed: cython.bint
    _failure_rate: cython.double
    _slow_rate: cython.double
    _slow_after: cython.double  # slow_call_duration in seconds; 0.0: slow calls are not tracked
    _spec: object  # the CountWindow or TimeWindow (the breaker's ``window``)


def new_window_settings(
    spec: object,
    timed: cython.bint,
    size: cython.int,
    minimum: cython.int,
    failure_rate: cython.double,
    slow_after: cython.double,
    slow_rate: cython.double,
) -> WindowSettings:
    """The settings of the window ``spec`` (``hardy.window.policy_args`` gives the rest)."""
    settings: WindowSettings = WindowSettings.__new__(WindowSettings)
    settings._spec = spec
    settings._timed = timed
    settings._size = size
    settings._minimum = minimum
    settings._failure_rate = failure_rate
    settings._slow_after = slow_after
    settings._slow_rate = slow_rate
    settings._bits = 2 if slow_after > 0.0 else 1
    settings._slot_shift = 2 if slow_after > 0.0 else 3
    settings._slot_mask = (1 << settings._slot_shift) - 1
    settings._ring_bytes = 0 if timed else (size * settings._bits + 7) // 8
    return settings


if not cython.compiled:
    # The twin's storage for a window's outcomes; compiled, these names are the
    # C structs of hardy.h, declared by _core_c.pyx before it includes this file.

    class WindowBucket:
        """One second of a time window: how many outcomes, failed and slow."""

        __slots__ = ("_calls", "_failed", "_slow")

        _calls: int
        _failed: int
        _slow: int

    class WindowTime:
        """A time window's outcomes: the newest second, the totals, a bucket per second."""

        __slots__ = ("_buckets", "_calls", "_failed", "_head", "_slow")

        _head: int  # the second of the newest bucket
        _calls: int
        _failed: int
        _slow: int
        _buckets: list[WindowBucket]  # by the second modulo ``size``

    class BreakerWindow:
        """A breaker's outcomes: a count window's ring and totals, or a time window's buckets."""

        __slots__ = ("_failed", "_n", "_pending", "_ring", "_settings", "_settled", "_slow", "_time", "_trial_slow")

        _settings: WindowSettings
        _n: int  # count: below ``size`` the outcomes held (filling); else full, the next slot plus ``size``
        _failed: int  # count: of which failed
        _slow: int  # count: of which slow
        _pending: int  # count: clean outcomes not yet in the ring (the newest ones)
        _settled: bool  # count: ``minimum_calls`` outcomes held, a clean one may go to ``_pending``
        _ring: bytearray  # count
        _time: WindowTime  # time (None for a count window)
        _trial_slow: int  # the current half-open period's slow trials (trials_by_rate)

    def new_window(settings: WindowSettings) -> BreakerWindow:
        """An empty window (the compiled core's is ``hardy_window_new``)."""
        w = BreakerWindow()
        w._settings = settings
        w._ring = bytearray(settings._ring_bytes)
        w._trial_slow = 0
        w._time = None  # type: ignore[assignment]  # pyright: ignore[reportAttributeAccessIssue]
        if settings._timed:
            t = WindowTime()
            t._buckets = [WindowBucket() for _ in range(settings._size)]
            w._time = t
        window_clear(w)
        return w


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _settings_of(w: BreakerWindow) -> WindowSettings:
    if not cython.compiled:
        return w._settings  # no cast: in the twin it would be a call more, on every outcome
    return cython.cast(WindowSettings, w._settings)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _time_of(w: BreakerWindow) -> WindowTime:
    """A time window's outcomes."""
    if not cython.compiled:
        return w._time
    # Defined by _core_c.pyx before it includes this file (hardy.h).
    return hardy_window_time_of(w)  # type: ignore[name-defined, no-any-return]  # noqa: F821  # pyright: ignore[reportUndefinedVariable, reportUnknownVariableType]


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _bucket_at(t: WindowTime, index: cython.int) -> WindowBucket:
    if not cython.compiled:
        return t._buckets[index]
    # Defined by _core_c.pyx before it includes this file (hardy.h).
    return hardy_window_bucket_at(t, index)  # type: ignore[name-defined, no-any-return]  # noqa: F821  # pyright: ignore[reportUndefinedVariable, reportUnknownVariableType]


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def window_timed(w: BreakerWindow) -> cython.bint:
    """Whether ``w`` is a time window."""
    return _settings_of(w)._timed


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def window_spec(w: BreakerWindow) -> object:
    """The CountWindow or TimeWindow ``w`` was made from."""
    return _settings_of(w)._spec


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def window_calls(w: BreakerWindow) -> cython.longlong:
    """The outcomes the window holds (after ``window_flush``)."""
    settings: WindowSettings = _settings_of(w)
    if settings._timed:
        return _time_of(w)._calls
    return _count_held(w, settings)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _count_held(w: BreakerWindow, settings: WindowSettings) -> cython.int:
    """The outcomes a count window holds (``_n`` counts them while it fills)."""
    return w._n if w._n < settings._size else settings._size


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def window_failed(w: BreakerWindow) -> cython.longlong:
    """Of which failed."""
    return _time_of(w)._failed if _settings_of(w)._timed else w._failed


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def window_slow(w: BreakerWindow) -> cython.longlong:
    """Of which slow."""
    return _time_of(w)._slow if _settings_of(w)._timed else w._slow


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def window_clear(w: BreakerWindow) -> cython.void:
    """Forget every outcome (the breaker closed or was reset)."""
    i: cython.int
    b: WindowBucket
    settings: WindowSettings = _settings_of(w)
    w._n = 0
    w._failed = 0
    w._slow = 0
    w._pending = 0
    w._settled = False
    if not settings._timed:
        for i in range(settings._ring_bytes):
            w._ring[i] = 0
        return
    t: WindowTime = _time_of(w)
    t._head = 0
    t._calls = 0
    t._failed = 0
    t._slow = 0
    for i in range(settings._size):
        b = _bucket_at(t, i)
        b._calls = 0
        b._failed = 0
        b._slow = 0


@cython.cfunc
@cython.exceptval(check=False)
def window_flush(w: BreakerWindow) -> cython.void:
    """Write the clean outcomes of ``_pending`` into a count window's ring, evicting what they push out."""
    # Taken and zeroed in two adjacent statements: the twin's wrapper adds to
    # ``_pending`` without the lock, and no other thread runs between them.
    k: cython.int = w._pending
    w._pending = 0
    if k == 0:
        return
    settings: WindowSettings = _settings_of(w)
    i: cython.int
    if k >= settings._size:  # every outcome held is pushed out: the ring is all clean
        for i in range(settings._ring_bytes):
            w._ring[i] = 0
        w._n = settings._size  # full, the next slot the first: any slot would do
        w._failed = 0
        w._slow = 0
        return
    size: cython.int = settings._size
    n: cython.int = w._n
    if n < size:
        # Filling: the slots from n on hold nothing yet (the ring starts
        # empty and fills in order), so clean outcomes there only move n.
        if k <= size - n:
            w._n = n + k
            return
        k -= size - n
        w._n = size  # full, the next slot the first
    _ring_clean_run(w, settings, k)


@cython.cfunc
@cython.exceptval(check=False)
def _ring_clean_run(w: BreakerWindow, settings: WindowSettings, k: cython.int) -> cython.void:
    """Write ``k`` clean outcomes (fewer than ``size``) into a full count window's ring: slot by slot
    up to a byte's start, then whole bytes at once (up to the ring's end), evicting what they hold."""
    size: cython.int = settings._size
    per_byte: cython.int = settings._slot_mask + 1
    slot: cython.int
    whole: cython.int
    index: cython.int
    byte: cython.int
    while k > 0:
        slot = w._n - size
        whole = min(k, size - slot) >> settings._slot_shift
        if slot & settings._slot_mask or whole == 0:
            _ring_put(w, settings, 0)
            k -= 1
            continue
        for index in range(slot >> settings._slot_shift, (slot >> settings._slot_shift) + whole):
            byte = w._ring[index]
            if byte:
                if settings._bits == 1:
                    w._failed -= _ones(byte)
                else:  # failed bits even, slow bits odd
                    w._failed -= _ones(byte & 0x55)
                    w._slow -= _ones(byte & 0xAA)
                w._ring[index] = 0
        slot += whole * per_byte
        k -= whole * per_byte
        w._n = size + slot if slot < size else size


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _ones(byte: cython.int) -> cython.int:
    """The bits set in ``byte`` (0 to 255)."""
    byte = byte - ((byte >> 1) & 0x55)
    byte = (byte & 0x33) + ((byte >> 2) & 0x33)
    return (byte + (byte >> 4)) & 0x0F


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _ring_put(w: BreakerWindow, settings: WindowSettings, bits: cython.int) -> cython.void:
    """Write one outcome's bits at the count window's next slot, subtracting the outcome it evicts."""
    size: cython.int = settings._size
    n: cython.int = w._n
    full: cython.bint = n >= size
    slot: cython.int = n - size if full else n
    index: cython.int = slot >> settings._slot_shift
    shift: cython.int = (slot & settings._slot_mask) * settings._bits
    mask: cython.int = (1 << settings._bits) - 1
    byte: cython.int = w._ring[index]
    old: cython.int
    if full:
        # The new outcome evicts the one ``size`` calls older.
        old = (byte >> shift) & mask
        w._failed -= old & 1
        w._slow -= old >> 1
    w._ring[index] = (byte & ~(mask << shift)) | (bits << shift)
    n += 1
    w._n = size if n == 2 * size else n


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def window_count_clean(w: BreakerWindow) -> cython.bint:
    """Count a clean outcome only (``_pending``) if the window is settled; False: record it with ``window_add``."""
    if not w._settled:
        return False
    if w._pending < PENDING_CAP:
        w._pending += 1
    return True


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def window_is_slow(w: BreakerWindow, duration: cython.double) -> cython.bint:
    """Whether a call that took ``duration`` seconds is slow (longer than ``slow_call_duration``)."""
    slow_after: cython.double = _settings_of(w)._slow_after
    return slow_after > 0.0 and duration > slow_after


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def window_tripped(w: BreakerWindow) -> cython.bint:
    """Whether the outcomes held call for opening: enough of them, and a rate at its threshold."""
    window_flush(w)
    settings: WindowSettings = _settings_of(w)
    held: cython.longlong
    failed: cython.longlong
    slow: cython.longlong
    if settings._timed:
        t: WindowTime = _time_of(w)
        held = t._calls
        failed = t._failed
        slow = t._slow
    else:
        held = _count_held(w, settings)
        failed = w._failed
        slow = w._slow
    if held == 0 or held < settings._minimum:
        return False
    calls: cython.double = held  # a C integer over another would divide as integers
    if failed / calls >= settings._failure_rate:
        return True
    return settings._slow_after > 0.0 and slow / calls >= settings._slow_rate


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _window_bucket_index(settings: WindowSettings, second: cython.longlong) -> cython.int:
    index: cython.longlong = second % settings._size
    if index < 0:  # C's remainder of a negative second (a test clock below zero)
        index += settings._size
    return cython.cast(cython.int, index)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _window_advance(w: BreakerWindow, t: WindowTime, settings: WindowSettings, second: cython.longlong) -> cython.void:
    """Move a time window's newest second to ``second``, emptying the buckets that fell out."""
    k: cython.longlong
    b: WindowBucket
    if t._calls == 0:
        t._head = second  # every bucket is empty: nothing falls out
        return
    if second <= t._head:
        return  # a reading older than the newest (read before another thread's): it counts as the newest
    if second - t._head >= settings._size:
        window_clear(w)
        t._head = second
        return
    for k in range(t._head + 1, second + 1):
        b = _bucket_at(t, _window_bucket_index(settings, k))
        t._calls -= b._calls
        t._failed -= b._failed
        t._slow -= b._slow
        b._calls = 0
        b._failed = 0
        b._slow = 0
    t._head = second


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def window_add(w: BreakerWindow, failed: cython.bint, slow: cython.bint, now: cython.double) -> cython.bint:
    """Record one outcome at ``now`` (read only for a time window); whether the window now calls for opening."""
    second: cython.longlong
    b: WindowBucket
    settings: WindowSettings = _settings_of(w)
    bits: cython.int = (1 if failed else 0) | (2 if slow else 0)
    if not settings._timed:
        window_flush(w)
        _ring_put(w, settings, bits)
        w._failed += bits & 1
        w._slow += bits >> 1
        held: cython.longlong = _count_held(w, settings)
        w._settled = held >= settings._minimum
        if bits == 0 and held != settings._minimum:
            # In a count window a clean outcome lowers both rates (what it
            # evicts is no better), except the one that brings the window to
            # minimum_calls: the verdict it had (not open) stands. A time
            # window's evictions can raise a rate: it is judged every time.
            return False
        return window_tripped(w)
    t: WindowTime = _time_of(w)
    second = cython.cast(cython.longlong, now)
    if second > now:  # the cast truncates towards zero: floor below it
        second -= 1
    _window_advance(w, t, settings, second)
    b = _bucket_at(t, _window_bucket_index(settings, t._head))
    b._calls += 1
    b._failed += bits & 1
    b._slow += bits >> 1
    t._calls += 1
    t._failed += bits & 1
    t._slow += bits >> 1
    return window_tripped(w)


@cython.cclass
class BreakerTuning:
    """What only tuned breakers have (``success_threshold``, open-state backoff, ``half_open_max_wait``).

    A plain breaker points at none (``_tuning`` is ``None``), so it stays
    small. A tuning with ``success_threshold`` 0 (not given), a backoff of
    1.0 and no ``half_open_max_wait`` decides exactly as none: the compiled
    dispatch subclasses it to hold its other extras. ``_base_timeout`` is the configured ``reset_timeout``; the
    breaker's own ``_reset_timeout`` is the current one, which the backoff
    lengthens after each failed half-open period.
    """

    __slots__ = (
        "_backoff",
        "_base_timeout",
        "_ignored",
        "_last_trial",
        "_max_timeout",
        "_max_wait",
        "_success_threshold",
    )

    _success_threshold: cython.int  # 0: not given (see success_threshold_of, trials_by_rate)
    _backoff: cython.double  # factor applied to the reset timeout on each re-opening (1.0: none)
    _max_timeout: cython.double  # the cap of that growth
    _base_timeout: cython.double
    _max_wait: cython.double  # half_open_max_wait; 0.0: none
    _last_trial: cython.double  # when the newest trial was admitted
    # Calls that ended with an excluded exception (a lifetime total). Only a
    # breaker given excluded_exceptions has any, and it has a tuning: kept
    # here, it leaves room in every breaker for the window's pointer.
    _ignored: cython.longlong


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
        "_window",
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
    _rejections: cython.longlong
    _tuning: BreakerTuning | None  # None for a plain breaker
    # window=: the rate-based window's outcomes, or NULL (consecutive failures);
    # compiled, a C block the dispatch allocates and frees with the breaker.
    _window: BreakerWindow


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def configure_breaker(
    s: BreakerState, threshold: cython.int, reset_timeout: cython.double, half_open_max: cython.int
) -> cython.void:
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
    s._rejections = 0
    s._tuning = None
    if not cython.compiled:
        s._window = None  # type: ignore[assignment]  # compiled, it is left NULL until attach_window


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
) -> cython.void:
    """Give a new breaker the settings of a tuned one."""
    t._success_threshold = success_threshold
    t._backoff = backoff
    t._max_timeout = max_timeout
    t._base_timeout = s._reset_timeout
    t._max_wait = max_wait
    t._last_trial = 0.0
    t._ignored = 0
    s._tuning = t


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def attach_window(s: BreakerState, w: BreakerWindow) -> cython.void:
    """Give a new breaker the empty window ``w``: it replaces the consecutive failure count."""
    settings: WindowSettings = _settings_of(w)
    s._window = w
    s._flags |= FLAG_WINDOW
    if settings._timed or settings._slow_after > 0.0:
        s._flags |= FLAG_TIMED
    if settings._slow_after > 0.0:
        s._flags |= FLAG_SLOW


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def window_of(s: BreakerState) -> BreakerWindow:
    """The breaker's window, or NULL (the twin's None)."""
    return s._window


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
def surely_not_slow(s: BreakerState, start: cython.double, ended_by: cython.double, lag: cython.double) -> cython.bint:
    """Whether a count window's call that started at ``start`` was surely not slow, knowing only that
    it ended by ``ended_by + lag`` (a reading that lags the clock by less than ``lag``). False: read
    the clock and ask ``slow_call``."""
    if not s._flags & FLAG_SLOW or start != start:
        return False
    settings: WindowSettings = _settings_of(_window_in(s))
    return not settings._timed and (ended_by - start) + lag <= settings._slow_after


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _window_in(s: BreakerState) -> BreakerWindow:
    """The window of a breaker that has one (``FLAG_WINDOW``)."""
    return s._window


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _forget_window(s: BreakerState) -> cython.void:
    if s._window:
        window_clear(s._window)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def success_threshold_of(s: BreakerState) -> cython.int:
    """Trial successes that close a half-open breaker (``half_open_max_calls`` unless given)."""
    if s._tuning is None or s._tuning._success_threshold == 0:
        return s._half_open_max
    return s._tuning._success_threshold


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def trials_by_rate(s: BreakerState) -> cython.bint:
    """Whether a half-open period judges its trials by the window's rates (``_judge_trials``): a
    breaker with a window and no ``success_threshold`` given. The period's failed trials are then
    counted in ``_failure_count`` (the window replaces the consecutive count) and its slow ones in
    the window's ``_trial_slow``."""
    return (s._flags & FLAG_WINDOW) != 0 and (s._tuning is None or s._tuning._success_threshold == 0)


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
def _open(s: BreakerState, now: cython.double) -> cython.void:
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
    if trials_by_rate(s):
        s._failure_count = 0  # the failed trials of a period judged by rate: none while open
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
def _half_open(s: BreakerState) -> cython.void:
    """An open breaker past its reset timeout starts a half-open period."""
    s._event = event(OPEN, HALF_OPEN)
    s._state = HALF_OPEN
    s._trials = 0
    s._trial_successes = 0
    if trials_by_rate(s):
        s._failure_count = 0
        _window_in(s)._trial_slow = 0


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _judge_trials(s: BreakerState, now: cython.double) -> cython.void:
    """A rate-judged half-open period after a trial's outcome (``trials_by_rate``).

    The sample is the period's ``half_open_max_calls`` trials, as
    resilience4j's (``minimum_calls`` does not apply). It opens as soon as the
    failed or the slow trials alone reach their rate of that number, which no
    later outcome could undo, and closes once every trial has an outcome and
    neither rate is reached. ``now`` is a reading: a success given none that
    would open it is answered ``NEEDS_TIME`` first (``settle_success_at``).
    """
    if _trials_tripped(s, 0, 0):
        _open(s, now)
    elif s._failure_count + s._trial_successes >= s._half_open_max:
        _close(s)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _trials_tripped(s: BreakerState, failed: cython.int, slow: cython.int) -> cython.bint:
    """Whether the period's failed or slow trials, with ``failed`` and ``slow`` more, reach their
    rate of ``half_open_max_calls`` (``trials_by_rate``)."""
    w: BreakerWindow = _window_in(s)
    settings: WindowSettings = _settings_of(w)
    trials: cython.double = s._half_open_max  # a C integer over another would divide as integers
    if (s._failure_count + failed) / trials >= settings._failure_rate:
        return True
    return settings._slow_after > 0.0 and (w._trial_slow + slow) / trials >= settings._slow_rate


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _close(s: BreakerState) -> cython.void:
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
        _half_open(s)
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
        if not trials_by_rate(s):
            _open(s, now)
        else:
            # Each overdue trial is a failed one: every trial has its outcome.
            s._failure_count = s._trials - s._trial_successes
            _judge_trials(s, now)
            if s._state == CLOSED:
                s._epoch += 1  # the overdue trials' outcomes, when they come, are stale
                return s._epoch
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
    recorded) already. A success without a reading that would complete a
    half-open period's verdict to re-open (``trials_by_rate``: its tallies
    may have come from a store that judges by other settings) is answered
    ``NEEDS_TIME``, with nothing done: read the time and ask again.
    """
    if s._state == DISABLED:
        return DONE
    if (
        now != now
        and epoch == s._epoch
        and s._state == HALF_OPEN
        and not shared
        and trials_by_rate(s)
        and _trials_tripped(s, 0, slow)
    ):
        return NEEDS_TIME
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
        if trials_by_rate(s):
            if slow:
                _window_in(s)._trial_slow += 1
            _judge_trials(s, now)
        elif s._trial_successes >= success_threshold_of(s):
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
    report. ``now`` may be NaN where ``failure_reads_clock`` says no: a
    failure that opens then answers ``OPEN_PENDING``, and ``NEEDS_TIME``
    (nothing done) where the state changed meanwhile.
    """
    if s._state == DISABLED:
        return DONE
    if now != now and epoch == s._epoch and failure_reads_clock(s):
        return NEEDS_TIME
    if count:
        s._failures += 1
    if epoch != s._epoch:
        return DONE
    if s._state == CLOSED and s._flags & FLAG_WINDOW:
        if count and not window_add(_window_in(s), True, slow, now):
            return DONE
        if shared:
            return STORE_FAILURE
        if now != now:
            return OPEN_PENDING
        _open(s, now)
        return DONE
    if shared:
        return STORE_FAILURE
    if s._state == CLOSED:
        s._failure_count += 1
        if s._failure_count >= s._threshold:
            _open(s, now)
    elif s._state == HALF_OPEN:
        if not trials_by_rate(s):
            _open(s, now)
            return DONE
        s._failure_count += 1
        if slow:
            _window_in(s)._trial_slow += 1
        _judge_trials(s, now)
    return DONE


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def failure_reads_clock(s: BreakerState) -> cython.bint:
    """Whether settling a failure needs the time first: not in a closed breaker whose window counts
    outcomes (no time window, no slow calls), which reads it only if the failure opens it
    (``OPEN_PENDING``). Asked before the lock: ``settle_failure_at`` answers ``NEEDS_TIME`` if the
    state has changed since."""
    return s._state != CLOSED or (s._flags & (FLAG_WINDOW | FLAG_TIMED)) != FLAG_WINDOW


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
def open_by_window(s: BreakerState, epoch: cython.longlong, now: cython.double) -> cython.void:
    """After ``OPEN_PENDING``: open at ``now`` if the window still calls for it in the same period."""
    if epoch == s._epoch and s._state == CLOSED and s._flags & FLAG_WINDOW and window_tripped(_window_in(s)):
        _open(s, now)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def count_ignored(s: BreakerState) -> cython.void:
    """One more call that ended with an excluded exception (the breaker has a tuning: it has those)."""
    if s._tuning is not None:
        s._tuning._ignored += 1


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def ignored_of(s: BreakerState) -> cython.longlong:
    """The calls that ended with an excluded exception."""
    return 0 if s._tuning is None else s._tuning._ignored


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def release(s: BreakerState, epoch: cython.longlong, ignored: cython.bint) -> cython.bint:
    """A call ended without an outcome (interrupted, or an excluded error): give its trial slot back.

    True when it held one (a shared breaker then gives its permit back).
    """
    if ignored and s._state != DISABLED:
        count_ignored(s)
    if epoch == s._epoch and s._state == HALF_OPEN and s._trials > 0:
        s._trials -= 1
        return True
    return False


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def promote(s: BreakerState, now: cython.double) -> cython.void:
    """An open breaker past its reset timeout is half-open: make it so (for outcomes recorded by hand)."""
    if s._state == OPEN and now - s._opened_at >= s._reset_timeout:
        _half_open(s)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def reset(s: BreakerState) -> cython.void:
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
def steer(s: BreakerState, state: cython.int) -> cython.void:
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
def count_rejection(s: BreakerState) -> cython.void:
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
    open_for: cython.double,
    trial_slow: cython.int,
) -> cython.longlong:
    """Take a state read from a store; the epoch from now on. ``new_period``: calls running now are stale.

    A manual state is the process's own: the store's state does not replace it.
    ``open_for`` (negative: not told) is how long the shared circuit stays
    open this time: the store backs it off as the breaker would. Half-open,
    ``failure_count`` and ``trial_slow`` are the period's failed and slow
    trials where they are judged by rate (``trials_by_rate``).
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
    if s._window:
        _window_in(s)._trial_slow = trial_slow if state == HALF_OPEN else 0
    if state != CLOSED:
        s._opened_at = opened_at
        if open_for >= 0.0 and s._tuning is not None:
            s._reset_timeout = open_for  # a plain breaker has no backoff: its timeout is its setting
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
