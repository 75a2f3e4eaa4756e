# The wrapper of a function protected by a circuit breaker, compiled (included
# by _core_c.pyx): its vectorcall slot, and what every compiled wrapper shares.
# The twin's is hardy/_py/breaker.py's protect().

cdef class _Wrapper:
    """What every compiled wrapper shares: its vectorcall slot, the wrapped
    callable, a ``__dict__`` for the function attributes that
    ``functools.update_wrapper`` copies (and ``.breaker`` or
    ``.retry_config``, which are attributes like a function's), method
    binding, and pickling by reference."""

    cdef vectorcallfunc _vectorcall
    cdef object _func
    cdef dict __dict__
    cdef object __weakref__

    def __get__(self, obj, objtype):
        if obj is None:
            return self
        return types.MethodType(self, obj)

    def __reduce__(self):
        # As a function is: by its qualified name in its module, so that a
        # decorated module-level function pickles (multiprocessing) and
        # copy.copy() returns it unchanged.
        name = getattr(self, "__qualname__", None)
        if not isinstance(name, str):
            raise TypeError(f"cannot pickle {self!r}: it has no __qualname__")
        return name


@cython.final
cdef class _Protected(_Wrapper):
    """A function protected by a circuit breaker (see ``protect``)."""

    cdef CircuitBreaker _breaker
    cdef object _fallback
    cdef bint _is_async
    cdef bint _fallback_is_async
    cdef object _spare              # a finished _Awaiter to reuse (async only)

    def __repr__(self):
        return f"<protected {self._func!r} by {self._breaker!r}>"


cdef PyObject* _protected_vectorcall(
    PyObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames
) except NULL:
    # Every error return below is a bare ``return NULL`` with the exception
    # already set, so no frame of this module is added to the traceback.
    cdef _Protected p = <_Protected>self
    cdef CircuitBreaker b = p._breaker
    cdef long long epoch
    cdef PyObject* result
    if p._is_async:
        return _start_async(p, args, nargsf, kwnames)
    if b._state == CLOSED:
        epoch = b._epoch
    else:
        epoch = _admit(b)
        if epoch < 0:
            if epoch == -2:
                return NULL
            if p._fallback is None:
                _raise_rejection(b)
                return NULL
            return PyObject_Vectorcall(<PyObject*>p._fallback, args, nargsf, kwnames)
    result = PyObject_Vectorcall(<PyObject*>p._func, args, nargsf, kwnames)
    if result == NULL:
        _settle_error(b, epoch)
        return NULL
    if b._state == CLOSED and b._failure_count == 0 and b._flags == 0:
        hardy_add_one(&b._successes)
    elif _on_result(b, epoch, result) < 0:
        xdecref(result)
        return NULL
    return result


cdef PyObject* _windowed_vectorcall(
    PyObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames
) except NULL:
    # _protected_vectorcall for a breaker whose only flag is a count window: a
    # success that only needs recording is recorded here, anything else goes
    # through _on_result. Kept apart so that no other breaker pays for it.
    cdef _Protected p = <_Protected>self
    cdef CircuitBreaker b = p._breaker
    cdef long long epoch
    cdef PyObject* result
    if b._state == CLOSED:
        epoch = b._epoch
    else:
        epoch = _admit(b)
        if epoch < 0:
            if epoch == -2:
                return NULL
            if p._fallback is None:
                _raise_rejection(b)
                return NULL
            return PyObject_Vectorcall(<PyObject*>p._fallback, args, nargsf, kwnames)
    result = PyObject_Vectorcall(<PyObject*>p._func, args, nargsf, kwnames)
    if result == NULL:
        _settle_error(b, epoch)
        return NULL
    if not _window_success(b, epoch) and _on_result(b, epoch, result) < 0:
        xdecref(result)
        return NULL
    return result


