"""The health-check manager: register checks, run them concurrently, aggregate."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import reprlib
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from .. import _aio, _log, _validate, _wrapping, events
from ..timeout import _await_with_deadline, _Elapsed
from ._workers import Run, Workers
from .results import _STATUS_VALUES, HealthCheckResult, HealthStatus, SystemHealth

__all__ = ["HealthCheck", "get_health_check"]

F = TypeVar("F", bound=Callable[..., Any])
logger: logging.Logger = _log.component("health")


def _report(check: _Check, result: HealthCheckResult) -> HealthCheckResult:
    """A ``"health"`` event and a log record when a check's status changes (a first run: unless healthy)."""
    previous = check.last_status
    check.last_status = result.status
    if result.status is previous or (previous is None and result.status is HealthStatus.HEALTHY):
        return result
    before = HealthStatus.UNKNOWN.value if previous is None else previous.value
    if events.active:
        events.emit(
            "health", result.name, {"status": result.status.value, "previous": before, "message": result.message}
        )
    level = logging.INFO if result.status is HealthStatus.HEALTHY else logging.WARNING
    _log.warn_limited(
        logger,
        ("health", result.name, result.status),
        "%s: %s -> %s%s",
        result.name,
        before,
        result.status.value,
        f" ({result.message})" if result.message else "",
        extra=_log.fields("health", result.name, "health", status=result.status.value, previous=before),
        level=level,
    )
    return result


@dataclass(eq=False)
class _Check:
    func: Callable[[], Any]
    timeout: float
    critical: bool
    cache_ttl: float
    is_async: bool
    cached: HealthCheckResult | None = None
    cached_until: float = 0.0
    # The run in progress per asyncio loop (its task) or trio run (a _SharedRun)
    in_flight: dict[object, Any] = field(default_factory=dict[object, Any])
    running: Run | None = None  # a sync check's latest run, shared by the probes of every loop
    last_status: HealthStatus | None = None  # of the latest run, for the "health" events


@dataclass(eq=False)
class _SharedRun:
    """One run of an async check under trio, awaited by every probe of that trio run."""

    done: Any  # a trio.Event
    result: HealthCheckResult | None = None


def _overall(results: list[HealthCheckResult]) -> HealthStatus:
    """A critical check UNHEALTHY: UNHEALTHY; any other trouble: DEGRADED; else HEALTHY."""
    status = HealthStatus.HEALTHY
    for result in results:
        if result.status is HealthStatus.UNHEALTHY and result.critical:
            return HealthStatus.UNHEALTHY
        if result.status is not HealthStatus.HEALTHY:
            status = HealthStatus.DEGRADED
    return status


def _interpret(name: str, value: Any, latency_ms: float, critical: bool) -> HealthCheckResult:
    """Turn what a check returned into its result."""
    if value is None or value is True:
        return HealthCheckResult(name, HealthStatus.HEALTHY, "", latency_ms, critical=critical)
    if value is False:
        return HealthCheckResult(name, HealthStatus.UNHEALTHY, "check returned False", latency_ms, critical=critical)
    if isinstance(value, HealthStatus):
        return HealthCheckResult(name, value, "", latency_ms, critical=critical)
    if isinstance(value, HealthCheckResult):
        return HealthCheckResult(
            name, value.status, value.message, latency_ms, dict(value.details), value.timestamp, critical
        )
    if isinstance(value, dict):
        details = dict(cast("Mapping[Any, Any]", value))  # isinstance() leaves the items unknown to pyright
        message = str(details.pop("message", ""))
        if "status" in details:
            raw = details.pop("status")
            details.pop("healthy", None)
            try:
                status = raw if isinstance(raw, HealthStatus) else HealthStatus(str(raw))
            except ValueError:
                status = HealthStatus.UNKNOWN
                message = message or f"unknown status {raw!r}"
        elif "healthy" in details:
            status = HealthStatus.HEALTHY if details.pop("healthy") else HealthStatus.UNHEALTHY
        else:
            status = HealthStatus.HEALTHY
        return HealthCheckResult(name, status, message, latency_ms, details, critical=critical)
    if isinstance(value, str) and value in _STATUS_VALUES:
        # Read as its HealthStatus, as HealthCheckResult("db", "unhealthy") is.
        return HealthCheckResult(name, HealthStatus(value), "", latency_ms, critical=critical)
    if inspect.isawaitable(value):
        close = getattr(value, "close", None)
        if callable(close):
            close()  # never awaited: no "coroutine was never awaited" warning on top of this message
        message = (
            f"check returned an awaitable ({type(value).__name__}) instead of a result; "
            "await it inside an async def check"
        )
        return HealthCheckResult(name, HealthStatus.UNHEALTHY, message, latency_ms, critical=critical)
    # Any other value (an int, a string, a list) is judged by its truth value,
    # as a bool is: 42 passes, 0 and "" fail. The value is kept for the report.
    if value:
        return HealthCheckResult(name, HealthStatus.HEALTHY, "", latency_ms, {"value": value}, critical=critical)
    message = f"check returned {reprlib.repr(value)}, which is false"
    return HealthCheckResult(name, HealthStatus.UNHEALTHY, message, latency_ms, {"value": value}, critical=critical)


