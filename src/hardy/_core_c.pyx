# cython: language_level=3, freethreading_compatible=True, embedsignature=True
# cython: boundscheck=False, wraparound=False, cdivision=True, auto_pickle=False
"""The compiled core of hardy: the circuit breaker and the call dispatch.

``_core_py.py`` is its pure-Python twin and the reference for its behaviour;
read the state-machine notes at the top of that file first. This module adds
only what Python cannot express:

* C fields instead of attributes, so the closed-state check is a field read;
* wrappers called through the vectorcall protocol, which forward the caller's
  argument vector to the wrapped function without building a tuple or dict;
* an awaitable that forwards the inner coroutine through ``am_send``, so an
  async call costs one small object instead of a second coroutine.

Under the GIL the critical sections need no lock: they run no Python code, so
no other thread can interleave. Free-threaded builds take a ``PyMutex``.
"""

cimport cython
from libc.math cimport isfinite
from cpython.object cimport PyObject, PyTypeObject
from cpython.ref cimport Py_INCREF
from cpython.time cimport monotonic as c_monotonic

import collections.abc
import random
import time
import types

from hardy import _blocks, _chain, _deadlines, _events, _live, _safe_points, _sleep, _timeout_log, _validate, _wrapping
from hardy.errors import CircuitOpenError, TimeoutError as HardyTimeoutError
from hardy.state import STATE_BY_CODE

