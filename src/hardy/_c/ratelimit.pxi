# The rate limiter, compiled (included by _core_c.pyx). Its decisions are
# hardy/policies/ratelimit.py; this is the dispatch: the vectorcall slot of a
# limited function, the sleeps of waiting calls, the Python-facing class. The
# twin's is hardy/_py/ratelimit.py.
#
# Every decision is one policy call in C under the one-byte guard (it runs no
# Python code, so nothing else is needed under the GIL). The clock is read
# before the guard is taken. A call that may wait has its permit reserved
# under the guard and sleeps outside it: there is no queue, the reservation
# order is the service order.

from hardy import _aio as _rl_aio
from hardy import _shared_limiter as _rl_shared

cdef object _RateLimitExceededError = _errors.RateLimitExceededError
cdef object _rl_sleep = time.sleep
cdef double _RATELIMIT_CLOCK_POLL = 0.005


cdef class RateLimiter(RateLimiterState):
    """A rate limiter: at most ``rate`` calls per ``period`` seconds, ``burst`` at once after a quiet spell.

    GCRA (one number of state). A call over the rate sleeps up to
    ``max_wait`` seconds for its permit (first come, first served), else it
    is rejected with :class:`~hardy.RateLimitExceededError` carrying
    ``retry_after``. Works as a decorator, as a context manager (``with`` and
    ``async with``) and by hand (``acquire()`` / ``try_acquire()``), for
    threads and tasks alike. ``clock`` returns monotonic seconds and may be
    replaced in tests. With ``store=`` (a :class:`~hardy.RedisStore`) every
    process on that Redis shares the one rate: permits come in leases from
    a GCRA on the server (see the rate limiter docs).

    Example::

        api = hardy.RateLimiter("api", rate=10, period=1.0, max_wait=0.5)

        @api
        def call_api(path: str) -> bytes: ...

        with api:
            call_api_by_hand()
    """

    cdef str _name
    cdef double _rate
    cdef double _period
    cdef double _max_wait
    cdef object _clock          # None: read the monotonic clock in C
    cdef object _sharing        # the binding to its store (hardy/_shared_limiter.py), or None
    cdef object __weakref__

    def __init__(self, name, rate, period=1.0, burst=None, max_wait=0.0, store=None, *, clock=_monotonic):
        if self._name is not None:
            raise RuntimeError(_validate.ALREADY_INITIALISED.format(kind=type(self).__name__, obj=self))
        settings = _validate.rate_limiter_settings(name, rate, period, burst, max_wait, clock)
        ratelimit_configure(self, settings.period / settings.rate, settings.burst)
        self._rate = settings.rate
        self._period = settings.period
        self._max_wait = settings.max_wait
        self._clock = None if settings.clock is _monotonic else settings.clock
        self._name = settings.name
        if store is not None:
            self._sharing = _rl_shared.bind(self, store)
        _live.rate_limiters.track(self)  # for hardy.metrics

    def __reduce__(self):
        raise TypeError(f"cannot pickle {self!r}: a rate limiter's permits belong to its process")

    def __repr__(self):
        return f"<RateLimiter {self._name!r} rate={self._rate:g}/{self._period:g}s burst={self._burst}>"

    cdef int _ready(self) except -1:
        _validate.initialised(self, self._name is not None)
        return 0

    cdef double _now(self) except? -1.0e308:
        cdef double now = 0.0
        if _clock_now(self._clock, &now) < 0:
            return -1.0e308
        return now

    @property
    def name(self):
        """The limiter's name."""
        self._ready()
        return self._name

    @property
    def rate(self):
        """Permits per ``period`` at steady state."""
        return self._rate

    @property
    def period(self):
        """The period ``rate`` is counted over, in seconds."""
        return self._period

    @property
    def burst(self):
        """Permits that may be taken at once after a quiet period."""
        return self._burst

    @property
    def max_wait(self):
        """Seconds a call over the rate waits for a permit before it is rejected."""
        return self._max_wait

    @property
    def store(self):
        """The store the rate is shared through, or ``None`` (this process's own limit)."""
        return None if self._sharing is None else self._sharing.store

    @property
    def available(self):
        """Permits that could be taken now without waiting."""
        self._ready()
        cdef double now = self._now()
        cdef double room
        hardy_lock(&self._guard)
        room = ratelimit_available(self, now)
        hardy_unlock(&self._guard)
        return int(room)

    def get_stats(self):
        """A snapshot of the settings, the permits available now and the lifetime totals.

        Example::

            >>> hardy.RateLimiter("api", 5).get_stats()["available"]
            5
        """
        self._ready()
        cdef double now = self._now()
        hardy_lock(&self._guard)
        room = ratelimit_available(self, now)
        admitted = self._admitted
        waited = self._waited
        rejected = self._rejected
        hardy_unlock(&self._guard)
        return {
            "name": self._name,
            "rate": self._rate,
            "period": self._period,
            "burst": self._burst,
            "max_wait": self._max_wait,
            "available": int(room),
            "admitted": admitted,
            "waited": waited,
            "rejections": rejected,
        }

    cdef double _take(self, double now, double max_wait, double* reserved) noexcept:
        cdef double delay
        hardy_lock(&self._guard)
        delay = ratelimit_take(self, now, max_wait)
        reserved[0] = self._tat
        hardy_unlock(&self._guard)
        return delay

    cdef int _give_back(self, double reserved) noexcept:
        hardy_lock(&self._guard)
        ratelimit_give_back(self, reserved)
        hardy_unlock(&self._guard)
        return 0

    def try_acquire(self):
        """Take a permit if one is free now (never waits); ``False`` (counted as a rejection) if not."""
        self._ready()
        cdef double reserved
        cdef double now = self._now()
        cdef double delay = self._take(now, 0.0, &reserved)
        if delay == RL_ASK_STORE:
            return self._sharing.try_acquire(now)
        return delay >= 0.0

    def acquire(self):
        """Take a permit, sleeping up to ``max_wait``; :class:`~hardy.RateLimitExceededError` if none frees up."""
        self._ready()
        cdef double reserved
        cdef double now = self._now()
        cdef double delay = self._take(now, self._max_wait, &reserved)
        if delay != 0.0:
            self._spend(now, delay, reserved)

    cdef object _refused(self, double retry_after):
        """The error of a refused permit (counted by ratelimit_take), told to the rejection hook if one is set."""
        error = _RateLimitExceededError(self._name, retry_after)
        if _rejection_hook is not None:
            _rejection_hook(self, error)
        return error

    cdef int _spend(self, double now, double delay, double reserved) except -1:
        """Refuse (``delay < 0``) or sleep until the reserved permit is due; give it back if interrupted."""
        cdef double due, remaining
        if delay == RL_ASK_STORE:
            self._sharing.acquire(now)
            return 0
        if delay < 0.0:
            raise self._refused(-delay)
        try:
            if self._clock is None:
                _rl_sleep(delay)
            else:
                due = now + delay
                while True:
                    remaining = due - self._now()
                    if remaining <= 0.0:
                        break
                    _rl_sleep(min(remaining, _RATELIMIT_CLOCK_POLL))
        except BaseException:
            self._give_back(reserved)
            raise
        return 0

    async def acquire_async(self):
        """Take a permit, awaiting up to ``max_wait``; :class:`~hardy.RateLimitExceededError` if none frees up."""
        self._ready()
        cdef double reserved
        cdef double now = self._now()
        cdef double delay = self._take(now, self._max_wait, &reserved)
        cdef double due, remaining
        if delay == 0.0:
            return
        if delay == RL_ASK_STORE:
            await self._sharing.acquire_async(now)
            return
        if delay < 0.0:
            raise self._refused(-delay)
        try:
            if self._clock is None:
                await _rl_aio.sleep(delay)
            else:
                due = now + delay
                while True:
                    remaining = due - self._now()
                    if remaining <= 0.0:
                        break
                    await _rl_aio.sleep(min(remaining, _RATELIMIT_CLOCK_POLL))
        except BaseException:
            self._give_back(reserved)
            raise

    # -- for the shared limit (hardy/_shared_limiter.py) --------------------------------

    def _clock_now(self):
        return self._now()

    def _own_clock(self):
        return self._clock is not None

    def _lease_next(self, double now, double max_wait):
        cdef double result
        hardy_lock(&self._guard)
        result = ratelimit_lease_next(self, now, max_wait)
        hardy_unlock(&self._guard)
        return result

    def _lease_size(self):
        return ratelimit_lease_size(self)

    def _lease_grant(self, long long count, double delay):
        cdef double now = self._now()
        hardy_lock(&self._guard)
        ratelimit_lease_grant(self, now, count, delay)
        hardy_unlock(&self._guard)

    def _share(self, char mode, long long processes):
        hardy_lock(&self._guard)
        ratelimit_share(self, mode, processes)
        hardy_unlock(&self._guard)

    def _share_mode(self):
        return self._mode

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, exc_type, exc, tb):
        return None

    async def __aenter__(self):
        await self.acquire_async()
        return self

    async def __aexit__(self, exc_type, exc, tb):
        return None

    def __call__(self, func):
        """Decorate ``func``: every call takes a permit first."""
        return guard_rate_limit(self, func)


