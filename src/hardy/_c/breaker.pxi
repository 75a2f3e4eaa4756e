# The circuit breaker, compiled (included by _core_c.pyx). Its decisions are
# hardy/policies/breaker.py; this is the dispatch around them: the lock, the
# clock, the listeners, the store, and the Python-facing class. The twin's
# dispatch is hardy/_py/breaker.py.

cdef object _notify_listeners = _events.notify
cdef PyObject* _open_error_type = <PyObject*>CircuitOpenError
cdef tuple _CODES = (CLOSED, OPEN, HALF_OPEN)
cdef tuple _NO_LISTENERS = ()
# hardy._rejections.rejected while a subscriber wants "rejection" events, else None.
cdef object _rejection_hook = None


def _watch_rejections(wanted):
    global _rejection_hook
    _rejection_hook = _rejections.hook_for(wanted)


cdef class _BreakerExtras:
    """What only some breakers have: a clock of their own, listeners, a store, excluded exceptions.

    Kept out of the breaker itself so that a plain breaker stays small (see
    the memory benchmark): it points at no extras at all.
    """

    cdef object clock           # None: read the monotonic clock in C
    cdef list listeners         # None until the first listener
    cdef object store           # the store's binding (hardy.store), or None
    cdef tuple excluded         # None: no excluded exceptions


