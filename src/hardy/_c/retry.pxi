# Retries, compiled (included by _core_c.pyx). The decisions (delays, when to
# stop) are hardy/policies/retry.py; this is the loop around them, the C
# random source, and the Python-facing class. The twin's is hardy/_py/retry.py.

cdef enum:
    MAX_ATTEMPT = 2147483647
    BASE_TABLE = 16

cdef object _default_random = random.random
cdef object _getrandbits = random.getrandbits
cdef object _sync_sleep = _sleep.sync_sleep
cdef object _async_sleep = _sleep.async_sleep
# Called only when the loop retries or gives up (hardy._retry_events): never on a first-attempt success.
cdef object _report_retried = _retry_events.retried
cdef object _report_gave_up = _retry_events.gave_up


cdef class RetryConfig(RetryPolicy):
    """How to retry: how many attempts, which errors, and how long to wait between them.

    The wait after failed attempt ``n`` (1-based) starts from
    ``base = min(max_delay, initial_delay * backoff_factor ** (n - 1))`` and
    is then jittered (see :class:`~hardy.Jitter`; ``jitter=True`` is full
    jitter, uniform in ``[0, base]``). It always lies in ``[0, max_delay]``.
    Keyword-only: ``retry_on_result`` (a predicate that makes a returned value
    count as a failure), ``deadline`` (a budget in seconds for all attempts
    and sleeps), ``random`` (returns floats in ``[0, 1)``) and ``clock``
    (monotonic seconds), injectable for reproducible tests.

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
    """Whether the exception currently set is one ``c`` retries."""
    if not PyErr_ExceptionMatches(PyExc_Exception):
        return False
    if not PyErr_ExceptionMatches(<PyObject*>c._retryable):
        return False
    return c._retry_circuit_open or not PyErr_ExceptionMatches(_open_error_type)


cdef bint _retries_exc(RetryConfig c, BaseException exc):
    return isinstance(exc, c._retryable) and (c._retry_circuit_open or not isinstance(exc, CircuitOpenError))


@cython.final
cdef class _Retrying(_Wrapper):
    """A function retried as its ``RetryConfig`` says (see ``retrying``)."""

    cdef RetryConfig _config
    cdef object _on_retry
    cdef bint _is_async
    cdef bint _on_retry_is_async

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
        coro = _retry_async(r, *_pack_args(args, nargsf, kwnames))
        xincref(<PyObject*>coro)
        return <PyObject*>coro
    if c._has_deadline and _clock_now(c._clock, &started) < 0:
        return NULL
    result = PyObject_Vectorcall(<PyObject*>r._func, args, nargsf, kwnames)
    if result != NULL and c._retry_on_result is None:
        return result
    return _retry_sync(r, args, nargsf, kwnames, result, started)


cdef PyObject* _retry_sync(
    _Retrying r, PyObject* const* args, size_t nargsf, PyObject* kwnames, PyObject* result, double started
) noexcept:
    """The retry loop after a first attempt that failed (or returned a result to check).

    ``result`` is the first attempt's result, or NULL with its exception set.
    The twin's ``retried`` is the same loop in Python; keep them in step.
    """
    cdef RetryConfig c = r._config
    cdef long attempt = 1
    cdef double previous = -1.0
    cdef double wait = 0.0
    cdef double now
    cdef int verdict
    cdef PyObject* error = NULL
    cdef PyObject* value
    cdef PyObject* number
    cdef PyObject* delay_obj
    while True:
        if result == NULL:
            if not _retries_current(c):
                return NULL
            error = _take_error()
            if out_of_attempts(c, attempt):
                return _report_and_give_up(r, error, NULL, attempt)
        else:
            verdict = _result_fails(c, result)
            if verdict < 0:
                xdecref(result)
                return NULL
            if verdict == 0:
                return result
            if out_of_attempts(c, attempt):
                return _report_and_give_up(r, NULL, result, attempt)
        if _retry_delay(c, attempt, previous, &wait) < 0:
            return _fail_during_retry(error, result)
        if c._has_deadline:
            if _clock_now(c._clock, &now) < 0:
                return _fail_during_retry(error, result)
            if out_of_time(c, now - started, wait):
                return _report_and_give_up(r, error, result, attempt)
        number = PyLong_FromLong(attempt)
        if number == NULL:
            return _fail_during_retry(error, result)
        delay_obj = PyFloat_FromDouble(wait)
        if delay_obj == NULL:
            xdecref(number)
            return _fail_during_retry(error, result)
        value = PyObject_CallFunctionObjArgs(
            <PyObject*>_report_retried, <PyObject*>r, error if error != NULL else Py_None, number, delay_obj, NULL
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
        if wait > 0.0:
            number = PyFloat_FromDouble(wait)
            if number == NULL:
                return _fail_during_retry(error, result)
            value = PyObject_CallOneArg(<PyObject*>_sync_sleep, number)
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


cdef PyObject* _report_and_give_up(_Retrying r, PyObject* error, PyObject* result, long attempt) noexcept:
    """Tell hardy._retry_events that ``r`` gives up, then give up (an error it raises wins)."""
    cdef PyObject* number = PyLong_FromLong(attempt)
    cdef PyObject* value
    if number == NULL:
        return _fail_during_retry(error, result)
    value = PyObject_CallFunctionObjArgs(
        <PyObject*>_report_gave_up, <PyObject*>r, error if error != NULL else Py_None, number, NULL
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


async def _retry_async(_Retrying r, tuple args, dict kwargs):
    # The twin's ``retried_async``, compiled; keep them in step.
    cdef RetryConfig c = r._config
    cdef double started = _clock_or_raise(c._clock) if c._has_deadline else 0.0
    cdef long attempt = 1
    cdef double previous = -1.0
    cdef double wait
    func = r._func
    on_retry = r._on_retry
    while True:
        try:
            result = await func(*args, **kwargs)
        except Exception as exc:
            if not _retries_exc(c, exc):
                raise
            if out_of_attempts(c, attempt):
                _report_gave_up(r, exc, attempt)
                raise
            wait = _delay_or_raise(c, attempt, previous)
            if c._has_deadline and out_of_time(c, _clock_or_raise(c._clock) - started, wait):
                _report_gave_up(r, exc, attempt)
                raise
            _report_retried(r, exc, attempt, wait)
            if on_retry is not None:
                if r._on_retry_is_async:
                    await on_retry(exc, attempt)
                else:
                    on_retry(exc, attempt)
            if wait > 0.0:
                await _async_sleep(wait)
        else:
            if c._retry_on_result is None or not c._retry_on_result(result):
                return result
            if out_of_attempts(c, attempt):
                _report_gave_up(r, None, attempt)
                return result
            wait = _delay_or_raise(c, attempt, previous)
            if c._has_deadline and out_of_time(c, _clock_or_raise(c._clock) - started, wait):
                _report_gave_up(r, None, attempt)
                return result
            _report_retried(r, None, attempt, wait)
            if on_retry is not None:
                if r._on_retry_is_async:
                    await on_retry(None, attempt)
                else:
                    on_retry(None, attempt)
            if wait > 0.0:
                await _async_sleep(wait)
        previous = wait
        attempt += 1


hardy_enable_vectorcall(_Retrying, _vectorcall_offset())


def retrying(config, func, on_retry=None):
    """Wrap ``func`` so that failed calls are retried as ``config`` says.

    ``on_retry(exception, attempt)`` runs before each sleep (``exception`` is
    ``None`` when ``retry_on_result`` asked for the retry); it is awaited when
    both it and ``func`` are async.
    """
    if not isinstance(config, RetryConfig):
        raise TypeError(f"config must be a RetryConfig, got {config!r}")
    _validate.callable_arg("func", func)
    if on_retry is not None:
        _validate.callable_arg("on_retry", on_retry)
    cdef _Retrying r = _Retrying.__new__(_Retrying)
    r._vectorcall = _retrying_vectorcall
    r._func = func
    r._config = config
    r._on_retry = on_retry
    r._is_async = _wrapping.is_async_callable(func)
    r._on_retry_is_async = on_retry is not None and _wrapping.is_async_callable(on_retry)
    if r._on_retry_is_async and not r._is_async:
        raise TypeError(f"on_retry {on_retry!r} is async but {func!r} is not: it could not be awaited")
    _wrapping.copy_metadata(r, func, is_async=r._is_async)
    setattr(r, "retry_config", config)
    return r