cdef extern from *:
    """
    #ifdef Py_GIL_DISABLED
    #define HARDY_REUSE_AWAITERS 0
    typedef PyMutex hardy_mutex;
    #define hardy_lock(m) PyMutex_Lock(m)
    #define hardy_unlock(m) PyMutex_Unlock(m)
    #define hardy_add_one(p) ((void)_Py_atomic_add_int64((int64_t *)(p), 1))
    #else
    #define HARDY_REUSE_AWAITERS 1
    typedef char hardy_mutex;
    #define hardy_lock(m) ((void)(m))
    #define hardy_unlock(m) ((void)(m))
    #define hardy_add_one(p) ((void)(++*(p)))
    #endif

    static void hardy_enable_vectorcall(PyObject *type, Py_ssize_t offset) {
        PyTypeObject *tp = (PyTypeObject *)type;
        tp->tp_vectorcall_offset = offset;
        tp->tp_call = PyVectorcall_Call;
        tp->tp_flags |= Py_TPFLAGS_HAVE_VECTORCALL;
        PyType_Modified(tp);
    }

    typedef int (*hardy_sendfunc)(PyObject *, PyObject *, PyObject **);

    static int hardy_set_am_send(PyObject *type, hardy_sendfunc send) {
        PyTypeObject *tp = (PyTypeObject *)type;
        if (tp->tp_as_async == NULL) {
            PyErr_SetString(PyExc_SystemError, "hardy: awaiter type has no tp_as_async");
            return -1;
        }
        tp->tp_as_async->am_send = (sendfunc)send;
        return 0;
    }

    typedef PyObject *(*hardy_iternextfunc)(PyObject *);

    static void hardy_set_iternext(PyObject *type, hardy_iternextfunc next) {
        ((PyTypeObject *)type)->tp_iternext = next;
    }

    /* Raise StopIteration(value) to return `value` from tp_iternext.
       Building a StopIteration costs more than the whole protected call, so
       on GIL builds of 3.12+ (where this path is taken on every return) the
       memory of one is kept for the next: a StopIteration subclass whose
       deallocator, once the awaiting frame has taken the value and dropped
       the exception, clears it and keeps it as the spare, instead of freeing
       it. Nothing of a returned value outlives its exception. */
    #if PY_VERSION_HEX >= 0x030C0000 && !defined(Py_GIL_DISABLED)
    #define HARDY_STOP_SPARE 1
    static PyObject *hardy_stop_spare = NULL;

    static void hardy_stop_dealloc(PyObject *op) {
        PyStopIterationObject *stop = (PyStopIterationObject *)op;
        PyObject_GC_UnTrack(op);
        /* Clearing may run code (a value's finaliser) that returns through
           here too: look for a free spare place only afterwards. */
        Py_CLEAR(stop->value);
        Py_CLEAR(stop->dict);
        Py_CLEAR(stop->args);
        Py_CLEAR(stop->notes);
        Py_CLEAR(stop->traceback);
        Py_CLEAR(stop->context);
        Py_CLEAR(stop->cause);
        stop->suppress_context = 0;
        if (hardy_stop_spare == NULL) {
            hardy_stop_spare = op;
            return;
        }
        Py_TYPE(op)->tp_free(op);
    }

    static PyTypeObject hardy_stop_type = {
        PyVarObject_HEAD_INIT(NULL, 0)
        .tp_name = "hardy._core_c.StopIteration",
        .tp_basicsize = sizeof(PyStopIterationObject),
        .tp_dealloc = hardy_stop_dealloc,
        .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
        .tp_doc = "StopIteration carrying a protected coroutine's result (its memory is reused).",
    };

    static int hardy_stop_ready(void) {
        PyTypeObject *base = (PyTypeObject *)PyExc_StopIteration;
        hardy_stop_type.tp_base = base;
        hardy_stop_type.tp_traverse = base->tp_traverse;
        hardy_stop_type.tp_clear = base->tp_clear;
        return PyType_Ready(&hardy_stop_type);
    }

    static void hardy_set_stop_iteration(PyObject *value) {
        PyStopIterationObject *stop = (PyStopIterationObject *)hardy_stop_spare;
        PyObject *args = PyTuple_Pack(1, value);
        if (args == NULL) {
            return;
        }
        if (stop != NULL) {
            hardy_stop_spare = NULL;
            Py_SET_REFCNT((PyObject *)stop, 1);
            stop->args = args;
            stop->value = Py_NewRef(value);
            PyObject_GC_Track((PyObject *)stop);
            PyErr_SetRaisedException((PyObject *)stop);
            return;
        }
        stop = (PyStopIterationObject *)PyObject_Call((PyObject *)&hardy_stop_type, args, NULL);
        Py_DECREF(args);
        if (stop != NULL) {
            PyErr_SetRaisedException((PyObject *)stop);
        }
    }
    #else
    #define HARDY_STOP_SPARE 0
    static int hardy_stop_ready(void) {
        return 0;
    }

    static void hardy_set_stop_iteration(PyObject *value) {
        PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, value);
        if (stop == NULL) {
            return;
        }
        PyErr_SetObject(PyExc_StopIteration, stop);
        Py_DECREF(stop);
    }
    #endif

    /* splitmix64: the default jitter source of the compiled core. A Python
       call to random.random costs more than the rest of get_delay; an
       injected `random=` callable is still called, so seeded runs give the
       same delays as the twin. */
    static inline double hardy_next_double(unsigned long long *state) {
        unsigned long long z = (*state += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
        return (double)(z >> 11) * (1.0 / 9007199254740992.0);
    }

    /* An exact int that fits in one digit, or -1: the usual `attempt`,
       read without PyLong_AsLong's general machinery. */
    #if PY_VERSION_HEX < 0x030B0000
    #include "longintrepr.h"
    #endif
    static inline long hardy_small_int(PyObject *o) {
        if (!PyLong_CheckExact(o)) {
            return -1;
        }
    #if PY_VERSION_HEX >= 0x030C0000
        if (PyUnstable_Long_IsCompact((PyLongObject *)o)) {
            return (long)PyUnstable_Long_CompactValue((PyLongObject *)o);
        }
    #else
        if (Py_SIZE(o) == 1) {
            return (long)((PyLongObject *)o)->ob_digit[0];
        }
    #endif
        return -1;
    }

    /* Whether `kind` is the asynchronous exception pending in this thread. */
    static inline int hardy_pending_is(PyObject *kind) {
    #ifdef Py_GIL_DISABLED
        return 1;  /* cannot be read safely here: assume it is */
    #else
        return PyThreadState_Get()->async_exc == kind;
    #endif
    }

    /* Before 3.12, cancelling a pending asynchronous exception with
       PyThreadState_SetAsyncExc(id, NULL) leaves the interpreter's "async
       exception" signal set for good: every later eval-breaker check takes
       the slow path, and on 3.11 a traced or profiled function then loops
       for ever at its first instruction. There a pending delivery is taken
       instead, by letting it raise in a no-op Python call and catching it,
       which clears the signal. */
    #if PY_VERSION_HEX < 0x030C0000
    #define HARDY_CANCEL_BY_RAISING 1
    #else
    #define HARDY_CANCEL_BY_RAISING 0
    #endif

    /* The clock of time.monotonic(), read without the PyTime layers where
       that is cheap: on Linux, CLOCK_MONOTONIC is what Python reads. (The
       coarse clock would be cheaper still, but it lags by more than its
       resolution, up to several ticks here: it cannot tell "in time".) */
    #if defined(__linux__)
    #define HARDY_FAST_CLOCK 1
    static inline double hardy_now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    }
    #else
    #define HARDY_FAST_CLOCK 0
    static inline double hardy_now(void) {
        return 0.0;  /* not used: the PyTime clock is read instead */
    }
    #endif

    /* A mutex left held by a thread that did not survive fork(). */
    static inline void hardy_reset_mutex(hardy_mutex *m) {
        memset(m, 0, sizeof(*m));
    }

    /* Looking at another thread for the deadline timer (hardy._safe_points
       says why). Under the GIL this runs no Python code: the list of thread
       states cannot change, nothing can move the target thread, and so the
       look and the delivery that follows are one step. Free-threaded builds
       ask hardy._safe_points in Python instead. */
    #ifdef Py_GIL_DISABLED
    #define HARDY_INSPECT_IN_C 0
    static int hardy_verdict(unsigned long id, PyObject *rules, PyObject *exempt,
                             PyObject *verdicts, PyObject *kind) {
        return 0;
    }
    #else
    #define HARDY_INSPECT_IN_C 1
    #define HARDY_CONTEXT_DEPTH 64

    static PyThreadState *hardy_thread_state(unsigned long id) {
        PyThreadState *ts = PyInterpreterState_ThreadHead(PyInterpreterState_Get());
        for (; ts != NULL; ts = PyThreadState_Next(ts)) {
            if (ts->thread_id == id) {
                return ts;
            }
        }
        return NULL;
    }

    /* The file of the thread's innermost frame (a new reference), or NULL if
       it runs no Python code. Making the frame object may allocate; the
       collector is held off meanwhile, so no finalizer can run. */
    static PyObject *hardy_innermost_file(PyThreadState *ts) {
        PyFrameObject *frame;
        PyCodeObject *code;
        PyObject *name;
        int collecting = PyGC_Disable();
        frame = PyThreadState_GetFrame(ts);
        if (collecting) {
            PyGC_Enable();
        }
        if (frame == NULL) {
            PyErr_Clear();
            return NULL;
        }
        code = PyFrame_GetCode(frame);
        Py_DECREF(frame);
        name = Py_NewRef(code->co_filename);
        Py_DECREF(code);
        return name;
    }

    /* The same rule as _safe_points.deferred(), with the same cache. */
    static int hardy_file_deferred(PyObject *name, PyObject *rules, PyObject *exempt, PyObject *verdicts) {
        PyObject *cached = PyDict_GetItemWithError(verdicts, name);
        Py_ssize_t i;
        int found = 0;
        if (cached != NULL) {
            return cached == Py_True;
        }
        if (PyErr_Occurred() || !PyUnicode_Check(name)) {
            PyErr_Clear();
            return 0;
        }
        i = PySet_Contains(exempt, name);
        if (i < 0) {
            PyErr_Clear();
        }
        if (i == 0) {
            for (i = 0; i < PyList_GET_SIZE(rules); i++) {
                PyObject *rule = PyList_GET_ITEM(rules, i);
                if (PyUnicode_Check(rule) && PyUnicode_Tailmatch(name, rule, 0, PY_SSIZE_T_MAX, -1) == 1) {
                    found = 1;
                    break;
                }
            }
        }
        if (PyDict_SetItem(verdicts, name, found ? Py_True : Py_False) < 0) {
            PyErr_Clear();
        }
        return found;
    }

    /* The same rule as _safe_points.handling() on the exception that
       sys._current_exceptions() reports: the topmost one being handled. */
    static int hardy_handles(PyThreadState *ts, PyObject *kind) {
        _PyErr_StackItem *item = ts->exc_info;
        PyObject *exc = NULL;
        int depth;
        while (item != NULL) {
            exc = item->exc_value;
            if (exc != NULL && exc != Py_None) {
                break;
            }
            item = item->previous_item;
        }
        if (item == NULL) {
            return 0;
        }
        for (depth = 0; depth < HARDY_CONTEXT_DEPTH && exc != NULL && PyExceptionInstance_Check(exc); depth++) {
            if (PyObject_TypeCheck(exc, (PyTypeObject *)kind)) {
                return 1;
            }
            exc = ((PyBaseExceptionObject *)exc)->context;
        }
        return 0;
    }

    /* 0 FREE, 1 UNSAFE, 2 HANDLING, as in hardy._safe_points.verdict(). */
    static int hardy_verdict(unsigned long id, PyObject *rules, PyObject *exempt,
                             PyObject *verdicts, PyObject *kind) {
        PyThreadState *ts = hardy_thread_state(id);
        PyObject *name;
        int unsafe = 0;
        if (ts == NULL) {
            return 0;
        }
        if (ts->tracing) {
            return 1;  /* in a trace or profile function */
        }
        name = hardy_innermost_file(ts);
        if (name != NULL) {
            unsafe = hardy_file_deferred(name, rules, exempt, verdicts);
            Py_DECREF(name);
        }
        if (unsafe) {
            return 1;
        }
        return hardy_handles(ts, kind) ? 2 : 0;
    }
    #endif

    /* What `await o` iterates over, for an awaitable that is not a native
       coroutine (a Future, an object with __await__, a generator-based
       coroutine); the same checks and errors as the interpreter's. */
    static PyObject *hardy_await_iter(PyObject *o) {
        PyTypeObject *type = Py_TYPE(o);
        unaryfunc getter = type->tp_as_async != NULL ? type->tp_as_async->am_await : NULL;
        PyObject *it;
        if (PyGen_CheckExact(o)) {
            /* a generator decorated with @types.coroutine is awaited as it is */
            PyObject *code = PyObject_GetAttrString(o, "gi_code");
            int iterable;
            if (code == NULL) {
                return NULL;
            }
            iterable = PyCode_Check(code) && (((PyCodeObject *)code)->co_flags & CO_ITERABLE_COROUTINE);
            Py_DECREF(code);
            if (iterable) {
                return Py_NewRef(o);
            }
        }
        if (getter == NULL) {
            PyErr_Format(PyExc_TypeError, "'%.100s' object can't be awaited", type->tp_name);
            return NULL;
        }
        it = getter(o);
        if (it == NULL) {
            return NULL;
        }
        if (PyCoro_CheckExact(it)) {
            Py_DECREF(it);
            PyErr_SetString(PyExc_TypeError, "__await__() returned a coroutine");
            return NULL;
        }
        if (!PyIter_Check(it)) {
            PyErr_Format(PyExc_TypeError, "__await__() returned non-iterator of type '%.100s'", Py_TYPE(it)->tp_name);
            Py_DECREF(it);
            return NULL;
        }
        return it;
    }

    /* Every live breaker, in a doubly linked list threaded through two
       pointer fields of the breaker (at prev_at and next_at): no weak
       reference, no allocation. The list holds no references; a breaker
       unlinks itself first thing in its deallocator. */
    #define HARDY_LINK(o, at) (*(PyObject **)((char *)(o) + (at)))

    static void hardy_live_link(PyObject **head, PyObject *o, Py_ssize_t prev_at, Py_ssize_t next_at) {
        HARDY_LINK(o, prev_at) = NULL;
        HARDY_LINK(o, next_at) = *head;
        if (*head != NULL) {
            HARDY_LINK(*head, prev_at) = o;
        }
        *head = o;
    #if defined(Py_GIL_DISABLED) && PY_VERSION_HEX >= 0x030E0000
        PyUnstable_EnableTryIncRef(o);
    #endif
    }

    static void hardy_live_unlink(PyObject **head, PyObject *o, Py_ssize_t prev_at, Py_ssize_t next_at) {
        PyObject *prev = HARDY_LINK(o, prev_at);
        PyObject *next = HARDY_LINK(o, next_at);
        if (prev != NULL) {
            HARDY_LINK(prev, next_at) = next;
        } else if (*head == o) {
            *head = next;
        } else {
            return;  /* never linked (__init__ did not finish) */
        }
        if (next != NULL) {
            HARDY_LINK(next, prev_at) = prev;
        }
        HARDY_LINK(o, prev_at) = NULL;
        HARDY_LINK(o, next_at) = NULL;
    }

    /* A new list of the live breakers. Under the GIL, appending may run the
       collector, which may free and so unlink breakers: the walk stays valid
       because the breaker it stands on is held by the list, and unlinking
       keeps its neighbours' pointers right. Free-threaded builds take the
       references under the lock, skipping breakers already being freed. */
    static PyObject *hardy_live_list(PyObject *head, Py_ssize_t next_at) {
        PyObject *list = PyList_New(0);
        PyObject *o;
        if (list == NULL) {
            return NULL;
        }
        for (o = head; o != NULL; o = HARDY_LINK(o, next_at)) {
    #if defined(Py_GIL_DISABLED)
    #if PY_VERSION_HEX >= 0x030E0000
            if (!PyUnstable_TryIncRef(o)) {
                continue;
            }
    #else
            Py_INCREF(o);
    #endif
            if (PyList_Append(list, o) < 0) {
                Py_DECREF(o);
                Py_DECREF(list);
                return NULL;
            }
            Py_DECREF(o);
    #else
            if (PyList_Append(list, o) < 0) {
                Py_DECREF(list);
                return NULL;
            }
    #endif
        }
        return list;
    }

    /* Internal types cannot be made from Python: their fields are set by the
       functions that make them, and an empty one would crash when used. The
       same as Py_TPFLAGS_DISALLOW_INSTANTIATION, after the type is ready. */
    static int hardy_disallow_instantiation(PyObject *type) {
        PyTypeObject *tp = (PyTypeObject *)type;
        tp->tp_new = NULL;
        tp->tp_vectorcall = NULL;  /* Cython's fast constructor would bypass the check */
        if (tp->tp_dict != NULL && PyDict_GetItemString(tp->tp_dict, "__new__") != NULL
                && PyDict_DelItemString(tp->tp_dict, "__new__") < 0) {
            return -1;
        }
        PyType_Modified(tp);
        return 0;
    }

    /* BaseException.__new__ stores the arguments and runs no Python code,
       which is all a rejection needs. */
    static PyObject *hardy_new_exception(PyObject *type, PyObject *args) {
        return ((PyTypeObject *)type)->tp_new((PyTypeObject *)type, args, NULL);
    }
    """
    ctypedef char hardy_mutex
    bint HARDY_REUSE_AWAITERS
    void hardy_lock(hardy_mutex* m) noexcept nogil
    void hardy_unlock(hardy_mutex* m) noexcept nogil
    void hardy_add_one(long long* p) noexcept nogil
    ctypedef int (*hardy_sendfunc)(PyObject*, PyObject*, PyObject**) noexcept
    ctypedef PyObject* (*vectorcallfunc)(PyObject*, PyObject* const*, size_t, PyObject*) except NULL
    void hardy_enable_vectorcall(object type, Py_ssize_t offset)
    int hardy_set_am_send(object type, hardy_sendfunc send) except -1
    ctypedef PyObject* (*hardy_iternextfunc)(PyObject*) noexcept
    void hardy_set_iternext(object type, hardy_iternextfunc next)
    PyObject* hardy_new_exception(PyObject* type, PyObject* args)
    void hardy_reset_mutex(hardy_mutex* m) noexcept nogil
    PyObject* hardy_await_iter(PyObject* o) noexcept
    void hardy_live_link(PyObject** head, PyObject* o, Py_ssize_t prev_at, Py_ssize_t next_at) noexcept
    void hardy_live_unlink(PyObject** head, PyObject* o, Py_ssize_t prev_at, Py_ssize_t next_at) noexcept
    PyObject* hardy_live_list(PyObject* head, Py_ssize_t next_at) noexcept
    int hardy_disallow_instantiation(object type) except -1
    bint HARDY_INSPECT_IN_C
    bint HARDY_CANCEL_BY_RAISING
    bint HARDY_FAST_CLOCK
    double hardy_now() noexcept nogil
    int hardy_pending_is(PyObject* kind) noexcept
    int hardy_verdict(unsigned long id, PyObject* rules, PyObject* exempt, PyObject* verdicts, PyObject* kind) noexcept
    void hardy_set_stop_iteration(PyObject* value) noexcept
    int hardy_stop_ready() except -1
    double hardy_next_double(unsigned long long* state) noexcept nogil
    long hardy_small_int(PyObject* o) noexcept

