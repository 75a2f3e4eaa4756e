# The fallback chain's compiled dispatch: its first call goes out in C; the rest
# of the chain (and every async chain) runs in hardy._chain, shared by both cores.

cdef object _continue_chain = _chain.continue_chain
cdef object _run_chain_async = _chain.run_chain_async
cdef object _one = 1


@cython.final
cdef class _Chain(_Wrapper):
    """A fallback chain (see ``chain``): the first call is dispatched in C."""

    cdef tuple _funcs
    cdef tuple _awaited
    cdef str _name
    cdef object _default
    cdef tuple _exceptions
    cdef bint _log
    cdef bint _is_async

    def __repr__(self):
        return f"<fallback chain {self._name}>"


cdef PyObject* _chain_vectorcall(PyObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames) except NULL:
    cdef _Chain ch = <_Chain>self
    cdef PyObject* result
    cdef PyObject* error
    if ch._is_async:
        positional, keywords = _pack_args(args, nargsf, kwnames)
        coro = _run_chain_async(
            ch._name, ch._funcs, ch._awaited, positional, keywords, ch._default, ch._exceptions, ch._log
        )
        xincref(<PyObject*>coro)
        return <PyObject*>coro
    result = PyObject_Vectorcall(<PyObject*>ch._func, args, nargsf, kwnames)
    if result != NULL:
        return result
    if not PyErr_ExceptionMatches(<PyObject*>ch._exceptions):
        return NULL
    error = _take_error()
    positional, keywords = _pack_args(args, nargsf, kwnames)
    errors = [<object>error]
    xdecref(error)
    value = _continue_chain(
        ch._name, ch._funcs, _one, positional, keywords, errors, ch._default, ch._exceptions, ch._log
    )
    xincref(<PyObject*>value)
    return <PyObject*>value


hardy_enable_vectorcall(_Chain, _vectorcall_offset())


def chain(name, funcs, default, exceptions, log):
    """Call ``funcs[0]``; when it raises one of ``exceptions``, the next, and so on.

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
    ch._log = log
    ch._is_async = any(ch._awaited)
    return _wrapping.copy_metadata(ch, ch._func, is_async=ch._is_async)


# -- sync deadlines ---------------------------------------------------------------------
# The compiled core's own deadline registry, served by the timer thread of
