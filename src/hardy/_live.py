"""Every circuit breaker alive in the process, held weakly.

A breaker made directly (``hardy.CircuitBreaker("payments")``) is seen as
well as one from the registry, and being listed never keeps a breaker alive.
The twin's ``CircuitBreaker.__init__`` ends with :func:`track`, which keeps a
weak reference. The compiled core keeps its breakers in a list of its own,
threaded through two pointer fields of each breaker (a weak reference would
double a breaker's size), and hands it over with :func:`add_source`.

Example::

    not_closed = [b for b in hardy._live.breakers() if b.state is not hardy.CircuitState.CLOSED]
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["Kind", "add_source", "breakers", "bulkheads", "rate_limiters", "track"]


class _Ref(weakref.ref[Any]):
    """A weak reference that hashes and compares by its own identity.

    A plain ``weakref.ref`` hashes as its referent, which fails for a breaker
    subclass that defines ``__eq__`` without ``__hash__`` and would merge two
    breakers such a subclass calls equal.
    """

    __slots__ = ()
    __hash__ = object.__hash__
    __eq__ = object.__eq__


# Re-entrant: an allocation under the lock may run the garbage collector, whose
# finalisers may create (and so track) an object, or drop one, on this thread.
_lock = threading.RLock()


class Kind:
    """The live objects of one kind (the twin's breakers, bulkheads, rate limiters), held weakly.

    Each core's ``__init__`` ends with ``track(self)``; :mod:`hardy.metrics`
    lists them at scrape time. Being listed never keeps an object alive.

    Example::

        busy = [pool for pool in hardy._live.bulkheads.live() if pool.active]
    """

    def __init__(self) -> None:
        # A dict rather than a set: it keeps creation order, so listings are
        # stable from one health probe to the next.
        self._refs: dict[_Ref, None] = {}

    def _forget(self, ref: _Ref) -> None:
        with _lock:
            self._refs.pop(ref, None)

    def track(self, obj: object) -> None:
        """Remember ``obj`` until it is garbage collected (weakly)."""
        ref = _Ref(obj, self._forget)
        with _lock:
            self._refs[ref] = None

    def live(self) -> list[Any]:
        """A snapshot of every live object of this kind, oldest first, each once."""
        with _lock:
            refs = list(self._refs)
        seen: set[int] = set()
        result: list[Any] = []
        for ref in refs:
            obj = ref()
            if obj is not None and id(obj) not in seen:
                seen.add(id(obj))
                result.append(obj)
        return result


_tracked = Kind()  # the twin's breakers (the compiled core lists its own: add_source)
_sources: list[Callable[[], list[Any]]] = []


def track(breaker: object) -> None:
    """Remember ``breaker`` until it is garbage collected (weakly)."""
    _tracked.track(breaker)


def add_source(source: Callable[[], list[Any]]) -> None:
    """Also list the breakers ``source()`` returns (newest first), before the tracked ones."""
    _sources.append(source)


def breakers() -> list[Any]:
    """A snapshot of every live breaker, oldest first, each once."""
    tracked = _tracked.live()
    if len(_sources) == 1:
        # The compiled core's list is a fresh one with each breaker on it once: only the
        # tracked ones (the twin's, usually none or few) are looked for in it, by id, in C.
        only = _sources[0]()
        only.reverse()
        if tracked:
            ids = set(map(id, tracked))
            if any(map(ids.__contains__, map(id, only))):  # only if track() was given a compiled breaker
                listed = set(map(id, only))
                tracked = [breaker for breaker in tracked if id(breaker) not in listed]
            only += tracked
        return only
    seen: set[int] = set()
    result: list[Any] = []
    for source in _sources:
        for breaker in reversed(source()):
            if id(breaker) not in seen:
                seen.add(id(breaker))
                result.append(breaker)
    # __init__ may run twice on one breaker: it is tracked twice, listed once (Kind.live).
    result.extend(breaker for breaker in tracked if id(breaker) not in seen)
    return result


bulkheads = Kind()
rate_limiters = Kind()