cdef extern from "Python.h":
    PyObject* PyObject_Vectorcall(PyObject* callable, PyObject* const* args, size_t nargsf, PyObject* kwnames)
    PyObject* PyObject_Call(PyObject* callable, PyObject* args, PyObject* kwargs)
    PyObject* PyObject_CallNoArgs(PyObject* callable)
    PyObject* PyObject_CallMethodNoArgs(PyObject* obj, PyObject* name)
    PyObject* PyObject_CallMethodObjArgs(PyObject* obj, PyObject* name, ...)
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
    double PyFloat_AS_DOUBLE(PyObject* o)
    PyObject* PyExc_StopIteration
    PyObject* Py_None
    ctypedef enum PySendResult:
        PYGEN_RETURN
        PYGEN_ERROR
        PYGEN_NEXT
    PySendResult PyIter_Send(PyObject* iter, PyObject* arg, PyObject** presult)

IMPLEMENTATION = "c"

cdef enum:
    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2

cdef object _monotonic = time.monotonic
cdef object _check_clock = _validate.clock_reading
cdef object _check_random = _validate.random_reading
cdef object _rebuild = _validate.rebuild
cdef object _notify_listeners = _events.notify
cdef object _coroutine_abc = collections.abc.Coroutine
cdef PyObject* _open_error_type = <PyObject*>CircuitOpenError
cdef str _s_throw = "throw"
cdef str _s_close = "close"
cdef tuple _CODES = (CLOSED, OPEN, HALF_OPEN)


cdef class _BreakerExtras:
    """What only some breakers have: a clock of their own, listeners, a store.

    Kept out of the breaker itself so that a plain breaker stays small (see
    the memory benchmark): it points at no extras at all.
    """

    cdef object clock           # None: read the monotonic clock in C
    cdef list listeners         # None until the first listener
    cdef object store           # the store's binding (hardy.store), or None
    cdef tuple excluded         # None: no excluded exceptions


