# The awaitable of a protected ``async def`` function, compiled (included by
# _core_c.pyx): it admits the call on its first send, forwards send, throw and
# close to the inner coroutine through am_send (3.10, 3.11) or tp_iternext
# (3.12+), and settles the breaker when that finishes. It behaves as the
# twin's ``async def`` wrapper does, operation for operation.

cdef object _coroutine_abc = collections.abc.Coroutine
cdef str _s_close = "close"

cdef enum:
    STAGE_NEW = 0       # created; not admitted yet
    STAGE_RUNNING = 1   # admitted; the outcome will be settled
    STAGE_FALLBACK = 2  # rejected; forwarding an async fallback
    STAGE_DONE = 3
    GO_ON = 2           # not a PySendResult (those are -1, 0 and 1)


cdef PyObject* _start_async(_Protected p, PyObject* const* args, size_t nargsf, PyObject* kwnames) except NULL:
    cdef _Awaiter awaiter = <_Awaiter>p._spare if p._spare is not None else None
    cdef PyObject* coro
    # Allocating, tracking and freeing an awaiter is most of the cost of an
    # async call, so each protected function keeps its last finished one
    # (``_settled`` puts it back) and reuses it when nobody else holds it:
    # the references are then this function's local and ``_spare``. An
    # awaiter in use is not kept: dropped unfinished, it must be freed (and
    # give its trial slot back). Free-threaded builds cannot rely on
    # reference counts this way and always allocate.
    if (
        HARDY_REUSE_AWAITERS
        and awaiter is not None
        and awaiter._stage == STAGE_DONE
        and Py_REFCNT(<PyObject*>awaiter) == 2
    ):
        awaiter._stage = STAGE_NEW
        p._spare = None
    else:
        awaiter = _new_awaiter()
        awaiter._breaker = p._breaker
        awaiter._owner = p
    if p._fallback is not None:
        awaiter._fallback_args = _pack_args(args, nargsf, kwnames)
    # Calling an async function only creates its coroutine; the body runs
    # after the admission, on the first send. An error raised by the call
    # itself (a wrong argument) is kept and raised there, as an ``async def``
    # wrapper would.
    coro = PyObject_Vectorcall(<PyObject*>p._func, args, nargsf, kwnames)
    if coro == NULL:
        awaiter._pending = _fetch_error()
    else:
        awaiter._coro = <object>coro
        xdecref(coro)
    xincref(<PyObject*>awaiter)
    return <PyObject*>awaiter


