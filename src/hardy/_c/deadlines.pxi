# The compiled core's deadline registry and its timed wrapper, served by the
# timer thread of hardy._deadlines. What to do with a due deadline is decided
# in hardy/policies/deadlines.py, as in the twin's registry (hardy._py.deadlines). Every operation below runs
# no Python code, so under the GIL each is atomic with respect to the timer
# thread and to deliveries: no lock, no window between the wrapped call's
# return and the removal of its deadline, and no window between looking at a
# thread (hardy._safe_points) and raising in it. Free-threaded builds lock a
# PyMutex and ask hardy._safe_points in Python.

cdef object _Expired = _deadlines.Expired
cdef object _wake_timer = _deadlines.wake
cdef list _sp_rules = _safe_points.rules
cdef set _sp_exempt = _safe_points.exempt
cdef dict _sp_verdicts = _safe_points.verdicts
cdef list _sp_gc_callbacks = _safe_points.gc_callbacks
cdef object _sp_snapshot = _safe_points.snapshot
cdef object _sp_verdict = _safe_points.verdict
cdef object _dl_noop = _deadlines.noop
cdef object _report_timeout = _timeout_log.timed_out
cdef object _report_fallback = _timeout_log.fallback_answered
cdef dict _dl_threads = {}         # thread ident -> _ThreadDeadlines (kept while any is active)
cdef unsigned long _dl_cached_ident = 0
cdef _ThreadDeadlines _dl_cached = None  # _dl_threads[_dl_cached_ident], GIL builds only
cdef double _dl_next_wake = float("inf")
cdef char _dl_mutex


cdef inline double _dl_now() noexcept:
    """time.monotonic(), from C."""
    if HARDY_FAST_CLOCK:
        return hardy_now()
    return c_monotonic()


@cython.final
@cython.freelist(8)
cdef class _Deadline:
    cdef double deadline
    cdef double next_delivery
    cdef _ThreadDeadlines owner
    cdef _Deadline outer            # the next deadline out in the same thread, or None
    cdef bint active
    cdef bint fired


@cython.final
cdef class _ThreadDeadlines:
    """One thread's active deadlines, innermost first, as a linked stack.

    Linked, not a list: a list that grows to one entry and back on every call
    reallocates twice per call, which costs more than the rest of a timeout.
    """

    cdef _Deadline top
    cdef unsigned long thread
    cdef size_t state               # the thread's PyThreadState, for free-threaded builds


cdef _ThreadDeadlines _dl_owner(unsigned long ident):
    """The deadlines of thread ``ident`` (the caller holds the mutex)."""
    global _dl_cached_ident, _dl_cached
    cdef _ThreadDeadlines owner
    if HARDY_REUSE_AWAITERS and ident == _dl_cached_ident and _dl_cached is not None:
        # The thread that timed a call last usually times the next one:
        # skip the dict lookup, and the int it needs.
        return _dl_cached
    key = PyLong_FromUnsignedLong(ident)
    owner = _dl_threads.get(<object>key)
    if owner is None:
        owner = _ThreadDeadlines.__new__(_ThreadDeadlines)
        owner.thread = ident
        if not HARDY_INSPECT_IN_C:
            owner.state = <size_t>PyThreadState_Get()
        _dl_threads[<object>key] = owner
    xdecref(key)
    if HARDY_REUSE_AWAITERS:
        _dl_cached_ident = ident
        _dl_cached = owner
    return owner


cdef _Deadline _dl_enter(double seconds, bint* early):
    global _dl_next_wake
    cdef _Deadline entry = _Deadline.__new__(_Deadline)
    cdef _ThreadDeadlines owner
    entry.deadline = _dl_now() + seconds
    entry.active = True
    hardy_lock(&_dl_mutex)
    owner = _dl_owner(PyThread_get_thread_ident())
    entry.owner = owner
    entry.outer = owner.top
    owner.top = entry
    early[0] = entry.deadline < _dl_next_wake
    if early[0]:
        _dl_next_wake = entry.deadline
    hardy_unlock(&_dl_mutex)
    return entry