@cython.final
cdef class _Limited(_Wrapper):
    """A sync function whose calls each take a permit of a rate limiter first (see ``guard_rate_limit``)."""

    cdef RateLimiter _limiter

    def __repr__(self):
        return f"<limited {self._func!r} by {self._limiter!r}>"


cdef PyObject* _limited_vectorcall(
    PyObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames
) except NULL:
    cdef _Limited g = <_Limited>self
    cdef RateLimiter r = g._limiter
    cdef double now = 0.0
    cdef double reserved
    cdef double delay
    if r._clock is None:
        now = _dl_now()  # the monotonic clock, in C (clock_gettime where there is one)
    elif _read_clock(r._clock, &now) < 0:
        return NULL
    hardy_lock(&r._guard)
    delay = ratelimit_take(r, now, r._max_wait)
    reserved = r._tat
    hardy_unlock(&r._guard)
    if delay != 0.0:
        if r._spend(now, delay, reserved) < 0:
            return NULL
    return PyObject_Vectorcall(<PyObject*>g._func, args, nargsf, kwnames)


hardy_enable_vectorcall(_Limited, _vectorcall_offset())


def guard_rate_limit(limiter, func):
    """Wrap ``func`` so that every call takes a permit of ``limiter`` first."""
    if not isinstance(limiter, RateLimiter):
        raise TypeError(f"limiter must be a RateLimiter, got {limiter!r}")
    (<RateLimiter>limiter)._ready()
    _validate.callable_arg("func", func)
    cdef RateLimiter r = limiter
    cdef _Limited g
    if _wrapping.is_async_callable(func):
        async def limited_async(*args, **kwargs):
            await r.acquire_async()
            return await func(*args, **kwargs)

        wrapper = _wrapping.copy_metadata(limited_async, func, is_async=True)
        wrapper.rate_limiter = limiter
        return wrapper
    g = _Limited.__new__(_Limited)
    g._vectorcall = _limited_vectorcall
    g._func = func
    g._limiter = r
    _wrapping.copy_metadata(g, func, is_async=False)
    setattr(g, "rate_limiter", limiter)
    return g
