# The awaitable of an async retry, fallback chain or timed call, compiled
# (included by _core_c.pyx after retry.pxi, chain.pxi and async_timeout.pxi).
# It awaits the first attempt (the chain's primary, the timed call under its
# deadline) itself, through am_send (3.10, 3.11) or tp_iternext (3.12+) as
# _Awaiter does, and returns its value straight away when nothing more is to
# be decided. Anything else (a failure, a result to check, a timeout) is
# handed over to the Python coroutine both cores share
# (hardy._retry_run.finish_async, hardy._chain.run_chain_async,
# hardy._async_deadlines.timed_out_answer), which it then drives: every
# decision stays written once, there and in hardy/policies.

cdef enum:
    TRY_NEW = 0     # created; the first attempt is not called yet
    TRY_FIRST = 1   # awaiting the first attempt
    TRY_REST = 2    # driving the shared Python continuation
    TRY_DONE = 3

cdef enum:
    KIND_CHAIN = 0  # the owner is a _Chain
    KIND_RETRY = 1  # a _Retrying
    KIND_TIMED = 2  # a _TimedAsync

cdef object _one_element = 1


@cython.final
@cython.freelist(32)
cdef class _FirstTry:
    """The awaitable returned by an async ``retrying`` function, fallback ``chain`` or ``timed_async`` function.

    It behaves as the ``async def`` it replaces: driving it again while it
    runs is a ``ValueError``, a non-None value sent before it started a
    ``TypeError``, awaiting it twice a ``RuntimeError``.
    """

    cdef object _owner              # the _Retrying, the _Chain or the _TimedAsync
    # Up to three positional arguments and no keywords are kept as they are
    # (``_nargs`` of them) and the attempt is vectorcalled with them: a tuple
    # is made only for a continuation, after a failure. Otherwise (``_nargs``
    # is -1) they are packed into ``_args`` and ``_kwargs``.
    cdef object _a0
    cdef object _a1
    cdef object _a2
    cdef Py_ssize_t _nargs
    cdef tuple _args
    cdef dict _kwargs
    cdef object _coro               # the first attempt's coroutine (or iterator), then the continuation
    cdef double _t0                 # when the call started (a retry that reads the clock)
    cdef AsyncDeadline _node        # a timed call's deadline, while the call is awaited under it
    cdef AsyncDeadline _spare_node  # the last one, to fill again (async_timeout.pxi)
    cdef DeadlineLane _lane
    cdef object _task               # the asyncio task the deadline cancels
    cdef int _stage
    cdef int _kind
    cdef bint _running              # inside a step: re-entry is refused

    def __await__(self):
        if self._running or self._stage == TRY_FIRST or self._stage == TRY_REST:
            raise RuntimeError("coroutine is being awaited already")
        return self

    def __iter__(self):
        return self

    def __next__(self):
        return self.send(None)

    def send(self, value):
        """Forward ``value`` to the awaited attempt (or the continuation)."""
        cdef PyObject* result = NULL
        cdef int status = _try_send(<PyObject*>self, <PyObject*>value, &result)
        return _send_result(status, result)

    def throw(self, typ, val=None, tb=None):
        """Raise an exception where the call is suspended, as ``await`` would."""
        cdef PyObject* result = NULL
        cdef int status
        if self._running:
            raise ValueError("coroutine already executing")
        if self._stage == TRY_DONE:
            raise RuntimeError("cannot reuse already awaited coroutine")
        if self._stage == TRY_NEW:
            # Thrown in before it started: raised as it starts, and it is
            # over; the first attempt is never called.
            _try_done(self)
            if val is None:
                raise typ
            raise val.with_traceback(tb) if tb is not None else val
        self._running = True
        try:
            status = _try_throw(self, typ, val, tb, &result)
        finally:
            self._running = False
        return _send_result(status, result)

    def close(self):
        """Close the awaited attempt (or the continuation); it is over."""
        cdef int stage = self._stage
        if self._running:
            raise ValueError("coroutine already executing")
        coro = self._coro
        lane = self._lane
        node = self._node
        task = self._task
        _try_done(self)
        if stage == TRY_NEW or stage == TRY_DONE:
            return
        close = getattr(coro, "close", None)
        self._running = True
        try:
            if close is not None:
                close()
        finally:
            try:
                if node is not None:
                    deadline_settle(lane, node, task, False)  # it leaves (or its cancellation is taken back)
            finally:
                self._running = False

    def __dealloc__(self):
        # Dropped while a timed call was awaited under its deadline: it
        # leaves, as the twin's coroutine does when it is closed.
        cdef PyObject* etype
        cdef PyObject* evalue
        cdef PyObject* etb
        if self._node is not None:
            PyErr_Fetch(&etype, &evalue, &etb)
            try:
                deadline_settle(self._lane, self._node, self._task, False)
            except BaseException as exc:
                _set_error(exc)
                PyErr_WriteUnraisable(<PyObject*>self._owner)
            PyErr_Restore(etype, evalue, etb)


