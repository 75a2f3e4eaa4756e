# The timed wrapper of an ``async def`` function, compiled (included by
# _core_c.pyx before first_try.pxi, whose awaiter awaits the call). The
# registry and its decisions are hardy/policies/async_deadlines.py, compiled
# here as in the twin; the twin's dispatch is hardy._async_deadlines.

import os as _os
import weakref as _weakref

cdef object _running_loop_or_none = _asyncio.events._get_running_loop
cdef object _current_task = _async_deadlines.current_task
# The dict asyncio's C tasks record each loop's running task in (3.10 to
# 3.13): looked up directly, it saves a call. None where there is none.
cdef object _current_tasks = getattr(_asyncio.tasks, "_current_tasks", None)
if type(_current_tasks) is not dict:
    _current_tasks = None
cdef object _CancelledError = _asyncio.CancelledError
cdef object _timed_out_answer = _async_deadlines.timed_out_answer
cdef object _answer_outside_a_task = _async_deadlines.answer_outside_a_task
cdef str _REGISTRY_ATTRIBUTE = "_hardy_deadlines_c"  # the twin's is "_hardy_deadlines"
# (weak reference to a loop, its registry): most threads run one loop, so
# this saves the attribute lookup per call. One tuple, replaced whole, so a
# reader never pairs one loop with another's registry.
cdef tuple _last_registry = None
cdef str _RUNNING_LOOP_KEY = "__asyncio_running_event_loop__"


cdef str _CANCELLING = "cancelling"
if UNCANCEL:
    hardy_know_cancelling(_asyncio.Task, _asyncio.Task.__dict__.get(_CANCELLING))


def _refresh_pid():
    hardy_refresh_pid()


hardy_refresh_pid()
if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(after_in_child=_refresh_pid)


cdef object _running_loop():
    """asyncio._get_running_loop(), read where asyncio keeps it (hardy_recorded_loop): no call, no system call."""
    cdef PyObject* loop = hardy_recorded_loop(<PyObject*>_RUNNING_LOOP_KEY)
    if loop == NULL:
        answer = _running_loop_or_none()
        hardy_check_loop_slot(<PyObject*>answer)
        return answer
    return <object>loop


@cython.final
cdef class _TimedAsync(_Wrapper):
    """An ``async def`` function under a deadline (see ``timed_async``); first_try.pxi awaits each call."""

    cdef double _seconds
    cdef object _seconds_obj        # the same, as the float the continuations are given
    cdef object _operation          # its name, or None for await_within (Elapsed at the deadline)
    cdef object _fallback
    cdef bint _fallback_is_async
    cdef object _spare              # a finished _FirstTry to reuse

    def __repr__(self):
        return f"<timed {self._func!r}: {self._seconds:g}s>"


cdef PyObject* _timed_async_vectorcall(
    PyObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames
) except NULL:
    return _start_first_try(<object>self, KIND_TIMED, args, nargsf, kwnames)


cdef DeadlineRegistry _registry_of_c(object loop):
    """This core's registry of ``loop``, made on first use (kept on the loop itself)."""
    global _last_registry
    cdef tuple last = _last_registry
    if last is not None and hardy_weakref_is(last[0], loop):
        return <DeadlineRegistry>last[1]
    found = getattr(loop, _REGISTRY_ATTRIBUTE, None)
    if isinstance(found, DeadlineRegistry):
        registry = <DeadlineRegistry>found
    else:
        registry = new_registry()
        setattr(loop, _REGISTRY_ATTRIBUTE, registry)
    try:
        _last_registry = (_weakref.ref(loop), registry)
    except TypeError:
        pass  # a loop without weak references: looked up each time
    return registry


cdef int _timed_enter(_FirstTry aw) except -1:
    """Enter the call's deadline: 0, or 1 when no asyncio task runs it (the caller hands it over)."""
    cdef _TimedAsync t = <_TimedAsync>aw._owner
    cdef long long cancelling = 0
    cdef AsyncDeadline spare = aw._spare_node
    loop = _running_loop()
    if loop is None:
        return 1
    task = _task_of(loop)
    if task is None:
        return 1
    registry = _registry_of_c(loop)
    lane = registry.lane(t._seconds)
    if UNCANCEL:
        cancelling = hardy_cancelling(task, _CANCELLING)
    # The awaiter's last deadline is filled again when only the awaiter holds it.
    if spare is not None:
        if not HARDY_REUSE_AWAITERS or Py_REFCNT(<PyObject*>spare) != 2:  # the field's and this local's
            spare = None
        aw._spare_node = None
    aw._node = deadline_enter(registry, lane, loop, spare, task, cancelling, _dl_now() + t._seconds)
    aw._lane = lane
    aw._task = task
    return 0