cdef class CircuitBreaker:
    """A circuit breaker: stop calling a dependency that keeps failing.

    CLOSED lets calls through and counts consecutive failures; at
    ``failure_threshold`` it opens. OPEN rejects calls at once with
    :class:`~hardy.CircuitOpenError` for ``reset_timeout`` seconds, then turns
    HALF_OPEN, which admits at most ``half_open_max_calls`` trial calls: when
    that many have succeeded it closes, and any trial failure opens it again.
    Exceptions of the ``excluded_exceptions`` types count as neither success
    nor failure. ``clock`` returns monotonic seconds and may be replaced in
    tests.

    Example::

        breaker = hardy.CircuitBreaker("payments", failure_threshold=3, reset_timeout=10)

        @breaker
        def charge(order_id: int) -> str: ...

        with breaker:
            legacy_charge()
    """

    # Field order packs the small ones together; see the memory benchmark.
    cdef int _threshold
    cdef int _half_open_max
    cdef int _failure_count
    cdef int _trials
    cdef int _trial_successes
    cdef unsigned int _epoch
    cdef unsigned int _opened
    cdef char _state
    cdef hardy_mutex _mutex
    cdef double _reset_timeout
    cdef double _opened_at
    cdef long long _successes
    cdef long long _failures
    cdef long long _ignored
    cdef long long _rejections
    cdef str _name
    cdef _BreakerExtras _extras     # None: default clock, no listener, no store, nothing excluded
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
    ):
        if self._name is not None:
            raise RuntimeError(_validate.ALREADY_INITIALISED.format(kind=type(self).__name__, obj=self))
        settings = _validate.breaker_settings(
            name, failure_threshold, reset_timeout, half_open_max_calls, excluded_exceptions, clock
        )
        (
            name,
            self._threshold,
            self._reset_timeout,
            self._half_open_max,
            excluded,
            clock,
        ) = settings
        if clock is not _monotonic:
            _extras_of(self).clock = clock
        if excluded:
            _extras_of(self).excluded = excluded
        self._state = CLOSED
        self._name = name
        if store is not None:
            _extras_of(self).store = _validate.breaker_store(store).bind(self)
        _live_link(self)

    def __dealloc__(self):
        _live_unlink(self)

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
        """Seconds the breaker stays open before admitting trial calls."""
        return self._reset_timeout

    @property
    def half_open_max_calls(self):
        """Trial calls admitted while half-open, and successes needed to close."""
        return self._half_open_max

    @property
    def excluded_exceptions(self):
        """Exception types that count as neither success nor failure."""
        excluded = _excluded_of(self)
        return () if excluded is None else excluded

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
        """True while calls are rejected for the reset timeout."""
        return _state_code(self) == OPEN

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
        return max(0.0, self._reset_timeout - (now - self._opened_at))

    def get_stats(self):
        """A snapshot of the state, the counts and the lifetime totals.

        Example::

            >>> breaker.get_stats()["state"]
            'closed'
        """
        time_until_reset = self.get_time_until_reset()
        cdef int state = _state_code(self)
        hardy_lock(&self._mutex)
        cdef long long successes = self._successes
        cdef long long failures = self._failures
        cdef long long ignored = self._ignored
        cdef long long rejections = self._rejections
        cdef int failure_count = self._failure_count
        cdef int trial_successes = self._trial_successes
        cdef int trials = self._trials if self._state == HALF_OPEN else 0
        cdef unsigned int opened = self._opened
        hardy_unlock(&self._mutex)
        return {
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
            "reset_timeout": self._reset_timeout,
            "half_open_max_calls": self._half_open_max,
        }

    # -- changing it by hand ----------------------------------------------

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
        else:
            self._local_reset()

    def _local_reset(self):
        hardy_lock(&self._mutex)
        cdef int old = self._state
        self._state = CLOSED
        self._epoch += 1
        self._failure_count = 0
        self._trials = 0
        self._trial_successes = 0
        hardy_unlock(&self._mutex)
        if old != CLOSED and _notify(self, old, CLOSED) < 0:
            _propagate()

    def record_success(self):
        """Record a success of a call made without the breaker's help.

        It counts in the state the breaker is in now: past the reset timeout
        an open breaker is half-open, and the success counts towards closing.
        """
        if _promote(self) < 0 or _on_success(self, self._epoch) < 0:
            _propagate()

    def record_failure(self, exception):
        """Record a failure; an exception of an excluded type is counted as ignored.

        Past the reset timeout an open breaker is half-open, and the failure
        opens it again for a full ``reset_timeout``.
        """
        if not isinstance(exception, BaseException):
            raise TypeError(f"exception must be an exception instance, got {exception!r}")
        if _is_excluded(self, exception):
            hardy_lock(&self._mutex)
            self._ignored += 1
            hardy_unlock(&self._mutex)
        elif isinstance(exception, Exception):
            if _promote(self) < 0 or _on_failure(self, self._epoch) < 0:
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
        listeners = None if self._extras is None else self._extras.listeners
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
        cdef long long epoch = _admit(self)
        cdef _Awaiter awaiter
        if epoch < 0:
            if epoch == -1:
                _raise_rejection(self)
            _propagate()
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            _record_outcome(self, exc, epoch)
            raise
        if PyCoro_CheckExact(<PyObject*>result):
            awaiter = _new_awaiter()
            awaiter._breaker = self
            awaiter._coro = result
            awaiter._epoch = epoch
            awaiter._stage = STAGE_RUNNING
            return awaiter
        if _on_success(self, epoch) < 0:
            _propagate()
        return result

    def __call__(self, func):
        """Decorate ``func`` so that every call goes through the breaker."""
        return protect(self, func)

    def __enter__(self):
        cdef long long epoch = _admit(self)
        if epoch < 0:
            if epoch == -1:
                _raise_rejection(self)
            _propagate()
        try:
            _blocks.push(self, epoch)
        except BaseException:
            _release(self, epoch, False)
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        cdef long long epoch = _blocks.pop(self)
        if exc is None:
            if _on_success(self, epoch) < 0:
                _propagate()
        else:
            _record_outcome(self, exc, epoch)

    async def __aenter__(self):
        return self.__enter__()

    async def __aexit__(self, exc_type, exc, tb):
        self.__exit__(exc_type, exc, tb)

    def __repr__(self):
        cdef double now
        if self._name is None:
            return f"<{type(self).__name__} (not initialised)>"
        cdef int state = self._state
        if state == OPEN and _clock_now(_clock_of(self), &now) == 0 and now - self._opened_at >= self._reset_timeout:
            state = HALF_OPEN
        PyErr_Clear()  # a clock that fails is reported by the calls, not by repr()
        return f"<{type(self).__name__} {self._name!r} {STATE_BY_CODE[state].value}>"

    # -- for the store's binding (hardy.store) ------------------------------

    def _current_epoch(self):
        return self._epoch

    def _local_admit(self):
        cdef long long epoch = _admit_impl(self, False)
        if epoch == -2:
            _propagate()
        return epoch

    def _local_success(self, long long epoch):
        """The local transition for a success the breaker has already counted."""
        if _on_success_impl(self, epoch, False, False) < 0:
            _propagate()

    def _local_failure(self, long long epoch):
        """The local transition for a failure the breaker has already counted."""
        if _on_failure_impl(self, epoch, False, False) < 0:
            _propagate()

    def _count_rejection(self):
        hardy_lock(&self._mutex)
        self._rejections += 1
        hardy_unlock(&self._mutex)

    def _adopt(self, int state, int failure_count, int trials, int trial_successes, double open_elapsed, bint new_period):
        """Take a state read from the store; the new epoch. ``new_period``: calls running now are stale."""
        cdef double now
        if _now(self, &now) < 0:
            _propagate()
        hardy_lock(&self._mutex)
        cdef int old = self._state
        if new_period:
            self._epoch += 1
            if state == OPEN and old != OPEN:
                self._opened += 1
        self._state = state
        self._failure_count = failure_count
        self._trials = trials
        self._trial_successes = trial_successes
        if state != CLOSED:
            self._opened_at = now - open_elapsed
        cdef long long epoch = self._epoch
        hardy_unlock(&self._mutex)
        if old != state and _notify(self, old, state) < 0:
            _propagate()
        return epoch


cdef _BreakerExtras _extras_of(CircuitBreaker self):
    if self._extras is None:
        self._extras = _BreakerExtras.__new__(_BreakerExtras)
    return self._extras


cdef inline object _clock_of(CircuitBreaker self):
    return None if self._extras is None else self._extras.clock


cdef inline object _store_of(CircuitBreaker self):
    return None if self._extras is None else self._extras.store


cdef inline tuple _excluded_of(CircuitBreaker self):
    return None if self._extras is None else self._extras.excluded