cdef class CircuitBreaker(BreakerState):
    """A circuit breaker: stop calling a dependency that keeps failing.

    CLOSED lets calls through and counts consecutive failures; at
    ``failure_threshold`` it opens. OPEN rejects calls at once with
    :class:`~hardy.CircuitOpenError` for ``reset_timeout`` seconds, then turns
    HALF_OPEN, which admits at most ``half_open_max_calls`` trial calls: when
    that many have succeeded it closes, and any trial failure opens it again.
    Exceptions of the ``excluded_exceptions`` types count as neither success
    nor failure. ``clock`` returns monotonic seconds and may be replaced in
    tests.

    Example::

        breaker = hardy.CircuitBreaker("payments", failure_threshold=3, reset_timeout=10)

        @breaker
        def charge(order_id: int) -> str: ...

        with breaker:
            legacy_charge()
    """

    cdef str _name
    cdef _BreakerExtras _extras     # None: default clock, no listener, no store, nothing excluded
    cdef object __weakref__
    # Every initialised breaker is in one doubly linked list (hardy._live),
    # through these two borrowed pointers: no weak reference per breaker.
    cdef PyObject* _live_prev
    cdef PyObject* _live_next

    def __init__(
        self,
        name,
        failure_threshold=5,
        reset_timeout=60.0,
        half_open_max_calls=3,
        excluded_exceptions=(),
        *,
        clock=_monotonic,
        store=None,
    ):
        if self._name is not None:
            raise RuntimeError(_validate.ALREADY_INITIALISED.format(kind=type(self).__name__, obj=self))
        settings = _validate.breaker_settings(
            name, failure_threshold, reset_timeout, half_open_max_calls, excluded_exceptions, clock
        )
        configure_breaker(self, settings.failure_threshold, settings.reset_timeout, settings.half_open_max_calls)
        if settings.clock is not _monotonic:
            _extras_of(self).clock = settings.clock
        if settings.excluded_exceptions:
            _extras_of(self).excluded = settings.excluded_exceptions
        self._name = settings.name
        if store is not None:
            _extras_of(self).store = _validate.breaker_store(store).bind(self, _Local.__new__(_Local, self))
        _live_link(self)

    def __dealloc__(self):
        _live_unlink(self)

    def __reduce__(self):
        raise TypeError(_validate.UNPICKLABLE_BREAKER.format(breaker=self))

    # -- reading the breaker ----------------------------------------------

    @property
    def name(self):
        """The breaker's name."""
        return self._name

    @property
    def failure_threshold(self):
        """Consecutive failures that open the breaker."""
        return self._threshold

    @property
    def reset_timeout(self):
        """Seconds the breaker stays open before admitting trial calls."""
        return self._reset_timeout

    @property
    def half_open_max_calls(self):
        """Trial calls admitted while half-open, and successes needed to close."""
        return self._half_open_max

    @property
    def excluded_exceptions(self):
        """Exception types that count as neither success nor failure."""
        excluded = _excluded_of(self)
        return () if excluded is None else excluded

    @property
    def store(self):
        """The store that shares this breaker's state between processes, or ``None``."""
        binding = _store_of(self)
        return None if binding is None else binding.store

    @property
    def state(self):
        """The current state, taking the time spent open into account."""
        return STATE_BY_CODE[_state_code(self)]

    @property
    def is_open(self):
        """True while calls are rejected for the reset timeout."""
        return _state_code(self) == OPEN

    @property
    def is_closed(self):
        """True while calls pass freely."""
        return self._state == CLOSED

    def get_time_until_reset(self):
        """Seconds until an open breaker admits trial calls; ``0.0`` in any other state."""
        cdef double now
        if self._state != OPEN:
            return 0.0
        if _now(self, &now) < 0:
            _propagate()
        return time_until_reset(self, now)

    def _counts(self):
        """``(name, state code, successes, failures, ignored, rejections, opened)``, for hardy.metrics."""
        cdef int state = _state_code(self)
        hardy_lock(&self._guard)
        cdef long long successes = self._successes
        cdef long long failures = self._failures
        cdef long long ignored = self._ignored
        cdef long long rejections = self._rejections
        cdef unsigned int opened = self._opened
        hardy_unlock(&self._guard)
        return (self._name, state, successes, failures, ignored, rejections, opened)

    def get_stats(self):
        """A snapshot of the state, the counts and the lifetime totals.

        Example::

            >>> breaker.get_stats()["state"]
            'closed'
        """
        time_until_reset = self.get_time_until_reset()
        cdef int state = _state_code(self)
        hardy_lock(&self._guard)
        cdef long long successes = self._successes
        cdef long long failures = self._failures
        cdef long long ignored = self._ignored
        cdef long long rejections = self._rejections
        cdef int failure_count = self._failure_count
        cdef int trial_successes = self._trial_successes
        cdef int trials = self._trials if self._state == HALF_OPEN else 0
        cdef unsigned int opened = self._opened
        hardy_unlock(&self._guard)
        return {
            "name": self._name,
            "state": STATE_BY_CODE[state].value,
            "failure_count": failure_count,
            "success_count": trial_successes,
            "half_open_calls": trials,
            "time_until_reset": time_until_reset,
            "calls": successes + failures + ignored,
            "successes": successes,
            "failures": failures,
            "rejections": rejections,
            "ignored": ignored,
            "opened": opened,
            "failure_threshold": self._threshold,
            "reset_timeout": self._reset_timeout,
            "half_open_max_calls": self._half_open_max,
        }

    # -- changing it by hand ----------------------------------------------

    def reset(self):
        """Close the breaker and clear its failure and trial counts.

        Lifetime totals (``calls``, ``failures``, ...) are kept, so metrics
        exported from them never go backwards. Calls still running from before
        the reset cannot move the new state. A shared breaker resets the
        shared state too.
        """
        binding = _store_of(self)
        if binding is not None:
            binding.reset()
        elif _reset_locally(self) < 0:
            _propagate()

    def record_success(self):
        """Record a success of a call made without the breaker's help.

        It counts in the state the breaker is in now: past the reset timeout
        an open breaker is half-open, and the success counts towards closing.
        """
        if _promote(self) < 0 or _on_success(self, self._epoch) < 0:
            _propagate()

    def record_failure(self, exception):
        """Record a failure; an exception of an excluded type is counted as ignored.

        Past the reset timeout an open breaker is half-open, and the failure
        opens it again for a full ``reset_timeout``.
        """
        if not isinstance(exception, BaseException):
            raise TypeError(f"exception must be an exception instance, got {exception!r}")
        if _is_excluded(self, exception):
            hardy_lock(&self._guard)
            self._ignored += 1
            hardy_unlock(&self._guard)
        elif isinstance(exception, Exception):
            if _promote(self) < 0 or _on_failure(self, self._epoch) < 0:
                _propagate()

    def add_listener(self, callback):
        """Call ``callback(breaker, old_state, new_state)`` after every state change."""
        _validate.callable_arg("callback", callback)
        extras = _extras_of(self)
        if extras.listeners is None:
            extras.listeners = []
        extras.listeners.append(callback)

    def remove_listener(self, callback):
        """Stop calling ``callback``; a :class:`ValueError` if it was not added."""
        listeners = None if self._extras is None else self._extras.listeners
        if listeners is None or callback not in listeners:
            raise ValueError(_validate.NOT_A_LISTENER.format(callback=callback, breaker=self))
        listeners.remove(callback)

    # -- using it -----------------------------------------------------------

    def call(self, func, /, *args, **kwargs):
        """Call ``func(*args, **kwargs)`` through the breaker.

        For an ``async def`` function the admission happens now and the
        returned awaitable settles the outcome when it completes.
        """
        _validate.callable_arg("func", func)
        cdef long long epoch = _admit(self)
        if epoch < 0:
            if epoch == REJECTED:
                _raise_rejection(self)
            _propagate()
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            _record_outcome(self, exc, epoch)
            raise
        if PyCoro_CheckExact(<PyObject*>result):
            return _admitted_awaiter(self, result, epoch)
        if _on_success(self, epoch) < 0:
            _propagate()
        return result

    def __call__(self, func):
        """Decorate ``func`` so that every call goes through the breaker (above ``@staticmethod`` too)."""
        rewrapped = _descriptors.rewrap(func, self)
        if rewrapped is not None:
            return rewrapped
        return protect(self, func)

    def __enter__(self):
        cdef long long epoch = _admit(self)
        if epoch < 0:
            if epoch == REJECTED:
                _raise_rejection(self)
            _propagate()
        try:
            _blocks.push(self, epoch)
        except BaseException:
            _release(self, epoch, False)
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        cdef long long epoch = _blocks.pop(self)
        if exc is None:
            if _on_success(self, epoch) < 0:
                _propagate()
        else:
            _record_outcome(self, exc, epoch)

    async def __aenter__(self):
        return self.__enter__()

    async def __aexit__(self, exc_type, exc, tb):
        self.__exit__(exc_type, exc, tb)

    def __repr__(self):
        cdef double now
        if self._name is None:
            return f"<{type(self).__name__} (not initialised)>"
        cdef int state = self._state
        if state == OPEN:
            if _clock_now(_clock_of(self), &now) == 0:
                state = effective_state(self, now)
            PyErr_Clear()  # a clock that fails is reported by the calls, not by repr()
        return f"<{type(self).__name__} {self._name!r} {STATE_BY_CODE[state].value}>"


