"""The sync deadlines' decisions: when a deadline is due, what the timer does then, and when a call is late.

The registries of both cores (``hardy._c.deadlines`` and
``hardy._py.deadlines``) walk their active deadlines, innermost first, and
ask :func:`on_due` about each one that is due; :mod:`hardy._safe_points`
says what the target thread is doing (the *verdict*). The timer thread that
drives them is ``hardy._deadlines``.

Example::

    action = on_due(entry_fired, verdict, already_delivered_to_this_thread)
"""

try:
    import cython
except ModuleNotFoundError:  # the twin, where Cython is not installed
    from hardy.policies import _shadow as cython  # type: ignore[no-redef]

# Seconds. A call that swallowed its deadline and keeps running gets it again
# after REDELIVER; a thread at an unsafe point is looked at again after
# DEFER; the timer never sleeps longer than TICK while deadlines exist, and
# exits after IDLE_EXIT without any.
REDELIVER = cython.declare(cython.double, 0.02)
DEFER = cython.declare(cython.double, 0.001)
TICK = cython.declare(cython.double, 0.01)
IDLE_EXIT = cython.declare(cython.double, 0.5)

# What the target thread is doing (hardy._safe_points.verdict).
FREE = cython.declare(cython.int, 0)
UNSAFE = cython.declare(cython.int, 1)
HANDLING = cython.declare(cython.int, 2)

# What to do with a due deadline.
DELIVER = cython.declare(cython.int, 0)  # raise in the thread now; look again after REDELIVER
WAIT = cython.declare(cython.int, 1)  # an unsafe point: look again after DEFER
HOLD = cython.declare(cython.int, 2)  # still handling the deadline: look again after REDELIVER
LATER = cython.declare(cython.int, 3)  # another deadline of the thread was just delivered


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def due_at(fired: cython.bint, deadline: cython.double, next_delivery: cython.double) -> cython.double:
    """When a deadline next needs the timer: its deadline, or its next re-delivery once it has fired."""
    return next_delivery if fired else deadline


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def on_due(fired: cython.bint, verdict: cython.int, delivered: cython.bint) -> cython.int:
    """What to do with a deadline that is due, given what its thread is doing.

    One exception at a time per thread: once one deadline of a thread is
    delivered, the others wait. A thread at an unsafe point waits a short
    tick; one still handling the deadline's exception is not given it again
    (its cleanup runs to its end), though a first delivery always happens.
    """
    if delivered:
        return LATER
    if verdict == UNSAFE:
        return WAIT
    if fired and verdict == HANDLING:
        return HOLD
    return DELIVER


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def next_look(action: cython.int, now: cython.double) -> cython.double:
    """When the timer looks at a deadline again after ``action``."""
    return now + (DEFER if action == WAIT else REDELIVER)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def late(now: cython.double, deadline: cython.double) -> cython.bint:
    """A call that ends at ``now`` is past its deadline: its result does not count."""
    return now >= deadline


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def claims(fired: cython.bint, deadline: cython.double, now: cython.double) -> cython.bint:
    """An outer deadline that has fired or passed owns an ``Expired`` its inner calls see."""
    return fired or deadline <= now
