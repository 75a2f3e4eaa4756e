# The circuit breaker, compiled (included by _core_c.pyx). Its decisions are
# hardy/policies/breaker.py; this is the dispatch around them: the lock, the
# clock, the listeners, the store, and the Python-facing class. The twin's
# dispatch is hardy/_py/breaker.py.

from hardy import window as _window

cdef object _notify_listeners = _events.notify
cdef PyObject* _open_error_type = <PyObject*>CircuitOpenError
cdef double _NO_CAP = _validate.NO_CAP  # max_reset_timeout=None
cdef tuple _CODES = (CLOSED, OPEN, HALF_OPEN, FORCED_OPEN, DISABLED)
cdef object _predicates_match = _match.predicates_match
cdef object _result_matches = _match.result_matches
cdef double _NAN = float("nan")  # the start of a call whose duration is not measured
cdef object _window_settings = _window.SettingsCache()
cdef object _SharedView = _window.SharedView

# What an exception raised by a protected call counts as (_classify).
cdef enum:
    OUTCOME_FAILURE = 0
    OUTCOME_IGNORED = 1
    OUTCOME_SUCCESS = 2
cdef tuple _NO_LISTENERS = ()
# hardy._rejections.rejected while a subscriber wants "rejection" events, else None.
cdef object _rejection_hook = None


def _watch_rejections(wanted):
    global _rejection_hook
    _rejection_hook = _rejections.hook_for(wanted)


cdef class _BreakerExtras(BreakerTuning):
    """What only some breakers have: a clock of their own, listeners, a store, what counts as what.

    Kept out of the breaker itself so that a plain breaker stays small (see
    the memory benchmark): it points at no extras at all. The extras are
    also the breaker's tuning (the policy's ``_tuning``, untuned unless
    settings ask otherwise), so one pointer serves both.
    """

    cdef object clock           # None: read the monotonic clock in C
    cdef list listeners         # None until the first listener
    cdef object store           # the store's binding (hardy.store), or None
    cdef tuple excluded         # None: no excluded exceptions; classes and predicates (hardy._match)
    cdef bint excluded_preds    # excluded holds a predicate
    cdef tuple failures         # None: every Exception is a failure (failure_exceptions)
    cdef bint failure_preds     # failures holds a predicate
    cdef object on_result       # failure_on_result, or None
    cdef object last_failure    # the exception that last opened the circuit (CircuitOpenError.last_failure)