@cython.final
cdef class _Local:
    """What a store's binding may do to its breaker's local state (hardy.store.LocalState)."""

    cdef CircuitBreaker _breaker

    def __cinit__(self, CircuitBreaker breaker):
        self._breaker = breaker

    @property
    def epoch(self):
        return self._breaker._epoch

    def admit(self):
        cdef long long epoch = _admit_impl(self._breaker, False)
        if epoch == -2:
            _propagate()
        return epoch

    def succeed(self, long long epoch):
        if _on_success_impl(self._breaker, epoch, False, False) < 0:
            _propagate()

    def fail(self, long long epoch):
        if _on_failure_impl(self._breaker, epoch, False, False) < 0:
            _propagate()

    def count_rejection(self):
        hardy_lock(&self._breaker._guard)
        count_rejection(self._breaker)
        hardy_unlock(&self._breaker._guard)

    def reset(self):
        if _reset_locally(self._breaker) < 0:
            _propagate()

    def adopt(
        self, int state, int failure_count, int trials, int trial_successes, double open_elapsed, bint new_period
    ):
        cdef double now
        cdef long long epoch
        cdef int code
        cdef CircuitBreaker b = self._breaker
        if _now(b, &now) < 0:
            _propagate()
        hardy_lock(&b._guard)
        epoch = adopt(b, state, failure_count, trials, trial_successes, now - open_elapsed, new_period)
        code = take_event(b)
        hardy_unlock(&b._guard)
        if code and _notify(b, code) < 0:
            _propagate()
        return epoch


