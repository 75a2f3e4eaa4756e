"""One circuit breaker per key: the dispatch of ``circuit_breaker(key=...)``, shared by both cores.

A keyed function computes ``key(*args, **kwargs)`` per call, finds that
key's protected function (the core's ``protect`` over the key's own breaker)
in a dict, and calls it. The breakers of one name live in a
:class:`BreakerGroup`: a bounded LRU, shared by every function decorated
with that name, whose breakers are registered in :data:`hardy.registry`
under ``f"{name}[{key!r}]"``. Nothing here is compiled: the per-call cost is
this module's frame, the key function, two dict operations and the core's
call. See ``docs/circuit-breaker.md``, "One breaker per key".
"""

from __future__ import annotations

import inspect
import sys
import threading
import weakref
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Hashable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar, overload

from . import _log, _retry_gen, _wrapping
from ._types import MYPY
from .state import CircuitState

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from typing import Self
    else:
        from typing_extensions import Self

    from ._core import CircuitBreaker

__all__ = [
    "BreakerGroup",
    "KeyedBreakerDecorator",
    "KeyedBreakers",
    "KeyedCallable",
    "KeyedClassMethod",
    "KeyedStaticMethod",
    "protect_keyed",
]

logger = _log.component("breaker")
_GIL_ENABLED: bool = getattr(sys, "_is_gil_enabled", lambda: True)()
_CLOSED = CircuitState.CLOSED

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
_S = TypeVar("_S")
_P2 = ParamSpec("_P2")
_R2 = TypeVar("_R2")


class _Cache(dict[Hashable, Any]):
    """One keyed function's protected function per key (a dict that a ``WeakSet`` can hold)."""

    # By identity: the group's WeakSet must tell two caches with equal contents apart.
    __hash__ = object.__hash__  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]

    def __eq__(self, other: object) -> bool:
        return self is other


class BreakerGroup:
    """The per-key breakers of one name: at most ``max_keys``, least recently used evicted first.

    Every method that changes the group runs under its re-entrant lock (the
    key's ``__hash__`` / ``__eq__``, a store's ``bind`` and the logging may
    run user code that calls a keyed function again on the same thread).
    """

    __slots__ = (
        "__weakref__",
        "_caches",
        "_forget",
        "_lock",
        "_make",
        "_names",
        "_order",
        "identity",
        "max_keys",
        "name",
    )

    def __init__(
        self,
        name: str,
        max_keys: int,
        make: Callable[[str], CircuitBreaker],
        forget: Callable[[CircuitBreaker], object],
        *,
        identity: object = None,
    ) -> None:
        self.name: str = name
        self.max_keys: int = max_keys
        self.identity: object = identity  # the settings, compared when a second function asks for this name
        self._make = make
        self._forget = forget  # an evicted breaker leaves the registry (a store holds it weakly)
        self._order: OrderedDict[Hashable, CircuitBreaker] = OrderedDict()
        self._names: dict[str, Hashable] = {}  # breaker name -> its key: two keys with one repr
        self._caches: weakref.WeakSet[_Cache] = weakref.WeakSet()
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"<BreakerGroup {self.name!r}: {len(self._order)}/{self.max_keys} keys>"

    def breaker_for(self, key: Hashable) -> CircuitBreaker:
        """The breaker of ``key``, made (and registered) on first use; marks it most recently used."""
        evicted: CircuitBreaker | None = None
        with self._lock:
            breaker = self._order.get(key)
            if breaker is not None:
                self._order.move_to_end(key)
                return breaker
            name = f"{self.name}[{key!r}]"
            if name in self._names:
                raise ValueError(
                    f"keys {self._names[name]!r} and {key!r} of the keyed circuit breaker {self.name!r} "
                    f"have the same repr, so their breakers would share the name {name!r}: "
                    "give the keys distinct reprs"
                )
            # Room first: if making the breaker fails, what changed is an
            # eviction the next new key would have made anyway.
            if len(self._order) >= self.max_keys:
                evicted = self._evict()
            breaker = self._make(name)
            self._order[key] = breaker
            self._names[name] = key
        if evicted is not None:
            # Logged outside the lock: a handler is user code.
            _log.warn_limited(
                logger,
                ("keyed-evicted-open", self.name),
                "keyed circuit breaker %r is full (max_keys=%d) and every breaker in it is not closed: "
                "evicted %r (%s), which loses its state",
                self.name,
                self.max_keys,
                evicted.name,
                evicted.state.value,
                extra=_log.fields("breaker", evicted.name, "keyed_evicted_open"),
            )
        return breaker

    def _evict(self) -> CircuitBreaker | None:
        """Drop one key, under the lock: the least recently used closed one, else the least recently used.

        Returns the breaker when it was not closed (its state is lost: worth a warning).
        """
        victim: Hashable = None
        found = False
        # A copy: reading a state may run Python code (the twin's property),
        # during which another thread's call may reorder the LRU (no lock on a hit).
        for key, breaker in list(self._order.items()):
            if breaker.state is _CLOSED:
                victim, found = key, True
                break
        if not found:
            victim = next(iter(self._order))
        breaker = self._order.pop(victim)
        for cache in list(self._caches):
            cache.pop(victim, None)
        self._forget(breaker)
        self._names.pop(breaker.name, None)
        return None if found else breaker

    def protected_for(self, cache: _Cache, key: Hashable, build: Callable[[CircuitBreaker], Any]) -> Any:
        """``key``'s protected function for one keyed function, made on its first call."""
        with self._lock:
            protected = cache.get(key)
            if protected is None:
                # Under the lock: an eviction clears every cache under it too,
                # so a cache never holds a key its group has dropped.
                protected = build(self.breaker_for(key))
                cache[key] = protected
            return protected

    def new_cache(self) -> _Cache:
        """A new keyed function's cache, emptied with the group's evictions."""
        cache = _Cache()
        with self._lock:
            self._caches.add(cache)
        return cache

    def touch_locked(self, key: Hashable) -> None:
        """Mark ``key`` most recently used, under the lock (free-threaded builds)."""
        with self._lock:
            if key in self._order:
                self._order.move_to_end(key)

    def snapshot(self) -> list[tuple[Hashable, CircuitBreaker]]:
        with self._lock:
            return list(self._order.items())