def _judge(name: str, value: Any, latency_ms: float, critical: bool) -> HealthCheckResult:
    """:func:`_interpret`, with a result that cannot be built reported as the check's failure."""
    try:
        return _interpret(name, value, latency_ms, critical)
    except Exception as exc:  # e.g. a dict whose "message" cannot be made a str
        message = f"check returned an unusable {type(value).__name__}: {type(exc).__name__}: {exc}"
        return HealthCheckResult(name, HealthStatus.UNHEALTHY, message, latency_ms, critical=critical)


class HealthCheck:
    """Named health checks, run concurrently with a timeout each, and their aggregate.

    Sync checks run on up to ``max_workers`` daemon threads so they never
    block the event loop; a check that overruns its ``timeout`` is reported
    UNHEALTHY at once (a sync one is abandoned and finishes in its thread,
    which holds neither the caller nor the process's exit; until it does,
    later probes wait for that run rather than start another). A critical
    check that is UNHEALTHY makes the system UNHEALTHY; any other trouble
    makes it DEGRADED.

    Example::

        health = hardy.HealthCheck(version="1.4.2")

        @health.register("database", timeout=2.0, critical=True, cache_ttl=5.0)
        async def database() -> bool:
            return await db.ping()

        report = await health.run_all()
        report.to_dict()
    """

    def __init__(self, version: str = "unknown", *, max_workers: int = 8) -> None:
        if not isinstance(version, str):
            raise TypeError(f"version must be a str, got {version!r}")
        self.version = version
        self._max_workers = _validate.positive_int("max_workers", max_workers)
        self._checks: dict[str, _Check] = {}
        # The reference's layout, kept for code (and its tests) that fill these
        # two by hand: a bare function put in ``_checks`` runs with the timeout
        # found here (10 s without one), as a non-critical check.
        self._timeouts: dict[str, float] = {}
        self._lock = threading.Lock()
        self._workers: Workers | None = None
        self._started = time.monotonic()
        self.start_time: float = time.time()  # wall clock, as in the reference; uptime uses the monotonic clock

    @property
    def names(self) -> tuple[str, ...]:
        """The registered checks' names, in registration order."""
        return tuple(self._checks)

    def register(
        self, name: str, timeout: float = 10.0, critical: bool = False, *, cache_ttl: float = 0.0
    ) -> Callable[[F], F]:
        """Register the decorated sync or async function as check ``name``; returns it unchanged.

        ``cache_ttl`` (seconds) reuses a result that long; concurrent callers
        of a check always share the one run in flight.
        """
        _validate.non_empty_name(name)
        limit = _validate.seconds("timeout", timeout, allow_zero=False)
        if not isinstance(critical, bool):
            raise TypeError(f"critical must be a bool, got {critical!r}")
        ttl = _validate.seconds("cache_ttl", cache_ttl)

        def decorate(func: F) -> F:
            _validate.callable_arg("func", func)
            with self._lock:
                if name in self._checks:
                    raise ValueError(f"a health check named {name!r} is already registered")
                self._checks[name] = _Check(func, limit, critical, ttl, _wrapping.is_async_callable(func))
                self._timeouts[name] = limit
            return func

        return decorate

    def _sync_run(self, check: _Check) -> Run:
        """The run of sync ``check`` to wait for: the one still going, or a new one."""
        with self._lock:
            run = check.running
            # A run started before a fork never finishes in the child: its thread stayed behind.
            if run is None or run.finished or run.pid != os.getpid():
                if self._workers is None:
                    self._workers = Workers(self._max_workers, "hardy-health")
                run = Run(check.func)
                self._workers.submit(run.execute)
                check.running = run
            return run

    async def _execute(self, name: str, check: _Check) -> HealthCheckResult:
        return _report(check, await self._run(name, check))

    async def _run(self, name: str, check: _Check) -> HealthCheckResult:
        started = time.perf_counter()
        try:
            if check.is_async:
                value = await _await_with_deadline(check.func(), check.timeout)
            else:
                value = await _await_with_deadline(self._sync_run(check).result(), check.timeout)
        except _Elapsed:
            latency = (time.perf_counter() - started) * 1000
            message = f"timed out after {check.timeout}s"
            return HealthCheckResult(name, HealthStatus.UNHEALTHY, message, latency, critical=check.critical)
        except Exception as exc:
            latency = (time.perf_counter() - started) * 1000
            message = f"{type(exc).__name__}: {exc}"
            return HealthCheckResult(name, HealthStatus.UNHEALTHY, message, latency, critical=check.critical)
        return _judge(name, value, (time.perf_counter() - started) * 1000, check.critical)

    async def run_check(self, name: str) -> HealthCheckResult:
        """Run one check (or reuse its cached result); UNKNOWN for a name never registered."""
        entry: object = self._checks.get(name)
        if entry is None:
            return HealthCheckResult(name, HealthStatus.UNKNOWN, f"Check '{name}' not found")
        check = entry if isinstance(entry, _Check) else self._adopt(name, entry)
        if check.cached is not None and time.monotonic() < check.cached_until:
            return check.cached
        if _aio.library() == _aio.TRIO:
            result = await self._shared_trio_run(name, check)
        else:
            loop = asyncio.get_running_loop()
            task = check.in_flight.get(loop)
            if task is None:
                task = loop.create_task(self._execute(name, check))
                check.in_flight[loop] = task
                task.add_done_callback(lambda _: check.in_flight.pop(loop, None))
            # shield: a caller that gives up must not cancel the run others wait for
            result = await asyncio.shield(task)
        if check.cache_ttl > 0:
            check.cached = result
            check.cached_until = time.monotonic() + check.cache_ttl
        return result

    def _adopt(self, name: str, func: object) -> _Check:
        """Take a bare function put in ``_checks`` by hand as a registered, non-critical check."""
        _validate.callable_arg(f"_checks[{name!r}]", func)
        limit = _validate.seconds(f"_timeouts[{name!r}]", self._timeouts.get(name, 10.0), allow_zero=False)
        with self._lock:
            check = self._checks.get(name)
            if not isinstance(check, _Check):
                check = _Check(cast("Callable[[], Any]", func), limit, False, 0.0, _wrapping.is_async_callable(func))
                self._checks[name] = check
            return check

    async def _shared_trio_run(self, name: str, check: _Check) -> HealthCheckResult:
        # trio has no detached task to shield: the run is a system task of
        # this trio run, which the probes wait for, so a probe that gives up
        # (its cancel scope) leaves the run going for the others, as
        # asyncio.shield does.
        import trio

        token = trio.lowlevel.current_trio_token()
        shared: _SharedRun | None = check.in_flight.get(token)
        if shared is None:
            shared = _SharedRun(trio.Event())
            check.in_flight[token] = shared
            trio.lowlevel.spawn_system_task(self._run_shared, name, check, shared, token, name=f"hardy-health {name}")
        await shared.done.wait()
        if shared.result is None:
            raise RuntimeError(f"health check {name!r} was cancelled: its trio run is ending")
        return shared.result

    async def _run_shared(self, name: str, check: _Check, shared: _SharedRun, token: object) -> None:
        try:
            shared.result = await self._execute(name, check)
        finally:
            check.in_flight.pop(token, None)
            shared.done.set()

    async def run_all(self) -> SystemHealth:
        """Run every check concurrently and aggregate the results."""
        results = await _aio.gather([self.run_check(name) for name in tuple(self._checks)])
        return SystemHealth(_overall(results), results, self.version, time.monotonic() - self._started)

    async def run_critical(self) -> SystemHealth:
        """Run only the critical checks (a readiness probe) and aggregate them."""
        names = [name for name, check in tuple(self._checks.items()) if getattr(check, "critical", False)]
        results = await _aio.gather([self.run_check(name) for name in names])
        return SystemHealth(_overall(results), results, self.version, time.monotonic() - self._started)

    def run_all_sync(self) -> SystemHealth:
        """:meth:`run_all` from sync code; inside a running event loop it runs in a helper thread."""
        return _run_sync(self.run_all)

    def run_critical_sync(self) -> SystemHealth:
        """:meth:`run_critical` from sync code, like :meth:`run_all_sync`."""
        return _run_sync(self.run_critical)

    def __repr__(self) -> str:
        return f"<HealthCheck version={self.version!r} checks={list(self._checks)}>"


