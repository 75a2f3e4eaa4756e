# cython: language_level=3, freethreading_compatible=True, embedsignature=True
# cython: boundscheck=False, wraparound=False, cdivision=True, cpow=True, auto_pickle=False
"""The compiled core of hardy: the policies' decisions and the compiled dispatch.

One extension module, built from three kinds of source:

* ``hardy/policies/*.py``: each policy's decisions, in Cython's pure-Python
  mode. They are included here, so their transitions become inline C
  functions over C fields, and the twin imports the very same files;
* ``hardy/_c/*.pxi``: the compiled dispatch, one file per concern (the
  breaker, the wrapper of a protected function, its awaitable, retry, the
  fallback chain, the deadlines): vectorcall slots, the awaitable's
  ``am_send``/``tp_iternext``, error handling that adds no frame of hardy to
  a user's traceback, atomics and locks. ``hardy/_py/`` is the twin's;
* ``hardy/_c/hardy.h``: the C helpers they use.

Under the GIL the critical sections need no lock: they run no Python code, so
no other thread can interleave. Free-threaded builds take a ``PyMutex``.
``docs/architecture.md`` has the whole map.
"""

cimport cython
from libc.math cimport isfinite
from cpython.object cimport PyObject, PyTypeObject
from cpython.ref cimport Py_INCREF
from cpython.time cimport monotonic as c_monotonic

import asyncio as _asyncio
import collections as _collections
import collections.abc
import random
import threading as _threading
import time
import types

from hardy import _blocks, _chain, _deadlines, _descriptors, _events, _live, _safe_points, _sleep
from hardy import _match, _rejections, _retry_events, _timeout_log, _validate, _wrapping, events
from hardy import _async_deadlines, _retry_gen, _retry_run
from hardy._retry_state import RetryState, RetryStatistics
from hardy import errors as _errors
from hardy.errors import CircuitOpenError, TimeoutError as HardyTimeoutError
from hardy.state import STATE_BY_CODE

cdef extern from "hardy.h":
    bint HARDY_REUSE_AWAITERS
    void hardy_lock(char* m) noexcept nogil
    void hardy_unlock(char* m) noexcept nogil
    void hardy_reset_mutex(char* m) noexcept nogil
    void hardy_add_one(long long* p) noexcept nogil
    ctypedef int (*hardy_sendfunc)(PyObject*, PyObject*, PyObject**) noexcept
    ctypedef PyObject* (*vectorcallfunc)(PyObject*, PyObject* const*, size_t, PyObject*) except NULL
    void hardy_enable_vectorcall(object type, Py_ssize_t offset)
    int hardy_set_am_send(object type, hardy_sendfunc send) except -1
    ctypedef PyObject* (*hardy_iternextfunc)(PyObject*) noexcept
    void hardy_set_iternext(object type, hardy_iternextfunc next)
    PyObject* hardy_new_exception(PyObject* type, PyObject* args)
    PyObject* hardy_await_iter(PyObject* o) noexcept
    void hardy_live_link(PyObject** head, PyObject* o, Py_ssize_t prev_at, Py_ssize_t next_at) noexcept
    void hardy_live_unlink(PyObject** head, PyObject* o, Py_ssize_t prev_at, Py_ssize_t next_at) noexcept
    PyObject* hardy_live_list(PyObject* head, Py_ssize_t next_at) noexcept
    int hardy_disallow_instantiation(object type) except -1
    bint HARDY_INSPECT_IN_C
    bint HARDY_CANCEL_BY_RAISING
    bint HARDY_FAST_CLOCK
    double hardy_now() noexcept nogil
    double hardy_coarse_now() noexcept nogil
    double hardy_coarse_resolution() noexcept nogil
    int hardy_pending_is(PyObject* kind) noexcept
    int hardy_verdict(
        unsigned long id, PyObject* rules, PyObject* exempt, PyObject* verdicts, PyObject* callbacks, PyObject* kind
    ) noexcept
    void hardy_set_stop_iteration(PyObject* value) noexcept
    int hardy_stop_ready() except -1
    double hardy_next_double(unsigned long long* state) noexcept nogil
    bint hardy_weakref_is(object ref, object obj) noexcept
    void hardy_refresh_pid() noexcept
    PyObject* hardy_recorded_loop(PyObject* key) noexcept
    void hardy_check_loop_slot(PyObject* answer) noexcept
    int hardy_know_cancelling(object task_type, object descr) noexcept
    object hardy_cancelling(object task, object name)
    long hardy_small_int(PyObject* o) noexcept