class KeyedBreakers(Mapping[Hashable, "CircuitBreaker"]):
    """A keyed function's breakers (``fn.breakers``): key -> breaker, least recently used first.

    Read-only and live: it shows the keys as they are now. Reading it does not
    count as a use (the order and the breakers do not change).

    Example::

        @hardy.circuit_breaker(key=lambda host: host, max_keys=100)
        def ping(host: str) -> bool: ...

        ping("db-1")
        ping.breakers["db-1"].get_stats()
        [b.name for b in ping.breakers.values()]   # ["<module>.ping['db-1']"]
    """

    __slots__ = ("_group",)

    def __init__(self, group: BreakerGroup) -> None:
        self._group = group

    @property
    def name(self) -> str:
        """The name the keyed breakers share (each breaker is ``f"{name}[{key!r}]"``)."""
        return self._group.name

    @property
    def max_keys(self) -> int:
        """How many keys are kept at most."""
        return self._group.max_keys

    def __getitem__(self, key: Hashable) -> CircuitBreaker:
        return self._group._order[key]

    def __contains__(self, key: object) -> bool:
        return key in self._group._order

    def __iter__(self) -> Iterator[Hashable]:
        return iter([key for key, _ in self._group.snapshot()])

    def __len__(self) -> int:
        return len(self._group._order)

    def __repr__(self) -> str:
        shown = ", ".join(f"{key!r}: {breaker.state.value}" for key, breaker in self._group.snapshot())
        return f"<KeyedBreakers {self.name!r} ({len(self)}/{self.max_keys}) {{{shown}}}>"


def _unhashable(key_value: object) -> None:
    """Raise the ``TypeError`` of a key that cannot be hashed; return if it can (the error was not that)."""
    try:
        hash(key_value)
    except TypeError as exc:
        raise TypeError(
            f"key must return a hashable value, got {key_value!r} ({type(key_value).__name__}): {exc}"
        ) from exc


