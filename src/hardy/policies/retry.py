"""The retry policy's decisions: how long to wait after a failed attempt, and whether to try again.

Both cores run the same loop (``hardy._c.retry`` and ``hardy._py.retry``):
call; on a failure or a result that asks for a retry, stop if
:func:`out_of_attempts`; else draw the delay (:func:`delay`), stop if
:func:`out_of_time`, tell ``on_retry``, sleep, and try again. What the loop
does with user code (the function, the predicate, the hook, the random
source, the clock, the sleep) is the dispatch; what it decides is here.

Example::

    wait = delay(policy, attempt, previous, random_draw, base_delay(policy, attempt))
"""

try:
    import cython
except ModuleNotFoundError:  # the twin, where Cython is not installed
    from hardy.policies import _shadow as cython  # type: ignore[no-redef]

# The jitter modes, as the cores keep them (hardy._validate maps hardy.Jitter to them).
JITTER_NONE = cython.declare(cython.int, 0)
JITTER_FULL = cython.declare(cython.int, 1)
JITTER_EQUAL = cython.declare(cython.int, 2)
JITTER_DECORRELATED = cython.declare(cython.int, 3)

INFINITY = cython.declare(cython.double, float("inf"))


@cython.cclass
class RetryPolicy:
    """What a retry decides from; both cores' ``RetryConfig`` extend it."""

    __slots__ = (
        "_deadline",
        "_factor",
        "_has_deadline",
        "_initial",
        "_jitter",
        "_max_attempts",
        "_max_delay",
        "_retry_circuit_open",
    )

    _max_attempts: cython.int
    _jitter: cython.int
    _retry_circuit_open: cython.bint
    _has_deadline: cython.bint
    _factor: cython.double
    _initial: cython.double
    _max_delay: cython.double
    _deadline: cython.double


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def configure_retry(
    p: RetryPolicy,
    max_attempts: cython.int,
    factor: cython.double,
    initial: cython.double,
    max_delay: cython.double,
    jitter: cython.int,
    retry_circuit_open: cython.bint,
    has_deadline: cython.bint,
    deadline: cython.double,
) -> cython.void:
    p._max_attempts = max_attempts
    p._factor = factor
    p._initial = initial
    p._max_delay = max_delay
    p._jitter = jitter
    p._retry_circuit_open = retry_circuit_open
    p._has_deadline = has_deadline
    p._deadline = deadline


@cython.cfunc
@cython.exceptval(check=False)
def base_delay(p: RetryPolicy, attempt: cython.long) -> cython.double:
    """``min(max_delay, initial_delay * backoff_factor ** (attempt - 1))``, before jitter."""
    base: cython.double
    if p._initial == 0.0:
        return 0.0
    try:
        base = p._initial * p._factor ** (attempt - 1)
    except OverflowError:  # only uncompiled: C's pow() gives inf
        base = INFINITY
    if not base < p._max_delay:
        base = p._max_delay
    return base


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def draws(p: RetryPolicy) -> cython.bint:
    """Whether a delay needs a random number (any jitter but none)."""
    return p._jitter != JITTER_NONE


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def delay(p: RetryPolicy, previous: cython.double, r: cython.double, base: cython.double) -> cython.double:
    """The wait after a failure whose base delay is ``base``; ``r`` is the random draw in ``[0, 1)``.

    ``previous`` is the delay slept before (``-1`` for none), for
    decorrelated jitter. The result always lies in ``[0, max_delay]``; the
    operations are those of both cores, so the same draws give bit-identical
    delays.
    """
    result: cython.double
    half: cython.double
    low: cython.double
    high: cython.double
    if p._jitter == JITTER_NONE:
        result = base
    elif p._jitter == JITTER_FULL:
        result = r * base
    elif p._jitter == JITTER_EQUAL:
        half = base * 0.5
        result = half + r * half
    else:  # JITTER_DECORRELATED
        low = p._initial
        high = 3.0 * (previous if previous >= 0.0 else low)
        if high < low:
            high = low
        result = low + r * (high - low)
    if not result >= 0.0:
        result = 0.0
    if result > p._max_delay:
        result = p._max_delay
    return result


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def out_of_attempts(p: RetryPolicy, attempt: cython.long) -> cython.bint:
    """Attempt ``attempt`` (1-based) was the last one allowed."""
    return attempt >= p._max_attempts


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def out_of_time(p: RetryPolicy, elapsed: cython.double, wait: cython.double) -> cython.bint:
    """Sleeping ``wait`` more after ``elapsed`` seconds would end past the deadline."""
    return p._has_deadline and elapsed + wait > p._deadline


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def attempts_exhausted(p: RetryPolicy, attempt: cython.long, cap: cython.long) -> cython.bint:
    """Attempt ``attempt`` was the last one: by ``max_attempts``, or by the testing cap ``cap`` (0: none).

    ``hardy.testing.instant_retries(max_attempts=n)`` sets the cap, so a test
    can stop every retry after ``n`` attempts without touching the code under test.
    """
    return attempt >= p._max_attempts or (cap > 0 and attempt >= cap)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def needs_backoff(asked: cython.double) -> cython.bint:
    """Whether the computed backoff is wanted: ``retry_after`` asked for no delay (``-1``: it returned None)."""
    return asked < 0.0


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def retry_wait(asked: cython.double, computed: cython.double) -> cython.double:
    """The wait before the next attempt: what ``retry_after`` asked for, as is, else the backoff.

    A delay the caller asked for (a ``Retry-After`` header) is not capped by
    ``max_delay``, which bounds the computed backoff only: sleeping less than
    a server asked for only earns another rejection. ``deadline`` still
    bounds it (:func:`out_of_time`).
    """
    return computed if asked < 0.0 else asked
