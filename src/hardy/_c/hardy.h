/* The C helpers of hardy's compiled core (src/hardy/_core_c.pyx).

   Everything here runs without calling Python code unless it says so, which
   is what lets the core's critical sections rely on the GIL alone. */

#ifndef HARDY_H
#define HARDY_H

#include <Python.h>
#include <string.h>
#include <time.h>


/* A lock is one byte: a PyMutex on free-threaded builds, nothing (the GIL
   makes the critical sections atomic, as they run no Python code) else. */
#ifdef Py_GIL_DISABLED
#define HARDY_REUSE_AWAITERS 0
#define hardy_lock(m) PyMutex_Lock((PyMutex *)(m))
#define hardy_unlock(m) PyMutex_Unlock((PyMutex *)(m))
#define hardy_add_one(p) ((void)_Py_atomic_add_int64((int64_t *)(p), 1))
#else
#define HARDY_REUSE_AWAITERS 1
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
   it. Its one-item args tuple is kept the same way when nothing else
   holds it, emptied and out of the collector's sight until it is filled
   again. Nothing of a returned value outlives its exception. */
#if PY_VERSION_HEX >= 0x030C0000 && !defined(Py_GIL_DISABLED)
#define HARDY_STOP_SPARE 1
static PyObject *hardy_stop_spare = NULL;
static PyObject *hardy_stop_args_spare = NULL;

/* Keep ``args`` (a reference the caller gives up) as the spare args tuple
   when only that reference holds it; else drop it. */
static void hardy_stop_keep_args(PyObject *args) {
    PyObject *item;
    if (hardy_stop_args_spare != NULL || Py_REFCNT(args) != 1 || !PyTuple_CheckExact(args)
            || PyTuple_GET_SIZE(args) != 1) {
        Py_DECREF(args);
        return;
    }
    item = PyTuple_GET_ITEM(args, 0);
    PyTuple_SET_ITEM(args, 0, NULL);
    if (PyObject_GC_IsTracked(args)) {
        PyObject_GC_UnTrack(args);
    }
    hardy_stop_args_spare = args;
    Py_XDECREF(item);  /* may run code that returns through here: the tuple is put away already */
}

/* A one-item tuple holding a new reference to ``value``, or NULL with an error set. */
static PyObject *hardy_stop_args(PyObject *value) {
    PyObject *args = hardy_stop_args_spare;
    if (args == NULL) {
        return PyTuple_Pack(1, value);
    }
    hardy_stop_args_spare = NULL;
    PyTuple_SET_ITEM(args, 0, Py_NewRef(value));
    PyObject_GC_Track(args);
    return args;
}