def protect_keyed(
    group: BreakerGroup,
    func: Callable[..., Any],
    key: Callable[..., Hashable],
    fallback: Callable[..., Any] | None,
    protect: Callable[[CircuitBreaker, Callable[..., Any], Callable[..., Any] | None], Any],
) -> Any:
    """``func`` with each call going through the breaker of ``key(*args, **kwargs)`` in ``group``."""
    cache = group.new_cache()
    lookup = cache.get
    order = group._order
    if _GIL_ENABLED:
        touch: Callable[[Hashable], None] = order.move_to_end
    else:  # an OrderedDict is not safe to reorder from two threads without the GIL
        touch = group.touch_locked

    def build(breaker: CircuitBreaker) -> Any:
        return protect(breaker, func, fallback)

    def resolve(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        k = key(*args, **kwargs)
        try:
            protected = lookup(k)
        except TypeError:
            _unhashable(k)
            raise
        if protected is None:
            return group.protected_for(cache, k, build)
        try:  # noqa: SIM105 - contextlib.suppress costs a context manager per call
            touch(k)
        except KeyError:  # evicted by another thread meanwhile: this call still uses it
            pass
        return protected

    wrapper: Any
    if inspect.isasyncgenfunction(func):

        async def keyed_agen(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
            agen = resolve(args, kwargs)(*args, **kwargs)
            # No ``yield from`` in an async generator: pass asend/athrow/aclose on by hand.
            try:
                item = await agen.asend(None)
            except StopAsyncIteration:
                return
            while True:
                try:
                    sent = yield item
                except GeneratorExit:
                    await agen.aclose()
                    raise
                except BaseException as thrown:
                    try:
                        item = await agen.athrow(thrown)
                    except StopAsyncIteration:
                        return
                else:
                    try:
                        item = await agen.asend(sent)
                    except StopAsyncIteration:
                        return

        wrapper = _wrapping.copy_metadata(keyed_agen, func, is_async=False)
    elif _retry_gen.is_generator_function(func):

        def keyed_gen(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            gen: Generator[Any, Any, Any] = resolve(args, kwargs)(*args, **kwargs)
            return (yield from gen)

        wrapper = _wrapping.copy_metadata(keyed_gen, func, is_async=False)
    elif _wrapping.is_async_callable(func):

        async def keyed_async(*args: Any, **kwargs: Any) -> Any:
            k = key(*args, **kwargs)
            try:
                protected = lookup(k)
            except TypeError:
                _unhashable(k)
                raise
            if protected is None:
                protected = group.protected_for(cache, k, build)
            else:
                try:  # noqa: SIM105 - as in resolve()
                    touch(k)
                except KeyError:
                    pass
            awaitable: Awaitable[Any] = protected(*args, **kwargs)
            return await awaitable

        wrapper = _wrapping.copy_metadata(keyed_async, func, is_async=True)
    else:

        def keyed(*args: Any, **kwargs: Any) -> Any:
            # resolve() inlined: this is the per-call path.
            k = key(*args, **kwargs)
            try:
                protected = lookup(k)
            except TypeError:
                _unhashable(k)
                raise
            if protected is None:
                protected = group.protected_for(cache, k, build)
            else:
                try:  # noqa: SIM105 - as in resolve()
                    touch(k)
                except KeyError:
                    pass
            return protected(*args, **kwargs)

        wrapper = _wrapping.copy_metadata(keyed, func, is_async=False)
    wrapper.breakers = KeyedBreakers(group)
    return wrapper


# -- typing -----------------------------------------------------------------------------


class KeyedCallable(Protocol[P, R_co]):
    """A function with one circuit breaker per key: the same signature, and ``.breakers``.

    Example::

        @hardy.circuit_breaker(key=lambda url: urlsplit(url).netloc)
        def fetch(url: str) -> bytes: ...

        fetch("https://example.org/")   # type-checked as (url: str) -> bytes
        fetch.breakers["example.org"].state
    """

    __name__: str
    __qualname__: str

    @property
    def __wrapped__(self) -> Callable[..., Any]: ...

    @property
    def breakers(self) -> KeyedBreakers: ...

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    if MYPY:

        @overload
        def __get__(self, instance: None, owner: type[Any] | None = None, /) -> Self: ...

        @overload
        def __get__(
            self: KeyedCallable[Concatenate[_S, _P2], _R2], instance: _S, owner: type[Any] | None = None, /
        ) -> KeyedCallable[_P2, _R2]: ...

        @overload
        def __get__(self, instance: object, owner: type[Any] | None = None, /) -> Self: ...

    else:

        @overload
        def __get__(
            self: KeyedCallable[Concatenate[type[_S], _P2], _R2], instance: None, owner: type[_S], /
        ) -> KeyedCallable[_P2, _R2]: ...

        @overload
        def __get__(self, instance: None, owner: type[Any] | None = None, /) -> Self: ...

        @overload
        def __get__(
            self: KeyedCallable[Concatenate[_S, _P2], _R2], instance: _S, owner: type[Any] | None = None, /
        ) -> KeyedCallable[_P2, _R2]: ...

        @overload
        def __get__(
            self: KeyedCallable[Concatenate[type[_S], _P2], _R2], instance: _S, owner: type[_S], /
        ) -> KeyedCallable[_P2, _R2]: ...

        @overload
        def __get__(self, instance: object, owner: type[Any] | None = None, /) -> Self: ...


class KeyedStaticMethod(Protocol[P, R_co]):
    """A keyed circuit breaker put above ``@staticmethod``: still a static method, with ``.breakers``."""

    @property
    def __func__(self) -> KeyedCallable[P, R_co]: ...

    def __get__(self, instance: object, owner: type[Any] | None = None, /) -> KeyedCallable[P, R_co]: ...


class KeyedClassMethod(Protocol[P, R_co]):
    """A keyed circuit breaker put above ``@classmethod``: still a class method, with ``.breakers``."""

    @property
    def __func__(self) -> KeyedCallable[..., Any]: ...

    def __get__(self, instance: object, owner: type[Any] | None = None, /) -> KeyedCallable[P, R_co]: ...


class KeyedBreakerDecorator(Protocol):
    """What ``@hardy.circuit_breaker(key=...)`` returns: a decorator whose functions carry ``.breakers``.

    Example::

        per_host = hardy.circuit_breaker(name="http", key=lambda url, **_: urlsplit(url).netloc)
        get = per_host(http_get)            # KeyedCallable[(url: str), bytes]
    """

    @overload
    def __call__(self, func: staticmethod[P, R], /) -> KeyedStaticMethod[P, R]: ...  # type: ignore[overload-overlap]  # pyright: ignore[reportOverlappingOverload]

    @overload
    def __call__(self, func: classmethod[Any, P, R], /) -> KeyedClassMethod[P, R]: ...

    @overload
    def __call__(self, func: Callable[P, R], /) -> KeyedCallable[P, R]: ...