cdef inline bint _is_excluded(CircuitBreaker self, object exc):
    cdef tuple excluded = _excluded_of(self)
    return excluded is not None and isinstance(exc, excluded)


# -- every live breaker (hardy._live) ------------------------------------------------------

cdef PyObject* _live_head = NULL
cdef hardy_mutex _live_mutex
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


_measure_live_offsets()
_live.add_source(live_breakers)


cdef int _record_outcome(CircuitBreaker self, BaseException exc, long long epoch) except -1:
    """Settle an outcome given as an exception object (``call``, ``__exit__``)."""
    if not isinstance(exc, Exception):
        _release(self, epoch, False)
    elif _is_excluded(self, exc):
        _release(self, epoch, True)
    elif _on_failure(self, epoch) < 0:
        return -1
    return 0


# -- the state machine ---------------------------------------------------------
# The breaker's C-level operations are module functions rather than cdef
# methods: a cdef method would add a vtable pointer to every breaker. They
# return error codes instead of raising, so the dispatch can pass exceptions
# through without Cython adding frames to the caller's traceback.
#
# No user code (a clock, a listener, the store) may leave a trial slot held
# or a transition half-done: every admission that then fails gives its slot
# back, and state changes happen before listeners are told.

cdef inline int _now(CircuitBreaker self, double* now) noexcept:
    """The breaker's clock; an error for a reading that is not a finite number."""
    return _clock_now(_clock_of(self), now)


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


cdef inline long long _admit(CircuitBreaker self) noexcept:
    return _admit_impl(self, True)


cdef long long _store_call(CircuitBreaker self, str method, long long epoch) noexcept:
    """Hand a decision to the store's binding: its result, or -2 on error."""
    cdef object result
    try:
        result = getattr(_store_of(self), method)(epoch)
        return <long long>result if result is not None else 0
    except BaseException as exc:
        _set_error(exc)
        return -2


cdef long long _admit_impl(CircuitBreaker self, bint shared) noexcept:
    """The epoch of an admitted call, -1 after a rejection, -2 on error."""
    cdef double now
    cdef long long epoch
    cdef bint changed = False
    cdef bint to_store = shared and _store_of(self) is not None
    if self._state == CLOSED:
        return self._epoch
    if _now(self, &now) < 0:
        return -2
    hardy_lock(&self._mutex)
    if self._state == CLOSED:
        epoch = self._epoch
        hardy_unlock(&self._mutex)
        return epoch
    if self._state == OPEN:
        if now - self._opened_at < self._reset_timeout:
            self._rejections += 1
            hardy_unlock(&self._mutex)
            return -1
        if to_store:
            # Trial permits are cluster-wide: the store grants them.
            hardy_unlock(&self._mutex)
            return _store_call(self, "admit", 0)
        self._state = HALF_OPEN
        self._trials = 0
        self._trial_successes = 0
        changed = True
    if to_store and self._trials < self._half_open_max:
        hardy_unlock(&self._mutex)
        return _store_call(self, "admit", 0)
    if self._trials < self._half_open_max:
        self._trials += 1
        epoch = self._epoch
    else:
        self._rejections += 1
        epoch = -1
    hardy_unlock(&self._mutex)
    if changed and _notify(self, OPEN, HALF_OPEN) < 0:
        # A listener raised (an interrupt: others are logged) before the call
        # could start: its trial slot must not stay taken.
        if epoch >= 0:
            _release(self, epoch, False)
        return -2
    return epoch


cdef int _promote(CircuitBreaker self) noexcept:
    """An open breaker past its reset timeout is half-open: make it so (for manual recording)."""
    cdef double now
    if self._state != OPEN or _store_of(self) is not None:
        return 0
    if _now(self, &now) < 0:
        return -1
    hardy_lock(&self._mutex)
    if self._state != OPEN or now - self._opened_at < self._reset_timeout:
        hardy_unlock(&self._mutex)
        return 0
    self._state = HALF_OPEN
    self._trials = 0
    self._trial_successes = 0
    hardy_unlock(&self._mutex)
    return _notify(self, OPEN, HALF_OPEN)


cdef inline void _open(CircuitBreaker self, double now) noexcept:
    # Caller holds the lock.
    self._state = OPEN
    self._epoch += 1
    self._opened_at = now
    self._trials = 0
    self._trial_successes = 0
    self._opened += 1


cdef inline int _on_success(CircuitBreaker self, long long epoch) noexcept:
    return _on_success_impl(self, epoch, True, True)


cdef int _on_success_impl(CircuitBreaker self, long long epoch, bint shared, bint count) noexcept:
    cdef bint closed = False
    cdef bint clear = False
    cdef bint to_store = shared and _store_of(self) is not None
    hardy_lock(&self._mutex)
    if count:
        self._successes += 1
    if epoch == self._epoch:
        if self._state == CLOSED:
            clear = to_store and self._failure_count != 0
            self._failure_count = 0
        elif to_store and self._state == HALF_OPEN:
            hardy_unlock(&self._mutex)
            return <int>_store_call(self, "trial_success", epoch)
        elif self._state == HALF_OPEN:
            self._trial_successes += 1
            if self._trial_successes >= self._half_open_max:
                self._state = CLOSED
                self._failure_count = 0
                self._trials = 0
                self._trial_successes = 0
                closed = True
    hardy_unlock(&self._mutex)
    if closed:
        return _notify(self, HALF_OPEN, CLOSED)
    if clear:
        return <int>_store_call(self, "clear", epoch)
    return 0


cdef inline int _on_failure(CircuitBreaker self, long long epoch) noexcept:
    return _on_failure_impl(self, epoch, True, True)


cdef int _on_failure_impl(CircuitBreaker self, long long epoch, bint shared, bint count) noexcept:
    cdef double now
    cdef int old = -1
    if _now(self, &now) < 0:
        # No reading to open the breaker with: count the failure, and give a
        # trial slot back so the breaker cannot stay half-open for ever.
        hardy_lock(&self._mutex)
        if count:
            self._failures += 1
        hardy_unlock(&self._mutex)
        _release(self, epoch, False)
        return -1
    hardy_lock(&self._mutex)
    if count:
        self._failures += 1
    if epoch == self._epoch:
        if shared and _store_of(self) is not None:
            hardy_unlock(&self._mutex)
            return <int>_store_call(self, "failure", epoch)
        if self._state == CLOSED:
            self._failure_count += 1
            if self._failure_count >= self._threshold:
                _open(self, now)
                old = CLOSED
        elif self._state == HALF_OPEN:
            _open(self, now)
            old = HALF_OPEN
    hardy_unlock(&self._mutex)
    if old >= 0:
        return _notify(self, old, OPEN)
    return 0


cdef void _release(CircuitBreaker self, long long epoch, bint ignored) noexcept:
    cdef bint shared = False
    hardy_lock(&self._mutex)
    if ignored:
        self._ignored += 1
    if epoch == self._epoch and self._state == HALF_OPEN and self._trials > 0:
        self._trials -= 1
        shared = _store_of(self) is not None
    hardy_unlock(&self._mutex)
    if shared:
        # Giving a shared permit back never blocks (the store queues it), so
        # this may run from a deallocator; an error there has nowhere to go.
        _release_shared(self, epoch)


cdef void _release_shared(CircuitBreaker self, long long epoch) noexcept:
    cdef PyObject* etype
    cdef PyObject* evalue
    cdef PyObject* etb
    PyErr_Fetch(&etype, &evalue, &etb)
    if _store_call(self, "release", epoch) == -2:
        PyErr_WriteUnraisable(<PyObject*>self)
    PyErr_Restore(etype, evalue, etb)


