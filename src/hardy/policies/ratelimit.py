"""The rate limiter's decisions: GCRA, one number of state.

GCRA (the generic cell rate algorithm) keeps one number, the *theoretical
arrival time* ``tat``: when the limiter would be idle again had every permit
been spaced ``interval`` (``period / rate``) apart. A permit asked for at
``now`` is allowed if ``max(tat, now) + interval - now`` is at most
``burst * interval`` (the burst tolerance): then ``tat`` moves on by one
interval. After a quiet period ``tat`` lies in the past, so ``burst``
permits pass at once; at steady state one passes per interval.

A call that may wait takes its permit in advance (``tat`` moves on) and is
told how long to sleep before using it: permits are reserved in the order
calls ask, so waiters are served first come, first served and a newcomer can
never overtake one. A waiter that gives up (cancelled, interrupted) gives its
permit back if nobody reserved after it (``ratelimit_give_back``); otherwise
its slot is lost, which only ever lowers the rate, never raises it.

A transition never reads a clock, sleeps or takes a lock: the dispatch does.

Example (in the dispatch, under its lock)::

    delay = ratelimit_take(state, clock(), max_wait)
    if delay < 0.0:
        raise RateLimitExceededError(name, -delay)
"""

try:
    import cython
except ModuleNotFoundError:  # the twin, where Cython is not installed
    from hardy.policies import _shadow as cython  # type: ignore[no-redef]

# Readings a nanosecond apart are the same moment: without this slack the sum
# of many intervals (0.1 is not exact in binary) can refuse the last permit
# of a burst by a rounding error.
_SLACK = cython.declare(cython.double, 1e-9)


@cython.cclass
class RateLimiterState:
    """What a rate limiter decides from; both cores' ``RateLimiter`` extend it."""

    __slots__ = ("_admitted", "_burst", "_guard", "_interval", "_rejected", "_tat", "_tolerance", "_waited")

    _interval: cython.double
    _tolerance: cython.double
    _tat: cython.double
    _burst: cython.int
    _guard: cython.char
    _admitted: cython.longlong
    _rejected: cython.longlong
    _waited: cython.longlong


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def ratelimit_configure(s: RateLimiterState, interval: cython.double, burst: cython.int) -> None:
    """A new limiter: quiet (a full burst available), nothing counted."""
    s._interval = interval
    s._burst = burst
    s._tolerance = interval * burst
    s._tat = -1.0e300  # long ago: any first reading of any clock is later
    s._guard = 0
    s._admitted = 0
    s._rejected = 0
    s._waited = 0


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def ratelimit_take(s: RateLimiterState, now: cython.double, max_wait: cython.double) -> cython.double:
    """Take a permit at ``now``: seconds to wait before using it (``0.0``: at once).

    A negative result ``-d`` means refused (counted): no permit frees up
    within ``max_wait``; the next one is ``d`` seconds away.
    """
    tat: cython.double = s._tat
    if tat < now:
        tat = now
    new_tat: cython.double = tat + s._interval
    delay: cython.double = new_tat - s._tolerance - now
    if delay <= _SLACK:
        s._tat = new_tat
        s._admitted += 1
        return 0.0
    if delay <= max_wait:
        s._tat = new_tat
        s._admitted += 1
        s._waited += 1
        return delay
    s._rejected += 1
    return -delay


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def ratelimit_give_back(s: RateLimiterState, reserved: cython.double) -> cython.bint:
    """A waiter whose permit moved ``tat`` to ``reserved`` gives up before using it.

    Its permit comes back if nobody reserved after it (True); else the slot
    stays taken (False), which keeps every later waiter's time valid.
    """
    s._admitted -= 1
    s._waited -= 1
    if s._tat == reserved:
        s._tat = reserved - s._interval
        return True
    return False


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def ratelimit_available(s: RateLimiterState, now: cython.double) -> cython.double:
    """How many permits could be taken at ``now`` without waiting (a fraction: the dispatch rounds down)."""
    tat: cython.double = s._tat
    if tat < now:
        tat = now
    room: cython.double = (s._tolerance - (tat - now) + _SLACK) / s._interval
    if room <= 0.0:
        return 0.0
    if room > s._burst:
        return s._burst
    return room
