# The fallback chain's compiled dispatch: its first call goes out in C; the rest
# of the chain (and every async chain) runs in hardy._chain, shared by both cores.

cdef object _continue_chain = _chain.continue_chain
cdef object _run_chain_async = _chain.run_chain_async
cdef object _one = 1
cdef object _rejects = _chain.rejects


@cython.final
cdef class _Chain(_Wrapper):
    """A fallback chain (see ``chain``): the first call is dispatched in C."""

    cdef tuple _funcs
    cdef tuple _awaited
    cdef str _name
    cdef object _default
    cdef tuple _exceptions         # classes and predicates (hardy._match)
    cdef bint _has_predicates
    cdef object _on_result         # fallback_on_result, or None
    cdef bint _log
    cdef bint _is_async
    cdef bint _first_awaited       # async primary, no fallback_on_result: first_try.pxi awaits it
    cdef object _spare             # a finished _FirstTry to reuse

    def __repr__(self):
        return f"<fallback chain {self._name}>"


cdef PyObject* _chain_vectorcall(PyObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames) except NULL:
    cdef _Chain ch = <_Chain>self
    cdef PyObject* result
    cdef PyObject* error
    if ch._is_async:
        if ch._first_awaited:
            # The primary is awaited by the compiled awaiter (first_try.pxi).
            return _start_first_try(ch, KIND_CHAIN, args, nargsf, kwnames)
        positional, keywords = _pack_args(args, nargsf, kwnames)
        coro = _run_chain_async(
            ch._name, ch._funcs, ch._awaited, positional, keywords, ch._default, ch._exceptions, ch._log,
            ch._on_result,
        )
        xincref(<PyObject*>coro)
        return <PyObject*>coro
    result = PyObject_Vectorcall(<PyObject*>ch._func, args, nargsf, kwnames)
    if result != NULL:
        if ch._on_result is None:
            return result
        return _chain_judge(ch, args, nargsf, kwnames, result)
    if not PyErr_ExceptionMatches(PyExc_Exception):
        return NULL
    if not PyErr_ExceptionMatches(<PyObject*>ch._exceptions):
        if not ch._has_predicates or _chain_predicate_says(ch) <= 0:
            return NULL
    error = _take_error()
    positional, keywords = _pack_args(args, nargsf, kwnames)
    errors = [<object>error]
    xdecref(error)
    value = _continue_chain(
        ch._name, ch._funcs, _one, positional, keywords, errors, ch._default, ch._exceptions, ch._log,
        ch._on_result,
    )
    xincref(<PyObject*>value)
    return <PyObject*>value


cdef int _chain_predicate_says(_Chain ch) noexcept:
    """No class matched the error set: 1 if a predicate does (the error stays set), 0 if none,
    -1 if one raised (its error set instead, with the call's as its context)."""
    exc = _fetch_error()
    try:
        hit = _match.predicates_match(exc, ch._exceptions, "exceptions", ch._name)
    except BaseException as failure:
        failure.__context__ = exc
        _set_error(failure)
        return -1
    _set_error(exc)
    return 1 if hit else 0


cdef PyObject* _chain_judge(
    _Chain ch, PyObject* const* args, size_t nargsf, PyObject* kwnames, PyObject* result
) noexcept:
    """The first function returned ``result``: keep it, or go on if ``fallback_on_result`` turns it down."""
    value = _steal(result)
    try:
        if not _rejects(ch._on_result, value, ch._name):
            xincref(<PyObject*>value)
            return <PyObject*>value
        positional, keywords = _pack_args(args, nargsf, kwnames)
        value = _continue_chain(
            ch._name, ch._funcs, _one, positional, keywords, [], ch._default, ch._exceptions, ch._log,
            ch._on_result, value,
        )
    except BaseException as exc:
        _set_error(exc)
        return NULL
    xincref(<PyObject*>value)
    return <PyObject*>value


hardy_enable_vectorcall(_Chain, _vectorcall_offset())


def chain(name, funcs, default, exceptions, log, on_result=None):
    """Call ``funcs[0]``; when it raises one of ``exceptions`` (or ``on_result`` turns its result down), the next.

    When all fail: ``default`` unless it is ``NO_DEFAULT``, else
    ``AllFallbacksFailedError``. The result is async when any function is
    (a sync primary may have async fallbacks); an async chain awaits its
    async functions and calls its sync ones.
    """
    cdef _Chain ch = _Chain.__new__(_Chain)
    ch._vectorcall = _chain_vectorcall
    ch._funcs = tuple(funcs)
    ch._func = ch._funcs[0]
    ch._awaited = tuple([_wrapping.is_async_callable(func) for func in ch._funcs])
    ch._name = name
    ch._default = default
    ch._exceptions = exceptions
    ch._has_predicates = _match.has_predicates(exceptions)
    ch._on_result = on_result
    ch._log = log
    ch._is_async = any(ch._awaited)
    ch._first_awaited = ch._awaited[0] and on_result is None
    return _wrapping.copy_metadata(ch, ch._func, is_async=ch._is_async)


# -- sync deadlines ---------------------------------------------------------------------
# The compiled core's own deadline registry, served by the timer thread of