cdef object _task_of(object loop):
    """asyncio.current_task(loop)."""
    cdef PyObject* task
    if _current_tasks is None:
        return _current_task(loop)
    task = PyDict_GetItemWithError(_current_tasks, loop)
    if task == NULL:
        if PyErr_Occurred():
            _propagate()
        return None
    return <object>task


cdef object _timed_outside_a_task(_FirstTry aw, object coro):
    """The continuation of a call that no asyncio task runs (under trio, or driven by hand)."""
    cdef _TimedAsync t = <_TimedAsync>aw._owner
    positional, kwargs = _kept_args(aw)
    return _answer_outside_a_task(
        coro, t._seconds_obj, _running_loop(), t._operation, t._fallback, t._fallback_is_async,
        positional, kwargs,
    )


cdef int _timed_outcome(_FirstTry aw, int status, PyObject** presult) noexcept:
    """The awaited call ended with ``status``: its outcome, or the continuation after its own timeout."""
    cdef _TimedAsync t = <_TimedAsync>aw._owner
    cdef bint cancelled = status == PYGEN_ERROR and PyErr_ExceptionMatches(<PyObject*>_CancelledError)
    cdef int ours
    error = _fetch_error() if status == PYGEN_ERROR else None
    lane = aw._lane
    node = aw._node
    task = aw._task
    try:
        ours = deadline_settle(lane, node, task, cancelled)
    except BaseException as exc:
        # As in the twin, where it is raised while the outcome is handled.
        if error is not None:
            exc.__context__ = error
        elif status == PYGEN_RETURN:
            xdecref(presult[0])
            presult[0] = NULL
        _set_error(exc)
        _try_done(aw)
        return PYGEN_ERROR
    if not ours:
        if error is not None:
            _set_error(error)
        _try_done(aw)
        return status
    positional, kwargs = _kept_args(aw)
    try:
        cont = _timed_out_answer(t._operation, t._seconds_obj, t._fallback, t._fallback_is_async, positional, kwargs)
    except BaseException as exc:
        _set_error(exc)
        _try_done(aw)
        return PYGEN_ERROR
    aw._node = None
    aw._lane = None
    aw._task = None
    aw._coro = cont
    aw._stage = TRY_REST
    status = PyIter_Send(<PyObject*>cont, Py_None, presult)
    if status != PYGEN_NEXT:
        _try_done(aw)
    return status


def timed_async(func, seconds, operation, fallback, fallback_is_async):
    """Await each call of the async ``func`` under a deadline of ``seconds`` on the running loop.

    At the deadline the call is cancelled and ``hardy.TimeoutError(operation,
    seconds)`` raised, or ``fallback(*args, **kwargs)`` returned (awaited
    when ``fallback_is_async``).

    Example::

        fetch = timed_async(fetch_page, 5.0, "fetch_page", None, False)
    """
    cdef _TimedAsync t = _TimedAsync.__new__(_TimedAsync)
    t._vectorcall = _timed_async_vectorcall
    t._func = func
    t._seconds = seconds
    t._seconds_obj = float(seconds)
    t._operation = operation
    t._fallback = fallback
    t._fallback_is_async = fallback_is_async
    return _wrapping.copy_metadata(t, func, is_async=True)


def _the_awaitable(awaitable):
    return awaitable


def await_within(awaitable, seconds):
    """Await ``awaitable`` on the running loop; raise ``hardy._async_deadlines.Elapsed`` at the deadline.

    The deadline is this core's, as a ``timed_async`` function's is: nested
    in or around one, the tightest fires. ``seconds`` is checked by the caller.

    Example::

        value = await await_within(fetch_page(url), 5.0)
    """
    cdef _TimedAsync t = _TimedAsync.__new__(_TimedAsync)
    t._vectorcall = _timed_async_vectorcall
    t._func = _the_awaitable
    t._seconds = seconds
    t._seconds_obj = float(seconds)
    t._operation = None
    t._fallback = None
    t._fallback_is_async = False
    return t(awaitable)


def async_deadlines(loop):
    """This core's deadline registry of ``loop`` (made on first use).

    Example::

        async_deadlines(asyncio.get_running_loop()).lane_sizes()  # {seconds: pending calls}
    """
    return _registry_of_c(loop)


hardy_enable_vectorcall(_TimedAsync, _vectorcall_offset())


def _running_loop_as_seen():
    """The running loop as the timed awaiter reads it (for the tests: it must be asyncio's answer)."""
    return _running_loop()
