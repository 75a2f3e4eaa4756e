"""The retry budget's decisions: Finagle's token arithmetic over a sliding window.

A budget is shared by every retried function that names it. Each call
*deposits* ``BUDGET_SCALE`` units (none when ``ratio`` is 0); each retry
*withdraws* ``int(BUDGET_SCALE / ratio)`` units (1 when ``ratio`` is 0). A
retry is allowed when the *balance*, the units in the window plus a fixed
*reserve* of ``floor(min_per_second * window)`` retries' worth, is at least one
withdrawal; otherwise it is not attempted. Deposits and withdrawals expire
with the window: it is cut into ``BUDGET_SLICES`` slices of ``window / 10``
seconds and the balance counts the current slice and the nine before it (so
it covers between 0.9 and 1.0 window), as Finagle's ``TokenBucket`` over its
``WindowedAdder`` does. Over any window, then, at most
``floor(min_per_second * window) + ratio * calls`` retries are made (up to the
rounding of ``int(1000 / ratio)``).

The hot path only counts calls (``_calls``, a plain add, no clock): the
deposits are folded into the window the next time the budget reads the
clock, on the retry path (:func:`budget_roll`). They are spread evenly over
the time since the budget last looked, so deposits land in the slice they
were made in whenever the budget is looked at at least once a slice, and are
an even estimate over a longer quiet spell.

A transition never reads a clock or takes a lock: the dispatch does.

Example (in the dispatch, under its lock)::

    if not budget_withdraw(state, clock()):
        ...  # give up: raise the last error now
"""

try:
    import cython
except ModuleNotFoundError:  # the twin, where Cython is not installed
    from hardy.policies import _shadow as cython  # type: ignore[no-redef]

BUDGET_SLICES = cython.declare(cython.int, 10)
BUDGET_SCALE = cython.declare(cython.double, 1000.0)
# Finagle's Double.toInt saturates here; a larger withdrawal means "almost never".
BUDGET_MAX_WITHDRAWAL = cython.declare(cython.double, 2147483647.0)
# Reserves beyond this are unlimited for every purpose and keep the sums in range.
BUDGET_MAX_RESERVE = cython.declare(cython.double, 4611686018427387904.0)


@cython.cclass
class BudgetState:
    """What a retry budget decides from; both cores' budget ledgers extend it."""

    __slots__ = (
        "_calls",
        "_deposit",
        "_exhausted",
        "_folded",
        "_guard",
        "_looked",
        "_origin",
        "_r0",
        "_r1",
        "_r2",
        "_r3",
        "_r4",
        "_r5",
        "_r6",
        "_r7",
        "_r8",
        "_r9",
        "_reserve",
        "_slice",
        "_slice_no",
        "_sum",
        "_withdrawal",
        "_withdrawn",
    )

    _calls: cython.longlong  # calls counted, ever (the hot path adds one)
    _folded: cython.longlong  # of them, those already in the window
    _deposit: cython.longlong  # units a call deposits
    _withdrawal: cython.longlong  # units a retry costs
    _reserve: cython.longlong  # units always there (the floor)
    _sum: cython.longlong  # the ten slices' units
    _withdrawn: cython.longlong  # retries allowed
    _exhausted: cython.longlong  # retries refused
    _slice_no: cython.longlong  # the current slice, counted from _origin
    _origin: cython.double
    _slice: cython.double  # seconds per slice
    _looked: cython.double  # when the budget last read the clock
    _guard: cython.char
    # The ring of slices (a C array is not expressible in pure mode's twin).
    _r0: cython.longlong
    _r1: cython.longlong
    _r2: cython.longlong
    _r3: cython.longlong
    _r4: cython.longlong
    _r5: cython.longlong
    _r6: cython.longlong
    _r7: cython.longlong
    _r8: cython.longlong
    _r9: cython.longlong


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def budget_configure(
    s: BudgetState, ratio: cython.double, min_per_second: cython.double, window: cython.double, now: cython.double
) -> cython.void:
    """A new budget at ``now``: Finagle's amounts, an empty window, nothing counted."""
    withdrawal: cython.double
    reserve: cython.double
    if ratio == 0.0:
        s._deposit = 0
        withdrawal = 1.0
    else:
        s._deposit = cython.cast(cython.longlong, BUDGET_SCALE)
        withdrawal = BUDGET_SCALE / ratio
        if withdrawal > BUDGET_MAX_WITHDRAWAL:
            withdrawal = BUDGET_MAX_WITHDRAWAL
    s._withdrawal = cython.cast(cython.longlong, withdrawal)
    reserve = min_per_second * window
    if reserve < BUDGET_MAX_RESERVE:
        retries: cython.double = cython.cast(cython.double, cython.cast(cython.longlong, reserve))
        reserve = retries * cython.cast(cython.double, s._withdrawal)
    if reserve > BUDGET_MAX_RESERVE:
        reserve = BUDGET_MAX_RESERVE
    s._reserve = cython.cast(cython.longlong, reserve)
    s._slice = window / BUDGET_SLICES
    s._origin = now
    s._looked = now
    s._slice_no = 0
    s._calls = 0
    s._folded = 0
    s._sum = 0
    s._withdrawn = 0
    s._exhausted = 0
    s._guard = 0
    budget_wipe(s)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def budget_deposit(s: BudgetState) -> cython.void:
    """A call: one more deposit, folded into the window later (the compiled dispatch adds atomically)."""
    s._calls += 1