cdef void _dl_leave(_Deadline entry) noexcept:
    cdef _ThreadDeadlines owner = entry.owner
    cdef _Deadline inner
    hardy_lock(&_dl_mutex)
    entry.active = False
    if owner.top is entry:
        owner.top = entry.outer  # the innermost, as nearly always
    else:
        inner = owner.top
        while inner is not None and inner.outer is not entry:
            inner = inner.outer
        if inner is not None:
            inner.outer = entry.outer
    if entry.fired and hardy_pending_is(<PyObject*>_Expired):
        # Fired but not raised yet (the call returned first): cancel it.
        if HARDY_CANCEL_BY_RAISING:
            hardy_unlock(&_dl_mutex)
            _dl_take_pending()
            return
        PyThreadState_SetAsyncExc(owner.thread, NULL)
    hardy_unlock(&_dl_mutex)


cdef void _dl_take_pending() noexcept:
    """Let the pending ``Expired`` raise in a no-op call and drop it (see HARDY_CANCEL_BY_RAISING)."""
    cdef PyObject* etype
    cdef PyObject* evalue
    cdef PyObject* etb
    cdef PyObject* result
    PyErr_Fetch(&etype, &evalue, &etb)  # the call's own error, if any, is kept
    result = PyObject_CallNoArgs(<PyObject*>_dl_noop)
    if result != NULL:
        xdecref(result)
    elif PyErr_ExceptionMatches(<PyObject*>_Expired):
        PyErr_Clear()
    else:
        PyErr_WriteUnraisable(<PyObject*>_dl_noop)
    PyErr_Restore(etype, evalue, etb)


cdef bint _dl_claimed_elsewhere(_Deadline entry, double now) noexcept:
    """Whether an active deadline of ``entry``'s thread (an outer one) has fired or passed."""
    cdef _Deadline other
    cdef bint claimed = False
    hardy_lock(&_dl_mutex)
    other = entry.owner.top
    while other is not None:
        if other.active and claims(other.fired, other.deadline, now):
            claimed = True
            break
        other = other.outer
    hardy_unlock(&_dl_mutex)
    return claimed


cdef int _dl_verdict(unsigned long thread, size_t state) noexcept:
    """FREE, UNSAFE or HANDLING (hardy._safe_points) for a thread whose deadline is due."""
    if HARDY_INSPECT_IN_C:
        return hardy_verdict(
            thread,
            <PyObject*>_sp_rules,
            <PyObject*>_sp_exempt,
            <PyObject*>_sp_verdicts,
            <PyObject*>_sp_gc_callbacks,
            <PyObject*>_Expired,
        )
    try:
        return _sp_verdict(thread, _sp_snapshot(), _Expired, state)
    except BaseException:
        return 0  # the deadline is the promise: deliver


cdef double _dl_fire_due(double now) noexcept:
    global _dl_next_wake
    cdef double soonest = float("inf")
    cdef double due
    cdef bint delivered
    cdef int verdict
    cdef int action
    cdef _Deadline entry
    cdef _ThreadDeadlines owner
    hardy_lock(&_dl_mutex)
    for owner in _dl_threads.values():
        delivered = False
        verdict = -1
        entry = owner.top
        while entry is not None:  # innermost first, as in the twin
            if entry.active:
                due = due_at(entry.fired, entry.deadline, entry.next_delivery)
                if due <= now:
                    if delivered:
                        action = LATER
                    else:
                        if verdict < 0:  # looked at once per thread, and only when needed
                            verdict = _dl_verdict(owner.thread, owner.state)
                        action = on_due(entry.fired, verdict, False)
                    due = next_look(action, now)
                    if action == DELIVER:
                        entry.fired = True
                        PyThreadState_SetAsyncExc(owner.thread, <PyObject*>_Expired)
                        delivered = True
                    if action == DELIVER or action == HOLD:
                        entry.next_delivery = due
                if due < soonest:
                    soonest = due
            entry = entry.outer
    if soonest > now + TICK:
        soonest = now + TICK
    _dl_next_wake = soonest
    hardy_unlock(&_dl_mutex)
    return soonest