cdef _BreakerExtras _extras_of(CircuitBreaker self):
    if self._extras is None:
        self._extras = _BreakerExtras.__new__(_BreakerExtras)
    return self._extras


cdef inline object _clock_of(CircuitBreaker self):
    return None if self._extras is None else self._extras.clock


cdef inline object _store_of(CircuitBreaker self):
    return None if self._extras is None else self._extras.store


cdef inline tuple _excluded_of(CircuitBreaker self):
    return None if self._extras is None else self._extras.excluded


cdef inline bint _is_excluded(CircuitBreaker self, object exc):
    cdef tuple excluded = _excluded_of(self)
    return excluded is not None and isinstance(exc, excluded)


# -- every live breaker (hardy._live) ------------------------------------------------------

cdef PyObject* _live_head = NULL
cdef char _live_mutex
cdef Py_ssize_t _live_prev_at       # the offsets of _live_prev and _live_next in a breaker
cdef Py_ssize_t _live_next_at


cdef void _live_link(CircuitBreaker self) noexcept:
    global _live_head
    hardy_lock(&_live_mutex)
    hardy_live_link(&_live_head, <PyObject*>self, _live_prev_at, _live_next_at)
    hardy_unlock(&_live_mutex)


cdef void _live_unlink(CircuitBreaker self) noexcept:
    global _live_head
    hardy_lock(&_live_mutex)
    hardy_live_unlink(&_live_head, <PyObject*>self, _live_prev_at, _live_next_at)
    hardy_unlock(&_live_mutex)


def live_breakers():
    """Every initialised breaker of this core that is alive, newest first (for hardy._live)."""
    hardy_lock(&_live_mutex)
    cdef PyObject* found = hardy_live_list(_live_head, _live_next_at)
    hardy_unlock(&_live_mutex)
    if found == NULL:
        _propagate()
    return _steal(found)


cdef void _measure_live_offsets():
    global _live_prev_at, _live_next_at
    cdef CircuitBreaker probe = CircuitBreaker.__new__(CircuitBreaker)
    _live_prev_at = <Py_ssize_t>(<char*>&probe._live_prev - <char*><PyObject*>probe)
    _live_next_at = <Py_ssize_t>(<char*>&probe._live_next - <char*><PyObject*>probe)


_measure_live_offsets()
_live.add_source(live_breakers)
events.watch(_watch_rejections)


# -- the dispatch around the state machine -----------------------------------------------
# Module functions rather than cdef methods: a cdef method would add a
# vtable pointer to every breaker. Each takes the lock around one transition
# of hardy/policies/breaker.py, then does what it asked (tell the listeners,
# ask the store) with the lock released. No user code may leave a trial slot
# held or a transition half-done: an admission that then fails gives its
# slot back.

cdef inline int _now(CircuitBreaker self, double* now) noexcept:
    """The breaker's clock; an error for a reading that is not a finite number."""
    return _clock_now(_clock_of(self), now)


cdef inline long long _admit(CircuitBreaker self) noexcept:
    return _admit_impl(self, True)


cdef long long _admit_impl(CircuitBreaker self, bint shared) noexcept:
    """The epoch of an admitted call, REJECTED after a rejection, -2 on error."""
    cdef double now
    cdef long long epoch
    cdef int code
    if self._state == CLOSED:
        return self._epoch
    if _now(self, &now) < 0:
        return -2
    shared = shared and _store_of(self) is not None
    hardy_lock(&self._guard)
    epoch = admit(self, now, shared)
    code = take_event(self)
    hardy_unlock(&self._guard)
    if epoch == ASK_STORE:
        return _binding_admit(self)
    if code and _notify(self, code) < 0:
        # A listener raised (an interrupt: others are logged) before the call
        # could start: its trial slot must not stay taken.
        if epoch >= 0:
            _release(self, epoch, False)
        return -2
    return epoch