cdef extern from "Python.h":
    PyObject* PyObject_Vectorcall(PyObject* callable, PyObject* const* args, size_t nargsf, PyObject* kwnames)
    PyObject* PyObject_Call(PyObject* callable, PyObject* args, PyObject* kwargs)
    PyObject* PyObject_CallNoArgs(PyObject* callable)
    PyObject* PyDict_GetItemWithError(object d, object key)
    PyObject* PyObject_CallMethodNoArgs(PyObject* obj, PyObject* name)
    Py_ssize_t PyVectorcall_NARGS(size_t nargsf)
    PyObject* PyTuple_New(Py_ssize_t n)
    void PyTuple_SET_ITEM(PyObject* t, Py_ssize_t i, PyObject* o)
    Py_ssize_t PyTuple_GET_SIZE(PyObject* t)
    PyObject* PyTuple_GET_ITEM(PyObject* t, Py_ssize_t i)
    PyObject* PyFloat_FromDouble(double v)
    double PyFloat_AsDouble(PyObject* o)
    PyObject* PyErr_Occurred()
    void PyErr_Fetch(PyObject** t, PyObject** v, PyObject** tb)
    void PyErr_Restore(PyObject* t, PyObject* v, PyObject* tb)
    void PyErr_NormalizeException(PyObject** t, PyObject** v, PyObject** tb)
    void PyErr_SetObject(PyObject* t, PyObject* v)
    void PyErr_SetString(PyObject* t, const char* msg)
    int PyErr_ExceptionMatches(PyObject* exc)
    int PyErr_GivenExceptionMatches(PyObject* given, PyObject* exc)
    void PyErr_WriteUnraisable(PyObject* obj)
    void PyErr_Clear()
    void PyException_SetContext(PyObject* exc, PyObject* ctx)
    int PyCoro_CheckExact(PyObject* o)
    void xincref "Py_XINCREF" (PyObject* o)
    void xdecref "Py_XDECREF" (PyObject* o)
    PyObject* PyException_GetTraceback(PyObject* exc)
    int PyException_SetTraceback(PyObject* exc, PyObject* tb)
    PyObject* PyObject_CallFunctionObjArgs(PyObject* callable, ...)
    PyObject* PyObject_CallOneArg(PyObject* callable, PyObject* arg)
    int PyThreadState_SetAsyncExc(unsigned long id, PyObject* exc)
    void* PyThreadState_Get()
    unsigned long PyThread_get_thread_ident()
    PyObject* PyLong_FromUnsignedLong(unsigned long v)
    int PyObject_IsTrue(PyObject* o)
    PyObject* PyLong_FromLong(long v)
    Py_ssize_t Py_REFCNT(PyObject* o)
    PyObject* PyExc_Exception
    PyTypeObject* Py_TYPE(PyObject* o)
    PyObject* PyExc_RuntimeError
    PyObject* PyExc_ValueError
    PyObject* PyExc_TypeError
    bint PyFloat_CheckExact(PyObject* o)
    bint PyType_Check(PyObject* o)
    double PyFloat_AS_DOUBLE(PyObject* o)
    PyObject* PyExc_StopIteration
    PyObject* Py_None
    ctypedef enum PySendResult:
        PYGEN_RETURN
        PYGEN_ERROR
        PYGEN_NEXT
    PySendResult PyIter_Send(PyObject* iter, PyObject* arg, PyObject** presult)