cdef class CircuitBreaker(BreakerState):
    """A circuit breaker: stop calling a dependency that keeps failing.

    CLOSED lets calls through and counts consecutive failures; at
    ``failure_threshold`` it opens. OPEN rejects calls at once with
    :class:`~hardy.CircuitOpenError` for ``reset_timeout`` seconds, then turns
    HALF_OPEN, which admits at most ``half_open_max_calls`` trial calls: when
    that many have succeeded it closes, and any trial failure opens it again.
    Exceptions of the ``excluded_exceptions`` types count as neither success
    nor failure. With ``window=`` (a :class:`~hardy.CountWindow` or
    :class:`~hardy.TimeWindow`) a closed breaker opens on a failure or
    slow-call rate instead of consecutive failures. ``clock`` returns
    monotonic seconds and may be replaced in tests.

    Example::

        breaker = hardy.CircuitBreaker("payments", failure_threshold=3, reset_timeout=10)
        by_rate = hardy.CircuitBreaker("search", window=hardy.CountWindow(size=100, failure_rate=0.5))

        @breaker
        def charge(order_id: int) -> str: ...

        with breaker:
            legacy_charge()
    """

    cdef str _name
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
        failure_exceptions=None,
        failure_on_result=None,
        success_threshold=None,
        half_open_max_wait=None,
        reset_backoff=1.0,
        max_reset_timeout=None,
        window=None,
    ):
        if self._name is not None:
            raise RuntimeError(_validate.ALREADY_INITIALISED.format(kind=type(self).__name__, obj=self))
        settings = _validate.breaker_settings(
            name, failure_threshold, reset_timeout, half_open_max_calls, excluded_exceptions, clock,
            failure_exceptions=failure_exceptions, failure_on_result=failure_on_result,
            success_threshold=success_threshold, half_open_max_wait=half_open_max_wait,
            reset_backoff=reset_backoff, max_reset_timeout=max_reset_timeout, window=window,
        )
        configure_breaker(self, settings.failure_threshold, settings.reset_timeout, settings.half_open_max_calls)
        if settings.tuned:
            tune_breaker(
                self, _extras_of(self), settings.success_threshold, settings.reset_backoff,
                settings.max_reset_timeout, settings.half_open_max_wait,
            )
        if settings.clock is not _monotonic:
            _extras_of(self).clock = settings.clock
        if settings.excluded_exceptions:
            _extras_of(self).excluded = settings.excluded_exceptions
            _extras_of(self).excluded_preds = _match.has_predicates(settings.excluded_exceptions)
        if settings.failure_exceptions is not None:
            _extras_of(self).failures = settings.failure_exceptions
            _extras_of(self).failure_preds = _match.has_predicates(settings.failure_exceptions)
        if settings.failure_on_result is not None:
            _extras_of(self).on_result = settings.failure_on_result
            self._flags |= FLAG_RESULT
        if settings.window is not None:
            _attach_window(self, settings.window)
        self._name = settings.name
        if store is not None:
            # A windowed breaker shares its window's verdicts, not its consecutive failures.
            view = self if settings.window is None else _SharedView(self, settings)
            _extras_of(self).store = _validate.breaker_store(store).bind(view, _Local.__new__(_Local, self))
        _live_link(self)

    def __dealloc__(self):
        _live_unlink(self)
        hardy_window_free(self._window)

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
        """Seconds the breaker stays open before admitting trial calls (before any backoff)."""
        return base_timeout(self)

    @property
    def success_threshold(self):
        """Trial successes that close a half-open breaker (all ``half_open_max_calls`` unless given).

        A breaker with a window and no ``success_threshold`` given judges its
        trials by the window's rates instead (``docs/circuit-breaker.md``).
        """
        return success_threshold_of(self)

    @property
    def _trials_by_rate(self):
        """Whether a window's rates judge the half-open trials (no success_threshold given)."""
        return trials_by_rate(self)

    @property
    def half_open_max_wait(self):
        """Seconds after which trials that hold every slot count as a failure; ``None``: no limit."""
        if self._tuning is None or self._tuning._max_wait == 0.0:
            return None
        return self._tuning._max_wait

    @property
    def reset_backoff(self):
        """What the reset timeout is multiplied by each time a half-open period fails."""
        return 1.0 if self._tuning is None else self._tuning._backoff

    @property
    def max_reset_timeout(self):
        """The cap of the backed-off reset timeout; ``None``: no cap."""
        if self._tuning is None or self._tuning._max_timeout == _NO_CAP:
            return None
        return self._tuning._max_timeout

    @property
    def last_failure(self):
        """The exception that last opened the circuit, or ``None``."""
        return None if _x(self) is None else _x(self).last_failure

    @property
    def half_open_max_calls(self):
        """Trial calls admitted while half-open, and successes needed to close."""
        return self._half_open_max

    @property
    def window(self):
        """The :class:`~hardy.CountWindow` or :class:`~hardy.TimeWindow` that decides when it opens, or ``None``."""
        return window_spec(self._window) if self._window else None

    @property
    def excluded_exceptions(self):
        """Exception classes and predicates that count as neither success nor failure."""
        excluded = _excluded_of(self)
        return () if excluded is None else excluded

    @property
    def failure_exceptions(self):
        """The exception classes and predicates that are failures; ``None``: every ``Exception``."""
        return None if _x(self) is None else _x(self).failures

    @property
    def failure_on_result(self):
        """The predicate on a returned value that makes it a failure, or ``None``."""
        return None if _x(self) is None else _x(self).on_result

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
        """True while calls are rejected: open for the reset timeout, or forced open."""
        cdef int code = _state_code(self)
        return code == OPEN or code == FORCED_OPEN

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
        cdef long long ignored = ignored_of(self)
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
        cdef long long ignored = ignored_of(self)
        cdef long long rejections = self._rejections
        cdef int failure_count = self._failure_count
        cdef int trial_successes = self._trial_successes
        cdef int trials = self._trials if self._state == HALF_OPEN else 0
        cdef unsigned int opened = self._opened
        cdef BreakerWindow w = window_of(self)
        cdef long long held = 0
        cdef long long held_failed = 0
        cdef long long held_slow = 0
        if w:
            window_flush(w)  # the clean outcomes a success only counted (policies.breaker)
            held, held_failed, held_slow = window_calls(w), window_failed(w), window_slow(w)
        hardy_unlock(&self._guard)
        stats = {
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
            "reset_timeout": base_timeout(self),
            "half_open_max_calls": self._half_open_max,
        }
        if w:
            stats["window_calls"] = held
            stats["window_failures"] = held_failed
            stats["window_slow_calls"] = held_slow
        return stats

    # -- changing it by hand ----------------------------------------------

    def force_open(self):
        """Reject every call (``CircuitState.FORCED_OPEN``) until :meth:`reset`.

        The process's own decision: with a store, the shared state is left
        alone, and no other process is forced open.
        """
        if _steer(self, FORCED_OPEN) < 0:
            _propagate()

    def disable(self):
        """Admit every call and record nothing (``CircuitState.DISABLED``) until :meth:`reset`."""
        if _steer(self, DISABLED) < 0:
            _propagate()

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
        """Record the outcome of a call that raised ``exception``, made without the breaker's help.

        It is classified as a call's error is: an excluded one is counted as
        ignored, and with ``failure_exceptions`` one that does not match is a
        success. Past the reset timeout an open breaker is half-open, and a
        failure opens it again for a full ``reset_timeout``.
        """
        cdef int kind
        if not isinstance(exception, BaseException):
            raise TypeError(f"exception must be an exception instance, got {exception!r}")
        if not isinstance(exception, Exception):
            return
        kind = _classify(self, <PyObject*>Py_TYPE(<PyObject*>exception), <PyObject*>exception)
        if kind < 0:
            _propagate()
        if kind == OUTCOME_IGNORED:
            hardy_lock(&self._guard)
            count_ignored(self)
            hardy_unlock(&self._guard)
        elif kind == OUTCOME_SUCCESS:
            if _promote(self) < 0 or _on_success(self, self._epoch) < 0:
                _propagate()
        elif _promote(self) < 0 or _on_failure(self, self._epoch, <PyObject*>exception) < 0:
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
        listeners = None if _x(self) is None else _x(self).listeners
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
        cdef double start = _NAN
        cdef long long epoch = _admit(self)
        if epoch < 0:
            if epoch == REJECTED:
                _raise_rejection(self)
            _propagate()
        if self._flags & FLAG_SLOW and _call_start(self, epoch, &start) < 0:
            _propagate()
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            _record_outcome(self, exc, epoch, start)
            raise
        if PyCoro_CheckExact(<PyObject*>result):
            # Settled by the awaiter when it completes; it measures no duration.
            return _admitted_awaiter(self, result, epoch)
        if _on_result_at(self, epoch, <PyObject*>result, start) < 0:
            _propagate()
        return result

    def __call__(self, func):
        """Decorate ``func`` so that every call goes through the breaker (above ``@staticmethod`` too)."""
        rewrapped = _descriptors.rewrap(func, self)
        if rewrapped is not None:
            return rewrapped
        return protect(self, func)

    def __enter__(self):
        cdef double start
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
        if self._flags & FLAG_SLOW:
            # The block's duration is measured from here to __exit__.
            try:
                if _now(self, &start) < 0:
                    _propagate()
                _window.push_start(self, start)
            except BaseException:
                _blocks.pop(self)
                _release(self, epoch, False)
                raise
        return self

    def __exit__(self, exc_type, exc, tb):
        cdef long long epoch = _blocks.pop(self)
        cdef double start = _window.pop_start(self) if self._flags & FLAG_SLOW else _NAN
        if exc is None:
            if _on_success_at(self, epoch, start) < 0:
                _propagate()
        else:
            _record_outcome(self, exc, epoch, start)

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

    def succeed(self, long long epoch, bint slow=False):
        if _on_success_impl(self._breaker, epoch, False, False, _NAN, slow) < 0:
            _propagate()

    def fail(self, long long epoch, bint slow=False):
        if _on_failure_impl(self._breaker, epoch, False, False, NULL, _NAN, slow) < 0:
            _propagate()

    def count_rejection(self):
        hardy_lock(&self._breaker._guard)
        count_rejection(self._breaker)
        hardy_unlock(&self._breaker._guard)

    def reset(self):
        if _reset_locally(self._breaker) < 0:
            _propagate()

    def adopt(
        self, int state, int failure_count, int trials, int trial_successes, double open_elapsed, bint new_period,
        double open_for=-1.0, int trial_slow=0,
    ):
        cdef double now
        cdef long long epoch
        cdef int code
        cdef CircuitBreaker b = self._breaker
        if _now(b, &now) < 0:
            _propagate()
        hardy_lock(&b._guard)
        epoch = adopt(
            b, state, failure_count, trials, trial_successes, now - open_elapsed, new_period, open_for, trial_slow
        )
        code = take_event(b)
        hardy_unlock(&b._guard)
        if code and _notify(b, code) < 0:
            _propagate()
        return epoch


