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

# What admit() returns besides an admitted call's epoch (>= 0).
REJECTED = cython.declare(cython.longlong, -1)
ASK_STORE = cython.declare(cython.longlong, -3)  # a trial: the store grants the permits

# What a breaker's dispatch must look at beyond the closed-and-clean count
# (``_flags``): with any of them set, every outcome goes through the policy.
FLAG_RESULT = cython.declare(cython.int, 1)  # failure_on_result: the returned value is judged

# What a settling asks the caller to do next.
DONE = cython.declare(cython.int, 0)
STORE_TRIAL_SUCCESS = cython.declare(cython.int, 1)
STORE_CLEAR = cython.declare(cython.int, 2)
STORE_FAILURE = cython.declare(cython.int, 3)


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


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def event(old: cython.int, new: cython.int) -> cython.int:
    """The code of a transition from ``old`` to ``new`` (never 0)."""
    return 1 + old * 3 + new


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
    return (code - 1) // 3


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def event_new(code: cython.int) -> cython.int:
    return (code - 1) % 3


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _open(s: BreakerState, now: cython.double) -> None:
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
def admit(s: BreakerState, now: cython.double, shared: cython.bint) -> cython.longlong:
    """May a call start? Its epoch if so, ``REJECTED`` (counted) if not, ``ASK_STORE`` for a shared trial.

    Past the reset timeout an open breaker turns half-open here, on the
    first admission (leaving the event); half-open, it admits at most
    ``half_open_max_calls`` trials at a time.
    """
    if s._state == CLOSED:
        return s._epoch
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
        return s._epoch
    s._rejections += 1
    return REJECTED


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def settle_success(s: BreakerState, epoch: cython.longlong, shared: cython.bint, count: cython.bint) -> cython.int:
    """A call of ``epoch`` succeeded: ``DONE``, or what to ask the store."""
    if count:
        s._successes += 1
    if epoch != s._epoch:
        return DONE
    if s._state == CLOSED:
        cleared: cython.bint = shared and s._failure_count != 0
        s._failure_count = 0
        return STORE_CLEAR if cleared else DONE
    if s._state == HALF_OPEN:
        if shared:
            return STORE_TRIAL_SUCCESS
        s._trial_successes += 1
        if s._trial_successes >= s._half_open_max:
            s._event = event(HALF_OPEN, CLOSED)
            s._state = CLOSED
            s._failure_count = 0
            s._trials = 0
            s._trial_successes = 0
    return DONE


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def settle_failure(
    s: BreakerState, epoch: cython.longlong, now: cython.double, shared: cython.bint, count: cython.bint
) -> cython.int:
    """A call of ``epoch`` failed at ``now``: ``DONE``, or ``STORE_FAILURE`` to let the store decide."""
    if count:
        s._failures += 1
    if epoch != s._epoch:
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
def release(s: BreakerState, epoch: cython.longlong, ignored: cython.bint) -> cython.bint:
    """A call ended without an outcome (interrupted, or an excluded error): give its trial slot back.

    True when it held one (a shared breaker then gives its permit back).
    """
    if ignored:
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
    """Back to closed; the counts of the state are cleared, the lifetime totals kept."""
    if s._state != CLOSED:
        s._event = event(s._state, CLOSED)
    s._state = CLOSED
    s._epoch += 1
    s._failure_count = 0
    s._trials = 0
    s._trial_successes = 0


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
    """Take a state read from a store; the epoch from now on. ``new_period``: calls running now are stale."""
    old: cython.int = s._state
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