def _run_in_new_loop(make: Callable[[], Coroutine[Any, Any, SystemHealth]]) -> SystemHealth:
    """``asyncio.run(make())``, except that it never waits for the loop's default executor.

    ``asyncio.run`` ends by joining the default executor's threads: an async
    check that handed a blocking call to ``asyncio.to_thread`` and timed out
    would hold the caller until that call returned. ``loop.close()`` shuts the
    executor down without waiting.
    """
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(make())
    finally:
        try:
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def _run_sync(make: Callable[[], Coroutine[Any, Any, SystemHealth]]) -> SystemHealth:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run_in_new_loop(make)
    # A loop runs in this thread already: run ours in a helper thread.
    outcome: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            outcome.append((True, _run_in_new_loop(make)))
        except BaseException as exc:  # handed back below
            outcome.append((False, exc))

    thread = threading.Thread(target=run, name="hardy-health-sync", daemon=True)
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if ok:
        return value  # type: ignore[no-any-return]
    raise value


_default: HealthCheck | None = None
_default_lock = threading.Lock()


def get_health_check() -> HealthCheck:
    """The process-wide :class:`HealthCheck`, created on first use (thread-safe).

    Example::

        @hardy.get_health_check().register("cache")
        def cache() -> bool:
            return redis.ping()
    """
    global _default
    with _default_lock:
        if _default is None:
            _default = HealthCheck()
        return _default