cdef extern from "hardy.h":
    # A breaker window's outcomes (see hardy.h and hardy/policies/breaker.py).
    ctypedef struct hardy_window_bucket:
        int _calls
        int _failed
        int _slow
    ctypedef struct hardy_window_time:
        long long _head
        long long _calls
        long long _failed
        long long _slow
        hardy_window_bucket _buckets[1]  # as long as the window's seconds
    ctypedef struct hardy_window:
        PyObject* _settings
        int _n
        int _failed
        int _slow
        int _pending
        int _trial_slow
        unsigned char _settled
        unsigned char _ring[1]  # as long as the settings' ring
    hardy_window_time* hardy_window_time_of(hardy_window* w) noexcept nogil
    hardy_window_bucket* hardy_window_bucket_at(hardy_window_time* t, int index) noexcept nogil
    hardy_window* hardy_window_new(PyObject* settings, int timed, Py_ssize_t span, Py_ssize_t ring_bytes) except NULL
    void hardy_window_free(hardy_window* w) noexcept
    void hardy_traverse_windows(object type, Py_ssize_t window_at)

# The names hardy/policies/breaker.py gives them (the twin's classes).
ctypedef hardy_window* BreakerWindow
ctypedef hardy_window_time* WindowTime
ctypedef hardy_window_bucket* WindowBucket

IMPLEMENTATION = "c"

# The decisions, written once (see hardy/policies).
include "policies/breaker.py"
include "policies/retry.py"
include "policies/deadlines.py"
include "policies/bulkhead.py"
include "policies/ratelimit.py"
include "policies/budget.py"
include "policies/async_deadlines.py"

# The scrape's builder, written once (hardy.metrics reads it from the core), and what it
# cannot say in pure mode: a prometheus-client Sample made as tuple.__new__(Sample, fields)
# makes it, without the argument tuples (Cython declares PyType_GenericAlloc over an object),
# and tuples of untracked objects left out of the garbage collector's generations, as it
# does itself at its first look (a scrape makes 100,000 Samples: untracked, they cost no
# collection anything, and the one that follows a scrape does not walk them).
cdef extern from "Python.h":
    object _generic_alloc "PyType_GenericAlloc" (PyTypeObject* t, Py_ssize_t n)
    int _gc_is_tracked "PyObject_GC_IsTracked" (object o)
    void _gc_untrack "PyObject_GC_UnTrack" (object o)

cdef inline object _scrape_untracked(object t):
    for item in <tuple>t:
        if _gc_is_tracked(item):
            return t
    _gc_untrack(t)
    return t

cdef inline object _scrape_sample(object kind, object metric, object labels, object value):
    cdef object item = _generic_alloc(<PyTypeObject*>kind, 6)
    cdef PyObject* t = <PyObject*>item
    Py_INCREF(metric)
    PyTuple_SET_ITEM(t, 0, <PyObject*>metric)
    Py_INCREF(labels)
    PyTuple_SET_ITEM(t, 1, <PyObject*>labels)
    Py_INCREF(value)
    PyTuple_SET_ITEM(t, 2, <PyObject*>value)
    for i in range(3, 6):
        Py_INCREF(None)
        PyTuple_SET_ITEM(t, i, Py_None)
    if not (_gc_is_tracked(metric) or _gc_is_tracked(labels) or _gc_is_tracked(value)):
        _gc_untrack(item)
    return item
include "_scrape.py"

# The dispatch.
include "_c/calls.pxi"
include "_c/breaker.pxi"
include "_c/protect.pxi"
include "_c/awaiter.pxi"
include "_c/retry.pxi"
include "_c/chain.pxi"
include "_c/async_timeout.pxi"
include "_c/first_try.pxi"
include "_c/deadlines.pxi"
include "_c/bulkhead.pxi"
include "_c/ratelimit.pxi"


# Internal types are made only by the functions that fill them (see
# hardy_disallow_instantiation in hardy.h).
for _internal in (
    BreakerTuning, _BreakerExtras, _Local, _Wrapper, _Protected, _Awaiter, _Retrying, _RetryCounts, _Chain,
    _Deadline, _ThreadDeadlines, _CompiledDeadlines, _Timed,
    _Waiter, _Guarded, _FirstTry, _TimedAsync, AsyncDeadline, DeadlineLane, DeadlineRegistry,
    _Limited,
    BudgetState, _BudgetLedger,
    ScrapeSeries, ScrapeLabels,
):
    hardy_disallow_instantiation(_internal)
del _internal