@cython.final
@cython.freelist(32)
cdef class _Awaiter:
    """The awaitable returned by a protected ``async def`` function.

    It forwards ``send``/``throw``/``close`` to the inner coroutine (or to
    the iterator of any other awaitable the function returned) and settles
    the breaker when that finishes. It behaves as the twin's ``async def``
    wrapper would: driving it again while it runs is a ``ValueError``, a
    non-None value sent before it started a ``TypeError``, and so on.
    """

    cdef object _coro               # the inner coroutine, or the awaitable's iterator once started
    cdef CircuitBreaker _breaker
    cdef _Protected _owner          # None for ``CircuitBreaker.call``
    cdef object _fallback_args      # (args, kwargs), kept only when there is a fallback
    cdef BaseException _pending     # raised by the call that made the coroutine
    cdef long long _epoch
    cdef int _stage
    cdef bint _running              # inside the inner coroutine: re-entry is refused
    cdef bint _started              # the inner coroutine has been sent to

    def __await__(self):
        if self._running or self._started and (self._stage == STAGE_RUNNING or self._stage == STAGE_FALLBACK):
            # Suspended in an await already, as a coroutine would be.
            raise RuntimeError("coroutine is being awaited already")
        return self

    def __iter__(self):
        return self

    def __next__(self):
        return self.send(None)

    def send(self, value):
        """Forward ``value`` to the inner coroutine."""
        cdef PyObject* result = NULL
        cdef int status = _awaiter_send(<PyObject*>self, <PyObject*>value, &result)
        return _send_result(status, result)

    def throw(self, typ, val=None, tb=None):
        """Raise an exception inside the inner coroutine."""
        if self._running:
            raise ValueError("coroutine already executing")
        if self._stage == STAGE_DONE:
            raise RuntimeError("cannot reuse already awaited coroutine")  # as a finished coroutine
        if not self._started:
            # Thrown in before it started: raised as it starts, and it is
            # over (an admitted call of CircuitBreaker.call gives its slot back).
            b = self._breaker
            epoch = self._epoch
            admitted = self._stage == STAGE_RUNNING
            self._abandon()
            if admitted:
                _release(b, epoch, False)
            if val is None:
                raise typ
            raise val.with_traceback(tb) if tb is not None else val
        self._running = True
        try:
            return self._throw_in(typ, val, tb)
        finally:
            self._running = False

    cdef object _throw_in(self, typ, val, tb):
        cdef PyObject* result
        cdef int stage = self._stage
        throw = getattr(self._coro, "throw", None)
        if PyErr_GivenExceptionMatches(<PyObject*>typ, <PyObject*>GeneratorExit):
            # As `await` does with GeneratorExit: close the inner coroutine,
            # then raise it here; an inner one that refuses to close fails.
            close = getattr(self._coro, "close", None)
            if close is not None:
                try:
                    close()
                except BaseException as exc:
                    b = self._breaker
                    epoch = self._epoch
                    self._settled()
                    if stage == STAGE_RUNNING:
                        _set_error(exc)
                        if _settle_error(b, epoch) < 0:
                            _propagate()
                        _fetch_error()
                    raise
            throw = None
        if throw is None:
            # An iterator without throw(): the exception is raised where it
            # is awaited, as `await` does.
            error = val if val is not None else (typ() if isinstance(typ, type) else typ)
            if tb is not None:
                error = error.with_traceback(tb)
            _set_error(error)
            result = NULL
        elif val is None and tb is None:
            result = PyObject_CallOneArg(<PyObject*>throw, <PyObject*>typ)
        else:
            result = PyObject_CallFunctionObjArgs(<PyObject*>throw, <PyObject*>typ, <PyObject*>val, <PyObject*>tb, NULL)
        if result != NULL:
            return _steal(result)
        b = self._breaker
        epoch = self._epoch
        self._settled()
        if stage == STAGE_RUNNING:
            if PyErr_ExceptionMatches(PyExc_StopIteration):
                _settle_return(b, epoch)
            else:
                _settle_error(b, epoch)
        _propagate()

    def close(self):
        """Close the inner coroutine; an admitted call gives back its trial slot.

        An inner coroutine that refuses to close (it ignores ``GeneratorExit``)
        fails with its ``RuntimeError``, which counts as a failure.
        """
        if self._running:
            raise ValueError("coroutine already executing")
        self._running = True
        try:
            self._close_in()
        finally:
            self._running = False

    cdef object _close_in(self):
        cdef int stage = self._stage
        coro = self._coro
        b = self._breaker
        epoch = self._epoch
        self._settled()
        if stage == STAGE_NEW:
            _close_unstarted(coro)
            return
        if stage not in (STAGE_RUNNING, STAGE_FALLBACK):
            return
        close = getattr(coro, "close", None)
        try:
            if close is not None:
                close()
        except BaseException as exc:
            if stage == STAGE_RUNNING:
                _set_error(exc)
                if _settle_error(b, epoch) < 0:
                    _propagate()  # the settling failed: its error, with this one as context
                _fetch_error()
            raise
        if stage == STAGE_RUNNING:
            _release(b, epoch, False)

    def __dealloc__(self):
        # Dropped unfinished: closed as a coroutine's finaliser would close
        # it, so an admitted call gives its trial slot back (and an inner
        # coroutine that refuses to close fails, as in the twin).
        if (self._stage == STAGE_RUNNING or self._stage == STAGE_FALLBACK) and not self._running:
            _close_dropped(self)

    cdef void _abandon(self) noexcept:
        coro = self._coro
        self._settled()
        _close_unstarted(coro)

    cdef inline void _settled(self) noexcept:
        # Finished: drop everything the call held, so a reused awaiter keeps
        # nothing of its previous call alive.
        self._stage = STAGE_DONE
        self._started = False
        self._coro = None
        # Usually None already: test first, it saves the reference churn.
        if self._pending is not None:
            self._pending = None
        if self._fallback_args is not None:
            self._fallback_args = None
        if HARDY_REUSE_AWAITERS and self._owner is not None and self._owner._spare is None:
            self._owner._spare = self