cdef int _settle_error(CircuitBreaker self, long long epoch) noexcept:
    """Settle the exception that is currently set, and leave it set."""
    cdef PyObject* etype
    cdef PyObject* evalue
    cdef PyObject* etb
    cdef PyObject* ntype
    cdef PyObject* nvalue
    cdef PyObject* ntb
    cdef int rc = 0
    cdef tuple excluded = _excluded_of(self)
    PyErr_Fetch(&etype, &evalue, &etb)
    PyErr_NormalizeException(&etype, &evalue, &etb)
    if not PyErr_GivenExceptionMatches(etype, PyExc_Exception):
        # Interrupted or cancelled: not an outcome, but a trial slot it
        # held must come back or the breaker would stay half-open forever.
        _release(self, epoch, False)
    elif excluded is not None and PyErr_GivenExceptionMatches(etype, <PyObject*>excluded):
        _release(self, epoch, True)
    else:
        rc = _on_failure(self, epoch)
    if rc < 0:
        # The settling itself raised (a clock or a listener): that error
        # propagates, with the call's own error as its context.
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
    cdef double wait = 0.0
    cdef double now
    if self._state == OPEN:
        if _now(self, &now) < 0:
            return -1
        wait = self._reset_timeout - (now - self._opened_at)
        if wait < 0.0:
            wait = 0.0
    args = PyTuple_New(2)
    if args == NULL:
        return -1
    Py_INCREF(self._name)
    PyTuple_SET_ITEM(args, 0, <PyObject*>self._name)
    PyTuple_SET_ITEM(args, 1, PyFloat_FromDouble(wait))
    exc = hardy_new_exception(_open_error_type, args)
    xdecref(args)
    if exc == NULL:
        return -1
    PyErr_SetObject(_open_error_type, exc)
    xdecref(exc)
    return -1


