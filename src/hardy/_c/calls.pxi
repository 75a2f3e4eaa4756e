# Calling user code from C, in the compiled core (included by _core_c.pyx):
# how errors travel, and how readings of user clocks and random sources are
# checked. Functions here return error codes instead of raising, so the
# dispatch can pass exceptions through without Cython adding frames to the
# caller's traceback.

cdef object _monotonic = time.monotonic
cdef object _check_clock = _validate.clock_reading
cdef object _check_random = _validate.random_reading
cdef object _rebuild = _validate.rebuild


cdef int _propagate() except -1:
    """Make a ``def`` method raise the exception that C code left set."""
    return -1


cdef void _set_error(BaseException exc) noexcept:
    """Set ``exc`` as the current error, keeping its traceback."""
    cdef PyObject* tb = PyException_GetTraceback(<PyObject*>exc)
    cdef PyObject* etype = <PyObject*>Py_TYPE(<PyObject*>exc)
    xincref(etype)
    xincref(<PyObject*>exc)
    PyErr_Restore(etype, <PyObject*>exc, tb)


cdef BaseException _fetch_error():
    """Take the current error out of the error indicator, as one object."""
    cdef PyObject* etype
    cdef PyObject* evalue
    cdef PyObject* etb
    PyErr_Fetch(&etype, &evalue, &etb)
    PyErr_NormalizeException(&etype, &evalue, &etb)
    if etb != NULL:
        PyException_SetTraceback(evalue, etb)
    exc = <BaseException>evalue
    xdecref(etype)
    xdecref(evalue)
    xdecref(etb)
    return exc


cdef PyObject* _take_error() noexcept:
    """Take the current exception out of the error indicator: one owned object."""
    cdef PyObject* etype
    cdef PyObject* evalue
    cdef PyObject* etb
    PyErr_Fetch(&etype, &evalue, &etb)
    PyErr_NormalizeException(&etype, &evalue, &etb)
    if etb != NULL:
        PyException_SetTraceback(evalue, etb)
    xdecref(etype)
    xdecref(etb)
    return evalue


cdef object _steal(PyObject* obj):
    result = <object>obj
    xdecref(obj)
    return result


cdef object _pack_args(PyObject* const* args, size_t nargsf, PyObject* kwnames):
    """Rebuild ``(args, kwargs)`` from a vectorcall; only off the fast path."""
    cdef Py_ssize_t nargs = PyVectorcall_NARGS(nargsf)
    cdef Py_ssize_t nkw = 0 if kwnames == NULL else PyTuple_GET_SIZE(kwnames)
    cdef Py_ssize_t i
    positional = tuple([<object>args[i] for i in range(nargs)])
    keywords = {}
    for i in range(nkw):
        keywords[<object>PyTuple_GET_ITEM(kwnames, i)] = <object>args[nargs + i]
    return positional, keywords


cdef int _clock_now(object clock, double* now) noexcept:
    """Read ``clock`` (None: the monotonic clock, read in C) into ``now``; -1 on error."""
    if clock is None:
        now[0] = c_monotonic()
        return 0
    return _read_clock(clock, now)


cdef int _read_clock(object clock, double* out) noexcept:
    """``clock()`` as a double; one that is not a finite number is an error (hardy._validate.clock_reading)."""
    cdef PyObject* result = PyObject_CallNoArgs(<PyObject*>clock)
    if result == NULL:
        return -1
    if PyFloat_CheckExact(result):
        out[0] = PyFloat_AS_DOUBLE(result)
        if isfinite(out[0]):
            xdecref(result)
            return 0
    return _checked_reading(_check_clock, clock, result, out)


cdef int _draw_random(object random_source, double* out) noexcept:
    """``random_source()`` as a double in [0, 1); anything else is an error (hardy._validate.random_reading)."""
    cdef PyObject* result = PyObject_CallNoArgs(<PyObject*>random_source)
    if result == NULL:
        return -1
    if PyFloat_CheckExact(result):
        out[0] = PyFloat_AS_DOUBLE(result)
        if 0.0 <= out[0] < 1.0:
            xdecref(result)
            return 0
    return _checked_reading(_check_random, random_source, result, out)


cdef int _checked_reading(object check, object source, PyObject* result, double* out) noexcept:
    """``check(source, result)`` as a double: the slow path of a reading; takes ``result``."""
    cdef PyObject* value = PyObject_CallFunctionObjArgs(<PyObject*>check, <PyObject*>source, result, NULL)
    xdecref(result)
    if value == NULL:
        return -1
    out[0] = PyFloat_AsDouble(value)
    xdecref(value)
    if out[0] == -1.0 and PyErr_Occurred() != NULL:
        return -1
    return 0


cdef bint _holds_predicate(tuple spec) noexcept:
    """Whether an exception specification holds a predicate (hardy._match); runs no Python code,
    so it may be asked while an error is set."""
    cdef Py_ssize_t i
    for i in range(PyTuple_GET_SIZE(<PyObject*>spec)):
        if not PyType_Check(PyTuple_GET_ITEM(<PyObject*>spec, i)):
            return True
    return False
