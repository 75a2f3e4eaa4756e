# Retries, compiled (included by _core_c.pyx). The decisions (delays, when to
# stop) are hardy/policies/retry.py; this is the loop around them, the C
# random source, and the Python-facing class. The twin's is hardy/_py/retry.py.

cdef enum:
    MAX_ATTEMPT = 2147483647
    BASE_TABLE = 16

cdef object _default_random = random.random
cdef object _getrandbits = random.getrandbits
cdef object _sync_sleep = _sleep.sync_sleep
cdef list _sleep_records = _sleep._records   # non-empty while retries are instant
cdef object _read_attempt_cap = _sleep.attempt_cap
cdef object _Run = _retry_run.Run
cdef object _finish_async = _retry_run.finish_async


cdef long _attempt_cap() except -1:
    """The testing cap on attempts (0: none); a list length read unless retries are instant."""
    if not _sleep_records:
        return 0
    return _read_attempt_cap()
# Called only when the loop retries or gives up (hardy._retry_events): never on a first-attempt success.
cdef object _report_retried = _retry_events.retried
cdef object _report_gave_up = _retry_events.gave_up
cdef object _retry_watchers = _retry_events.events   # .active: someone wants "retry" events
cdef object _retry_logger = _retry_events.logger


@cython.final
cdef class _BudgetLedger(BudgetState):
    """The compiled state of a :class:`hardy.RetryBudget` (the public object holds it).

    Calls are counted with an atomic add and no clock (``_calls``); the
    window is brought up to date under ``_guard`` on the retry path only
    (hardy/policies/budget.py). The twin's is hardy._py.retry.BudgetLedger.
    """

    cdef object _clock          # None: read the monotonic clock in C
    cdef object _shared         # a hardy._budget_store.SharedBudget, or None: process-local
    cdef object __weakref__

    def _add_call(self):
        hardy_add_one(&self._calls)

    def _now(self):
        return _clock_or_raise(self._clock)

    def _deposit_units(self):
        return self._deposit

    def _amounts(self):
        return self._deposit, self._withdrawal, self._reserve

    def _share(self, shared):
        self._shared = shared

    def _withdraw(self):
        cdef int allowed = _budget_allows(self)
        if allowed < 0:
            _propagate()
        return allowed == 1

    def _balance(self):
        cdef double now = _clock_or_raise(self._clock)
        cdef long long balance
        if self._shared is not None:
            answer = self._shared.ask(self, now, False)
            if answer is not None:
                return max(0, (self._reserve + answer[1]) // self._withdrawal)
        hardy_lock(&self._guard)
        balance = budget_balance(self, now)
        hardy_unlock(&self._guard)
        return balance

    def _counts(self):
        return self._calls, self._withdrawn, self._exhausted


cdef _BudgetLedger _new_budget_ledger(settings):
    """A ledger for checked settings (hardy._settings.RetryBudgetSettings); reads the clock once."""
    cdef _BudgetLedger b = _BudgetLedger.__new__(_BudgetLedger)
    b._clock = None if settings.clock is _monotonic else settings.clock
    budget_configure(b, settings.ratio, settings.min_per_second, settings.window, _clock_or_raise(b._clock))
    return b


cdef int _budget_allows(_BudgetLedger b) noexcept:
    """1 when the budget lets a retry go (and takes its withdrawal), 0 when not, -1 if the clock raised."""
    cdef double now
    cdef bint allowed
    cdef int verdict
    if _clock_now(b._clock, &now) < 0:
        return -1
    if b._shared is not None:
        verdict = _ask_store(b, now)
        if verdict < 0:
            return -1
        if verdict < 2:
            hardy_lock(&b._guard)
            budget_record(b, now, verdict == 1)
            hardy_unlock(&b._guard)
            return verdict
    hardy_lock(&b._guard)
    allowed = budget_withdraw(b, now)
    hardy_unlock(&b._guard)
    return 1 if allowed else 0


cdef int _ask_store(_BudgetLedger b, double now) noexcept:
    """The store's answer: 1 allowed, 0 refused, 2 cannot be asked now (decide locally), -1 with the error set."""
    try:
        answer = b._shared.ask(b, now, True)
    except BaseException as exc:
        _set_error(exc)
        return -1
    if answer is None:
        return 2
    return 1 if answer[0] else 0


cdef class RetryConfig(RetryPolicy):
    """How to retry: how many attempts, which errors, and how long to wait between them.

    The wait after failed attempt ``n`` (1-based) starts from
    ``base = min(max_delay, initial_delay * backoff_factor ** (n - 1))`` and
    is then jittered (see :class:`~hardy.Jitter`; ``jitter=True`` is full
    jitter, uniform in ``[0, base]``). It always lies in ``[0, max_delay]``.
    Keyword-only: ``retry_on_result`` (a predicate that makes a returned value
    count as a failure), ``deadline`` (a budget in seconds for all attempts
    and sleeps), ``random`` (returns floats in ``[0, 1)``) and ``clock``
    (monotonic seconds), injectable for reproducible tests, and ``budget``
    (a :class:`~hardy.RetryBudget` every retry draws on).

    Example::

        config = hardy.RetryConfig(max_attempts=5, initial_delay=0.1, max_delay=2.0,
                                   retryable_exceptions=(ConnectionError,))
        config.get_delay(3)   # somewhere in [0, 0.4]
    """

    cdef unsigned long long _rng_state
    cdef double _bases[BASE_TABLE]  # base delays of attempts 1..BASE_TABLE
    cdef tuple _retryable
    cdef object _retry_on_result
    cdef object _random         # None: the module's default; draw from _rng_state in C
    cdef object _clock          # None: read the monotonic clock in C
    cdef object _jitter_given   # jitter as passed: True, False or a Jitter member
    cdef object _retry_after    # None: always the computed backoff
    cdef object _sleep          # None: time.sleep / asyncio.sleep
    cdef object _budget         # the hardy.RetryBudget, or None
    cdef _BudgetLedger _ledger  # its compiled state, or None
    cdef object __weakref__

    def __init__(
        self,
        max_attempts=3,
        backoff_factor=2.0,
        initial_delay=1.0,
        max_delay=60.0,
        jitter=True,
        retryable_exceptions=(Exception,),
        *,
        retry_on_result=None,
        deadline=None,
        random=_default_random,
        clock=_monotonic,
        retry_after=None,
        sleep=None,
        budget=None,
    ):
        if self._retryable is not None:
            raise RuntimeError(_validate.ALREADY_INITIALISED.format(kind=type(self).__name__, obj=self))
        settings = _validate.retry_settings(
            max_attempts,
            backoff_factor,
            initial_delay,
            max_delay,
            jitter,
            retryable_exceptions,
            retry_on_result,
            deadline,
            random,
            clock,
            retry_after,
            sleep,
            budget,
        )
        configure_retry(
            self,
            settings.max_attempts,
            settings.backoff_factor,
            settings.initial_delay,
            settings.max_delay,
            settings.jitter,
            settings.retry_circuit_open,
            settings.deadline is not None,
            0.0 if settings.deadline is None else settings.deadline,
        )
        self._retryable = settings.retryable_exceptions
        self._retry_on_result = settings.retry_on_result
        self._jitter_given = settings.jitter_given
        self._retry_after = settings.retry_after
        self._sleep = settings.sleep
        if settings.budget is not None:
            ledger = settings.budget._ledger
            if not isinstance(ledger, _BudgetLedger):
                raise TypeError(f"budget {settings.budget!r} was made with the other core (hardy._core)")
            self._budget = settings.budget
            self._ledger = <_BudgetLedger>ledger
        self._clock = None if settings.clock is _monotonic else settings.clock
        self._random = None if settings.random is _default_random else settings.random
        if self._random is None:
            self._rng_state = _getrandbits(64)
        # pow() costs more than everything else in get_delay; attempts are
        # small, so their base delays are computed once, by the policy's formula.
        cdef int i
        for i in range(BASE_TABLE):
            self._bases[i] = base_delay(self, i + 1)

    @property
    def max_attempts(self):
        """Calls in all, the first one included."""
        return self._max_attempts

    @property
    def backoff_factor(self):
        """How much the base delay grows after each failure."""
        return self._factor

    @property
    def initial_delay(self):
        """The base delay after the first failure, in seconds."""
        return self._initial

    @property
    def max_delay(self):
        """The longest delay, in seconds."""
        return self._max_delay

    @property
    def jitter(self):
        """How delays are randomised, as given: ``True``, ``False`` or a :class:`~hardy.Jitter` member."""
        return self._jitter_given

    @property
    def retryable_exceptions(self):
        """The exception types that are retried."""
        return self._retryable

    @property
    def retry_on_result(self):
        """The predicate that makes a returned value count as a failure, if any."""
        return self._retry_on_result

    @property
    def deadline(self):
        """The time budget for all attempts and sleeps, in seconds, if any."""
        return self._deadline if self._has_deadline else None

    @property
    def retry_after(self):
        """The callable that asks for a delay from the outcome (``None``: the backoff), if any."""
        return self._retry_after

    @property
    def sleep(self):
        """The injected sleep between attempts, if any (``None``: ``time.sleep`` / ``asyncio.sleep``)."""
        return self._sleep

    @property
    def budget(self):
        """The :class:`~hardy.RetryBudget` every retry draws on, if any."""
        return self._budget

    @staticmethod
    def _budget_ledger(settings):
        # hardy.RetryBudget makes its state with the core its configs will use.
        return _new_budget_ledger(settings)

    def _now(self):
        return _clock_or_raise(self._clock)

    def _retries(self, BaseException exc):
        return _retries_exc(self, exc)

    def _next_wait(self, long attempt, double previous, outcome, double started):
        """The wait before attempt ``attempt + 1``, or -1 to give up (the twin's is the same)."""
        cdef double asked = -1.0
        cdef double wait = 0.0
        cdef int allowed
        if attempts_exhausted(self, attempt, _attempt_cap()):
            return -1.0
        if self._retry_after is not None:
            _ask_delay(self, outcome, &asked)
        if needs_backoff(asked):
            wait = _delay_or_raise(self, attempt, previous)
        wait = retry_wait(asked, wait)
        if self._has_deadline and out_of_time(self, _clock_or_raise(self._clock) - started, wait):
            return -1.0
        if self._ledger is not None:
            allowed = _budget_allows(self._ledger)
            if allowed < 0:
                _propagate()
            if allowed == 0:
                return -2.0  # the budget said no (hardy._retry_run reports it)
        return wait

    def get_delay(self, attempt, previous_delay=None):
        """Seconds to wait after failed attempt ``attempt`` (1-based).

        ``previous_delay`` matters only for decorrelated jitter.

        Example::

            >>> hardy.RetryConfig(jitter=False).get_delay(3)
            4.0
        """
        cdef long n = hardy_small_int(<PyObject*>attempt)
        cdef double previous = -1.0
        cdef double wait
        if not 1 <= n <= MAX_ATTEMPT:
            n = _validate.positive_int("attempt", attempt)
        if previous_delay is not None:
            previous = _validate.seconds("previous_delay", previous_delay)
        if _retry_delay(self, n, previous, &wait) < 0:
            _propagate()
        return wait

    def __reduce__(self):
        return _rebuild, (type(self), self._settings())

    def _settings(self):
        """The keyword arguments that make this configuration again."""
        return {
            "max_attempts": self._max_attempts,
            "backoff_factor": self._factor,
            "initial_delay": self._initial,
            "max_delay": self._max_delay,
            "jitter": self._jitter_given,
            "retryable_exceptions": self._retryable,
            "retry_on_result": self._retry_on_result,
            "deadline": self.deadline,
            "random": _default_random if self._random is None else self._random,
            "clock": _monotonic if self._clock is None else self._clock,
            "retry_after": self._retry_after,
            "sleep": self._sleep,
            "budget": self._budget,
        }

    def __repr__(self):
        return (
            f"{type(self).__name__}(max_attempts={self._max_attempts}, backoff_factor={self._factor}, "
            f"initial_delay={self._initial}, max_delay={self._max_delay}, jitter={self._jitter_given!r})"
        )


cdef int _retry_delay(RetryConfig c, long attempt, double previous, double* out) noexcept:
    """The delay after failed attempt ``attempt``; -1 if the random source raised."""
    cdef double r = 0.0
    cdef double base = c._bases[attempt - 1] if attempt <= BASE_TABLE else base_delay(c, attempt)
    if draws(c) and _draw(c, &r) < 0:
        return -1
    out[0] = delay(c, previous, r, base)
    return 0


cdef inline int _draw(RetryConfig c, double* r) noexcept:
    if c._random is None:
        r[0] = hardy_next_double(&c._rng_state)
        return 0
    return _draw_random(c._random, r)


cdef bint _retries_current(RetryConfig c) noexcept:
    """Whether the exception currently set is one ``c`` retries.

    No class matched: a predicate of ``retryable_exceptions`` (hardy._match)
    may still say yes. One that raises leaves its error set, with the call's
    error as its context, and the answer is no.
    """
    cdef bint retried
    if not PyErr_ExceptionMatches(PyExc_Exception):
        return False
    if not PyErr_ExceptionMatches(<PyObject*>c._retryable):
        if not _holds_predicate(c._retryable):
            return False
        exc = _fetch_error()
        try:
            retried = (
                _match.predicates_match(exc, c._retryable, "retryable_exceptions", c)
                and (c._retry_circuit_open or not isinstance(exc, CircuitOpenError))
            )
        except BaseException as error:
            error.__context__ = exc
            _set_error(error)
            return False
        # Set back last: nothing may run while it is set (the isinstance()
        # that ran after it here lost it, and the give-up raised SystemError).
        _set_error(exc)
        return retried
    return c._retry_circuit_open or not PyErr_ExceptionMatches(_open_error_type)


cdef bint _retries_exc(RetryConfig c, BaseException exc):
    # Classes in C (the non-class elements of the tuple match nothing there), then predicates.
    if not PyErr_GivenExceptionMatches(<PyObject*>exc, <PyObject*>c._retryable):
        if not _match.predicates_match(exc, c._retryable, "retryable_exceptions", c):
            return False
    return c._retry_circuit_open or not isinstance(exc, CircuitOpenError)


cdef int _ask_delay(RetryConfig c, object outcome, double* out) except -1:
    """``retry_after(outcome)`` as seconds, or -1 when it returned None (the backoff, then)."""
    value = c._retry_after(outcome)
    if value is None:
        out[0] = -1.0
    elif type(value) is float and isfinite(<double>value) and <double>value >= 0.0:
        out[0] = <double>value
    else:
        out[0] = _validate.asked_delay(c._retry_after, value)
    return 0


@cython.final
cdef class _RetryCounts:
    """A retried function's statistics (hardy._retry_state.RetryStatistics
    reads them): plain adds, off the success path but one. Apart from the
    wrapper so that hardy._retry_events can read them after it is gone."""

    cdef long long _first_ok
    cdef long long _slow_calls
    cdef long long _retries
    cdef long long _slow_ok
    cdef long long _giveups
    cdef double _slept
    cdef public bint _counted      # metrics read these (hardy._retry_events.declare): no report per retry

    def _counters(self):
        return self._first_ok, self._slow_calls, self._retries, self._slow_ok, self._giveups, self._slept

    def _add(self, long long calls, long long retries, long long successes, long long giveups, double slept):
        # Called with 0 or 1 for each count (hardy._retry_run): atomic adds on free-threaded builds.
        if calls:
            hardy_add_one(&self._slow_calls)
        if retries:
            hardy_add_one(&self._retries)
        if successes:
            hardy_add_one(&self._slow_ok)
        if giveups:
            hardy_add_one(&self._giveups)
        self._slept += slept


@cython.final
cdef class _Retrying(_Wrapper):
    """A function retried as its ``RetryConfig`` says (see ``retrying``)."""

    cdef RetryConfig _config
    cdef object _on_retry
    cdef object _before_sleep
    cdef object _on_giveup
    cdef object _hooks             # the same hooks, as hardy._retry_run.Hooks (async calls)
    cdef object _spare             # a finished _FirstTry to reuse (async only)
    cdef _RetryCounts _n
    cdef bint _is_async
    cdef bint _reads_clock         # a deadline or a hook that wants ``elapsed``: read the start

    def __repr__(self):
        return f"<retrying {self._func!r} with {self._config!r}>"


cdef PyObject* _retrying_vectorcall(
    PyObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames
) except NULL:
    cdef _Retrying r = <_Retrying>self
    cdef RetryConfig c = r._config
    cdef PyObject* result
    cdef double started = 0.0
    if r._is_async:
        return _start_first_try(r, KIND_RETRY, args, nargsf, kwnames)
    if r._reads_clock and _clock_now(c._clock, &started) < 0:
        return NULL
    result = PyObject_Vectorcall(<PyObject*>r._func, args, nargsf, kwnames)
    if result != NULL and c._retry_on_result is None:
        hardy_add_one(&r._n._first_ok)
        return result
    return _retry_sync(r, args, nargsf, kwnames, result, started)


cdef PyObject* _budgeted_vectorcall(
    PyObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames
) except NULL:
    # A sync function with a budget: the call deposits (one atomic add, no clock), then as above.
    hardy_add_one(&(<_Retrying>self)._config._ledger._calls)
    return _retrying_vectorcall(self, args, nargsf, kwnames)


cdef PyObject* _retry_sync(
    _Retrying r, PyObject* const* args, size_t nargsf, PyObject* kwnames, PyObject* result, double started
) noexcept:
    """The retry loop after a first attempt that failed (or returned a result to check).

    ``result`` is the first attempt's result, or NULL with its exception set.
    hardy._retry_run.finish_sync is the same loop in Python (the twin's);
    keep them in step.
    """
    cdef RetryConfig c = r._config
    cdef long attempt = 1
    cdef long cap
    cdef double previous = -1.0
    cdef double wait = 0.0
    cdef double asked
    cdef double now
    cdef int verdict
    cdef PyObject* error = NULL
    cdef PyObject* value
    cdef PyObject* number
    cdef PyObject* delay_obj
    cdef int wanted
    cdef int allowed
    hardy_add_one(&r._n._slow_calls)
    while True:
        if result == NULL:
            if not _retries_current(c):
                return NULL
            error = _take_error()
        else:
            verdict = _result_fails(c, result)
            if verdict < 0:
                xdecref(result)
                return NULL
            if verdict == 0:
                hardy_add_one(&r._n._slow_ok)
                return result
        cap = _attempt_cap_noexcept()
        if cap < 0:
            return _fail_during_retry(error, result)
        if attempts_exhausted(c, attempt, cap):
            return _give_up_sync(r, error, result, attempt, started, args, nargsf, kwnames)
        asked = -1.0
        if c._retry_after is not None and _ask_delay_noexcept(c, error if error != NULL else result, &asked) < 0:
            return _fail_during_retry(error, result)
        wait = 0.0
        if needs_backoff(asked) and _retry_delay(c, attempt, previous, &wait) < 0:
            return _fail_during_retry(error, result)
        wait = retry_wait(asked, wait)
        if c._has_deadline:
            if _clock_now(c._clock, &now) < 0:
                return _fail_during_retry(error, result)
            if out_of_time(c, now - started, wait):
                return _give_up_sync(r, error, result, attempt, started, args, nargsf, kwnames)
        if c._ledger is not None:
            allowed = _budget_allows(c._ledger)
            if allowed < 0:
                return _fail_during_retry(error, result)
            if allowed == 0:
                return _give_up_sync(r, error, result, attempt, started, args, nargsf, kwnames, True)
        hardy_add_one(&r._n._retries)
        r._n._slept += wait
        wanted = _retry_report_wanted_noexcept(r)
        if wanted < 0:
            return _fail_during_retry(error, result)
        if wanted:
            number = PyLong_FromLong(attempt)
            if number == NULL:
                return _fail_during_retry(error, result)
            delay_obj = PyFloat_FromDouble(wait)
            if delay_obj == NULL:
                xdecref(number)
                return _fail_during_retry(error, result)
            value = PyObject_CallFunctionObjArgs(
                <PyObject*>_report_retried, <PyObject*>r, error if error != NULL else Py_None, number, delay_obj,
                <PyObject*>r._n, NULL
            )
            xdecref(number)
            xdecref(delay_obj)
            if value == NULL:
                return _fail_during_retry(error, result)
            xdecref(value)
        if r._on_retry is not None:
            number = PyLong_FromLong(attempt)
            if number == NULL:
                return _fail_during_retry(error, result)
            value = PyObject_CallFunctionObjArgs(
                <PyObject*>r._on_retry, error if error != NULL else Py_None, number, NULL
            )
            xdecref(number)
            if value == NULL:
                return _fail_during_retry(error, result)
            xdecref(value)
        if r._before_sleep is not None and _call_hook(
            r, r._before_sleep, attempt, wait, started, error, result, args, nargsf, kwnames
        ) < 0:
            return _fail_during_retry(error, result)
        if wait > 0.0:
            number = PyFloat_FromDouble(wait)
            if number == NULL:
                return _fail_during_retry(error, result)
            value = PyObject_CallFunctionObjArgs(<PyObject*>_sync_sleep, number, <PyObject*>c._sleep, NULL)
            xdecref(number)
            if value == NULL:
                return _fail_during_retry(error, result)
            xdecref(value)
        xdecref(error)
        error = NULL
        xdecref(result)
        previous = wait
        attempt += 1
        result = PyObject_Vectorcall(<PyObject*>r._func, args, nargsf, kwnames)


cdef int _retry_report_wanted(_Retrying r) except -1:
    """Whether a retry must go through hardy._retry_events: a counted wrapper
    (hardy.retry's) keeps its count in ``_retries``, so only for an event or a
    DEBUG record; another one (retry_with_backoff's) also for its tally."""
    if not r._n._counted or _retry_watchers.active:
        return 1
    return _retry_logger.isEnabledFor(10)


cdef int _retry_report_wanted_noexcept(_Retrying r) noexcept:
    try:
        return _retry_report_wanted(r)
    except BaseException as exc:
        _set_error(exc)
        return -1


cdef long _attempt_cap_noexcept() noexcept:
    """``_attempt_cap()``, or -1 with the error set."""
    try:
        return _attempt_cap()
    except BaseException as exc:
        _set_error(exc)
        return -1


cdef int _ask_delay_noexcept(RetryConfig c, PyObject* outcome, double* out) noexcept:
    try:
        return _ask_delay(c, <object>outcome, out)
    except BaseException as exc:
        _set_error(exc)
        return -1


cdef int _call_hook(
    _Retrying r, object hook, long attempt, double wait, double started, PyObject* error, PyObject* result,
    PyObject* const* args, size_t nargsf, PyObject* kwnames,
) noexcept:
    """``hook(RetryState(...))``: ``wait`` < 0 is ``delay=None`` (on_giveup); -1 with the error set."""
    try:
        positional, keywords = _pack_args(args, nargsf, kwnames)
        state = RetryState(
            attempt,
            None if wait < 0.0 else wait,
            _clock_or_raise(r._config._clock) - started,
            <object>error if error != NULL else None,
            <object>result if error == NULL and result != NULL else None,
            r._func,
            positional,
            keywords,
        )
        hook(state)
        return 0
    except BaseException as exc:
        _set_error(exc)
        return -1


cdef PyObject* _give_up_sync(
    _Retrying r, PyObject* error, PyObject* result, long attempt, double started,
    PyObject* const* args, size_t nargsf, PyObject* kwnames, bint budget_exhausted=False,
) noexcept:
    """Attempts, the deadline or the budget ran out: tell ``on_giveup``, then give up."""
    hardy_add_one(&r._n._giveups)
    if r._on_giveup is not None and _call_hook(
        r, r._on_giveup, attempt, -1.0, started, error, result, args, nargsf, kwnames
    ) < 0:
        return _fail_during_retry(error, result)
    return _report_and_give_up(r, error, result, attempt, budget_exhausted)


cdef int _result_fails(RetryConfig c, PyObject* result) noexcept:
    """1 when ``retry_on_result`` says ``result`` is a failure, 0 if not, -1 on error."""
    cdef PyObject* verdict
    cdef int truth
    if c._retry_on_result is None:
        return 0
    verdict = PyObject_CallOneArg(<PyObject*>c._retry_on_result, result)
    if verdict == NULL:
        return -1
    truth = PyObject_IsTrue(verdict)
    xdecref(verdict)
    return truth


cdef PyObject* _report_and_give_up(
    _Retrying r, PyObject* error, PyObject* result, long attempt, bint budget_exhausted
) noexcept:
    """Tell hardy._retry_events that ``r`` gives up, then give up (an error it raises wins)."""
    cdef PyObject* number = PyLong_FromLong(attempt)
    cdef PyObject* value
    cdef object flag = budget_exhausted  # a bool (no allocation)
    if number == NULL:
        return _fail_during_retry(error, result)
    value = PyObject_CallFunctionObjArgs(
        <PyObject*>_report_gave_up, <PyObject*>r, error if error != NULL else Py_None, number, <PyObject*>r._n,
        <PyObject*>flag, NULL
    )
    xdecref(number)
    if value == NULL:
        return _fail_during_retry(error, result)
    xdecref(value)
    return _give_up(error, result)


cdef PyObject* _give_up(PyObject* error, PyObject* result) noexcept:
    """Stop retrying: raise the last error, or return the last result."""
    cdef PyObject* tb
    if error == NULL:
        return result
    tb = PyException_GetTraceback(error)
    xincref(<PyObject*>Py_TYPE(error))
    PyErr_Restore(<PyObject*>Py_TYPE(error), error, tb)
    return NULL


cdef PyObject* _fail_during_retry(PyObject* error, PyObject* result) noexcept:
    """A hook, the clock, the random source or the sleep raised: that error wins.

    As in the twin, where it is raised while handling the attempt's error,
    the attempt's error becomes its ``__context__``.
    """
    cdef PyObject* ntype
    cdef PyObject* nvalue
    cdef PyObject* ntb
    xdecref(result)
    if error != NULL:
        PyErr_Fetch(&ntype, &nvalue, &ntb)
        PyErr_NormalizeException(&ntype, &nvalue, &ntb)
        if ntb != NULL:
            PyException_SetTraceback(nvalue, ntb)
        PyException_SetContext(nvalue, error)  # steals error
        PyErr_Restore(ntype, nvalue, ntb)
    return NULL


cdef double _delay_or_raise(RetryConfig c, long attempt, double previous) except? -1.0:
    cdef double wait
    if _retry_delay(c, attempt, previous, &wait) < 0:
        _propagate()
    return wait


cdef double _clock_or_raise(object clock) except? -1.0:
    cdef double now
    if _clock_now(clock, &now) < 0:
        _propagate()
    return now


hardy_enable_vectorcall(_Retrying, _vectorcall_offset())


def retrying(config, func, on_retry=None, *, before_sleep=None, on_giveup=None):
    """Wrap ``func`` so that failed calls are retried as ``config`` says.

    ``on_retry(exception, attempt)`` runs before each sleep (``exception`` is
    ``None`` when ``retry_on_result`` asked for the retry), then
    ``before_sleep(state)``; ``on_giveup(state)`` when attempts or the
    deadline run out. Async hooks are awaited for an async ``func``.
    """
    if not isinstance(config, RetryConfig):
        raise TypeError(f"config must be a RetryConfig, got {config!r}")
    _validate.callable_arg("func", func)
    hooks = _retry_run.Hooks(on_retry, before_sleep, on_giveup)
    if _retry_gen.is_generator_function(func):
        return _retry_gen.retry_generator(retrying, config, func, hooks)
    cdef _Retrying r = _Retrying.__new__(_Retrying)
    r._vectorcall = _retrying_vectorcall
    r._func = func
    r._config = config
    r._on_retry = on_retry
    r._before_sleep = before_sleep
    r._on_giveup = on_giveup
    r._hooks = hooks
    r._is_async = _wrapping.is_async_callable(func)
    if (<RetryConfig>config)._ledger is not None and not r._is_async:
        r._vectorcall = _budgeted_vectorcall  # an async call deposits as it starts (_try_step)
    r._reads_clock = (<RetryConfig>config)._has_deadline or hooks.reads_clock
    if not r._is_async:
        hooks.check_sync(func)
    _wrapping.copy_metadata(r, func, is_async=r._is_async)
    setattr(r, "retry_config", config)
    r._n = _RetryCounts.__new__(_RetryCounts)
    setattr(r, "statistics", RetryStatistics(r._n._counters))
    setattr(r, "retry_with", _retry_run.bind_retry_with(retrying, config, func, hooks))
    return r
