"""Circuit breakers shared across processes and hosts, on Redis.

Install with ``pip install "hardy[redis]"``. See ``docs/shared-breakers.md``
for deployment, guarantees and what happens when Redis is away.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import importlib
import itertools
import json
import logging
import os
import threading
import time
import uuid
import weakref
from typing import TYPE_CHECKING, Any

from . import _log, _redis_lua, _validate
from .store import BreakerStore, Op, SharedBreaker, Snapshot

if TYPE_CHECKING:
    from ._shared_limiter import SharedLimit

__all__ = ["RedisStore"]

logger: logging.Logger = _log.component("redis")

_MAX_BACKOFF = 5.0  # seconds between reconnection attempts, at most
_SETTLE = 1.0  # seconds the store must work, after an error, before the outage is over
_MAX_TTL_MS = 100 * 365 * 86400 * 1000  # a century: "never" for a key's expiry
# A process counts towards a shared rate limit's processes (each one's share
# while Redis is away) this long after its last lease.
_PROCESS_WINDOW_MS = 60_000
_REDIS_SUBMODULES = (
    "redis.asyncio",
    "redis.asyncio.cluster",
    "redis.asyncio.retry",
    "redis.backoff",
    "redis.cluster",
    "redis.retry",
)


def _redis() -> Any:
    try:
        import redis

        # The store reaches these through the package (redis.asyncio.retry,
        # ...): importing a submodule makes it an attribute of its parent.
        for submodule in _REDIS_SUBMODULES:
            importlib.import_module(submodule)
    except ImportError as exc:  # pragma: no cover - exercised without the extra only
        raise ImportError('RedisStore needs redis-py: pip install "hardy[redis]"') from exc
    return redis


def _with_timeout(client: Any, timeout: float, redis: Any) -> Any:
    """A client on the same server whose every command gives up after ``timeout``.

    Only plain connection pools can be copied; a Sentinel or Cluster client is
    used as it is, with the timeouts it was given (see the docs).
    """
    pool: Any = getattr(client, "connection_pool", None)  # a Cluster client has one per node, not one
    if type(pool) not in (redis.ConnectionPool, redis.asyncio.ConnectionPool):
        return client
    kwargs = {k: v for k, v in pool.connection_kwargs.items() if not k.startswith(("orig_", "maint_"))}
    is_async = isinstance(pool, redis.asyncio.ConnectionPool)
    retry_mod = redis.asyncio.retry if is_async else redis.retry
    # No retries: the store has its own reconnection with backoff, and a
    # retried command would hold the caller for several timeouts.
    kwargs.update(
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=retry_mod.Retry(redis.backoff.NoBackoff(), 0),
    )
    new_pool = type(pool)(connection_class=pool.connection_class, **kwargs)
    return type(client)(connection_pool=new_pool)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _snapshot(reply: Any) -> Snapshot:
    # A process of an older hardy publishes no count of backoffs (the eleventh
    # field), or no tally of failed and slow trials (the last two).
    inc, ver, state, gen, failures, elapsed_us, issued, tsucc, granted, fseq, *newer = reply
    if len(newer) not in (0, 1, 3):
        raise ValueError(f"a snapshot has 10, 11 or 13 fields, got {len(reply)}")
    backoffs, trial_failures, trial_slow = (*newer, 0, 0, 0)[:3]
    return Snapshot(
        _text(inc),
        int(ver),
        int(state),
        int(gen),
        int(failures),
        int(elapsed_us) / 1e6,
        int(issued),
        int(tsucc),
        bool(int(granted)),
        int(fseq),
        int(backoffs),
        int(trial_failures),
        int(trial_slow),
    )


class RedisStore(BreakerStore):
    """Share circuit breakers between every process that uses the same Redis.

    Breakers with the same name and store share one circuit: the failure
    count, the state, the open time and the half-open trial permits. A success
    while closed and a rejection while open make no network round trip; a
    failure, a trial admission and a trial outcome make one. Each process
    learns of a state change by pub/sub within milliseconds, and by a re-read
    every ``sync_interval`` seconds if a message is lost.

    ``client`` is a ``redis.Redis`` or ``redis.asyncio.Redis``, a Cluster
    client (``redis.cluster.RedisCluster``, or its asyncio twin), or a
    Sentinel's master client (``Sentinel(...).master_for(name)``, which finds
    the new master after a failover). Rate limiters share their rate through
    a store with a blocking client: ``RateLimiter(..., store=store)``.
    Commands give up after ``timeout`` seconds: a plain client is copied with
    that socket timeout and no retries. A breaker made on the store reads its
    shared state at once (one round trip with a sync client, given up after
    ``timeout``). While Redis cannot be reached the breakers decide on their
    local state, one warning is logged per outage, and the store reconnects
    with backoff. A breaker whose key holds a value of another type runs
    locally, with one warning, and the key is left alone.

    Keys are ``{prefix}{{name}}`` and ``{prefix}{{name}}:permits``: the hash
    tag keeps a breaker (and a rate limiter's ``...:rate`` keys) in one
    Cluster slot. They expire after
    ``idle_expiry`` seconds without a write (plus the reset timeout), which
    loses nothing: an absent key is a closed circuit. A trial permit whose
    process dies is given back after ``trial_lease`` seconds.

    Example::

        import redis
        store = hardy.RedisStore(redis.Redis(host="redis"), prefix="shop:")

        @hardy.circuit_breaker(name="payments", store=store)
        def charge(order_id: int) -> str: ...
    """

    def __init__(
        self,
        client: Any,
        prefix: str = "hardy:",
        *,
        timeout: float = 0.05,
        sync_interval: float = 0.1,
        trial_lease: float = 30.0,
        idle_expiry: float = 86400.0,
    ) -> None:
        redis = _redis()
        sync_types: tuple[type, ...] = (redis.Redis, redis.cluster.RedisCluster)
        async_types: tuple[type, ...] = (redis.asyncio.Redis, redis.asyncio.cluster.RedisCluster)
        if not isinstance(client, sync_types + async_types):
            raise TypeError(f"client must be a redis.Redis or redis.asyncio.Redis client, got {client!r}")
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {prefix!r}")
        if "{" in prefix or "}" in prefix:
            raise ValueError(f"prefix must not contain braces (the key's hash tag is the name), got {prefix!r}")
        self._timeout = _validate.seconds("timeout", timeout, allow_zero=False)
        self._interval = _validate.seconds("sync_interval", sync_interval, allow_zero=False)
        self._lease = _validate.seconds("trial_lease", trial_lease, allow_zero=False)
        self._expiry = _validate.seconds("idle_expiry", idle_expiry, allow_zero=False)
        self._redis = redis
        # Whatever the client raises is an outage, not only RedisError (a
        # Cluster client with no node left raises RedisClusterException, a
        # client closed under a command raises ValueError from its socket
        # buffer): the calls go on locally and the sync threads live on.
        # BaseException (KeyboardInterrupt, CancelledError) still propagates.
        self._errors: tuple[type[BaseException], ...] = (Exception,)
        self.blocking: bool = not isinstance(client, async_types)
        # A Cluster client refuses scripts in a pipeline: it re-reads breaker by breaker.
        self._cluster = isinstance(client, (redis.cluster.RedisCluster, redis.asyncio.cluster.RedisCluster))
        self.client = client
        self.prefix = prefix
        self._client = _with_timeout(client, self._timeout, redis)
        self._channel = f"{prefix}events"
        self._sha = hashlib.sha1(_redis_lua.SCRIPT.encode(), usedforsecurity=False).hexdigest()
        self._lease_sha = hashlib.sha1(_redis_lua.LEASE_SCRIPT.encode(), usedforsecurity=False).hexdigest()
        # Weakly: a breaker nobody holds any more (a keyed breaker evicted, one
        # made per request) is freed, and leaves its name's group with it.
        self._bindings: dict[str, weakref.WeakSet[SharedBreaker]] = {}
        # The rate limiters sharing their rate through this store, held weakly as the breakers are:
        # a limiter and its binding refer to each other, and go together when the user drops the limiter.
        self._limits: weakref.WeakSet[SharedLimit] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._available = True
        self._outage_since: float | None = None  # when the current outage started
        self._up_since = 0.0  # when the store last became available
        self._broken: set[str] = set()  # breakers whose key holds something else
        self._malformed = False  # a malformed message was logged
        self._closed = False
        self._token = uuid.uuid4().hex[:12]
        self._permit_ids = itertools.count()
        self._queue: collections.deque[tuple[SharedBreaker, Op, str]] = collections.deque()
        self._pid = os.getpid()
        self._thread: threading.Thread | None = None
        self._sender: threading.Thread | None = None
        self._send = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        if hasattr(os, "register_at_fork"):
            ref: weakref.ReferenceType[RedisStore] = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: _after_fork(ref))

    def __repr__(self) -> str:
        return f"<RedisStore prefix={self.prefix!r} {'available' if self._available else 'unavailable'}>"

    @property
    def available(self) -> bool:
        """False from a failed command until the store has reconnected."""
        return self._available

    def close(self) -> None:
        """Stop syncing in the background; the breakers keep their last state.

        With an asyncio client, await :meth:`aclose` instead.
        """
        self._closed = True
        self._send.set()  # the threads close the connections as they leave

    async def aclose(self) -> None:
        """Stop the background task of an asyncio store and close its connections."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not self.client:
            await self._client.aclose(close_connection_pool=True)

    # -- keys and the script ----------------------------------------------

    def _keys_and_args(self, binding: SharedBreaker, op: Op, arg: str) -> list[Any]:
        breaker = binding.breaker
        name = breaker.name
        key = f"{self.prefix}{{{name}}}"
        if op is Op.CLEAR:
            arg = str(binding.failure_seq)
        # Capped: Redis refuses an expiry it cannot add to its clock, and a
        # refused expiry would fail every write for this breaker.
        ttl_ms = min(int((self._expiry + breaker.reset_timeout + self._lease) * 1000), _MAX_TTL_MS)
        max_reset = breaker.max_reset_timeout
        # Only a windowed breaker's view (hardy.window.SharedView) judges its trials by rate.
        failure_rate, slow_rate = getattr(breaker, "trial_rates", (0.0, 0.0))
        return [
            key,
            f"{key}:permits",
            op.value,
            self._channel,
            name,
            breaker.failure_threshold,
            repr(min(breaker.reset_timeout * 1000, float(_MAX_TTL_MS))),
            breaker.half_open_max_calls,
            ttl_ms,
            binding.generation,
            arg,
            int(self._lease * 1000),
            repr(breaker.reset_backoff),
            repr(float(_MAX_TTL_MS) if max_reset is None else min(max_reset * 1000, float(_MAX_TTL_MS))),
            breaker.success_threshold,
            repr(failure_rate),
            repr(slow_rate),
        ]

    def _new_permit(self) -> str:
        return f"{self._token}:{os.getpid()}:{next(self._permit_ids)}"

    # -- outages --------------------------------------------------------------
    # An outage starts at the first error and ends only once the store has
    # worked for _SETTLE seconds in a row: a Redis that answers reads but
    # refuses writes (out of memory, a read-only replica) would otherwise
    # make it flap, with a warning and a recovery per failed call.

    def _down(self, exc: BaseException) -> None:
        # The queue is dropped by the sender thread (or the task), which holds
        # no breaker's lock: this may run inside a listener, under one.
        with self._lock:
            self._available = False
            new_outage = self._outage_since is None
            if new_outage:
                self._outage_since = time.monotonic()
        self._send.set()
        with self._lock:
            limits = list(self._limits)
        for limit in limits:
            limit.fall_back()
        if new_outage and not self._closed:  # a closed store's threads may see the server go: no news
            limiters = f" and rate limiters {sorted(limit.name for limit in limits)} (each at its share of the rate)"
            logger.warning(
                "Redis is unavailable (%s: %s); shared circuit breakers %s%s decide on local state until it returns",
                type(exc).__name__,
                exc,
                sorted(name for name, group in self._bindings.items() if group),
                limiters if limits else "",
                extra=_log.fields("redis", None, "store_down", error_type=type(exc).__name__),
            )
        else:
            logger.debug(
                "Redis is still unavailable (%s: %s)",
                type(exc).__name__,
                exc,
                extra=_log.fields("redis", None, "store_still_down", error_type=type(exc).__name__),
            )

    def _up(self) -> None:
        with self._lock:
            self._available = True
            self._up_since = time.monotonic()
            limits = list(self._limits)
        for binding in self._all():
            binding.forget_version()
        for limit in limits:
            limit.share_again()

    def _settled(self) -> bool:
        """Whether the store works; ends an outage that has stayed over for ``_SETTLE`` seconds."""
        with self._lock:
            since = self._outage_since
            if since is None:
                return True
            now = time.monotonic()
            if not self._available or now - self._up_since < _SETTLE:
                return False
            self._outage_since = None
        logger.info(
            "Redis is available again after %.1fs; shared circuit breakers resume their shared state",
            now - since,
            extra=_log.fields("redis", None, "store_up", delay=now - since),
        )
        return True

    def _is_key_error(self, exc: BaseException) -> bool:
        # The script answers WRONGTYPE when a breaker's key holds something
        # else (and so does Redis, for a key that changes type meanwhile).
        return isinstance(exc, self._redis.exceptions.ResponseError) and str(exc).startswith("WRONGTYPE")

    def _detach(self, binding: SharedBreaker, exc: BaseException) -> None:
        """The breaker's key is not a hardy circuit: its breakers run locally, the key is left alone."""
        name = binding.breaker.name
        with self._lock:
            group = list(self._bindings.get(name, ()))
            new = name not in self._broken
            self._broken.add(name)
            for each in group:
                each.detached = True
        if new:
            logger.warning(
                "the shared state of circuit breaker %r cannot be used (%s); it decides on local state "
                "until that key is deleted",
                name,
                exc,
                extra=_log.fields("redis", name, "key_unusable", error_type=type(exc).__name__),
            )

    def _reattach(self, binding: SharedBreaker) -> None:
        name = binding.breaker.name
        with self._lock:
            group = list(self._bindings.get(name, ()))
            was = name in self._broken
            self._broken.discard(name)
            for each in group:
                each.detached = False
        for each in group:
            each.forget_version()
        if was:
            logger.info(
                "circuit breaker %r shares its state again", name, extra=_log.fields("redis", name, "key_usable")
            )

    def _all(self) -> list[SharedBreaker]:
        with self._lock:
            for name in [name for name, group in self._bindings.items() if not group]:
                del self._bindings[name]  # its breakers are gone
            return [b for group in self._bindings.values() for b in group]

    def _apply_message(self, data: Any) -> None:
        try:
            name, *fields = json.loads(_text(data))
            snap = _snapshot(fields)
        except (ValueError, TypeError):
            # Once at WARNING: whoever publishes on the channel must not flood the log.
            level = logging.DEBUG if self._malformed else logging.WARNING
            self._malformed = True
            logger.log(
                level,
                "ignored a malformed message on %s: %r",
                self._channel,
                data,
                extra=_log.fields("redis", None, "malformed_message"),
            )
            return
        with self._lock:
            group = list(self._bindings.get(name, ()))
        for binding in group:
            if not binding.detached:
                binding.apply(snap)

    def _attach(self, binding: SharedBreaker) -> None:
        name = binding.breaker.name
        with self._lock:
            group = self._bindings.get(name)
            if group is None:
                group = self._bindings[name] = weakref.WeakSet()
            group.add(binding)
            binding.detached = name in self._broken
            had_task = self._task is not None
        if self.blocking:
            self._ensure_thread()
            if not self._closed:
                # One round trip, bounded by the timeout: a process that starts
                # while the shared circuit is open rejects from its first call.
                mark = binding.read_mark()
                snap = self._run(binding, Op.READ)
                if snap is not None:
                    binding.apply(snap, mark)
        else:
            # An asyncio client cannot be awaited here: the store's task
            # reads the state as soon as the event loop runs it (a new task
            # starts with a re-read of every breaker).
            self._ensure_task()
            if had_task:
                self._submit(binding, Op.READ)

    def _forked(self) -> None:
        # After fork (gunicorn --preload) the threads did not come along.
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._thread = self._sender = None
            self._send = threading.Event()
            self._loop = self._task = self._wake = None
            self._queue.clear()
            self._token = uuid.uuid4().hex[:12]

    # -- blocking clients -----------------------------------------------------

    def _run(self, binding: SharedBreaker, op: Op, arg: str = "") -> Snapshot | None:
        self._forked()
        self._ensure_thread()
        if not self._available or binding.detached:
            return None
        try:
            return _snapshot(self._eval(self._client, self._keys_and_args(binding, op, arg)))
        except self._errors as exc:
            if self._is_key_error(exc):
                self._detach(binding, exc)
            else:
                self._down(exc)
            return None

    def _eval(self, client: Any, keys_and_args: list[Any]) -> Any:
        try:
            return client.evalsha(self._sha, 2, *keys_and_args)
        except self._redis.exceptions.NoScriptError:
            client.script_load(_redis_lua.SCRIPT)  # Redis restarted or flushed its script cache
            return client.evalsha(self._sha, 2, *keys_and_args)

    def _submit(self, binding: SharedBreaker, op: Op, arg: str = "") -> None:
        self._forked()
        if not self._available or self._closed or binding.detached:
            self._dropped(binding, op)
            return
        self._queue.append((binding, op, arg))
        if self.blocking:
            self._ensure_thread()
            self._send.set()
        else:
            self._ensure_task()
            loop, wake = self._loop, self._wake
            if loop is not None and wake is not None:
                try:
                    loop.call_soon_threadsafe(wake.set)
                except RuntimeError:  # the loop is closed
                    self._dropped(binding, op)

    def _discard_queue(self) -> None:
        """Drop what calls queued before an outage; their bindings ask again later."""
        while True:
            try:
                binding, op, _ = self._queue.popleft()
            except IndexError:
                return
            self._dropped(binding, op)

    def _dropped(self, binding: SharedBreaker, op: Op) -> None:
        if op is Op.CLEAR:
            binding.cleared()
        elif op is Op.ACQUIRE:
            binding.acquired("", -1)

    def _done(self, binding: SharedBreaker, op: Op, arg: str, snap: Snapshot) -> None:
        if op is Op.ACQUIRE:
            binding.acquired(arg if snap.granted else "", snap.generation)
        binding.apply(snap)
        if op is Op.CLEAR:
            binding.cleared()

    def _failed(self, binding: SharedBreaker, op: Op, exc: BaseException) -> None:
        """A queued op failed: a key error detaches its breaker, anything else is an outage."""
        self._dropped(binding, op)
        if not self._is_key_error(exc):
            raise exc
        self._detach(binding, exc)

    def _ensure_thread(self) -> None:
        if self._thread is None and not self._closed:
            with self._lock:
                if self._thread is None:
                    # Two threads: one listens and re-reads, one sends what
                    # calls queued (clears, permits given back) at once.
                    self._thread = threading.Thread(target=self._work, name="hardy-redis-sync", daemon=True)
                    self._sender = threading.Thread(target=self._send_queued, name="hardy-redis-send", daemon=True)
                    self._thread.start()
                    self._sender.start()

    def _send_queued(self) -> None:
        me = threading.current_thread()
        while not self._closed and self._sender is me:
            self._send.wait()
            self._send.clear()
            if not self._available:
                self._discard_queue()
                continue
            try:
                self._drain()
            except self._errors as exc:
                self._down(exc)

    def _work(self) -> None:
        backoff = self._interval
        pubsub: Any = None
        next_sync = 0.0
        me = threading.current_thread()
        while not self._closed and self._thread is me:
            try:
                if pubsub is not None and not self._available:
                    # A call saw Redis fail: wait as after our own error,
                    # then reconnect from scratch.
                    with contextlib.suppress(*self._errors):
                        pubsub.close()
                    pubsub = None
                    time.sleep(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF)
                    continue
                if pubsub is None:
                    self._client.script_load(_redis_lua.SCRIPT)
                    if self._limits:
                        self._client.script_load(_redis_lua.LEASE_SCRIPT)
                    pubsub = self._client.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(self._channel)
                    self._up()
                    next_sync = 0.0
                if time.monotonic() >= next_sync:
                    self._sync_all()
                    next_sync = time.monotonic() + self._interval
                    if self._settled():
                        backoff = self._interval
                message = pubsub.get_message(timeout=max(0.0, min(self._interval, next_sync - time.monotonic())))
                while message is not None:
                    if message.get("type") == "message":
                        self._apply_message(message["data"])
                    message = pubsub.get_message(timeout=0.0)
            except self._errors as exc:
                self._down(exc)
                if pubsub is not None:
                    with contextlib.suppress(*self._errors):
                        pubsub.close()
                pubsub = None
                time.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
        if pubsub is not None:
            pubsub.close()
        if self._closed and self._client is not self.client:
            self._client.connection_pool.disconnect()

    def _read_pipeline(self, bindings: list[SharedBreaker]) -> Any:
        pipe = self._client.pipeline(transaction=False)
        for binding in bindings:
            pipe.evalsha(self._sha, 2, *self._keys_and_args(binding, Op.READ, ""))
        return pipe

    def _sync_all(self) -> None:
        bindings = self._all()
        if not bindings:
            return
        marks = [binding.read_mark() for binding in bindings]
        if self._cluster:
            replies: list[Any] = []
            for binding in bindings:
                try:
                    replies.append(self._eval(self._client, self._keys_and_args(binding, Op.READ, "")))
                except self._redis.exceptions.ResponseError as exc:  # this breaker's key: the others go on
                    replies.append(exc)
            self._adopt_replies(bindings, replies, marks)
            return
        replies = self._read_pipeline(bindings).execute(raise_on_error=False)
        if any(isinstance(reply, self._redis.exceptions.NoScriptError) for reply in replies):
            self._client.script_load(_redis_lua.SCRIPT)  # the script cache was flushed
            replies = self._read_pipeline(bindings).execute(raise_on_error=False)
        self._adopt_replies(bindings, replies, marks)

    def _adopt_replies(self, bindings: list[SharedBreaker], replies: list[Any], marks: list[int]) -> None:
        # One breaker's bad key must not fail the others' re-read.
        for binding, reply, mark in zip(bindings, replies, marks, strict=True):
            if isinstance(reply, BaseException):
                if not self._is_key_error(reply):
                    raise reply
                self._detach(binding, reply)
                continue
            if binding.detached:
                self._reattach(binding)
            binding.apply(_snapshot(reply), mark)

    def _drain(self) -> None:
        while True:
            try:
                binding, op, arg = self._queue.popleft()
            except IndexError:
                return
            try:
                snap = _snapshot(self._eval(self._client, self._keys_and_args(binding, op, arg)))
            except self._errors as exc:
                self._failed(binding, op, exc)
                continue
            self._done(binding, op, arg, snap)

    # -- shared rate limiters ---------------------------------------------------

    def _attach_limit(self, limit: SharedLimit) -> None:
        with self._lock:
            self._limits.add(limit)
        self._ensure_thread()  # it notices the end of an outage and switches the limiters back
        if self._limits_usable():
            limit.share_again()
        else:
            limit.fall_back()

    def _limits_usable(self) -> bool:
        self._forked()
        return self._available and not self._closed

    def _limit_keys(self, name: str) -> tuple[str, str]:
        key = f"{self.prefix}{{{name}}}:rate"
        return key, f"{key}:procs"

    def _lease_round_trip(self, limit: SharedLimit, count: int) -> tuple[int, float, int]:
        """One round trip: ``count`` permits of ``limit``'s shared GCRA, usable after a delay (s), and its processes."""
        self._ensure_thread()
        key, procs = self._limit_keys(limit.name)
        args = (
            key,
            procs,
            repr(limit.interval_us),
            repr(limit.interval_us * limit.burst),
            count,
            f"{self._token}:{os.getpid()}",
            _PROCESS_WINDOW_MS,
        )
        try:
            reply = self._client.evalsha(self._lease_sha, 2, *args)
        except self._redis.exceptions.NoScriptError:
            self._client.script_load(_redis_lua.LEASE_SCRIPT)
            reply = self._client.evalsha(self._lease_sha, 2, *args)
        granted, delay_us, processes = reply
        return int(granted), float(_text(delay_us)) / 1e6, int(processes)

    def _limit_unusable(self, limit: SharedLimit, exc: BaseException) -> None:
        logger.warning(
            "the shared state of rate limiter %r cannot be used (%s); it runs on its local share of the rate "
            "until the process restarts",
            limit.name,
            exc,
            extra=_log.fields("redis", limit.name, "key_unusable", error_type=type(exc).__name__),
        )

    # -- asyncio clients ------------------------------------------------------

    def _ensure_task(self) -> None:
        if self._task is not None or self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # started by the first use inside the event loop
        self._loop = loop
        self._wake = asyncio.Event()
        self._task = loop.create_task(self._work_async(), name="hardy-redis-sync")

    async def _work_async(self) -> None:
        backoff = self._interval
        pubsub: Any = None
        next_sync = 0.0
        wake = self._wake
        assert wake is not None
        try:
            while not self._closed:
                try:
                    if pubsub is None:
                        await self._client.script_load(_redis_lua.SCRIPT)
                        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
                        await pubsub.subscribe(self._channel)
                        self._up()
                        next_sync = 0.0
                    if time.monotonic() >= next_sync:
                        await self._sync_all_async()
                        next_sync = time.monotonic() + self._interval
                        if self._settled():
                            backoff = self._interval
                    await self._drain_async()
                    wake.clear()
                    message = await pubsub.get_message(timeout=max(0.0, min(0.01, next_sync - time.monotonic())))
                    while message is not None:
                        if message.get("type") == "message":
                            self._apply_message(message["data"])
                        message = await pubsub.get_message(timeout=0.0)
                    if not self._queue:
                        with contextlib.suppress(asyncio.TimeoutError):
                            await asyncio.wait_for(wake.wait(), max(0.0, next_sync - time.monotonic()))
                except self._errors as exc:
                    self._down(exc)
                    self._discard_queue()
                    if pubsub is not None:
                        with contextlib.suppress(*self._errors):
                            await pubsub.aclose()
                    pubsub = None
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF)
        finally:
            if pubsub is not None:
                await pubsub.aclose()

    async def _sync_all_async(self) -> None:
        bindings = self._all()
        if not bindings:
            return
        marks = [binding.read_mark() for binding in bindings]
        if self._cluster:
            replies: list[Any] = []
            for binding in bindings:
                keys_and_args = self._keys_and_args(binding, Op.READ, "")
                try:
                    try:
                        replies.append(await self._client.evalsha(self._sha, 2, *keys_and_args))
                    except self._redis.exceptions.NoScriptError:
                        await self._client.script_load(_redis_lua.SCRIPT)
                        replies.append(await self._client.evalsha(self._sha, 2, *keys_and_args))
                except self._redis.exceptions.ResponseError as exc:
                    replies.append(exc)
            self._adopt_replies(bindings, replies, marks)
            return
        replies = await self._read_pipeline(bindings).execute(raise_on_error=False)
        if any(isinstance(reply, self._redis.exceptions.NoScriptError) for reply in replies):
            await self._client.script_load(_redis_lua.SCRIPT)
            replies = await self._read_pipeline(bindings).execute(raise_on_error=False)
        self._adopt_replies(bindings, replies, marks)

    async def _drain_async(self) -> None:
        while True:
            try:
                binding, op, arg = self._queue.popleft()
            except IndexError:
                return
            keys_and_args = self._keys_and_args(binding, op, arg)
            try:
                try:
                    reply = await self._client.evalsha(self._sha, 2, *keys_and_args)
                except self._redis.exceptions.NoScriptError:
                    await self._client.script_load(_redis_lua.SCRIPT)
                    reply = await self._client.evalsha(self._sha, 2, *keys_and_args)
            except self._errors as exc:
                self._failed(binding, op, exc)
                continue
            self._done(binding, op, arg, _snapshot(reply))


def _after_fork(ref: weakref.ReferenceType[RedisStore]) -> None:
    store = ref()
    if store is not None:
        store._lock = threading.Lock()  # a thread of the parent may have held it
        store._forked()
        for binding in store._all():
            binding.after_fork()
        for limit in list(store._limits):
            limit.after_fork()
        if store.blocking and store._all():
            store._ensure_thread()