cdef long long _binding_admit(CircuitBreaker self) noexcept:
    """A trial's permit, from the store's binding: its epoch, REJECTED, or -2 on error."""
    try:
        return _store_of(self).admit()
    except BaseException as exc:
        _set_error(exc)
        return -2


cdef int _promote(CircuitBreaker self) noexcept:
    """An open breaker past its reset timeout is half-open: make it so (for manual recording)."""
    cdef double now
    cdef int code
    if self._state != OPEN or _store_of(self) is not None:
        return 0
    if _now(self, &now) < 0:
        return -1
    hardy_lock(&self._guard)
    promote(self, now)
    code = take_event(self)
    hardy_unlock(&self._guard)
    return _notify(self, code) if code else 0


cdef inline int _on_success(CircuitBreaker self, long long epoch) noexcept:
    return _on_success_impl(self, epoch, True, True)


cdef int _on_success_impl(CircuitBreaker self, long long epoch, bint shared, bint count) noexcept:
    cdef int action
    cdef int code
    shared = shared and _store_of(self) is not None
    hardy_lock(&self._guard)
    action = settle_success(self, epoch, shared, count)
    code = take_event(self)
    hardy_unlock(&self._guard)
    if code:
        return _notify(self, code)
    if action == STORE_TRIAL_SUCCESS:
        return _binding_settle(self, action, epoch)
    if action == STORE_CLEAR:
        return _binding_settle(self, action, epoch)
    return 0


cdef inline int _on_failure(CircuitBreaker self, long long epoch) noexcept:
    return _on_failure_impl(self, epoch, True, True)


cdef int _on_failure_impl(CircuitBreaker self, long long epoch, bint shared, bint count) noexcept:
    cdef double now
    cdef int action
    cdef int code
    if _now(self, &now) < 0:
        # No reading to open the breaker with: count the failure, and give a
        # trial slot back so the breaker cannot stay half-open for ever.
        hardy_lock(&self._guard)
        if count:
            self._failures += 1
        hardy_unlock(&self._guard)
        _release(self, epoch, False)
        return -1
    shared = shared and _store_of(self) is not None
    hardy_lock(&self._guard)
    action = settle_failure(self, epoch, now, shared, count)
    code = take_event(self)
    hardy_unlock(&self._guard)
    if code:
        return _notify(self, code)
    if action == STORE_FAILURE:
        return _binding_settle(self, action, epoch)
    return 0


cdef int _binding_settle(CircuitBreaker self, int action, long long epoch) noexcept:
    """Hand a settling the policy left to the store to the store's binding; -1 on error."""
    binding = _store_of(self)
    try:
        if action == STORE_FAILURE:
            binding.failure(epoch)
        elif action == STORE_TRIAL_SUCCESS:
            binding.trial_success(epoch)
        else:
            binding.clear(epoch)
        return 0
    except BaseException as exc:
        _set_error(exc)
        return -1


cdef void _release(CircuitBreaker self, long long epoch, bint ignored) noexcept:
    cdef bint held
    hardy_lock(&self._guard)
    held = release(self, epoch, ignored)
    hardy_unlock(&self._guard)
    if held and _store_of(self) is not None:
        # Giving a shared permit back never blocks (the store queues it), so
        # this may run from a deallocator; an error there has nowhere to go.
        _release_shared(self, epoch)


cdef void _release_shared(CircuitBreaker self, long long epoch) noexcept:
    cdef PyObject* etype
    cdef PyObject* evalue
    cdef PyObject* etb
    PyErr_Fetch(&etype, &evalue, &etb)
    try:
        _store_of(self).release(epoch)
    except BaseException as exc:
        _set_error(exc)
        PyErr_WriteUnraisable(<PyObject*>self)
    PyErr_Restore(etype, evalue, etb)


cdef int _reset_locally(CircuitBreaker self) noexcept:
    cdef int code
    hardy_lock(&self._guard)
    reset(self)
    code = take_event(self)
    hardy_unlock(&self._guard)
    return _notify(self, code) if code else 0