cdef int _notify(CircuitBreaker self, int old, int new) noexcept:
    cdef PyObject* result
    cdef list listeners = None if self._extras is None else self._extras.listeners
    if listeners is None or len(listeners) == 0:
        return 0
    result = PyObject_CallFunctionObjArgs(
        <PyObject*>_notify_listeners,
        <PyObject*>self,
        <PyObject*>listeners,
        PyTuple_GET_ITEM(<PyObject*>_CODES, old),
        PyTuple_GET_ITEM(<PyObject*>_CODES, new),
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
        if now - self._opened_at >= self._reset_timeout:
            return HALF_OPEN
    return self._state


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


# -- call dispatch ----------------------------------------------------------

cdef enum:
    STAGE_NEW = 0       # created; not admitted yet
    STAGE_RUNNING = 1   # admitted; the outcome will be settled
    STAGE_FALLBACK = 2  # rejected; forwarding an async fallback
    STAGE_DONE = 3
    GO_ON = 2           # not a PySendResult (those are -1, 0 and 1)


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
    if b._state == CLOSED and b._failure_count == 0:
        hardy_add_one(&b._successes)
    elif _on_success(b, epoch) < 0:
        xdecref(result)
        return NULL
    return result


cdef object _pack_args(PyObject* const* args, size_t nargsf, PyObject* kwnames):
    """Rebuild ``(args, kwargs)`` from a vectorcall; only for fallbacks."""
    cdef Py_ssize_t nargs = PyVectorcall_NARGS(nargsf)
    cdef Py_ssize_t nkw = 0 if kwnames == NULL else PyTuple_GET_SIZE(kwnames)
    cdef Py_ssize_t i
    positional = tuple([<object>args[i] for i in range(nargs)])
    keywords = {}
    for i in range(nkw):
        keywords[<object>PyTuple_GET_ITEM(kwnames, i)] = <object>args[nargs + i]
    return positional, keywords


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


cdef object _steal(PyObject* obj):
    result = <object>obj
    xdecref(obj)
    return result


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
    PyErr_Fetch(&etype, &evalue, &etb)
    if _on_success(b, epoch) < 0:
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
            if b._state == CLOSED and b._failure_count == 0:
                hardy_add_one(&b._successes)
            elif _on_success(b, aw._epoch) < 0:
                xdecref(presult[0])
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


cdef Py_ssize_t _vectorcall_offset():
    # The slot lives in _Wrapper, so it sits at the same offset in every wrapper type.
    cdef _Wrapper probe = _Wrapper.__new__(_Wrapper)
    return <Py_ssize_t>(<char*>&probe._vectorcall - <char*><PyObject*>probe)


hardy_enable_vectorcall(_Protected, _vectorcall_offset())
hardy_set_am_send(_Awaiter, _awaiter_send)
hardy_set_iternext(_Awaiter, _awaiter_iternext)
hardy_stop_ready()
_coroutine_abc.register(_Awaiter)


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
    cdef _Protected p = _Protected.__new__(_Protected)
    p._vectorcall = _protected_vectorcall
    p._func = func
    p._breaker = breaker
    p._fallback = fallback
    p._is_async = _wrapping.is_async_callable(func)
    p._fallback_is_async = fallback is not None and _wrapping.is_async_callable(fallback)
    _wrapping.copy_metadata(p, func, is_async=p._is_async)
    setattr(p, "breaker", breaker)
    return p




# -- retry ------------------------------------------------------------------------

from libc.math cimport pow as c_pow

cdef enum:
    JITTER_NONE = 0
    JITTER_FULL = 1
    JITTER_EQUAL = 2
    JITTER_DECORRELATED = 3
    MAX_ATTEMPT = 2147483647
    BASE_TABLE = 16

cdef object _default_random = random.random
cdef object _getrandbits = random.getrandbits
cdef object _sync_sleep = _sleep.sync_sleep
cdef object _async_sleep = _sleep.async_sleep


cdef class RetryConfig:
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

    cdef int _max_attempts
    cdef int _jitter
    cdef bint _retry_circuit_open
    cdef bint _has_deadline
    cdef double _factor
    cdef double _initial
    cdef double _max_delay
    cdef double _deadline
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
        (
            self._max_attempts,
            self._factor,
            self._initial,
            self._max_delay,
            self._jitter,
            self._retryable,
            self._retry_circuit_open,
            self._retry_on_result,
            deadline,
            self._random,
            clock,
        ) = _validate.retry_settings(
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
        self._jitter_given = jitter
        self._has_deadline = deadline is not None
        self._deadline = 0.0 if deadline is None else deadline
        self._clock = None if clock is _monotonic else clock
        if self._random is _default_random:
            self._random = None
            self._rng_state = _getrandbits(64)
        # pow() costs more than everything else in get_delay; attempts are
        # small, so their base delays are computed once, by the same formula.
        cdef int i
        for i in range(BASE_TABLE):
            self._bases[i] = _base_delay(self, i + 1)

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
        cdef double delay
        if not 1 <= n <= MAX_ATTEMPT:
            n = _validate.positive_int("attempt", attempt)
        if previous_delay is not None:
            previous = _validate.seconds("previous_delay", previous_delay)
        if _retry_delay(self, n, previous, &delay) < 0:
            _propagate()
        return delay

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
    """The delay after failed attempt ``attempt``; -1 if the random source raised.

    Kept operation for operation identical to ``RetryConfig._delay`` in the
    twin, so both give bit-identical delays for the same random numbers.
    """
    cdef double maximum = c._max_delay
    cdef double base = c._bases[attempt - 1] if attempt <= BASE_TABLE else _base_delay(c, attempt)
    cdef double delay, r, half, low, high
    if c._jitter == JITTER_NONE:
        delay = base
    elif c._jitter == JITTER_FULL:
        if _draw(c, &r) < 0:
            return -1
        delay = r * base
    elif c._jitter == JITTER_EQUAL:
        if _draw(c, &r) < 0:
            return -1
        half = base * 0.5
        delay = half + r * half
    else:
        if _draw(c, &r) < 0:
            return -1
        low = c._initial
        high = 3.0 * (previous if previous >= 0.0 else low)
        if high < low:
            high = low
        delay = low + r * (high - low)
    if not delay >= 0.0:
        delay = 0.0
    if delay > maximum:
        delay = maximum
    out[0] = delay
    return 0


cdef double _base_delay(RetryConfig c, long attempt) noexcept:
    """``min(max_delay, initial_delay * backoff_factor ** (attempt - 1))``."""
    cdef double base
    if c._initial == 0.0:
        return 0.0
    base = c._initial * c_pow(c._factor, <double>(attempt - 1))
    if not base < c._max_delay:
        base = c._max_delay
    return base


cdef inline int _draw(RetryConfig c, double* r) noexcept:
    cdef PyObject* result
    if c._random is None:
        r[0] = hardy_next_double(&c._rng_state)
        return 0
    result = PyObject_CallNoArgs(<PyObject*>c._random)
    if result == NULL:
        return -1
    if PyFloat_CheckExact(result):
        r[0] = PyFloat_AS_DOUBLE(result)
        if 0.0 <= r[0] < 1.0:
            xdecref(result)
            return 0
    return _checked_reading(_check_random, c._random, result, r)


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
    cdef double delay = 0.0
    cdef double now
    cdef int verdict
    cdef PyObject* error = NULL
    cdef PyObject* value
    cdef PyObject* number
    while True:
        if result == NULL:
            if attempt >= c._max_attempts or not _retries_current(c):
                return NULL
            error = _take_error()
        else:
            verdict = _result_fails(c, result)
            if verdict < 0:
                xdecref(result)
                return NULL
            if verdict == 0 or attempt >= c._max_attempts:
                return result
        if _retry_delay(c, attempt, previous, &delay) < 0:
            return _fail_during_retry(error, result)
        if c._has_deadline:
            if _clock_now(c._clock, &now) < 0:
                return _fail_during_retry(error, result)
            if now - started + delay > c._deadline:
                return _give_up(error, result)
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
        if delay > 0.0:
            number = PyFloat_FromDouble(delay)
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
        previous = delay
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
    cdef double delay
    if _retry_delay(c, attempt, previous, &delay) < 0:
        _propagate()
    return delay


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
    cdef double delay
    func = r._func
    on_retry = r._on_retry
    while True:
        try:
            result = await func(*args, **kwargs)
        except Exception as exc:
            if attempt >= c._max_attempts or not _retries_exc(c, exc):
                raise
            delay = _delay_or_raise(c, attempt, previous)
            if c._has_deadline and _clock_or_raise(c._clock) - started + delay > c._deadline:
                raise
            if on_retry is not None:
                if r._on_retry_is_async:
                    await on_retry(exc, attempt)
                else:
                    on_retry(exc, attempt)
            if delay > 0.0:
                await _async_sleep(delay)
        else:
            if c._retry_on_result is None or not c._retry_on_result(result) or attempt >= c._max_attempts:
                return result
            delay = _delay_or_raise(c, attempt, previous)
            if c._has_deadline and _clock_or_raise(c._clock) - started + delay > c._deadline:
                return result
            if on_retry is not None:
                if r._on_retry_is_async:
                    await on_retry(None, attempt)
                else:
                    on_retry(None, attempt)
            if delay > 0.0:
                await _async_sleep(delay)
        previous = delay
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


# -- fallback chains ---------------------------------------------------------------------

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
# hardy._deadlines (see there for the protocol, and _deadlines._PythonRegistry
# for the twin's, which takes the same decisions). Every operation below runs
# no Python code, so under the GIL each is atomic with respect to the timer
# thread and to deliveries: no lock, no window between the wrapped call's
# return and the removal of its deadline, and no window between looking at a
# thread (hardy._safe_points) and raising in it. Free-threaded builds lock a
# PyMutex and ask hardy._safe_points in Python.

cdef object _Expired = _deadlines.Expired
cdef object _wake_timer = _deadlines.wake
cdef double _REDELIVER = _deadlines.REDELIVER
cdef double _TICK = _deadlines.TICK
cdef double _DEFER = _deadlines.DEFER
cdef list _sp_rules = _safe_points.rules
cdef set _sp_exempt = _safe_points.exempt
cdef dict _sp_verdicts = _safe_points.verdicts
cdef object _sp_snapshot = _safe_points.snapshot
cdef object _sp_verdict = _safe_points.verdict
cdef int _SP_UNSAFE = _safe_points.UNSAFE
cdef int _SP_HANDLING = _safe_points.HANDLING
cdef object _dl_noop = _deadlines.noop
cdef object _report_timeout = _timeout_log.timed_out
cdef object _report_fallback = _timeout_log.fallback_answered
cdef dict _dl_threads = {}         # thread ident -> _ThreadDeadlines (kept while any is active)
cdef unsigned long _dl_cached_ident = 0
cdef _ThreadDeadlines _dl_cached = None  # _dl_threads[_dl_cached_ident], GIL builds only
cdef double _dl_next_wake = float("inf")
cdef hardy_mutex _dl_mutex


cdef inline double _dl_now() noexcept:
    """time.monotonic(), from C."""
    if HARDY_FAST_CLOCK:
        return hardy_now()
    return c_monotonic()


@cython.final
@cython.freelist(8)
cdef class _Deadline:
    cdef double deadline
    cdef double next_delivery
    cdef _ThreadDeadlines owner
    cdef _Deadline outer            # the next deadline out in the same thread, or None
    cdef bint active
    cdef bint fired


@cython.final
cdef class _ThreadDeadlines:
    """One thread's active deadlines, innermost first, as a linked stack.

    Linked, not a list: a list that grows to one entry and back on every call
    reallocates twice per call, which costs more than the rest of a timeout.
    """

    cdef _Deadline top
    cdef unsigned long thread
    cdef size_t state               # the thread's PyThreadState, for free-threaded builds


cdef _ThreadDeadlines _dl_owner(unsigned long ident):
    """The deadlines of thread ``ident`` (the caller holds the mutex)."""
    global _dl_cached_ident, _dl_cached
    cdef _ThreadDeadlines owner
    if HARDY_REUSE_AWAITERS and ident == _dl_cached_ident and _dl_cached is not None:
        # The thread that timed a call last usually times the next one:
        # skip the dict lookup, and the int it needs.
        return _dl_cached
    key = PyLong_FromUnsignedLong(ident)
    owner = _dl_threads.get(<object>key)
    if owner is None:
        owner = _ThreadDeadlines.__new__(_ThreadDeadlines)
        owner.thread = ident
        if not HARDY_INSPECT_IN_C:
            owner.state = <size_t>PyThreadState_Get()
        _dl_threads[<object>key] = owner
    xdecref(key)
    if HARDY_REUSE_AWAITERS:
        _dl_cached_ident = ident
        _dl_cached = owner
    return owner


cdef _Deadline _dl_enter(double seconds, bint* early):
    global _dl_next_wake
    cdef _Deadline entry = _Deadline.__new__(_Deadline)
    cdef _ThreadDeadlines owner
    entry.deadline = _dl_now() + seconds
    entry.active = True
    hardy_lock(&_dl_mutex)
    owner = _dl_owner(PyThread_get_thread_ident())
    entry.owner = owner
    entry.outer = owner.top
    owner.top = entry
    early[0] = entry.deadline < _dl_next_wake
    if early[0]:
        _dl_next_wake = entry.deadline
    hardy_unlock(&_dl_mutex)
    return entry


cdef void _dl_leave(_Deadline entry) noexcept:
    cdef _ThreadDeadlines owner = entry.owner
    cdef _Deadline inner
    hardy_lock(&_dl_mutex)
    entry.active = False
    if owner.top is entry:
        owner.top = entry.outer  # the innermost, as nearly always
    else:
        inner = owner.top
        while inner is not None and inner.outer is not entry:
            inner = inner.outer
        if inner is not None:
            inner.outer = entry.outer
    if entry.fired and hardy_pending_is(<PyObject*>_Expired):
        # Fired but not raised yet (the call returned first): cancel it.
        if HARDY_CANCEL_BY_RAISING:
            hardy_unlock(&_dl_mutex)
            _dl_take_pending()
            return
        PyThreadState_SetAsyncExc(owner.thread, NULL)
    hardy_unlock(&_dl_mutex)


cdef void _dl_take_pending() noexcept:
    """Let the pending ``Expired`` raise in a no-op call and drop it (see HARDY_CANCEL_BY_RAISING)."""
    cdef PyObject* etype
    cdef PyObject* evalue
    cdef PyObject* etb
    cdef PyObject* result
    PyErr_Fetch(&etype, &evalue, &etb)  # the call's own error, if any, is kept
    result = PyObject_CallNoArgs(<PyObject*>_dl_noop)
    if result != NULL:
        xdecref(result)
    elif PyErr_ExceptionMatches(<PyObject*>_Expired):
        PyErr_Clear()
    else:
        PyErr_WriteUnraisable(<PyObject*>_dl_noop)
    PyErr_Restore(etype, evalue, etb)


cdef bint _dl_claimed_elsewhere(_Deadline entry, double now) noexcept:
    """Whether an active deadline of ``entry``'s thread (an outer one) has fired or passed."""
    cdef _Deadline other
    cdef bint claimed = False
    hardy_lock(&_dl_mutex)
    other = entry.owner.top
    while other is not None:
        if other.active and (other.fired or other.deadline <= now):
            claimed = True
            break
        other = other.outer
    hardy_unlock(&_dl_mutex)
    return claimed


cdef int _dl_verdict(unsigned long thread, size_t state) noexcept:
    """FREE, UNSAFE or HANDLING (hardy._safe_points) for a thread whose deadline is due."""
    if HARDY_INSPECT_IN_C:
        return hardy_verdict(thread, <PyObject*>_sp_rules, <PyObject*>_sp_exempt, <PyObject*>_sp_verdicts, <PyObject*>_Expired)
    try:
        return _sp_verdict(thread, _sp_snapshot(), _Expired, state)
    except BaseException:
        return 0  # the deadline is the promise: deliver


cdef double _dl_fire_due(double now) noexcept:
    global _dl_next_wake
    cdef double soonest = float("inf")
    cdef double due
    cdef bint delivered
    cdef int verdict
    cdef _Deadline entry
    cdef _ThreadDeadlines owner
    hardy_lock(&_dl_mutex)
    for owner in _dl_threads.values():
        delivered = False
        verdict = -1
        entry = owner.top
        while entry is not None:  # innermost first, as in the twin
            if entry.active:
                due = entry.next_delivery if entry.fired else entry.deadline
                if due <= now and not delivered:
                    if verdict < 0:
                        verdict = _dl_verdict(owner.thread, owner.state)
                    if verdict == _SP_UNSAFE:
                        due = now + _DEFER
                    elif entry.fired and verdict == _SP_HANDLING:
                        entry.next_delivery = now + _REDELIVER
                        due = entry.next_delivery
                    else:
                        entry.fired = True
                        entry.next_delivery = now + _REDELIVER
                        PyThreadState_SetAsyncExc(owner.thread, <PyObject*>_Expired)
                        delivered = True
                        due = entry.next_delivery
                if due <= now:
                    due = now + _REDELIVER
                if due < soonest:
                    soonest = due
            entry = entry.outer
    if soonest > now + _TICK:
        soonest = now + _TICK
    _dl_next_wake = soonest
    hardy_unlock(&_dl_mutex)
    return soonest


@cython.final
cdef class _CompiledDeadlines:
    """The compiled registry as the timer thread sees it."""

    def fire_due(self, double now):
        return _dl_fire_due(now)

    def is_empty(self):
        cdef _ThreadDeadlines owner
        for owner in _dl_threads.values():
            if owner.top is not None:
                return False
        return True

    def retire(self):
        global _dl_next_wake, _dl_cached
        cdef _ThreadDeadlines owner
        hardy_lock(&_dl_mutex)
        for owner in _dl_threads.values():
            if owner.top is not None:
                hardy_unlock(&_dl_mutex)
                return False
        # From now on a new deadline is "early" and wakes a new timer.
        _dl_threads.clear()
        _dl_cached = None
        _dl_next_wake = float("inf")
        hardy_unlock(&_dl_mutex)
        return True

    def after_fork(self, thread):
        global _dl_next_wake, _dl_cached
        hardy_reset_mutex(&_dl_mutex)  # a thread that is gone may have held it
        _dl_cached = None
        survivor = _dl_threads.get(thread)
        _dl_threads.clear()
        if survivor is not None:
            _dl_threads[thread] = survivor
        _dl_next_wake = float("inf")

    def verdict(self, thread):
        """What the timer would do to ``thread`` now (for tests and benchmarks)."""
        return _dl_verdict(thread, 0)


_deadlines.add_registry(_CompiledDeadlines())


@cython.final
cdef class _Timed(_Wrapper):
    """A sync function under a deadline (see ``timed``)."""

    cdef double _limit
    cdef str _operation
    cdef object _fallback

    def __repr__(self):
        return f"<{self._operation} with a {self._limit}s timeout>"


cdef PyObject* _timed_vectorcall(PyObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames) except NULL:
    cdef _Timed t = <_Timed>self
    cdef bint early = False
    cdef _Deadline entry = _dl_enter(t._limit, &early)
    cdef PyObject* result = NULL
    cdef PyObject* when
    cdef bint late
    if early:
        when = PyFloat_FromDouble(entry.deadline)
        if when != NULL:
            result = PyObject_CallOneArg(<PyObject*>_wake_timer, when)
            xdecref(when)
        if result != NULL:
            xdecref(result)
            result = PyObject_Vectorcall(<PyObject*>t._func, args, nargsf, kwnames)
    else:
        result = PyObject_Vectorcall(<PyObject*>t._func, args, nargsf, kwnames)
    # A call that ends after its deadline never returns as if in time, even
    # when no bytecode ran to raise the deadline (a long C call, or a timer
    # starved of the GIL): the clock decides, not whether the timer fired.
    late = _dl_now() >= entry.deadline
    _dl_leave(entry)
    if result != NULL:
        if not late:
            return result
        xdecref(result)
    elif not PyErr_ExceptionMatches(<PyObject*>_Expired):
        return NULL  # the call's own error, even one raised as the deadline passed
    elif not (entry.fired or late) and _dl_claimed_elsewhere(entry, _dl_now()):
        return NULL  # an outer deadline's: its own wrapper converts it
    else:
        PyErr_Clear()  # ours, wherever it landed: it never reaches the caller
    return _timed_out(t, args, nargsf, kwnames)


cdef PyObject* _timed_out(_Timed t, PyObject* const* args, size_t nargsf, PyObject* kwnames) except NULL:
    cdef PyObject* result
    error = _report_timeout(t._operation, t._limit)
    if t._fallback is None:
        PyErr_SetObject(<PyObject*>HardyTimeoutError, <PyObject*>error)
        return NULL
    result = PyObject_Vectorcall(<PyObject*>t._fallback, args, nargsf, kwnames)
    if result != NULL:
        try:
            _report_fallback(t._operation)
        except BaseException:
            xdecref(result)
            raise
    return result


hardy_enable_vectorcall(_Timed, _vectorcall_offset())


def timed(func, seconds, operation, fallback=None):
    """Run each call of the sync ``func`` under a deadline of ``seconds``.

    At the deadline the call is interrupted and ``hardy.TimeoutError(operation,
    seconds)`` raised, or ``fallback(*args, **kwargs)`` returned. A call that
    returns after its deadline (the timer could not interrupt it) times out
    all the same: its result is dropped.
    """
    cdef _Timed t = _Timed.__new__(_Timed)
    t._vectorcall = _timed_vectorcall
    t._func = func
    t._limit = seconds
    t._operation = operation
    t._fallback = fallback
    return _wrapping.copy_metadata(t, func, is_async=False)


# Internal types are made only by the functions above (see hardy_disallow_instantiation).
for _internal in (
    _BreakerExtras, _Wrapper, _Protected, _Awaiter, _Retrying, _Chain,
    _Deadline, _ThreadDeadlines, _CompiledDeadlines, _Timed,
):
    hardy_disallow_instantiation(_internal)
del _internal