cdef void _close_dropped(_Awaiter aw) noexcept:
    cdef PyObject* etype
    cdef PyObject* evalue
    cdef PyObject* etb
    PyErr_Fetch(&etype, &evalue, &etb)
    aw._owner = None  # being freed: it must not become its function's spare
    aw._running = True
    try:
        aw._close_in()
    except BaseException as exc:
        _set_error(exc)
        PyErr_WriteUnraisable(<PyObject*>aw)
    aw._running = False
    PyErr_Restore(etype, evalue, etb)


cdef _Awaiter _new_awaiter():
    return _Awaiter.__new__(_Awaiter)


cdef _Awaiter _admitted_awaiter(CircuitBreaker breaker, object coro, long long epoch):
    """The awaitable of ``CircuitBreaker.call`` on a coroutine: admitted already, not started."""
    cdef _Awaiter awaiter = _new_awaiter()
    awaiter._breaker = breaker
    awaiter._coro = coro
    awaiter._epoch = epoch
    awaiter._stage = STAGE_RUNNING
    return awaiter


cdef void _close_unstarted(object coro) noexcept:
    # A coroutine that never ran is closed so it does not warn that it was
    # never awaited: it was not meant to run.
    cdef PyObject* result
    if coro is not None and PyCoro_CheckExact(<PyObject*>coro):
        result = PyObject_CallMethodNoArgs(<PyObject*>coro, <PyObject*>_s_close)
        if result == NULL:
            PyErr_WriteUnraisable(<PyObject*>coro)
        else:
            xdecref(result)


cdef object _send_result(int status, PyObject* result):
    if status == PYGEN_NEXT:
        return _steal(result)
    if status == PYGEN_RETURN:
        value = _steal(result)
        raise StopIteration(value)
    _propagate()


cdef void _settle_return(CircuitBreaker b, long long epoch) noexcept:
    cdef PyObject* etype
    cdef PyObject* evalue
    cdef PyObject* etb
    cdef int rc
    PyErr_Fetch(&etype, &evalue, &etb)
    PyErr_NormalizeException(&etype, &evalue, &etb)
    if b._flags & FLAG_RESULT:
        value = getattr(<object>evalue, "value", None)
        rc = _on_result(b, epoch, <PyObject*>value)
    else:
        rc = _on_success(b, epoch)
    if rc < 0:
        PyErr_WriteUnraisable(<PyObject*>b)
    PyErr_Restore(etype, evalue, etb)


cdef int _awaiter_start(_Awaiter aw, PyObject** presult) noexcept:
    """Admit the call on the first send: GO_ON, or a PySendResult to return."""
    cdef CircuitBreaker b = aw._breaker
    cdef long long epoch = _admit(b)
    cdef PyObject* result
    cdef _Protected owner = aw._owner
    if epoch >= 0:
        aw._epoch = epoch
        aw._stage = STAGE_RUNNING
        if aw._pending is not None:
            _set_error(aw._pending)
            aw._settled()
            _settle_error(b, epoch)
            return PYGEN_ERROR
        return GO_ON
    packed = aw._fallback_args
    aw._abandon()
    if epoch == -2:
        return PYGEN_ERROR
    if owner is None or owner._fallback is None:
        _raise_rejection(b)
        return PYGEN_ERROR
    result = PyObject_Call(
        <PyObject*>owner._fallback,
        PyTuple_GET_ITEM(<PyObject*>packed, 0),
        PyTuple_GET_ITEM(<PyObject*>packed, 1),
    )
    if result == NULL:
        return PYGEN_ERROR
    if not owner._fallback_is_async:
        presult[0] = result
        return PYGEN_RETURN
    aw._coro = <object>result
    xdecref(result)
    aw._stage = STAGE_FALLBACK
    return GO_ON


