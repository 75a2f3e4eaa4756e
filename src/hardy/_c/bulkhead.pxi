# The bulkhead, compiled (included by _core_c.pyx). Its decisions are
# hardy/policies/bulkhead.py; this is the dispatch: the vectorcall slot of a
# guarded function, the queue of waiters and waking them, the Python-facing
# class. The twin's is hardy/_py/bulkhead.py.
#
# Entering and leaving without waiters are one policy call each, in C, under
# the one-byte guard (nothing under the GIL: they run no Python code). Anything
# that touches the queue of waiters also holds ``_lock`` (a threading.Lock):
# every change of ``_waiting`` and every hand-off happens under it, and the
# unlocked paths act only when nobody waits, so a waiter is always in the queue
# by the time a leaving call can hand it a slot.

cdef object _BulkheadFullError = _errors.BulkheadFullError
cdef object _new_lock = _threading.Lock
cdef object _deque = _collections.deque
from hardy import _aio as _bulkhead_aio  # sleep under whichever library runs
cdef object _get_running_loop = _asyncio.get_running_loop
cdef object _get_running_loop_or_none = _asyncio._get_running_loop  # None under trio, where the other raises
cdef double _BULKHEAD_CLOCK_POLL = 0.005
cdef double _BULKHEAD_OTHER_LOOP_POLL = 0.001  # how often a waiter outside asyncio looks whether it has a slot


cdef class _Waiter:
    """One call waiting for a slot: a thread's lock, or a task's future and loop."""

    cdef bint granted
    cdef object lock
    cdef object loop
    cdef object future


def _bulkhead_wake_future(future):
    if not future.done():
        future.set_result(None)


cdef void _bulkhead_wake(_Waiter waiter) except *:
    """Tell ``waiter`` it was handed a slot (under the bulkhead's lock; runs no user code)."""
    waiter.granted = True
    if waiter.lock is not None:
        waiter.lock.release()
        return
    future = waiter.future
    if future is None:
        return
    try:
        running = _get_running_loop()
    except RuntimeError:
        running = None
    if running is waiter.loop:
        _bulkhead_wake_future(future)
    else:
        try:
            waiter.loop.call_soon_threadsafe(_bulkhead_wake_future, future)
        except RuntimeError:  # its loop is closed: the waiter is gone, and so is its task
            pass


cdef inline bint _bh_enter(Bulkhead b) noexcept:
    cdef bint ok
    hardy_lock(&b._guard)
    ok = bulkhead_enter(b)
    hardy_unlock(&b._guard)
    return ok


cdef inline bint _bh_leave_alone(Bulkhead b) noexcept:
    cdef bint ok
    hardy_lock(&b._guard)
    ok = bulkhead_leave_alone(b)
    hardy_unlock(&b._guard)
    return ok