cdef int _attach_window(CircuitBreaker self, object spec) except -1:
    """Give a new breaker the window ``spec`` (a hardy.CountWindow or TimeWindow) asks for."""
    cdef WindowSettings settings = _window_settings.get(spec, new_window_settings)
    cdef BreakerWindow w = hardy_window_new(
        <PyObject*>settings, settings._timed, settings._size, settings._ring_bytes
    )
    window_clear(w)
    attach_window(self, w)
    return 0


cdef _BreakerExtras _extras_of(CircuitBreaker self):
    """The breaker's extras, made on first need, untuned: they change no decision."""
    if self._tuning is None:
        tune_breaker(self, _BreakerExtras.__new__(_BreakerExtras), 0, 1.0, _NO_CAP, 0.0)
    return <_BreakerExtras>self._tuning


cdef inline _BreakerExtras _x(CircuitBreaker self):
    """The extras, or None (every tuning object of the compiled core is a _BreakerExtras)."""
    return <_BreakerExtras>self._tuning


cdef inline object _clock_of(CircuitBreaker self):
    return None if _x(self) is None else _x(self).clock


cdef inline object _store_of(CircuitBreaker self):
    return None if _x(self) is None else _x(self).store


cdef inline tuple _excluded_of(CircuitBreaker self):
    return None if _x(self) is None else _x(self).excluded