cdef inline void _try_done(_FirstTry aw) noexcept:
    # Finished: drop what the call held (the owner stays: it is immutable).
    aw._stage = TRY_DONE
    aw._coro = None
    if aw._node is not None:
        aw._spare_node = aw._node
        aw._node = None
        aw._lane = None
        aw._task = None
    if aw._nargs < 0:
        aw._args = None
        if aw._kwargs is not None:
            aw._kwargs = None
    else:
        if aw._nargs > 0:
            aw._a0 = None
            if aw._nargs > 1:
                aw._a1 = None
                if aw._nargs > 2:
                    aw._a2 = None
        aw._nargs = 0
    if HARDY_REUSE_AWAITERS:
        if aw._kind == KIND_RETRY:
            if (<_Retrying>aw._owner)._spare is None:
                (<_Retrying>aw._owner)._spare = aw
        elif aw._kind == KIND_TIMED:
            if (<_TimedAsync>aw._owner)._spare is None:
                (<_TimedAsync>aw._owner)._spare = aw
        elif (<_Chain>aw._owner)._spare is None:
            (<_Chain>aw._owner)._spare = aw


cdef PyObject* _start_first_try(
    object owner, int kind, PyObject* const* args, size_t nargsf, PyObject* kwnames
) except NULL:
    """The awaitable of one call: the owner's finished spare when nobody else holds it, else a new one."""
    cdef _FirstTry aw
    cdef Py_ssize_t nargs = PyVectorcall_NARGS(nargsf)
    cdef Py_ssize_t i
    cdef PyObject* positional
    if kind == KIND_RETRY:
        spare = (<_Retrying>owner)._spare
    elif kind == KIND_TIMED:
        spare = (<_TimedAsync>owner)._spare
    else:
        spare = (<_Chain>owner)._spare
    # As _start_async: reused when the references are this local and the
    # owner's ``_spare`` only (never on free-threaded builds).
    if (
        HARDY_REUSE_AWAITERS
        and spare is not None
        and (<_FirstTry>spare)._stage == TRY_DONE
        and Py_REFCNT(<PyObject*>spare) == 2
    ):
        aw = <_FirstTry>spare
        if kind == KIND_RETRY:
            (<_Retrying>owner)._spare = None
        elif kind == KIND_TIMED:
            (<_TimedAsync>owner)._spare = None
        else:
            (<_Chain>owner)._spare = None
        aw._stage = TRY_NEW
    else:
        aw = _FirstTry.__new__(_FirstTry)
        aw._owner = owner
        aw._kind = kind
    if (kwnames == NULL or PyTuple_GET_SIZE(kwnames) == 0) and nargs <= 3:
        aw._nargs = nargs
        if nargs > 0:
            aw._a0 = <object>args[0]
            if nargs > 1:
                aw._a1 = <object>args[1]
                if nargs > 2:
                    aw._a2 = <object>args[2]
    elif kwnames == NULL or PyTuple_GET_SIZE(kwnames) == 0:
        aw._nargs = -1
        positional = PyTuple_New(nargs)
        if positional == NULL:
            return NULL
        for i in range(nargs):
            xincref(args[i])
            PyTuple_SET_ITEM(positional, i, args[i])
        aw._args = <tuple>positional
        xdecref(positional)
        aw._kwargs = None  # no keywords: the attempt is called without a dict
    else:
        aw._nargs = -1
        packed = _pack_args(args, nargsf, kwnames)
        aw._args = <tuple>packed[0]
        aw._kwargs = <dict>packed[1]
    xincref(<PyObject*>aw)
    return <PyObject*>aw


cdef int _try_send(PyObject* self, PyObject* arg, PyObject** presult) noexcept:
    cdef _FirstTry aw = <_FirstTry>self
    cdef int status
    if aw._running:
        PyErr_SetString(PyExc_ValueError, b"coroutine already executing")
        return PYGEN_ERROR
    if aw._stage == TRY_DONE:
        PyErr_SetString(PyExc_RuntimeError, b"cannot reuse already awaited coroutine")
        return PYGEN_ERROR
    if aw._stage == TRY_NEW and arg != Py_None:
        PyErr_SetString(PyExc_TypeError, b"can't send non-None value to a just-started coroutine")
        return PYGEN_ERROR
    # Running covers the whole step, the hand-over too: user code it runs
    # (the function, a hook, a clock) that drives this awaitable is refused.
    aw._running = True
    status = _try_step(aw, arg, presult)
    aw._running = False
    return status