cdef class Bulkhead(BulkheadState):
    """A bulkhead: at most ``max_concurrent`` calls inside at once.

    A call over the limit waits up to ``max_wait`` seconds for a slot, first
    come first served, and is then rejected with
    :class:`~hardy.BulkheadFullError`. Works as a decorator, as a context
    manager (``with`` and ``async with``) and by hand (``acquire()`` /
    ``try_acquire()`` / ``release()``), for threads and tasks alike.
    ``clock`` returns monotonic seconds and may be replaced in tests.

    Example::

        pool = hardy.Bulkhead("reports", max_concurrent=4, max_wait=0.5)

        @pool
        def build_report(day: str) -> bytes: ...

        with pool:
            build_report_by_hand()
    """

    cdef str _name
    cdef double _max_wait
    cdef object _clock
    cdef object _lock
    cdef object _queue
    cdef object __weakref__

    def __init__(self, name, max_concurrent, max_wait=0.0, *, clock=_monotonic):
        if self._name is not None:
            raise RuntimeError(_validate.ALREADY_INITIALISED.format(kind=type(self).__name__, obj=self))
        settings = _validate.bulkhead_settings(name, max_concurrent, max_wait, clock)
        self._lock = _new_lock()
        self._queue = _deque()
        bulkhead_configure(self, settings.max_concurrent)
        self._max_wait = settings.max_wait
        self._clock = settings.clock
        self._name = settings.name
        _live.bulkheads.track(self)  # for hardy.metrics

    def __reduce__(self):
        raise TypeError(f"cannot pickle {self!r}: a bulkhead's slots belong to its process")

    def __repr__(self):
        return f"<Bulkhead {self._name!r} max_concurrent={self._max} active={self._active}>"

    cdef int _ready(self) except -1:
        _validate.initialised(self, self._name is not None)
        return 0

    @property
    def name(self):
        """The bulkhead's name."""
        self._ready()
        return self._name

    @property
    def max_concurrent(self):
        """How many calls may be inside at once."""
        return self._max

    @property
    def max_wait(self):
        """Seconds a call over the limit waits for a slot before it is rejected."""
        return self._max_wait

    @property
    def active(self):
        """How many calls are inside now."""
        return self._active

    @property
    def waiting(self):
        """How many calls wait for a slot now."""
        return self._waiting

    @property
    def available(self):
        """Free slots now."""
        return max(0, self._max - self._active)

    def get_stats(self):
        """A snapshot of the slots, the waiters and the lifetime totals.

        Example::

            >>> hardy.Bulkhead("pool", 2).get_stats()["available"]
            2
        """
        self._ready()
        with self._lock:
            hardy_lock(&self._guard)
            stats = {
                "name": self._name,
                "max_concurrent": self._max,
                "max_wait": self._max_wait,
                "active": self._active,
                "waiting": self._waiting,
                "available": max(0, self._max - self._active),
                "peak": self._peak,
                "admitted": self._admitted,
                "waited": self._waited,
                "rejections": self._rejected,
            }
            hardy_unlock(&self._guard)
        return stats

    def try_acquire(self):
        """Take a slot if one is free now (never waits); ``False`` (counted as a rejection) if not."""
        self._ready()
        cdef bint ok = False
        with self._lock:
            hardy_lock(&self._guard)
            ok = bulkhead_enter(self)
            if not ok:
                bulkhead_reject(self)
            hardy_unlock(&self._guard)
        return ok

    cdef object _full(self, double waited):
        """Count a rejection and make its error; never under ``_lock`` (the rejection hook runs subscribers)."""
        hardy_lock(&self._guard)
        bulkhead_reject(self)
        hardy_unlock(&self._guard)
        error = _BulkheadFullError(self._name, self._max, waited)
        if _rejection_hook is not None:
            _rejection_hook(self, error)
        return error

    cdef int _queue_or_enter(self, _Waiter waiter) except -1:
        """1 with a slot taken, 0 with ``waiter`` queued; under ``_lock``."""
        cdef bint entered
        hardy_lock(&self._guard)
        entered = bulkhead_enter_or_queue(self)
        hardy_unlock(&self._guard)
        if entered:
            return 1
        self._queue.append(waiter)
        return 0

    cdef int _withdraw(self, _Waiter waiter) except -1:
        """Under ``_lock``: 1 if ``waiter`` was handed a slot after all, else 0 (and it is gone)."""
        if waiter.granted:
            return 1
        self._queue.remove(waiter)
        hardy_lock(&self._guard)
        bulkhead_withdraw(self)
        hardy_unlock(&self._guard)
        return 0

    def acquire(self):
        """Take a slot, waiting up to ``max_wait``; :class:`~hardy.BulkheadFullError` if none frees up."""
        self._ready()
        cdef _Waiter waiter
        if self._max_wait <= 0.0:  # no queue to touch (nobody ever waits): _guard alone, as _guarded_vectorcall
            if _bh_enter(self):
                return
            raise self._full(0.0)
        with self._lock:
            waiter = _Waiter.__new__(_Waiter)
            waiter.lock = _new_lock()
            waiter.lock.acquire()
            if self._queue_or_enter(waiter):
                return
        clock = self._clock
        deadline = clock() + self._max_wait
        try:
            while True:
                remaining = deadline - clock()
                if remaining <= 0.0:
                    break
                if clock is not _monotonic and remaining > _BULKHEAD_CLOCK_POLL:
                    remaining = _BULKHEAD_CLOCK_POLL
                if waiter.lock.acquire(timeout=remaining):
                    return
        except BaseException:
            self._abandon(waiter)
            raise
        with self._lock:
            if self._withdraw(waiter):  # handed a slot as the wait ran out: take it
                return
        raise self._full(self._max_wait)

    cdef int _abandon(self, _Waiter waiter) except -1:
        """A waiter leaves (cancelled or interrupted): pass on a slot it was handed, or withdraw."""
        with self._lock:
            if not self._withdraw(waiter):
                return 0
        self.release()
        return 0

    async def acquire_async(self):
        """Take a slot, awaiting up to ``max_wait``; :class:`~hardy.BulkheadFullError` if none frees up."""
        self._ready()
        cdef _Waiter waiter
        if self._max_wait <= 0.0:  # no queue to touch (nobody ever waits): _guard alone, as _guarded_vectorcall
            if _bh_enter(self):
                return
            raise self._full(0.0)
        # On asyncio a waiter is woken through a future of its loop; under
        # another library (trio) it looks at its place in the queue every
        # _BULKHEAD_OTHER_LOOP_POLL seconds.
        loop = _get_running_loop_or_none()
        with self._lock:
            waiter = _Waiter.__new__(_Waiter)
            waiter.loop = loop
            if loop is not None:
                waiter.future = loop.create_future()
            if self._queue_or_enter(waiter):
                return
        clock = self._clock
        deadline = clock() + self._max_wait
        try:
            while True:
                remaining = deadline - clock()
                if remaining <= 0.0:
                    break
                if loop is None:
                    await _bulkhead_aio.sleep(min(remaining, _BULKHEAD_OTHER_LOOP_POLL))
                    with self._lock:
                        if waiter.granted:
                            return
                    continue
                if clock is not _monotonic and remaining > _BULKHEAD_CLOCK_POLL:
                    remaining = _BULKHEAD_CLOCK_POLL
                timer = loop.call_later(remaining, _bulkhead_wake_future, waiter.future)
                try:
                    await waiter.future
                finally:
                    timer.cancel()
                with self._lock:
                    if waiter.granted:
                        return
                    waiter.future = loop.create_future()
        except BaseException:
            self._abandon(waiter)
            raise
        with self._lock:
            if self._withdraw(waiter):
                return
        raise self._full(self._max_wait)

    def release(self):
        """Give a slot back (to the first waiter, if any); a :class:`RuntimeError` if none is held."""
        self._ready()
        cdef int action
        with self._lock:
            hardy_lock(&self._guard)
            action = bulkhead_leave(self)
            hardy_unlock(&self._guard)
            if action == HAND_OFF:
                _bulkhead_wake(<_Waiter>self._queue.popleft())
            elif action == NOT_INSIDE:
                raise RuntimeError(_BULKHEAD_NOT_HELD.format(name=self._name))

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.release()

    async def __aenter__(self):
        await self.acquire_async()
        return self

    async def __aexit__(self, exc_type, exc, tb):
        self.release()

    def __call__(self, func):
        """Decorate ``func``: every call takes a slot for its duration."""
        return guard_bulkhead(self, func)