cdef int _classify(CircuitBreaker self, PyObject* etype, PyObject* evalue) noexcept:
    """What an ``Exception`` a call raised counts as: an ``OUTCOME_*``, or -1 with an error set.

    Classes are matched in C; predicates (hardy._match) run only when no
    class matched. The error a predicate raises is left set.
    """
    cdef _BreakerExtras x = _x(self)
    cdef int hit
    if x is None:
        return OUTCOME_FAILURE
    if x.excluded is not None:
        if PyErr_GivenExceptionMatches(etype, <PyObject*>x.excluded):
            return OUTCOME_IGNORED
        if x.excluded_preds:
            hit = _predicate_says(x.excluded, evalue, "excluded_exceptions", self)
            if hit != 0:
                return -1 if hit < 0 else OUTCOME_IGNORED
    if x.failures is None:
        return OUTCOME_FAILURE
    if PyErr_GivenExceptionMatches(etype, <PyObject*>x.failures):
        return OUTCOME_FAILURE
    if x.failure_preds:
        hit = _predicate_says(x.failures, evalue, "failure_exceptions", self)
        if hit != 0:
            return -1 if hit < 0 else OUTCOME_FAILURE
    return OUTCOME_SUCCESS


cdef int _predicate_says(tuple spec, PyObject* exc, str what, CircuitBreaker owner) noexcept:
    """1 if a predicate of ``spec`` matches ``exc``, 0 if none does, -1 with its error set."""
    try:
        return 1 if _predicates_match(<object>exc, spec, what, owner) else 0
    except BaseException as error:
        _set_error(error)
        return -1


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
    hardy_traverse_windows(CircuitBreaker, <Py_ssize_t>(<char*>&probe._window - <char*><PyObject*>probe))


