"""The health-check manager: register checks, run them concurrently, aggregate."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .. import _validate, _wrapping
from ..timeout import _await_with_deadline, _Elapsed
from .results import HealthCheckResult, HealthStatus, SystemHealth

__all__ = ["HealthCheck", "get_health_check"]

F = TypeVar("F", bound=Callable[..., Any])


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
    return HealthCheckResult(
        name,
        HealthStatus.UNHEALTHY,
        f"check returned {type(value).__name__}; expected bool, HealthStatus, HealthCheckResult, dict or None",
        latency_ms,
        critical=critical,
    )


class HealthCheck:
    """Named health checks, run concurrently with a timeout each, and their aggregate.

    Sync checks run in a bounded thread pool so they never block the event
    loop; a check that overruns its ``timeout`` is reported UNHEALTHY at once
    (a sync one is abandoned and finishes in its worker). A critical check
    that is UNHEALTHY makes the system UNHEALTHY; any other trouble makes it
    DEGRADED.

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
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
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

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(self._max_workers, thread_name_prefix="hardy-health")
            return self._pool

    async def _execute(self, name: str, check: _Check) -> HealthCheckResult:
        started = time.perf_counter()
        try:
            if check.is_async:
                value = await _await_with_deadline(check.func(), check.timeout)
            else:
                future = asyncio.get_running_loop().run_in_executor(self._executor(), check.func)
                value = await _await_with_deadline(future, check.timeout)
        except _Elapsed:
            latency = (time.perf_counter() - started) * 1000
            message = f"timed out after {check.timeout}s"
            return HealthCheckResult(name, HealthStatus.UNHEALTHY, message, latency, critical=check.critical)
        except Exception as exc:
            latency = (time.perf_counter() - started) * 1000
            message = f"{type(exc).__name__}: {exc}"
            return HealthCheckResult(name, HealthStatus.UNHEALTHY, message, latency, critical=check.critical)
        return _interpret(name, value, (time.perf_counter() - started) * 1000, check.critical)

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


def _run_sync(make: Callable[[], Coroutine[Any, Any, SystemHealth]]) -> SystemHealth:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    # A loop runs in this thread already: run ours in a helper thread.
    outcome: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            outcome.append((True, asyncio.run(make())))
        except BaseException as exc:  # handed back below
            outcome.append((False, exc))

    thread = threading.Thread(target=run, name="hardy-health-sync")
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
