"""The health-check manager: register checks, run them concurrently, aggregate."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .. import _log, _validate, _wrapping, events
from ..timeout import _await_with_deadline, _Elapsed
from ._workers import Run, Workers
from .results import _STATUS_VALUES, HealthCheckResult, HealthStatus, SystemHealth

__all__ = ["HealthCheck", "get_health_check"]

F = TypeVar("F", bound=Callable[..., Any])
logger = _log.component("health")


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
    in_flight: dict[asyncio.AbstractEventLoop, asyncio.Task[HealthCheckResult]] = field(default_factory=dict)
    running: Run | None = None  # a sync check's latest run, shared by the probes of every loop
    last_status: HealthStatus | None = None  # of the latest run, for the "health" events


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
        details = dict(value)
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
    # As the reference does: a check that returned without raising passed,
    # whatever the value (0 and "" too). The value is kept for the report.
    return HealthCheckResult(name, HealthStatus.HEALTHY, "", latency_ms, {"value": value}, critical=critical)


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
        self._lock = threading.Lock()
        self._workers: Workers | None = None
        self._started = time.monotonic()

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
        check = self._checks.get(name)
        if check is None:
            return HealthCheckResult(name, HealthStatus.UNKNOWN, f"no health check named {name!r}")
        if check.cached is not None and time.monotonic() < check.cached_until:
            return check.cached
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

    async def run_all(self) -> SystemHealth:
        """Run every check concurrently and aggregate the results."""
        results = list(await asyncio.gather(*(self.run_check(name) for name in tuple(self._checks))))
        return SystemHealth(_overall(results), results, self.version, time.monotonic() - self._started)

    async def run_critical(self) -> SystemHealth:
        """Run only the critical checks (a readiness probe) and aggregate them."""
        names = [name for name, check in tuple(self._checks.items()) if check.critical]
        results = list(await asyncio.gather(*(self.run_check(name) for name in names)))
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