_measure_live_offsets()
_live.add_source(live_breakers)
hardy_disallow_instantiation(WindowSettings)
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
    if not needs_clock(self):
        now = 0.0  # a manual state: no clock is read
    elif _now(self, &now) < 0:
        return -2
    shared = shared and _store_of(self) is not None
    hardy_lock(&self._guard)
    epoch = admit(self, now, shared)
    code = take_event(self)
    hardy_unlock(&self._guard)
    if epoch == ASK_STORE:
        return _binding_admit(self)
    if code and event_new(code) == OPEN:
        _remember_opening(self, NULL)  # trials overdue (half_open_max_wait): no exception did it
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
    return _on_success_impl(self, epoch, True, True, _NAN)


cdef inline int _on_success_at(CircuitBreaker self, long long epoch, double start) noexcept:
    return _on_success_impl(self, epoch, True, True, start)


cdef inline int _on_result(CircuitBreaker self, long long epoch, PyObject* value) noexcept:
    return _on_result_at(self, epoch, value, _NAN)


cdef inline int _on_result_at(CircuitBreaker self, long long epoch, PyObject* value, double start) noexcept:
    """Settle a call started at ``start`` (NaN: not measured) that returned ``value``: a success, or a
    failure if ``failure_on_result`` says so."""
    cdef int verdict
    if not (self._flags & FLAG_RESULT):
        return _on_success_impl(self, epoch, True, True, start)
    try:
        verdict = _result_matches(_x(self).on_result, <object>value, "failure_on_result", self)
    except BaseException as error:
        # Not an outcome: the trial slot the call held comes back.
        _release(self, epoch, False)
        _set_error(error)
        return -1
    if verdict:
        return _on_failure_impl(self, epoch, True, True, NULL, start)
    return _on_success_impl(self, epoch, True, True, start)


cdef inline bint _window_success(CircuitBreaker self, long long epoch) noexcept:
    """Record a success of a breaker whose only flag is a count window, when that is all there is
    to do (policies.breaker.record_window_success); False: settle it as any other."""
    cdef bint done
    if _store_of(self) is not None:
        return False
    hardy_lock(&self._guard)
    done = record_window_success(self, epoch)
    hardy_unlock(&self._guard)
    return done


cdef inline int _window_now(CircuitBreaker self, double* now) noexcept:
    """The breaker's clock for a window's per-call readings: the default one straight from
    clock_gettime where there is one (the same CLOCK_MONOTONIC as the other readings)."""
    if HARDY_FAST_CLOCK and _clock_of(self) is None:
        now[0] = hardy_now()
        return 0
    return _now(self, now)


# The coarse clock lags CLOCK_MONOTONIC by less than this (a few ticks; see
# hardy.h), where its tick is at most _COARSE_TICK_AT_MOST.
cdef double _COARSE_LAG = 0.1
cdef double _COARSE_TICK_AT_MOST = 0.02
cdef bint _coarse_clock = 0.0 < hardy_coarse_resolution() <= _COARSE_TICK_AT_MOST


cdef inline bint _ended_surely_in_time(CircuitBreaker self, double start) noexcept:
    """A count window's success that the coarse clock shows ended well within its slow-call duration:
    it needs no reading of the precise clock (a window that records it takes no time; see
    surely_not_slow). Its start was read from CLOCK_MONOTONIC, on the coarse clock's timeline.
    The twin reads the clock instead: both decide the same, the coarse reading being sure."""
    return (
        HARDY_FAST_CLOCK
        and _coarse_clock
        and _clock_of(self) is None
        and surely_not_slow(self, start, hardy_coarse_now(), _COARSE_LAG)
    )


cdef int _call_start(CircuitBreaker self, long long epoch, double* start) noexcept:
    """Read the start of an admitted call whose duration is measured; on error its slot comes back."""
    if _window_now(self, start) < 0:
        _release(self, epoch, False)
        return -1
    return 0