@cython.cfunc
@cython.exceptval(check=False)
def budget_wipe(s: BudgetState) -> cython.void:
    s._r0 = s._r1 = s._r2 = s._r3 = s._r4 = s._r5 = s._r6 = s._r7 = s._r8 = s._r9 = 0
    s._sum = 0


@cython.cfunc
@cython.exceptval(check=False)
def budget_slot_add(s: BudgetState, i: cython.int, units: cython.longlong) -> cython.void:
    """Add ``units`` to slice ``i`` of the ring (and to the sum)."""
    s._sum += units
    if i == 0:
        s._r0 += units
    elif i == 1:
        s._r1 += units
    elif i == 2:
        s._r2 += units
    elif i == 3:
        s._r3 += units
    elif i == 4:
        s._r4 += units
    elif i == 5:
        s._r5 += units
    elif i == 6:
        s._r6 += units
    elif i == 7:
        s._r7 += units
    elif i == 8:
        s._r8 += units
    else:
        s._r9 += units


@cython.cfunc
@cython.exceptval(check=False)
def budget_slot_clear(s: BudgetState, i: cython.int) -> cython.void:
    """Slice ``i`` expires: its units leave the sum."""
    units: cython.longlong
    if i == 0:
        units = s._r0
        s._r0 = 0
    elif i == 1:
        units = s._r1
        s._r1 = 0
    elif i == 2:
        units = s._r2
        s._r2 = 0
    elif i == 3:
        units = s._r3
        s._r3 = 0
    elif i == 4:
        units = s._r4
        s._r4 = 0
    elif i == 5:
        units = s._r5
        s._r5 = 0
    elif i == 6:
        units = s._r6
        s._r6 = 0
    elif i == 7:
        units = s._r7
        s._r7 = 0
    elif i == 8:
        units = s._r8
        s._r8 = 0
    else:
        units = s._r9
        s._r9 = 0
    s._sum -= units


@cython.cfunc
@cython.exceptval(check=False)
def budget_roll(s: BudgetState, now: cython.double) -> cython.void:
    """Bring the window to ``now``: fold the calls counted since the last look, expire old slices.

    The new calls' deposits are spread evenly over the time since the last
    look (each slice gets its share, cumulatively rounded down, the rest in
    the current slice), so the total is exact and only the timing is an
    estimate. A clock that went back counts as not having moved.
    """
    calls: cython.longlong = s._calls
    fresh: cython.longlong = calls - s._folded
    units: cython.longlong = fresh * s._deposit
    given: cython.longlong = 0
    cum: cython.longlong
    span: cython.double
    end: cython.double
    target: cython.longlong
    n: cython.longlong
    s._folded = calls
    if now < s._looked:
        now = s._looked
    span = now - s._looked
    target = cython.cast(cython.longlong, (now - s._origin) / s._slice)
    n = s._slice_no
    if target - n > BUDGET_SLICES:
        # Everything in the ring expires: start the walk ten slices back.
        budget_wipe(s)
        n = target - BUDGET_SLICES
    while n < target:
        if units > 0 and span > 0.0:
            end = s._origin + cython.cast(cython.double, n + 1) * s._slice
            cum = cython.cast(cython.longlong, cython.cast(cython.double, units) * ((end - s._looked) / span))
            if cum > units:
                cum = units
            if cum > given:
                budget_slot_add(s, cython.cast(cython.int, n % BUDGET_SLICES), cum - given)
                given = cum
        n += 1
        budget_slot_clear(s, cython.cast(cython.int, n % BUDGET_SLICES))
    s._slice_no = target
    if units > given:
        budget_slot_add(s, cython.cast(cython.int, target % BUDGET_SLICES), units - given)
    s._looked = now


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def budget_withdraw(s: BudgetState, now: cython.double) -> cython.bint:
    """May a retry be made at ``now``? If so its withdrawal is taken; either way it is counted."""
    budget_roll(s, now)
    if s._reserve + s._sum >= s._withdrawal:
        budget_slot_add(s, cython.cast(cython.int, s._slice_no % BUDGET_SLICES), -s._withdrawal)
        s._withdrawn += 1
        return True
    s._exhausted += 1
    return False


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def budget_balance(s: BudgetState, now: cython.double) -> cython.longlong:
    """How many retries could be made at ``now`` (never below 0)."""
    balance: cython.longlong
    budget_roll(s, now)
    balance = (s._reserve + s._sum) // s._withdrawal
    return balance if balance > 0 else 0


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def budget_record(s: BudgetState, now: cython.double, allowed: cython.bint) -> cython.bint:
    """The store decided (a budget shared by processes): keep the local accounting as if this budget had."""
    budget_roll(s, now)
    if allowed:
        budget_slot_add(s, cython.cast(cython.int, s._slice_no % BUDGET_SLICES), -s._withdrawal)
        s._withdrawn += 1
    else:
        s._exhausted += 1
    return allowed