@cython.final
cdef class _CompiledDeadlines:
    """The compiled registry as the timer thread sees it."""

    def fire_due(self, double now):
        return _dl_fire_due(now)

    def is_empty(self):
        cdef _ThreadDeadlines owner
        for owner in _dl_threads.values():
            if owner.top is not None:
                return False
        return True

    def retire(self):
        global _dl_next_wake, _dl_cached
        cdef _ThreadDeadlines owner
        hardy_lock(&_dl_mutex)
        for owner in _dl_threads.values():
            if owner.top is not None:
                hardy_unlock(&_dl_mutex)
                return False
        # From now on a new deadline is "early" and wakes a new timer.
        _dl_threads.clear()
        _dl_cached = None
        _dl_next_wake = float("inf")
        hardy_unlock(&_dl_mutex)
        return True

    def after_fork(self, thread):
        global _dl_next_wake, _dl_cached
        hardy_reset_mutex(&_dl_mutex)  # a thread that is gone may have held it
        _dl_cached = None
        survivor = _dl_threads.get(thread)
        _dl_threads.clear()
        if survivor is not None:
            _dl_threads[thread] = survivor
        _dl_next_wake = float("inf")

    def verdict(self, thread):
        """What the timer would do to ``thread`` now (for tests and benchmarks)."""
        return _dl_verdict(thread, 0)


_deadlines.add_registry(_CompiledDeadlines())


@cython.final
cdef class _Timed(_Wrapper):
    """A sync function under a deadline (see ``timed``)."""

    cdef double _limit
    cdef str _operation
    cdef object _fallback

    def __repr__(self):
        return f"<{self._operation} with a {self._limit}s timeout>"


cdef PyObject* _timed_vectorcall(PyObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames) except NULL:
    cdef _Timed t = <_Timed>self
    cdef bint early = False
    cdef _Deadline entry = _dl_enter(t._limit, &early)
    cdef PyObject* result = NULL
    cdef PyObject* when
    cdef bint is_late
    if early:
        when = PyFloat_FromDouble(entry.deadline)
        if when != NULL:
            result = PyObject_CallOneArg(<PyObject*>_wake_timer, when)
            xdecref(when)
        if result != NULL:
            xdecref(result)
            result = PyObject_Vectorcall(<PyObject*>t._func, args, nargsf, kwnames)
    else:
        result = PyObject_Vectorcall(<PyObject*>t._func, args, nargsf, kwnames)
    # A call that ends after its deadline never returns as if in time, even
    # when no bytecode ran to raise the deadline (a long C call, or a timer
    # starved of the GIL): the clock decides, not whether the timer fired.
    is_late = late(_dl_now(), entry.deadline)
    _dl_leave(entry)
    if result != NULL:
        if not is_late:
            return result
        xdecref(result)
    elif not PyErr_ExceptionMatches(<PyObject*>_Expired):
        return NULL  # the call's own error, even one raised as the deadline passed
    elif not (entry.fired or is_late) and _dl_claimed_elsewhere(entry, _dl_now()):
        return NULL  # an outer deadline's: its own wrapper converts it
    else:
        PyErr_Clear()  # ours, wherever it landed: it never reaches the caller
    return _timed_out(t, args, nargsf, kwnames)


cdef PyObject* _timed_out(_Timed t, PyObject* const* args, size_t nargsf, PyObject* kwnames) except NULL:
    cdef PyObject* result
    error = _report_timeout(t._operation, t._limit)
    if t._fallback is None:
        PyErr_SetObject(<PyObject*>HardyTimeoutError, <PyObject*>error)
        return NULL
    result = PyObject_Vectorcall(<PyObject*>t._fallback, args, nargsf, kwnames)
    if result != NULL:
        try:
            _report_fallback(t._operation)
        except BaseException:
            xdecref(result)
            raise
    return result


hardy_enable_vectorcall(_Timed, _vectorcall_offset())


def timed(func, seconds, operation, fallback=None):
    """Run each call of the sync ``func`` under a deadline of ``seconds``.

    At the deadline the call is interrupted and ``hardy.TimeoutError(operation,
    seconds)`` raised, or ``fallback(*args, **kwargs)`` returned. A call that
    returns after its deadline (the timer could not interrupt it) times out
    all the same: its result is dropped.
    """
    cdef _Timed t = _Timed.__new__(_Timed)
    t._vectorcall = _timed_vectorcall
    t._func = func
    t._limit = seconds
    t._operation = operation
    t._fallback = fallback
    return _wrapping.copy_metadata(t, func, is_async=False)