cdef inline int _on_success_impl(
    CircuitBreaker self, long long epoch, bint shared, bint count, double start, bint known_slow=False
) noexcept:
    """Settle a success (``known_slow``: a store's echo of a slow one, whose time was not measured)."""
    cdef int action
    cdef int code
    cdef double now = _NAN
    cdef bint slow = known_slow
    if count and self._flags & FLAG_TIMED:
        if _ended_surely_in_time(self, start):
            # Not slow: recorded as a count window's success without slow calls is.
            if _window_success(self, epoch):
                return 0
        else:
            # The window needs the time of the outcome (a time window, or slow calls).
            if _window_now(self, &now) < 0:
                hardy_lock(&self._guard)
                self._successes += 1
                hardy_unlock(&self._guard)
                _release(self, epoch, False)
                return -1
            slow = slow_call(self, start, now)
    shared = shared and _store_of(self) is not None
    while True:
        hardy_lock(&self._guard)
        action = settle_success_at(self, epoch, now, slow, shared, count)
        code = take_event(self)
        hardy_unlock(&self._guard)
        if action != NEEDS_TIME:
            break
        if _now(self, &now) < 0:  # nothing was settled: count it, and give the trial's slot back
            hardy_lock(&self._guard)
            if count:
                self._successes += 1
            hardy_unlock(&self._guard)
            _release(self, epoch, False)
            return -1
    if code:
        if event_new(code) == OPEN:
            _remember_opening(self, NULL)  # opened by slow calls or a rate a success completed
        return _notify(self, code)
    if action == OPEN_PENDING:
        return _open_pending(self, epoch, NULL)
    if action != DONE:
        return _binding_settle(self, action, epoch, slow)
    return 0


cdef int _open_pending(CircuitBreaker self, long long epoch, PyObject* exc) noexcept:
    """An outcome (the failure ``exc``; NULL: a success) completed the window's verdict without a
    reading of the time: open now."""
    cdef double now
    cdef int code
    if _now(self, &now) < 0:
        return -1
    hardy_lock(&self._guard)
    open_by_window(self, epoch, now)
    code = take_event(self)
    hardy_unlock(&self._guard)
    if code:
        _remember_opening(self, exc)
        return _notify(self, code)
    return 0


cdef inline int _on_failure(CircuitBreaker self, long long epoch, PyObject* exc) noexcept:
    return _on_failure_impl(self, epoch, True, True, exc, _NAN)


cdef int _on_failure_impl(
    CircuitBreaker self, long long epoch, bint shared, bint count, PyObject* exc, double start,
    bint known_slow=False,
) noexcept:
    """Settle a failure (``known_slow``: a store's echo of a slow one, whose time was not measured)."""
    cdef double now = _NAN
    cdef int action
    cdef int code
    cdef bint slow = known_slow
    cdef bint read = failure_reads_clock(self)
    shared = shared and _store_of(self) is not None
    while True:
        if read:
            if _now(self, &now) < 0:
                # No reading to open the breaker with: count the failure, and give a
                # trial slot back so the breaker cannot stay half-open for ever.
                hardy_lock(&self._guard)
                if count:
                    self._failures += 1
                hardy_unlock(&self._guard)
                _release(self, epoch, False)
                return -1
            slow = known_slow or slow_call(self, start, now)
        hardy_lock(&self._guard)
        action = settle_failure_at(self, epoch, now, slow, shared, count)
        code = take_event(self)
        hardy_unlock(&self._guard)
        if action != NEEDS_TIME:
            break
        read = True
    if code:
        if event_new(code) == OPEN:
            _remember_opening(self, exc)
        return _notify(self, code)
    if action == OPEN_PENDING:
        return _open_pending(self, epoch, exc)
    if action == STORE_FAILURE:
        return _binding_settle(self, action, epoch, slow)
    return 0


cdef int _binding_settle(CircuitBreaker self, int action, long long epoch, bint slow) noexcept:
    """Hand a settling the policy left to the store to the store's binding; -1 on error."""
    binding = _store_of(self)
    try:
        if action == STORE_FAILURE:
            binding.failure(epoch, slow)
        elif action == STORE_TRIAL_SUCCESS:
            binding.trial_success(epoch, slow)
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


