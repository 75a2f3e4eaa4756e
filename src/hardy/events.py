"""One stream of what hardy does off the success path: ``subscribe`` to it.

Every breaker state change, retry, give-up, fallback that answered, timeout
that fired and health check whose status changed is an :class:`Event` handed
to each subscriber. Nothing is emitted on a plain success, and with no
subscriber an emission costs one truth test, so subscribing is free for the
calls that succeed.

A subscriber is a callable taking one :class:`Event`, sync or ``async def``.
A sync subscriber runs at once, on the thread that emitted the event (the
caller's, or the timer thread for a timeout). An async subscriber is
scheduled as a task on the event loop running in the emitting thread, or,
when none runs there, on the loop that was running when it subscribed;
with neither, the event is dropped for it with a (rate-limited) warning.
A subscriber that raises ``Exception`` is logged on ``hardy.events`` and
never breaks the call that emitted the event.

Example::

    seen = []
    unsubscribe = hardy.events.subscribe(seen.append, kinds={"retry", "giveup"})
    ...
    unsubscribe()
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import threading
import time as _time
from collections.abc import Callable, Collection, Coroutine, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from . import _log

__all__ = ["KINDS", "Event", "subscribe"]

#: Every kind of event, in the order a failure usually meets them. ``"rejection"``
#: (an open breaker, a full bulkhead or a rate limiter refusing a call) is
#: emitted only while some subscriber asks for it, by name or with
#: ``kinds=None``: it is the one kind on a path that callers expect to be fast.
KINDS: frozenset[str] = frozenset({"state_change", "retry", "giveup", "fallback", "timeout", "health", "rejection"})

_EMPTY: Mapping[str, Any] = MappingProxyType({})
logger: logging.Logger = _log.component("events")


@dataclass(frozen=True, slots=True)
class Event:
    """One thing hardy did off the success path.

    ``kind`` is one of ``hardy.events.KINDS``; ``source`` the name of what emitted it
    (the breaker's name, the retried function's qualified name, the fallback
    chain's or timed operation's name, the health check's name); ``time`` the
    wall-clock time (``time.time()``) it happened; ``data`` what else is
    known, by kind:

    * ``state_change``: ``old_state``, ``new_state`` (``"closed"``, ``"open"``, ``"half_open"``);
    * ``retry``: ``attempt`` (the attempt that failed, 1-based), ``delay`` (seconds
      before the next one), ``error`` (the exception, ``None`` when a result was
      retried), ``error_type`` (its class name or ``None``);
    * ``giveup``: ``attempt`` (attempts made), ``error``, ``error_type``;
    * ``fallback``: ``via`` (``"function"``, ``"default"`` or ``"timeout"``),
      ``function`` (the fallback that answered, ``None`` for a default),
      ``error_type`` (of the last failure);
    * ``timeout``: ``seconds`` (the limit that ran out);
    * ``health``: ``status``, ``previous`` (``HealthStatus`` values), ``message``;
    * ``rejection``: ``by`` (``"circuit_breaker"``, ``"bulkhead"`` or ``"rate_limiter"``);
      a breaker's ``reset_time`` (seconds until a trial call is let through), a
      bulkhead's ``max_concurrent`` and ``waited`` (seconds), a rate limiter's
      ``retry_after`` (seconds until its next permit).

    Example::

        def on_event(event: hardy.events.Event) -> None:
            if event.kind == "state_change" and event.data["new_state"] == "open":
                page_someone(event.source)
    """

    kind: str
    source: str
    time: float
    data: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class _Subscriber:
    callback: Callable[[Event], Any]
    kinds: frozenset[str]
    is_async: bool
    loop: asyncio.AbstractEventLoop | None  # running when it subscribed (async subscribers)


_lock = threading.Lock()
# Replaced, never changed in place: emit() reads it without the lock.
_subscribers: tuple[_Subscriber, ...] = ()
# Emitters test this before building an event.
active: bool = False
# Kind -> whether anyone wants it; read by the emitters of costly-to-build kinds.
wanted: frozenset[str] = frozenset()
# Called with the new ``wanted`` after every change (the cores' rejection hook).
_watchers: list[Callable[[frozenset[str]], None]] = []
# Tasks of async subscribers, kept until done (the loop holds them weakly).
_tasks: set[asyncio.Future[Any] | concurrent.futures.Future[Any]] = set()
# The sync subscribers running on each thread: an event their own handling
# causes (a subscriber calling an open breaker on "rejection") skips them.
_running = threading.local()


def _check_kinds(kinds: Collection[str] | None) -> frozenset[str]:
    if kinds is None:
        return KINDS
    if isinstance(kinds, str):
        raise TypeError(f"kinds must be a collection of kind names, not a str: pass {{{kinds!r}}}, got {kinds!r}")
    if not isinstance(kinds, Collection):
        raise TypeError(f"kinds must be a collection of kind names or None, got {kinds!r}")
    chosen = frozenset(kinds)
    for kind in chosen:
        if not isinstance(kind, str):
            raise TypeError(f"kinds must hold str kind names, got {kind!r} ({type(kind).__name__})")
        if kind not in KINDS:
            raise ValueError(f"kinds: unknown event kind {kind!r}; the kinds are {sorted(KINDS)}")
    if not chosen:
        raise ValueError("kinds must name at least one kind (None means every kind), got an empty collection")
    return chosen


def _publish(subscribers: tuple[_Subscriber, ...]) -> None:
    global _subscribers, active, wanted
    _subscribers = subscribers
    wanted = frozenset(kind for s in subscribers for kind in s.kinds)
    active = bool(subscribers)
    for watcher in tuple(_watchers):
        watcher(wanted)


def subscribe(callback: Callable[[Event], Any], kinds: Collection[str] | None = None) -> Callable[[], None]:
    """Call ``callback(event)`` for every event of ``kinds`` (every kind when ``None``).

    Returns a function that unsubscribes; calling it again does nothing. The
    same callback subscribed twice gets each event twice, once per
    subscription. An unknown kind is a ``ValueError``, a callback that is not
    callable a ``TypeError``.

    Example::

        async def alert(event: hardy.events.Event) -> None:
            await chat.post(f"{event.source}: {event.data['new_state']}")

        stop = hardy.events.subscribe(alert, kinds={"state_change"})
        ...
        stop()
    """
    if not callable(callback):
        raise TypeError(f"callback must be callable, got {callback!r} ({type(callback).__name__})")
    chosen = _check_kinds(kinds)
    is_async = inspect.iscoroutinefunction(callback) or inspect.iscoroutinefunction(
        getattr(callback, "__call__", None)  # noqa: B004 - an instance with async def __call__
    )
    loop: asyncio.AbstractEventLoop | None = None
    if is_async:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
    subscriber = _Subscriber(callback, chosen, is_async, loop)
    with _lock:
        _publish((*_subscribers, subscriber))

    def unsubscribe() -> None:
        with _lock:
            if subscriber in _subscribers:
                _publish(tuple(s for s in _subscribers if s is not subscriber))

    return unsubscribe


def emit(kind: str, source: str, data: Mapping[str, Any] = _EMPTY) -> None:
    """Hand an event to its subscribers; callers test ``active`` first (internal)."""
    event: Event | None = None
    for subscriber in _subscribers:
        if kind not in subscriber.kinds:
            continue
        if event is None:
            event = Event(kind, source, _time.time(), MappingProxyType(dict(data)))
        if subscriber.is_async:
            _schedule(subscriber, event)
            continue
        running = _running.__dict__.setdefault("subscribers", set())
        if subscriber in running:
            continue  # caused by its own handling, on this thread: it would recurse
        running.add(subscriber)
        try:
            subscriber.callback(event)
        except Exception:
            logger.exception(
                "subscriber %r failed on a %s event from %s",
                subscriber.callback,
                kind,
                source,
                extra=_log.fields("events", source, kind, error_type=None),
            )
        finally:
            running.discard(subscriber)


def _schedule(subscriber: _Subscriber, event: Event) -> None:
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    try:
        coro: Coroutine[Any, Any, Any] = subscriber.callback(event)
    except Exception:
        logger.exception(
            "subscriber %r failed on a %s event from %s",
            subscriber.callback,
            event.kind,
            event.source,
            extra=_log.fields("events", event.source, event.kind),
        )
        return
    future: asyncio.Future[Any] | concurrent.futures.Future[Any]
    if running is not None:
        future = running.create_task(coro)
    elif subscriber.loop is not None and not subscriber.loop.is_closed():
        future = asyncio.run_coroutine_threadsafe(coro, subscriber.loop)
    else:
        coro.close()
        _log.warn_limited(
            logger,
            ("no-loop", id(subscriber)),
            "async subscriber %r dropped a %s event from %s: no event loop runs to schedule it on",
            subscriber.callback,
            event.kind,
            event.source,
            extra=_log.fields("events", event.source, event.kind),
        )
        return
    _tasks.add(future)
    future.add_done_callback(_task_done(subscriber, event))


def _task_done(subscriber: _Subscriber, event: Event) -> Callable[[Any], None]:
    def done(future: asyncio.Future[Any] | concurrent.futures.Future[Any]) -> None:
        _tasks.discard(future)
        if future.cancelled():
            return
        error = future.exception()
        if error is not None and isinstance(error, Exception):
            logger.error(
                "async subscriber %r failed on a %s event from %s",
                subscriber.callback,
                event.kind,
                event.source,
                exc_info=error,
                extra=_log.fields("events", event.source, event.kind, error_type=type(error).__name__),
            )

    return done


def watch(watcher: Callable[[frozenset[str]], None]) -> None:
    """Call ``watcher(wanted)`` now and whenever the wanted kinds change (internal)."""
    with _lock:
        _watchers.append(watcher)
        watcher(wanted)