cdef str _BULKHEAD_NOT_HELD = "release() of bulkhead {name!r} without a matching acquire(): nothing is inside"


@cython.final
cdef class _Guarded(_Wrapper):
    """A sync function whose calls each hold a slot of a bulkhead (see ``guard_bulkhead``)."""

    cdef Bulkhead _bulkhead

    def __repr__(self):
        return f"<guarded {self._func!r} by {self._bulkhead!r}>"


cdef PyObject* _guarded_vectorcall(
    PyObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames
) except NULL:
    cdef _Guarded g = <_Guarded>self
    cdef Bulkhead b = g._bulkhead
    cdef PyObject* result
    cdef PyObject* error
    if not _bh_enter(b):
        if _bulkhead_slow_acquire(b) < 0:
            return NULL
    result = PyObject_Vectorcall(<PyObject*>g._func, args, nargsf, kwnames)
    if _bh_leave_alone(b):
        return result
    if result == NULL:
        # Releasing runs Python code: keep the function's error aside meanwhile.
        error = _take_error()
        if _bulkhead_slow_release(b) < 0:
            xdecref(error)
            return NULL
        _set_error(<BaseException>error)
        xdecref(error)
        return NULL
    if _bulkhead_slow_release(b) < 0:
        xdecref(result)
        return NULL
    return result


cdef int _bulkhead_slow_acquire(Bulkhead b) except -1:
    b.acquire()
    return 0


cdef int _bulkhead_slow_release(Bulkhead b) except -1:
    b.release()
    return 0


hardy_enable_vectorcall(_Guarded, _vectorcall_offset())


def guard_bulkhead(bulkhead, func):
    """Wrap ``func`` so that every call holds a slot of ``bulkhead`` while it runs."""
    if not isinstance(bulkhead, Bulkhead):
        raise TypeError(f"bulkhead must be a Bulkhead, got {bulkhead!r}")
    (<Bulkhead>bulkhead)._ready()
    _validate.callable_arg("func", func)
    cdef Bulkhead b = bulkhead
    cdef _Guarded g
    if _wrapping.is_async_callable(func):
        async def guarded_async(*args, **kwargs):
            await b.acquire_async()
            try:
                return await func(*args, **kwargs)
            finally:
                b.release()

        wrapper = _wrapping.copy_metadata(guarded_async, func, is_async=True)
        wrapper.bulkhead = bulkhead
        return wrapper
    g = _Guarded.__new__(_Guarded)
    g._vectorcall = _guarded_vectorcall
    g._func = func
    g._bulkhead = b
    _wrapping.copy_metadata(g, func, is_async=False)
    setattr(g, "bulkhead", bulkhead)
    return g
