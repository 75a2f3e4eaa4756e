"""The bulkhead's decisions: how many calls are inside, how many wait.

A bulkhead admits at most ``max`` calls at once. A call that finds it full
queues (if it may wait) and is handed a slot by a leaving call, first come
first served: a leaving call that sees a waiter does not free its slot but
passes it on (``HAND_OFF``), so the number inside never drops and rises again
around a hand-off, and a newcomer never overtakes a waiter (``enter`` admits
only when nobody waits).

The dispatch keeps the queue of waiters itself; this module only counts. A
transition never reads a clock, wakes a waiter or takes a lock.

Example (a call over the limit, in the dispatch, under its lock)::

    if not bulkhead_enter_or_queue(state):
        queue.append(waiter)      # then wait to be handed a slot
"""

try:
    import cython
except ModuleNotFoundError:  # the twin, where Cython is not installed
    from hardy.policies import _shadow as cython  # type: ignore[no-redef]

# What bulkhead_leave() returns.
LEFT = cython.declare(cython.int, 0)  # the slot is free again
HAND_OFF = cython.declare(cython.int, 1)  # the slot goes to the first waiter
NOT_INSIDE = cython.declare(cython.int, 2)  # nothing was inside: a release without an acquire


@cython.cclass
class BulkheadState:
    """What a bulkhead decides from; both cores' ``Bulkhead`` extend it."""

    __slots__ = ("_active", "_admitted", "_guard", "_max", "_peak", "_rejected", "_waited", "_waiting")

    _max: cython.int
    _active: cython.int
    _waiting: cython.int
    _peak: cython.int
    _guard: cython.char
    _admitted: cython.longlong
    _rejected: cython.longlong
    _waited: cython.longlong


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def bulkhead_configure(s: BulkheadState, max_concurrent: cython.int) -> cython.void:
    """A new bulkhead: empty, nobody waiting, nothing counted."""
    s._max = max_concurrent
    s._active = 0
    s._waiting = 0
    s._peak = 0
    s._guard = 0
    s._admitted = 0
    s._rejected = 0
    s._waited = 0


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def bulkhead_enter(s: BulkheadState) -> cython.bint:
    """Take a slot if one is free and nobody waits for one; False: full (or waiters first)."""
    if s._active < s._max and s._waiting == 0:
        s._active += 1
        s._admitted += 1
        if s._active > s._peak:
            s._peak = s._active
        return True
    return False


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def bulkhead_enter_or_queue(s: BulkheadState) -> cython.bint:
    """Take a slot as ``bulkhead_enter`` does; else start waiting for one (False)."""
    if bulkhead_enter(s):
        return True
    s._waiting += 1
    return False


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def bulkhead_reject(s: BulkheadState) -> cython.void:
    """A call is turned away (full and no wait allowed, or its wait ran out)."""
    s._rejected += 1


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def bulkhead_withdraw(s: BulkheadState) -> cython.void:
    """A waiter gives up before it was handed a slot (timed out, cancelled, interrupted)."""
    s._waiting -= 1


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def bulkhead_leave_alone(s: BulkheadState) -> cython.bint:
    """Free a slot if nobody waits (no queue to touch); False: take the slow way (``bulkhead_leave``)."""
    if s._waiting == 0 and s._active > 0:
        s._active -= 1
        return True
    return False


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def bulkhead_leave(s: BulkheadState) -> cython.int:
    """A call leaves: free its slot, or hand it to the first waiter (``HAND_OFF``)."""
    if s._active <= 0:
        return NOT_INSIDE
    if s._waiting > 0:
        s._waiting -= 1
        s._admitted += 1
        s._waited += 1
        return HAND_OFF
    s._active -= 1
    return LEFT