cdef int _awaiter_send(PyObject* self, PyObject* arg, PyObject** presult) noexcept:
    cdef _Awaiter aw = <_Awaiter>self
    cdef int status
    if aw._running:
        PyErr_SetString(PyExc_ValueError, b"coroutine already executing")
        return PYGEN_ERROR
    if aw._stage == STAGE_DONE:
        PyErr_SetString(PyExc_RuntimeError, b"cannot reuse already awaited coroutine")
        return PYGEN_ERROR
    if not aw._started and arg != Py_None:
        # As for any coroutine, before admission: nothing is counted.
        PyErr_SetString(PyExc_TypeError, b"can't send non-None value to a just-started coroutine")
        return PYGEN_ERROR
    # Running covers everything this step does, the admission and the
    # settling too: user code they run (a listener, a clock) that drives this
    # awaitable again is refused, as for a coroutine that is executing.
    aw._running = True
    status = _awaiter_step(aw, arg, presult)
    aw._running = False
    return status


cdef int _awaiter_step(_Awaiter aw, PyObject* arg, PyObject** presult) noexcept:
    cdef CircuitBreaker b
    cdef PyObject* it
    cdef int status
    cdef int stage
    if aw._stage == STAGE_NEW:
        if aw._breaker._state == CLOSED and aw._pending is None:
            aw._epoch = aw._breaker._epoch
            aw._stage = STAGE_RUNNING
        else:
            status = _awaiter_start(aw, presult)
            if status != GO_ON:
                return status
        if not PyCoro_CheckExact(<PyObject*>aw._coro):
            # An awaitable that is not a coroutine (a Future, an object with
            # __await__): iterate what `await` would.
            it = hardy_await_iter(<PyObject*>aw._coro)
            if it == NULL:
                return _awaiter_failed(aw)
            aw._coro = <object>it
            xdecref(it)
    aw._started = True
    status = PyIter_Send(<PyObject*>aw._coro, arg, presult)
    if status == PYGEN_NEXT:
        return status
    # Finished: mark it done before settling.
    stage = aw._stage
    b = aw._breaker
    aw._settled()
    if stage == STAGE_RUNNING:
        if status == PYGEN_RETURN:
            if b._state == CLOSED and b._failure_count == 0 and b._flags == 0:
                hardy_add_one(&b._successes)
            elif _on_result(b, aw._epoch, presult[0]) < 0:
                # An error return leaves no result: a caller such as
                # asyncio's Task reads a non-NULL one as the return value.
                xdecref(presult[0])
                presult[0] = NULL
                status = PYGEN_ERROR
        else:
            _settle_error(b, aw._epoch)
    return status


cdef int _awaiter_failed(_Awaiter aw) noexcept:
    """The admitted call failed before running (its awaitable could not be awaited)."""
    cdef int stage = aw._stage
    cdef CircuitBreaker b = aw._breaker
    aw._settled()
    if stage == STAGE_RUNNING:
        _settle_error(b, aw._epoch)
    return PYGEN_ERROR


cdef PyObject* _awaiter_iternext(PyObject* self) noexcept:
    # CPython 3.12+ drives an awaitable that is not a native coroutine
    # through tp_iternext (3.10 and 3.11 use am_send). A return value must
    # then travel in a StopIteration; None needs none.
    cdef PyObject* result = NULL
    cdef int status = _awaiter_send(self, Py_None, &result)
    if status == PYGEN_NEXT:
        return result
    if status == PYGEN_RETURN:
        if result != Py_None:
            hardy_set_stop_iteration(result)
        xdecref(result)
    return NULL


hardy_set_am_send(_Awaiter, _awaiter_send)
hardy_set_iternext(_Awaiter, _awaiter_iternext)
hardy_stop_ready()
_coroutine_abc.register(_Awaiter)