cdef int _try_step(_FirstTry aw, PyObject* arg, PyObject** presult) noexcept:
    cdef PyObject* coro
    cdef PyObject* it
    cdef PyObject* func
    cdef PyObject* stack[3]
    cdef int status
    if aw._stage == TRY_NEW:
        aw._stage = TRY_FIRST
        if aw._kind == KIND_RETRY:
            func = <PyObject*>(<_Retrying>aw._owner)._func
            if (<_Retrying>aw._owner)._config._ledger is not None:
                hardy_add_one(&(<_Retrying>aw._owner)._config._ledger._calls)  # the call deposits as it starts
            if (<_Retrying>aw._owner)._reads_clock and _clock_now(
                (<_Retrying>aw._owner)._config._clock, &aw._t0
            ) < 0:
                _try_done(aw)
                return PYGEN_ERROR
        elif aw._kind == KIND_TIMED:
            func = <PyObject*>(<_TimedAsync>aw._owner)._func
        else:
            func = <PyObject*>(<_Chain>aw._owner)._func
        if aw._nargs >= 0:
            # Borrowed from the fields: nothing clears them while the step runs (re-entry is refused).
            stack[0] = <PyObject*>aw._a0
            stack[1] = <PyObject*>aw._a1
            stack[2] = <PyObject*>aw._a2
            coro = PyObject_Vectorcall(func, stack, <size_t>aw._nargs, NULL)
        else:
            coro = PyObject_Call(func, <PyObject*>aw._args, NULL if aw._kwargs is None else <PyObject*>aw._kwargs)
        if coro == NULL:
            if aw._kind == KIND_TIMED:
                _try_done(aw)  # raised before the deadline was entered, as in the twin
                return PYGEN_ERROR
            return _try_outcome(aw, PYGEN_ERROR, presult)
        if aw._kind == KIND_TIMED:
            status = _try_timed_enter(aw, coro, presult)
            if status != GO_ON:
                return status
        if not PyCoro_CheckExact(coro):
            # Any other awaitable: iterate what `await` would.
            it = hardy_await_iter(coro)
            xdecref(coro)
            if it == NULL:
                return _try_outcome(aw, PYGEN_ERROR, presult)
            coro = it
        aw._coro = <object>coro
        xdecref(coro)
    status = PyIter_Send(<PyObject*>aw._coro, arg, presult)
    if status == PYGEN_NEXT:
        return status
    if aw._stage == TRY_REST:
        _try_done(aw)
        return status
    if status == PYGEN_RETURN and _try_returned(aw):
        return status
    return _try_outcome(aw, status, presult)


cdef inline bint _try_returned(_FirstTry aw) noexcept:
    """The first attempt returned: True when that is the end (counted, done), as ``_try_outcome`` would
    decide; kept out of it, whose Python locals and handler a success need not pay for."""
    cdef _Retrying r
    if aw._kind == KIND_CHAIN:
        # A chain with fallback_on_result never comes here (see _chain_vectorcall).
        _try_done(aw)
        return True
    if aw._kind == KIND_TIMED:
        if aw._node.state != DEADLINE_PENDING:
            return False  # expired meanwhile: settled by _timed_outcome
        deadline_leave(aw._lane, aw._node)
        _try_done(aw)
        return True
    r = <_Retrying>aw._owner
    if r._config._retry_on_result is not None:
        return False
    hardy_add_one(&r._n._first_ok)
    _try_done(aw)
    return True


cdef int _try_throw(_FirstTry aw, object typ, object val, object tb, PyObject** presult) noexcept:
    """``throw()`` forwarded to what is awaited; the first attempt's outcome is then judged as after a send."""
    cdef PyObject* result = NULL
    cdef int status
    try:
        result = _try_throw_in(aw._coro, typ, val, tb)
    except BaseException as exc:
        _set_error(exc)
    if result != NULL:
        presult[0] = result
        return PYGEN_NEXT
    status = PYGEN_ERROR
    if PyErr_ExceptionMatches(PyExc_StopIteration):
        # It returned: its value is in the StopIteration.
        stop = _fetch_error()
        value = getattr(stop, "value", None)
        xincref(<PyObject*>value)
        presult[0] = <PyObject*>value
        status = PYGEN_RETURN
    if aw._stage == TRY_REST:
        _try_done(aw)
        return status
    return _try_outcome(aw, status, presult)