cdef PyObject* _slow_tracked_vectorcall(
    PyObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames
) except NULL:
    # _protected_vectorcall for a breaker whose window tracks slow calls: the
    # same, plus a clock reading before the call (the one after it is the
    # outcome's time). Kept apart so that no other breaker pays for it.
    cdef _Protected p = <_Protected>self
    cdef CircuitBreaker b = p._breaker
    cdef long long epoch
    cdef double start
    cdef PyObject* result
    if b._state == CLOSED:
        epoch = b._epoch
    else:
        epoch = _admit(b)
        if epoch < 0:
            if epoch == -2:
                return NULL
            if p._fallback is None:
                _raise_rejection(b)
                return NULL
            return PyObject_Vectorcall(<PyObject*>p._fallback, args, nargsf, kwnames)
    if _call_start(b, epoch, &start) < 0:
        return NULL
    result = PyObject_Vectorcall(<PyObject*>p._func, args, nargsf, kwnames)
    if result == NULL:
        _settle_error_at(b, epoch, start)
        return NULL
    if _on_result_at(b, epoch, result, start) < 0:
        xdecref(result)
        return NULL
    return result


def _protect_timed_async(CircuitBreaker b, func, fallback, bint fallback_is_async):
    """The wrapper of an ``async def`` function under a breaker that tracks slow calls.

    Its duration runs from the admission to the end of the awaited call. The
    compiled awaiter (awaiter.pxi) measures none, so these breakers take this
    coroutine instead: it costs what an ``async def`` wrapper costs.
    """
    async def protected_async(*args, **kwargs):
        cdef long long epoch = _admit(b)
        cdef double start
        if epoch < 0:
            if epoch == -2:
                _propagate()
            if fallback is None:
                _raise_rejection(b)
                _propagate()
            if fallback_is_async:
                return await fallback(*args, **kwargs)
            return fallback(*args, **kwargs)
        if _call_start(b, epoch, &start) < 0:
            _propagate()
        try:
            result = await func(*args, **kwargs)
        except BaseException as exc:
            _record_outcome(b, exc, epoch, start)
            raise
        if _on_result_at(b, epoch, <PyObject*>result, start) < 0:
            _propagate()
        return result

    return protected_async


cdef Py_ssize_t _vectorcall_offset():
    # The slot lives in _Wrapper, so it sits at the same offset in every wrapper type.
    cdef _Wrapper probe = _Wrapper.__new__(_Wrapper)
    return <Py_ssize_t>(<char*>&probe._vectorcall - <char*><PyObject*>probe)


hardy_enable_vectorcall(_Protected, _vectorcall_offset())


def protect(breaker, func, fallback=None):
    """Wrap ``func`` so that every call goes through ``breaker``.

    A rejected call returns ``fallback(*args, **kwargs)`` (awaited when the
    fallback is async) when one is given, else raises ``CircuitOpenError``.
    """
    if not isinstance(breaker, CircuitBreaker):
        raise TypeError(f"breaker must be a CircuitBreaker, got {breaker!r}")
    _validate.initialised(breaker, (<CircuitBreaker>breaker)._name is not None)
    _validate.callable_arg("func", func)
    if fallback is not None:
        _validate.callable_arg("fallback", fallback)
    if _retry_gen.is_generator_function(func):
        return _retry_gen.protect_generator(breaker, func, fallback)
    cdef CircuitBreaker b = <CircuitBreaker>breaker
    cdef bint is_async = _wrapping.is_async_callable(func)
    if b._flags & FLAG_SLOW and is_async:
        wrapper = _protect_timed_async(
            b, func, fallback, fallback is not None and _wrapping.is_async_callable(fallback)
        )
        wrapper = _wrapping.copy_metadata(wrapper, func, is_async=True)
        wrapper.breaker = breaker
        return wrapper
    cdef _Protected p = _Protected.__new__(_Protected)
    if b._flags & FLAG_SLOW:
        p._vectorcall = _slow_tracked_vectorcall
    elif b._flags == FLAG_WINDOW and not is_async and not window_timed(window_of(b)):
        p._vectorcall = _windowed_vectorcall
    else:
        p._vectorcall = _protected_vectorcall
    p._func = func
    p._breaker = breaker
    p._fallback = fallback
    p._is_async = is_async
    p._fallback_is_async = fallback is not None and _wrapping.is_async_callable(fallback)
    _wrapping.copy_metadata(p, func, is_async=p._is_async)
    setattr(p, "breaker", breaker)
    return p