static void hardy_stop_dealloc(PyObject *op) {
    PyStopIterationObject *stop = (PyStopIterationObject *)op;
    PyObject *args;
    PyObject_GC_UnTrack(op);
    /* Clearing may run code (a value's finaliser) that returns through
       here too: look for a free spare place only afterwards. */
    Py_CLEAR(stop->value);
    Py_CLEAR(stop->dict);
    args = stop->args;
    stop->args = NULL;
    if (args != NULL) {
        hardy_stop_keep_args(args);
    }
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
    PyObject *args = hardy_stop_args(value);
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

/* The coarse clock: CLOCK_MONOTONIC as of the kernel's last tick, a fifth
   of the cost of a reading. It is never ahead of CLOCK_MONOTONIC, and lags
   it by a few ticks (2 to 18 ms measured here, under load), so it can only
   tell that a call surely ended before a point well after its end (the
   slow-call check of a count window, breaker.pxi). Its resolution, the
   tick, is 0 where there is none: then it is not used. */
#if defined(__linux__) && defined(CLOCK_MONOTONIC_COARSE)
static inline double hardy_coarse_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
static inline double hardy_coarse_resolution(void) {
    struct timespec ts;
    if (clock_getres(CLOCK_MONOTONIC_COARSE, &ts) != 0) {
        return 0.0;
    }
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
#else
static inline double hardy_coarse_now(void) {
    return 0.0;
}
static inline double hardy_coarse_resolution(void) {
    return 0.0;
}
#endif

/* A mutex left held by a thread that did not survive fork(). */
static inline void hardy_reset_mutex(char *m) {
    *m = 0;
}

/* Looking at another thread for the deadline timer (hardy._safe_points
   says why). Under the GIL this runs no Python code: the list of thread
   states cannot change, nothing can move the target thread, and so the
   look and the delivery that follows are one step. Free-threaded builds
   ask hardy._safe_points in Python instead. */
#ifdef Py_GIL_DISABLED
#define HARDY_INSPECT_IN_C 0
static int hardy_verdict(unsigned long id, PyObject *rules, PyObject *exempt,
                         PyObject *verdicts, PyObject *callbacks, PyObject *kind) {
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

/* The code of the thread's innermost frame (a new reference), or NULL if
   it runs no Python code. Making the frame object may allocate; the
   collector is held off meanwhile, so no finalizer can run. */
static PyCodeObject *hardy_innermost_code(PyThreadState *ts) {
    PyFrameObject *frame;
    PyCodeObject *code;
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
    return code;
}

/* The same rule as _safe_points.finalising(): a __del__ method or a
   function of gc.callbacks, where the interpreter ignores exceptions.
   Type checks and borrowed items only: no Python code runs. */
static int hardy_finalising(PyCodeObject *code, PyObject *callbacks) {
    Py_ssize_t i;
    if (PyUnicode_Check(code->co_name) && PyUnicode_CompareWithASCIIString(code->co_name, "__del__") == 0) {
        return 1;
    }
    if (!PyList_Check(callbacks)) {
        return 0;
    }
    for (i = 0; i < PyList_GET_SIZE(callbacks); i++) {
        PyObject *callback = PyList_GET_ITEM(callbacks, i);
        if (PyMethod_Check(callback)) {
            callback = PyMethod_GET_FUNCTION(callback);
        }
        if (PyFunction_Check(callback) && PyFunction_GET_CODE(callback) == (PyObject *)code) {
            return 1;
        }
    }
    return 0;
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
                         PyObject *verdicts, PyObject *callbacks, PyObject *kind) {
    PyThreadState *ts = hardy_thread_state(id);
    PyCodeObject *code;
    int unsafe = 0;
    if (ts == NULL) {
        return 0;
    }
    if (ts->tracing) {
        return 1;  /* in a trace or profile function */
    }
    code = hardy_innermost_code(ts);
    if (code != NULL) {
        unsafe = hardy_file_deferred(code->co_filename, rules, exempt, verdicts) || hardy_finalising(code, callbacks);
        Py_DECREF(code);
    }
    if (unsafe) {
        return 1;
    }
    return hardy_handles(ts, kind) ? 2 : 0;
}
#endif

/* The running asyncio loop as asyncio recorded it for this thread, read
   without asking asyncio: on 3.10 and 3.11 asyncio.get_running_loop()
   calls getpid(), a system call, on every call, and on any version the
   call costs more than the look. On 3.10 and 3.11 the record is the
   _RunningLoopHolder in the thread's dict; its type is checked by name and
   size. NULL means: ask asyncio (no record, anything unexpected, 3.14+,
   Windows before 3.12, where asyncio makes no system call).
   Otherwise a borrowed reference: the loop, or Py_None (none runs, or the
   record was left by the parent of a forked process, as asyncio decides). */
#if PY_VERSION_HEX < 0x030C0000 && !defined(MS_WINDOWS)
typedef struct {
    PyObject_HEAD
    PyObject *rl_loop;
    pid_t rl_pid;
} hardy_loop_holder;
static pid_t hardy_pid = 0;
static void hardy_refresh_pid(void) {
    hardy_pid = getpid();
}
static PyObject *hardy_recorded_loop(PyObject *key) {
    PyObject *dict = PyThreadState_GetDict();
    PyObject *holder;
    if (dict == NULL || hardy_pid == 0) {
        return NULL;
    }
    holder = PyDict_GetItemWithError(dict, key);
    if (holder == NULL) {
        PyErr_Clear();
        return NULL;
    }
    if (strcmp(Py_TYPE(holder)->tp_name, "_RunningLoopHolder") != 0
            || Py_TYPE(holder)->tp_basicsize != (Py_ssize_t)sizeof(hardy_loop_holder)) {
        return NULL;
    }
    if (((hardy_loop_holder *)holder)->rl_pid != hardy_pid) {
        return Py_None;
    }
    return ((hardy_loop_holder *)holder)->rl_loop;
}
#elif PY_VERSION_HEX >= 0x030D0000 && PY_VERSION_HEX < 0x030E0000 && !defined(Py_GIL_DISABLED)
/* 3.13 keeps it in the thread state, just after its public part
   (_PyThreadStateImpl.asyncio_running_loop, internal). That is trusted
   only once a read has matched asyncio's own answer inside a running loop
   (hardy_check_loop_slot); until then, and if it ever did not match, ask
   asyncio. The read stays inside the thread state's allocation. */
static int hardy_loop_slot = 0;  /* 0: not checked yet, 1: trusted, -1: not */
static void hardy_refresh_pid(void) {
}
static inline PyObject *hardy_loop_slot_value(void) {
    return *(PyObject **)((char *)PyThreadState_Get() + sizeof(PyThreadState));
}
static PyObject *hardy_recorded_loop(PyObject *key) {
    PyObject *loop;
    if (hardy_loop_slot <= 0) {
        return NULL;
    }
    loop = hardy_loop_slot_value();
    return loop != NULL ? loop : Py_None;
}
static void hardy_check_loop_slot(PyObject *answer) {
    if (hardy_loop_slot == 0 && answer != Py_None) {
        hardy_loop_slot = hardy_loop_slot_value() == answer ? 1 : -1;
    }
}
#define HARDY_CHECKS_LOOP_SLOT 1
#elif PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030D0000
/* 3.12 keeps the loop itself (or None) under the key: read as asyncio reads it. */
static void hardy_refresh_pid(void) {
}
static PyObject *hardy_recorded_loop(PyObject *key) {
    PyObject *dict = PyThreadState_GetDict();
    PyObject *loop;
    if (dict == NULL) {
        return NULL;
    }
    loop = PyDict_GetItemWithError(dict, key);
    if (loop == NULL) {
        PyErr_Clear();
    }
    return loop;
}
#else
static void hardy_refresh_pid(void) {
}
static PyObject *hardy_recorded_loop(PyObject *key) {
    return NULL;
}
#endif

#ifndef HARDY_CHECKS_LOOP_SLOT
static inline void hardy_check_loop_slot(PyObject *answer) {
}
#endif

/* task.cancelling(), for the asyncio Task type itself: its C method, called
   directly (METH_NOARGS), which skips the method lookup of every call;
   any other type (a subclass, another library's task) is asked by name. */
static PyTypeObject *hardy_task_type = NULL;
static PyCFunction hardy_cancelling_impl = NULL;
static int hardy_know_cancelling(PyObject *task_type, PyObject *descr) {
    PyMethodDef *def;
    if (!PyType_Check(task_type) || !Py_IS_TYPE(descr, &PyMethodDescr_Type)) {
        return 0;
    }
    def = ((PyMethodDescrObject *)descr)->d_method;
    if ((def->ml_flags & (METH_VARARGS | METH_KEYWORDS | METH_NOARGS | METH_O | METH_FASTCALL)) != METH_NOARGS) {
        return 0;
    }
    Py_INCREF(task_type);
    hardy_task_type = (PyTypeObject *)task_type;
    hardy_cancelling_impl = def->ml_meth;
    return 1;
}
static PyObject *hardy_cancelling(PyObject *task, PyObject *name) {
    if (hardy_cancelling_impl != NULL && Py_TYPE(task) == hardy_task_type) {
        return hardy_cancelling_impl(task, NULL);
    }
    return PyObject_CallMethodNoArgs(task, name);
}

/* Whether the weak reference ``ref`` still points at ``obj``. */
static inline int hardy_weakref_is(PyObject *ref, PyObject *obj) {
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *target = NULL;
    int same;
    if (PyWeakref_GetRef(ref, &target) < 0) {
        PyErr_Clear();
        return 0;
    }
    same = target == obj;
    Py_XDECREF(target);
    return same;
#else
    return PyWeakref_GET_OBJECT(ref) == obj;
#endif
}

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

/* A breaker's window outcomes (hardy/policies/breaker.py, which reads these
   fields by name): one allocation, no object header, so that a breaker with
   a CountWindow(100) stays near 200 bytes (the memory benchmark). A count
   window's ring follows the counts; a time window's totals and buckets
   follow them at the next 8-byte boundary. The settings are a strong
   reference to the WindowSettings every breaker of the same window shares. */
typedef struct {
    int _calls, _failed, _slow;
} hardy_window_bucket;

typedef struct {
    long long _head, _calls, _failed, _slow;
    hardy_window_bucket _buckets[];
} hardy_window_time;

typedef struct {
    PyObject *_settings;
    int _n, _failed, _slow, _pending;
    int _trial_slow; /* the current half-open period's slow trials (policies/breaker.py) */
    unsigned char _settled;
    unsigned char _ring[];
} hardy_window;

#define HARDY_WINDOW_TIME_AT ((offsetof(hardy_window, _ring) + 7) & ~(size_t)7)

static inline hardy_window_time *hardy_window_time_of(hardy_window *w) {
    return (hardy_window_time *)((char *)w + HARDY_WINDOW_TIME_AT);
}

static inline hardy_window_bucket *hardy_window_bucket_at(hardy_window_time *t, int index) {
    return &t->_buckets[index];
}

/* An empty window: `span` buckets for a time window, else a ring of
   `ring_bytes`. NULL with MemoryError set. */
static hardy_window *hardy_window_new(PyObject *settings, int timed, Py_ssize_t span, Py_ssize_t ring_bytes) {
    size_t size = timed
        ? HARDY_WINDOW_TIME_AT + sizeof(hardy_window_time) + (size_t)span * sizeof(hardy_window_bucket)
        : offsetof(hardy_window, _ring) + (size_t)ring_bytes;
    hardy_window *w;
    if (size < sizeof(hardy_window)) {
        size = sizeof(hardy_window);
    }
    w = (hardy_window *)PyMem_Calloc(1, size);
    if (w == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    Py_INCREF(settings);
    w->_settings = settings;
    return w;
}

/* The collector must see a breaker's reference to its window's settings:
   they hold the CountWindow / TimeWindow object, which (a subclass's) may
   lead back to the breaker, a cycle it could not collect otherwise. The
   breaker type's own traversal is kept and this one runs after it. */
static traverseproc hardy_breaker_traverse_base = NULL;
static Py_ssize_t hardy_breaker_window_at = 0;

static int hardy_breaker_traverse(PyObject *o, visitproc visit, void *arg) {
    hardy_window *w;
    int err = hardy_breaker_traverse_base(o, visit, arg);
    if (err) {
        return err;
    }
    w = *(hardy_window **)((char *)o + hardy_breaker_window_at);
    if (w != NULL) {
        Py_VISIT(w->_settings);
    }
    return 0;
}

static void hardy_traverse_windows(PyObject *type, Py_ssize_t window_at) {
    PyTypeObject *tp = (PyTypeObject *)type;
    hardy_breaker_traverse_base = tp->tp_traverse;
    hardy_breaker_window_at = window_at;
    tp->tp_traverse = hardy_breaker_traverse;
    PyType_Modified(tp);
}

static void hardy_window_free(hardy_window *w) {
    if (w != NULL) {
        Py_DECREF(w->_settings);
        PyMem_Free(w);
    }
}

#endif /* HARDY_H */