cdef PyObject* _try_throw_in(object coro, object typ, object val, object tb) except? NULL:
    """``coro.throw(...)`` as ``await`` does it: a new reference to what it yielded, or NULL with its error set."""
    cdef PyObject* result
    throw = getattr(coro, "throw", None)
    if PyErr_GivenExceptionMatches(<PyObject*>typ, <PyObject*>GeneratorExit):
        # As `await` does with GeneratorExit: close the inner one, then raise it here.
        close = getattr(coro, "close", None)
        if close is not None:
            close()
        throw = None
    if throw is None:
        error = val if val is not None else (typ() if isinstance(typ, type) else typ)
        if tb is not None:
            error = error.with_traceback(tb)
        _set_error(error)
        return NULL
    if val is None and tb is None:
        result = PyObject_CallOneArg(<PyObject*>throw, <PyObject*>typ)
    else:
        result = PyObject_CallFunctionObjArgs(<PyObject*>throw, <PyObject*>typ, <PyObject*>val, <PyObject*>tb, NULL)
    return result


cdef int _try_outcome(_FirstTry aw, int status, PyObject** presult) noexcept:
    """The first attempt finished with ``status``: return its value, or hand over to the continuation."""
    cdef _Retrying r
    cdef _Chain ch
    cdef int says
    if aw._kind == KIND_TIMED:
        return _timed_outcome(aw, status, presult)
    error = None
    result = None
    if status == PYGEN_RETURN:
        if aw._kind == KIND_CHAIN:
            # A chain with fallback_on_result never comes here (see _chain_vectorcall).
            _try_done(aw)
            return status
        r = <_Retrying>aw._owner
        if r._config._retry_on_result is None:
            hardy_add_one(&r._n._first_ok)
            _try_done(aw)
            return status
        result = _steal(presult[0])
        presult[0] = NULL
    else:
        # As ``except Exception`` around the attempt: anything else propagates.
        if not PyErr_ExceptionMatches(PyExc_Exception):
            _try_done(aw)
            return PYGEN_ERROR
        if aw._kind == KIND_CHAIN:
            ch = <_Chain>aw._owner
            if not PyErr_ExceptionMatches(<PyObject*>ch._exceptions):
                says = _chain_predicate_says(ch) if ch._has_predicates else 0
                if says <= 0:
                    _try_done(aw)
                    return PYGEN_ERROR
        error = _fetch_error()
    positional, kwargs = _kept_args(aw)
    try:
        if aw._kind == KIND_RETRY:
            r = <_Retrying>aw._owner
            cont = _finish_async(
                _Run(r._config, r._hooks, r._func, positional, kwargs, r._n, aw._t0), r._func, error, result
            )
        else:
            ch = <_Chain>aw._owner
            cont = _run_chain_async(
                ch._name, ch._funcs, ch._awaited, positional, kwargs, ch._default, ch._exceptions, ch._log,
                ch._on_result, _one_element, [error],
            )
    except BaseException as exc:
        _set_error(exc)
        _try_done(aw)
        return PYGEN_ERROR
    aw._coro = cont
    aw._stage = TRY_REST
    status = PyIter_Send(<PyObject*>cont, Py_None, presult)
    if status != PYGEN_NEXT:
        _try_done(aw)
    return status


cdef tuple _kept_args(_FirstTry aw):
    """The call's arguments, as a continuation is given them: (positional, keywords)."""
    kwargs = {} if aw._kwargs is None else aw._kwargs
    if aw._nargs >= 0:
        return (aw._a0, aw._a1, aw._a2)[:aw._nargs], kwargs
    return aw._args, kwargs


cdef int _try_timed_enter(_FirstTry aw, PyObject* coro, PyObject** presult) noexcept:
    """A timed call enters its deadline: GO_ON, or the first step of the continuation it was handed over to."""
    cdef int entered
    cdef int status
    try:
        entered = _timed_enter(aw)
        if entered == 0:
            return GO_ON
        cont = _timed_outside_a_task(aw, <object>coro)
    except BaseException as exc:
        xdecref(coro)
        _set_error(exc)
        _try_done(aw)
        return PYGEN_ERROR
    xdecref(coro)
    aw._coro = cont
    aw._stage = TRY_REST
    status = PyIter_Send(<PyObject*>cont, Py_None, presult)
    if status != PYGEN_NEXT:
        _try_done(aw)
    return status


cdef PyObject* _try_iternext(PyObject* self) noexcept:
    # 3.12+: as _awaiter_iternext.
    cdef PyObject* result = NULL
    cdef int status = _try_send(self, Py_None, &result)
    if status == PYGEN_NEXT:
        return result
    if status == PYGEN_RETURN:
        if result != Py_None:
            hardy_set_stop_iteration(result)
        xdecref(result)
    return NULL


hardy_set_am_send(_FirstTry, _try_send)
hardy_set_iternext(_FirstTry, _try_iternext)
_coroutine_abc.register(_FirstTry)