cdef void _remember_opening(CircuitBreaker self, PyObject* exc) noexcept:
    """Keep what opened the circuit for CircuitOpenError.last_failure (NULL: no exception did)."""
    if exc != NULL:
        _extras_of(self).last_failure = <object>exc
    elif _x(self) is not None:
        _x(self).last_failure = None


cdef int _steer(CircuitBreaker self, int state) noexcept:
    cdef int code
    hardy_lock(&self._guard)
    steer(self, state)
    code = take_event(self)
    hardy_unlock(&self._guard)
    if state == FORCED_OPEN:
        _remember_opening(self, NULL)
    return _notify(self, code) if code else 0


cdef int _reset_locally(CircuitBreaker self) noexcept:
    cdef int code
    hardy_lock(&self._guard)
    reset(self)
    code = take_event(self)
    hardy_unlock(&self._guard)
    return _notify(self, code) if code else 0


cdef int _record_outcome(CircuitBreaker self, BaseException exc, long long epoch, double start) except -1:
    """Settle an outcome given as an exception object (``call``, ``__exit__``) of a call started at ``start``."""
    cdef int kind
    if not isinstance(exc, Exception):
        _release(self, epoch, False)
        return 0
    kind = _classify(self, <PyObject*>Py_TYPE(<PyObject*>exc), <PyObject*>exc)
    if kind < 0:
        _release(self, epoch, False)
        return -1
    if kind == OUTCOME_IGNORED:
        _release(self, epoch, True)
    elif kind == OUTCOME_SUCCESS:
        if _on_success_at(self, epoch, start) < 0:
            return -1
    elif _on_failure_impl(self, epoch, True, True, <PyObject*>exc, start) < 0:
        return -1
    return 0


cdef inline int _settle_error(CircuitBreaker self, long long epoch) noexcept:
    return _settle_error_at(self, epoch, _NAN)


cdef int _settle_error_at(CircuitBreaker self, long long epoch, double start) noexcept:
    """Settle the exception that is currently set (of a call started at ``start``), and leave it set."""
    cdef PyObject* etype
    cdef PyObject* evalue
    cdef PyObject* etb
    cdef PyObject* ntype
    cdef PyObject* nvalue
    cdef PyObject* ntb
    cdef int rc = 0
    cdef int kind
    PyErr_Fetch(&etype, &evalue, &etb)
    PyErr_NormalizeException(&etype, &evalue, &etb)
    if not PyErr_GivenExceptionMatches(etype, PyExc_Exception):
        # Interrupted or cancelled: not an outcome, but a trial slot it
        # held must come back or the breaker would stay half-open forever.
        _release(self, epoch, False)
    else:
        if etb != NULL and _x(self) is not None:
            PyException_SetTraceback(evalue, etb)  # a predicate may look at it
        kind = _classify(self, etype, evalue)
        if kind < 0:
            _release(self, epoch, False)
            rc = -1
        elif kind == OUTCOME_IGNORED:
            _release(self, epoch, True)
        elif kind == OUTCOME_SUCCESS:
            rc = _on_success_at(self, epoch, start)
        else:
            rc = _on_failure_impl(self, epoch, True, True, evalue, start)
    if rc < 0:
        # The settling itself raised (a clock, a listener, a predicate): that
        # error propagates, with the call's own error as its context.
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
    cdef PyObject* last = NULL
    cdef double wait = 0.0
    cdef double now
    if self._state == OPEN:
        if _now(self, &now) < 0:
            return -1
        wait = time_until_reset(self, now)
    cdef _BreakerExtras x = _x(self)
    if x is not None and x.last_failure is not None:
        last = <PyObject*>x.last_failure  # x holds it
    args = PyTuple_New(2 if last == NULL else 3)
    if args == NULL:
        return -1
    Py_INCREF(self._name)
    PyTuple_SET_ITEM(args, 0, <PyObject*>self._name)
    PyTuple_SET_ITEM(args, 1, PyFloat_FromDouble(wait))
    if last != NULL:
        xincref(last)
        PyTuple_SET_ITEM(args, 2, last)
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
    cdef list listeners = None if _x(self) is None else _x(self).listeners
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
