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

A limiter shared through a store (``store=``) spends *leases*: a process
takes ``ratelimit_lease_size`` permits at once from the shared GCRA (one
round trip, made by the dispatch), usable from a start time the store gives
(later than now when other processes reserved first), and spends them here
one per call, with no round trip. A lease is thrown away when it expires
(``_LEASE_EXPIRY`` after its start): permits charged long ago must not come
back as an extra burst. While the store is away the limiter falls back to a
local GCRA at its share of the rate (``ratelimit_share``).

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

# The modes of a limiter: its own GCRA; leases from a shared one; its share
# of the rate on its own GCRA while the store is away.
RL_LOCAL = cython.declare(cython.char, 0)
RL_SHARED = cython.declare(cython.char, 1)
RL_FALLBACK = cython.declare(cython.char, 2)
# What a shared limiter's take answers besides a delay: ask the store for a
# lease (no finite delay is this large: max_wait is finite), or "not shared
# any more" (the store went away meanwhile: take a permit the local way).
RL_ASK_STORE = cython.declare(cython.double, float("inf"))
RL_NOT_SHARED = cython.declare(cython.double, float("-inf"))
# A lease holds this many seconds of the rate (at least one permit, at most a
# burst): few round trips (at most ~1 / _LEASE_SPAN per second per process at
# steady state), and little held by a process that stops calling.
_LEASE_SPAN = cython.declare(cython.double, 0.02)
# Seconds after its start a lease may still be spent.
_LEASE_EXPIRY = cython.declare(cython.double, 0.5)


@cython.cclass
class RateLimiterState:
    """What a rate limiter decides from; both cores' ``RateLimiter`` extend it."""

    __slots__ = (
        "_admitted",
        "_base_interval",
        "_burst",
        "_fallback_tat",
        "_guard",
        "_interval",
        "_lease_end",
        "_lease_start",
        "_leased",
        "_mode",
        "_rejected",
        "_tat",
        "_tolerance",
        "_waited",
    )

    _interval: cython.double
    _base_interval: cython.double
    _lease_start: cython.double
    _lease_end: cython.double
    _leased: cython.longlong
    _mode: cython.char
    _tolerance: cython.double
    _tat: cython.double
    _fallback_tat: cython.double
    _burst: cython.int
    _guard: cython.char
    _admitted: cython.longlong
    _rejected: cython.longlong
    _waited: cython.longlong


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def ratelimit_configure(s: RateLimiterState, interval: cython.double, burst: cython.int) -> cython.void:
    """A new limiter: quiet (a full burst available), nothing counted."""
    s._interval = interval
    s._base_interval = interval
    s._mode = RL_LOCAL
    s._leased = 0
    s._lease_start = 0.0
    s._lease_end = 0.0
    s._burst = burst
    s._tolerance = interval * burst
    s._tat = -1.0e300  # long ago: any first reading of any clock is later
    s._fallback_tat = -1.0e300
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
    within ``max_wait``; the next one is ``d`` seconds away. A shared limiter
    answers ``RL_ASK_STORE`` when its lease cannot serve the call at once.
    """
    if s._mode == RL_SHARED:
        lease: cython.double = ratelimit_lease_next(s, now, max_wait)
        if lease > 0.0:
            return RL_ASK_STORE
        return lease
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
    if s._mode == RL_SHARED:
        # What this process's lease holds; none before it starts (other processes reserved the
        # shared limit first); a lease's worth when it holds none (the next call asks the store).
        if now + _SLACK < s._lease_start:
            return 0.0
        if s._leased > 0 and now < s._lease_end:
            return s._leased * 1.0
        return ratelimit_lease_size(s) * 1.0
    tat: cython.double = s._tat
    if tat < now:
        tat = now
    room: cython.double = (s._tolerance - (tat - now) + _SLACK) / s._interval
    if room <= 0.0:
        return 0.0
    if room > s._burst:
        return s._burst
    return room


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def ratelimit_lease_next(s: RateLimiterState, now: cython.double, max_wait: cython.double) -> cython.double:
    """A shared limiter's permit from its lease at ``now``.

    ``0.0``: taken. ``-d``: refused (counted), the lease starts ``d`` seconds
    from now, later than ``max_wait``. ``d > 0``: the lease starts in ``d``
    seconds, within ``max_wait``: wait, then ask again. ``RL_ASK_STORE``: no
    lease left (spent or expired): ask the store for one. ``RL_NOT_SHARED``:
    the limiter is not spending leases (the store went away).
    """
    if s._mode != RL_SHARED:
        return RL_NOT_SHARED
    if s._leased > 0:
        if now >= s._lease_end:
            s._leased = 0  # expired: charged too long ago to be spent now
            return RL_ASK_STORE
        if now + _SLACK >= s._lease_start:
            s._leased -= 1
            s._admitted += 1
            return 0.0
        wait: cython.double = s._lease_start - now
        if wait > max_wait:
            s._rejected += 1
            return -wait
        return wait
    return RL_ASK_STORE


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def ratelimit_lease_size(s: RateLimiterState) -> cython.longlong:
    """How many permits a shared limiter asks the store for at once: ``_LEASE_SPAN`` of the rate, 1 to ``burst``."""
    size: cython.double = _LEASE_SPAN / s._base_interval
    if size < 1.0:
        return 1
    if size > s._burst:
        return s._burst
    return int(size)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def ratelimit_lease_grant(
    s: RateLimiterState, now: cython.double, count: cython.longlong, delay: cython.double
) -> cython.void:
    """The store granted ``count`` permits usable ``delay`` seconds from ``now`` (the rest of an older one goes)."""
    if s._mode != RL_SHARED:
        return  # the store went away meanwhile: the fallback's share decides now
    if delay < 0.0:
        delay = 0.0
    s._leased = count
    s._lease_start = now + delay
    s._lease_end = now + delay + _LEASE_EXPIRY


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def ratelimit_share(s: RateLimiterState, mode: cython.char, processes: cython.longlong) -> cython.void:
    """Switch a shared limiter to leases (``RL_SHARED``) or to its local share (``RL_FALLBACK``).

    The share is ``1 / processes`` of the rate and of the burst (at least one
    permit): the processes that last shared the limit, together, stay within
    it. A switch drops what is left of the lease: the fallback starts with
    its share of the burst, the shared mode with a new lease. The local
    share goes on from what it spent before: a store that comes and goes
    again (a failover's flapping) does not grant a new burst at each switch.
    """
    if s._mode == RL_FALLBACK:
        s._fallback_tat = s._tat
    s._leased = 0
    s._tat = -1.0e300
    if processes < 1:
        processes = 1
    if mode == RL_FALLBACK:
        share: cython.longlong = s._burst // processes
        if share < 1:
            share = 1
        s._interval = s._base_interval * processes
        s._tolerance = s._interval * share
        s._tat = s._fallback_tat
    else:
        s._interval = s._base_interval
        s._tolerance = s._base_interval * s._burst
    s._mode = mode