cdef int _record_outcome(CircuitBreaker self, BaseException exc, long long epoch) except -1:
    """Settle an outcome given as an exception object (``call``, ``__exit__``)."""
    if not isinstance(exc, Exception):
        _release(self, epoch, False)
    elif _is_excluded(self, exc):
        _release(self, epoch, True)
    elif _on_failure(self, epoch) < 0:
        return -1
    return 0


cdef int _settle_error(CircuitBreaker self, long long epoch) noexcept:
    """Settle the exception that is currently set, and leave it set."""
    cdef PyObject* etype
    cdef PyObject* evalue
    cdef PyObject* etb
    cdef PyObject* ntype
    cdef PyObject* nvalue
    cdef PyObject* ntb
    cdef int rc = 0
    cdef tuple excluded = _excluded_of(self)
    PyErr_Fetch(&etype, &evalue, &etb)
    PyErr_NormalizeException(&etype, &evalue, &etb)
    if not PyErr_GivenExceptionMatches(etype, PyExc_Exception):
        # Interrupted or cancelled: not an outcome, but a trial slot it
        # held must come back or the breaker would stay half-open forever.
        _release(self, epoch, False)
    elif excluded is not None and PyErr_GivenExceptionMatches(etype, <PyObject*>excluded):
        _release(self, epoch, True)
    else:
        rc = _on_failure(self, epoch)
    if rc < 0:
        # The settling itself raised (a clock or a listener): that error
        # propagates, with the call's own error as its context.
        PyErr_Fetch(&ntype, &nvalue, &ntb)
        PyErr_NormalizeException(&ntype, &nvalue, &ntb)
        if etb != NULL:
            PyException_SetTraceback(evalue, etb)
        PyException_SetContext(nvalue, evalue)  # steals evalue
        xdecref(etype)
        xdecref(etb)
        PyErr_Restore(ntype, nvalue, ntb)
        return -1
    PyErr_Restore(etype, evalue, etb)
    return 0


cdef int _raise_rejection(CircuitBreaker self) noexcept:
    cdef PyObject* args
    cdef PyObject* exc
    cdef double wait = 0.0
    cdef double now
    if self._state == OPEN:
        if _now(self, &now) < 0:
            return -1
        wait = time_until_reset(self, now)
    args = PyTuple_New(2)
    if args == NULL:
        return -1
    Py_INCREF(self._name)
    PyTuple_SET_ITEM(args, 0, <PyObject*>self._name)
    PyTuple_SET_ITEM(args, 1, PyFloat_FromDouble(wait))
    exc = hardy_new_exception(_open_error_type, args)
    xdecref(args)
    if exc == NULL:
        return -1
    if _rejection_hook is not None and _report_rejection(self, exc) < 0:
        xdecref(exc)
        return -1
    PyErr_SetObject(_open_error_type, exc)
    xdecref(exc)
    return -1


cdef int _report_rejection(CircuitBreaker self, PyObject* exc) noexcept:
    cdef PyObject* result = PyObject_CallFunctionObjArgs(<PyObject*>_rejection_hook, <PyObject*>self, exc, NULL)
    if result == NULL:
        return -1
    xdecref(result)
    return 0


cdef int _notify(CircuitBreaker self, int code) noexcept:
    """Tell the listeners, hardy.events and the log about transition ``code`` (hardy.policies.breaker.event).

    Every transition goes to hardy._events.notify, listeners or not: transitions
    are rare, and subscribers and the log hear of them there.
    """
    cdef PyObject* result
    cdef list listeners = None if self._extras is None else self._extras.listeners
    result = PyObject_CallFunctionObjArgs(
        <PyObject*>_notify_listeners,
        <PyObject*>self,
        <PyObject*>(_NO_LISTENERS if listeners is None else listeners),
        PyTuple_GET_ITEM(<PyObject*>_CODES, event_old(code)),
        PyTuple_GET_ITEM(<PyObject*>_CODES, event_new(code)),
        NULL,
    )
    if result == NULL:
        return -1
    xdecref(result)
    return 0


cdef int _state_code(CircuitBreaker self) except -1:
    cdef double now
    if self._state == OPEN:
        if _now(self, &now) < 0:
            return -1
        return effective_state(self, now)
    return self._state
