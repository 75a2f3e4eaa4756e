"""Benchmark-ready callables of competing libraries ("peers"), to time beside hardy.

Every builder returns ``{peer_name: callable}`` for the peers that offer the
scenario and are installed; a missing peer is simply left out (see
:func:`availability` for why). Sync callables are called as ``fn(1)``, async
ones as ``await fn(1)``. Peers are imported lazily, so this module imports
without any of them.

Each peer is used through its own documented decorator or object, configured
like hardy's defaults where the scenario leaves a choice: a breaker opens
after 5 consecutive failures and closes again after 60 s (3600 s for the
already-open breakers); retries make the stated number of attempts in all and
retry on ``Exception``.

Async functions handed to the async builders must be coroutine functions
(``async def``): the peers choose their async wrapper with
``inspect.iscoroutinefunction`` and would otherwise wrap them as sync ones.

Per-retry logging is turned off where a peer logs by default, since logging is
not what is measured: backoff (``logger=None``), stamina (its instrumentation
hooks, a process-wide setting) and retrying (a disabled logger). tenacity,
opnieuw and pyresilience log nothing per retry by default.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib
import importlib.metadata
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

PEERS: tuple[str, ...] = (
    "pybreaker",
    "circuitbreaker",
    "aiobreaker",
    "purgatory",
    "tenacity",
    "backoff",
    "stamina",
    "retrying",
    "opnieuw",
    "pyresilience",
    "hyx",
    "limits",
    "pyrate_limiter",
    "aiolimiter",
)

_FAILURE_THRESHOLD = 5  # hardy's CircuitBreaker default
_RESET_TIMEOUT = 60.0  # hardy's CircuitBreaker default, for the closed breakers
_OPEN_RESET_TIMEOUT = 3600.0  # the open breakers stay open for the whole run
_FIRST_SUCCESS_ATTEMPTS = 3  # hardy's RetryConfig default
_THREE_FAILURES_ATTEMPTS = 4
_TIMEOUT_SECONDS = 10.0
_BENCH_ARGUMENT = 1  # the argument the benchmarks call with: fn(1)
_OPNIEUW_NAMESPACE = "hardy-benchmarks"

_SyncCallable = Callable[[int], Any]
_AsyncCallable = Callable[[int], Awaitable[Any]]


class _TripError(Exception):
    """Raised by the target of a breaker while it is being tripped open."""


# -- helpers ---------------------------------------------------------------------------


def _load(name: str) -> Any:
    """The peer's module, or None when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def availability() -> dict[str, str]:
    """peer name -> installed version string, or "not installed: <reason>" (the ImportError text)."""
    result: dict[str, str] = {}
    for name in PEERS:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            result[name] = f"not installed: {exc}"
            continue
        try:
            result[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            result[name] = str(getattr(module, "__version__", "unknown version"))
    return result


def _require_coroutine_function(func: Callable[..., Any]) -> None:
    if not inspect.iscoroutinefunction(func):
        raise TypeError(f"{func!r} is not a coroutine function (async def); the peers would wrap it as sync")


def _drive(awaitable: Awaitable[Any]) -> Any:
    """Run an awaitable that never suspends, without an event loop (so builders work inside one too)."""
    steps = awaitable.__await__()
    try:
        steps.send(None)
    except StopIteration as stop:
        return stop.value
    steps.close()
    raise RuntimeError(f"{awaitable!r} suspended: it needs an event loop")


def _fails_first(func: Callable[[int], int], calls: list[int]) -> Callable[[int], int]:
    """``func``, but the first ``_FAILURE_THRESHOLD`` calls raise; ``calls[0]`` counts the calls."""

    def target(x: int) -> int:
        calls[0] += 1
        if calls[0] <= _FAILURE_THRESHOLD:
            raise _TripError("tripping the breaker")
        return func(x)

    return target


def _fails_first_async(func: Callable[[int], Awaitable[int]], calls: list[int]) -> Callable[[int], Awaitable[int]]:
    async def target(x: int) -> int:
        calls[0] += 1
        if calls[0] <= _FAILURE_THRESHOLD:
            raise _TripError("tripping the breaker")
        return await func(x)

    return target


def _check_open(peer: str, probe: Callable[[], object], calls: list[int], rejection: type[Exception]) -> None:
    """Fail loudly unless the breaker rejects with ``rejection`` without calling its target."""
    before = calls[0]
    try:
        probe()
    except rejection:
        pass
    except Exception as exc:
        raise RuntimeError(f"{peer}: the open breaker raised {exc!r}, not {rejection.__name__}") from exc
    else:
        raise RuntimeError(f"{peer}: the breaker did not open after {_FAILURE_THRESHOLD} failures")
    if calls[0] != before:
        raise RuntimeError(f"{peer}: the open breaker called its target")


def _open_sync(
    peer: str,
    func: Callable[[int], int],
    wrap: Callable[[Callable[[int], int]], _SyncCallable],
    rejection: type[Exception],
) -> _SyncCallable:
    """A fresh breaker from ``wrap``, tripped by ``_FAILURE_THRESHOLD`` failures of its target."""
    calls = [0]
    protected = wrap(_fails_first(func, calls))
    for _ in range(_FAILURE_THRESHOLD):
        with contextlib.suppress(Exception):
            protected(_BENCH_ARGUMENT)
    _check_open(peer, lambda: protected(_BENCH_ARGUMENT), calls, rejection)
    return protected


def _open_async(
    peer: str,
    func: Callable[[int], Awaitable[int]],
    wrap: Callable[[Callable[[int], Awaitable[int]]], _AsyncCallable],
    rejection: type[Exception],
) -> _AsyncCallable:
    calls = [0]
    protected = wrap(_fails_first_async(func, calls))
    for _ in range(_FAILURE_THRESHOLD):
        with contextlib.suppress(Exception):
            _drive(protected(_BENCH_ARGUMENT))
    _check_open(peer, lambda: _drive(protected(_BENCH_ARGUMENT)), calls, rejection)
    return protected


def _silent_stamina(stamina: Any) -> Any:
    # stamina logs every retry through its instrumentation hooks (LoggingOnRetryHook, or structlog and
    # prometheus when installed). An empty hook list turns them off; the setting is process-wide.
    stamina.instrumentation.set_on_retry_hooks([])
    return stamina


def _silent_logger(name: str) -> logging.Logger:
    """A logger outside the logging tree that drops everything (for retrying's ``logger=``)."""
    logger = logging.Logger(name)
    logger.disabled = True
    return logger


def _opnieuw_immediately(decorated: Callable[[int], int]) -> _SyncCallable:
    retry_immediately = importlib.import_module("opnieuw.test_util").retry_immediately

    def call(x: int) -> int:
        with retry_immediately(_OPNIEUW_NAMESPACE):
            return decorated(x)

    return call


def _opnieuw_immediately_async(decorated: Callable[[int], Awaitable[int]]) -> _AsyncCallable:
    retry_immediately = importlib.import_module("opnieuw.test_util").retry_immediately

    async def call(x: int) -> int:
        with retry_immediately(_OPNIEUW_NAMESPACE):
            return await decorated(x)

    return call


# -- circuit breakers --------------------------------------------------------------------
#
# Rejection exceptions: pybreaker.CircuitBreakerError, circuitbreaker.CircuitBreakerError,
# aiobreaker.CircuitBreakerError, purgatory's OpenedState (the state object raises itself), and
# pyresilience.CircuitOpenError. pybreaker has no asyncio support (only Tornado coroutines), so it is
# absent from the async builders.


def breaker_closed(func: Callable[[int], int]) -> dict[str, _SyncCallable]:
    """A closed breaker around ``func``; calling it returns ``func``'s result.

    pybreaker runs the whole call, ``func`` included, under the breaker's ``threading.RLock``.
    purgatory looks its breaker up by name in its unit of work and builds a new wrapper object on every call.
    """
    out: dict[str, _SyncCallable] = {}
    if (pybreaker := _load("pybreaker")) is not None:
        out["pybreaker"] = pybreaker.CircuitBreaker(fail_max=_FAILURE_THRESHOLD, reset_timeout=_RESET_TIMEOUT)(func)
    if (circuitbreaker := _load("circuitbreaker")) is not None:
        out["circuitbreaker"] = circuitbreaker.circuit(
            failure_threshold=_FAILURE_THRESHOLD, recovery_timeout=_RESET_TIMEOUT, name="peers-closed"
        )(func)
    if (aiobreaker := _load("aiobreaker")) is not None:
        breaker = aiobreaker.CircuitBreaker(
            fail_max=_FAILURE_THRESHOLD,
            timeout_duration=datetime.timedelta(seconds=_RESET_TIMEOUT),
            name="peers-closed",
        )
        # breaker()(func) is the same wrapper as @breaker, and also takes callables that are not functions.
        out["aiobreaker"] = breaker()(func)
    if (purgatory := _load("purgatory")) is not None:
        factory = purgatory.SyncCircuitBreakerFactory(default_threshold=_FAILURE_THRESHOLD, default_ttl=_RESET_TIMEOUT)
        out["purgatory"] = factory("peers-closed")(func)
    if (pyresilience := _load("pyresilience")) is not None:
        config = pyresilience.CircuitBreakerConfig(
            failure_threshold=_FAILURE_THRESHOLD, recovery_timeout=_RESET_TIMEOUT
        )
        out["pyresilience"] = pyresilience.resilient(circuit_breaker=config)(func)
    return out


def breaker_open(func: Callable[[int], int]) -> dict[str, _SyncCallable]:
    """Breakers already open (tripped by 5 failures, reset timeout 3600 s) around ``func``.

    Calling one raises the peer's rejection exception without calling ``func``. Every call of this
    builder makes fresh breakers: purgatory raises the same OpenedState instance on every rejection, so
    its ``__traceback__`` grows by a frame per rejection (a leak, harmless over one benchmark).
    """
    out: dict[str, _SyncCallable] = {}
    if (pybreaker := _load("pybreaker")) is not None:
        out["pybreaker"] = _open_sync(
            "pybreaker",
            func,
            lambda target: pybreaker.CircuitBreaker(fail_max=_FAILURE_THRESHOLD, reset_timeout=_OPEN_RESET_TIMEOUT)(
                target
            ),
            pybreaker.CircuitBreakerError,
        )
    if (circuitbreaker := _load("circuitbreaker")) is not None:
        out["circuitbreaker"] = _open_sync(
            "circuitbreaker",
            func,
            lambda target: circuitbreaker.circuit(
                failure_threshold=_FAILURE_THRESHOLD, recovery_timeout=_OPEN_RESET_TIMEOUT, name="peers-open"
            )(target),
            circuitbreaker.CircuitBreakerError,
        )
    if (aiobreaker := _load("aiobreaker")) is not None:
        out["aiobreaker"] = _open_sync(
            "aiobreaker",
            func,
            lambda target: aiobreaker.CircuitBreaker(
                fail_max=_FAILURE_THRESHOLD,
                timeout_duration=datetime.timedelta(seconds=_OPEN_RESET_TIMEOUT),
                name="peers-open",
            )()(target),
            aiobreaker.CircuitBreakerError,
        )
    if (purgatory := _load("purgatory")) is not None:
        out["purgatory"] = _open_sync(
            "purgatory",
            func,
            lambda target: purgatory.SyncCircuitBreakerFactory(
                default_threshold=_FAILURE_THRESHOLD, default_ttl=_OPEN_RESET_TIMEOUT
            )("peers-open")(target),
            importlib.import_module("purgatory.domain.model").OpenedState,
        )
    if (pyresilience := _load("pyresilience")) is not None:
        config = pyresilience.CircuitBreakerConfig(
            failure_threshold=_FAILURE_THRESHOLD, recovery_timeout=_OPEN_RESET_TIMEOUT
        )
        out["pyresilience"] = _open_sync(
            "pyresilience",
            func,
            lambda target: pyresilience.resilient(circuit_breaker=config)(target),
            pyresilience.CircuitOpenError,
        )
    return out


def breaker_closed_async(func: Callable[[int], Awaitable[int]]) -> dict[str, _AsyncCallable]:
    """A closed breaker around the coroutine function ``func``; awaiting a call returns its result."""
    _require_coroutine_function(func)
    out: dict[str, _AsyncCallable] = {}
    if (circuitbreaker := _load("circuitbreaker")) is not None:
        out["circuitbreaker"] = circuitbreaker.circuit(
            failure_threshold=_FAILURE_THRESHOLD, recovery_timeout=_RESET_TIMEOUT, name="peers-closed-async"
        )(func)
    if (aiobreaker := _load("aiobreaker")) is not None:
        breaker = aiobreaker.CircuitBreaker(
            fail_max=_FAILURE_THRESHOLD,
            timeout_duration=datetime.timedelta(seconds=_RESET_TIMEOUT),
            name="peers-closed-async",
        )
        out["aiobreaker"] = breaker()(func)
    if (purgatory := _load("purgatory")) is not None:
        factory = purgatory.AsyncCircuitBreakerFactory(default_threshold=_FAILURE_THRESHOLD, default_ttl=_RESET_TIMEOUT)
        out["purgatory"] = factory("peers-closed-async")(func)
    if (pyresilience := _load("pyresilience")) is not None:
        config = pyresilience.CircuitBreakerConfig(
            failure_threshold=_FAILURE_THRESHOLD, recovery_timeout=_RESET_TIMEOUT
        )
        out["pyresilience"] = pyresilience.resilient(circuit_breaker=config)(func)
    return out


def breaker_open_async(func: Callable[[int], Awaitable[int]]) -> dict[str, _AsyncCallable]:
    """Async breakers already open (5 failures, reset timeout 3600 s); fresh ones on every call of the builder."""
    _require_coroutine_function(func)
    out: dict[str, _AsyncCallable] = {}
    if (circuitbreaker := _load("circuitbreaker")) is not None:
        out["circuitbreaker"] = _open_async(
            "circuitbreaker",
            func,
            lambda target: circuitbreaker.circuit(
                failure_threshold=_FAILURE_THRESHOLD, recovery_timeout=_OPEN_RESET_TIMEOUT, name="peers-open-async"
            )(target),
            circuitbreaker.CircuitBreakerError,
        )
    if (aiobreaker := _load("aiobreaker")) is not None:
        out["aiobreaker"] = _open_async(
            "aiobreaker",
            func,
            lambda target: aiobreaker.CircuitBreaker(
                fail_max=_FAILURE_THRESHOLD,
                timeout_duration=datetime.timedelta(seconds=_OPEN_RESET_TIMEOUT),
                name="peers-open-async",
            )()(target),
            aiobreaker.CircuitBreakerError,
        )
    if (purgatory := _load("purgatory")) is not None:
        out["purgatory"] = _open_async(
            "purgatory",
            func,
            lambda target: purgatory.AsyncCircuitBreakerFactory(
                default_threshold=_FAILURE_THRESHOLD, default_ttl=_OPEN_RESET_TIMEOUT
            )("peers-open-async")(target),
            importlib.import_module("purgatory.domain.model").OpenedState,
        )
    if (pyresilience := _load("pyresilience")) is not None:
        config = pyresilience.CircuitBreakerConfig(
            failure_threshold=_FAILURE_THRESHOLD, recovery_timeout=_OPEN_RESET_TIMEOUT
        )
        out["pyresilience"] = _open_async(
            "pyresilience",
            func,
            lambda target: pyresilience.resilient(circuit_breaker=config)(target),
            pyresilience.CircuitOpenError,
        )
    return out


# -- retries ------------------------------------------------------------------------------
#
# retrying has no async support (it would return the coroutine unretried), so it is absent from the
# async builders.


def retry_first_success(func: Callable[[int], int]) -> dict[str, _SyncCallable]:
    """At most 3 attempts, retrying on ``Exception``; ``func`` succeeds at once.

    Backoff settings are each peer's defaults (they are not reached). stamina's default 45 s overall
    timeout is turned off (``timeout=None``), as hardy has no deadline by default.
    """
    out: dict[str, _SyncCallable] = {}
    if (tenacity := _load("tenacity")) is not None:
        out["tenacity"] = tenacity.retry(stop=tenacity.stop_after_attempt(_FIRST_SUCCESS_ATTEMPTS), reraise=True)(func)
    if (backoff := _load("backoff")) is not None:
        out["backoff"] = backoff.on_exception(backoff.expo, Exception, max_tries=_FIRST_SUCCESS_ATTEMPTS, logger=None)(
            func
        )
    if (stamina := _load("stamina")) is not None:
        out["stamina"] = _silent_stamina(stamina).retry(on=Exception, attempts=_FIRST_SUCCESS_ATTEMPTS, timeout=None)(
            func
        )
    if (retrying := _load("retrying")) is not None:
        out["retrying"] = retrying.retry(
            stop_max_attempt_number=_FIRST_SUCCESS_ATTEMPTS, logger=_silent_logger("peers.retrying")
        )(func)
    if (opnieuw := _load("opnieuw")) is not None:
        out["opnieuw"] = opnieuw.retry(retry_on_exceptions=Exception, max_calls_total=_FIRST_SUCCESS_ATTEMPTS)(func)
    if (pyresilience := _load("pyresilience")) is not None:
        out["pyresilience"] = pyresilience.resilient(
            retry=pyresilience.RetryConfig(max_attempts=_FIRST_SUCCESS_ATTEMPTS)
        )(func)
    return out


def retry_three_failures(make: Callable[[], Callable[[int], int]]) -> dict[str, _SyncCallable]:
    """4 attempts in all, zero wait; each peer gets its own ``make()``, which fails 3 times then succeeds.

    What each peer does at zero wait (hardy skips the sleep when the delay is 0):

    - tenacity: ``wait_none()``; still calls ``time.sleep(0)`` between attempts (its default ``sleep``).
    - backoff: ``constant`` with ``interval=0, jitter=None``; still calls ``time.sleep(0)``.
    - stamina: ``wait_initial=wait_max=wait_jitter=0``; runs on tenacity, so still ``time.sleep(0)``,
      and builds a RetryDetails record per retry even with no hooks.
    - retrying: waits 0 when no wait option is given; still calls ``time.sleep(0.0)``, and formats its
      "Retrying in ..." message eagerly even with logging off. It builds a new ``Retrying`` per call.
    - opnieuw: its wait is spread over ``retry_window_after_first_call_in_seconds`` and 0 there means no
      retries at all, so zero wait takes its documented test helper ``opnieuw.test_util.retry_immediately``,
      entered around every call (a generator context manager plus a ContextVar set/reset per call, which
      counts in its time). With it opnieuw still calls ``time.sleep(0)``.
    - pyresilience: ``delay=0, jitter=False``; still calls ``time.sleep(0.0)``.
    """
    out: dict[str, _SyncCallable] = {}
    if (tenacity := _load("tenacity")) is not None:
        out["tenacity"] = tenacity.retry(
            stop=tenacity.stop_after_attempt(_THREE_FAILURES_ATTEMPTS), wait=tenacity.wait_none(), reraise=True
        )(make())
    if (backoff := _load("backoff")) is not None:
        out["backoff"] = backoff.on_exception(
            backoff.constant, Exception, max_tries=_THREE_FAILURES_ATTEMPTS, jitter=None, logger=None, interval=0
        )(make())
    if (stamina := _load("stamina")) is not None:
        out["stamina"] = _silent_stamina(stamina).retry(
            on=Exception, attempts=_THREE_FAILURES_ATTEMPTS, timeout=None, wait_initial=0, wait_max=0, wait_jitter=0
        )(make())
    if (retrying := _load("retrying")) is not None:
        out["retrying"] = retrying.retry(
            stop_max_attempt_number=_THREE_FAILURES_ATTEMPTS, logger=_silent_logger("peers.retrying")
        )(make())
    if (opnieuw := _load("opnieuw")) is not None:
        decorated = opnieuw.retry(
            retry_on_exceptions=Exception, max_calls_total=_THREE_FAILURES_ATTEMPTS, namespace=_OPNIEUW_NAMESPACE
        )(make())
        out["opnieuw"] = _opnieuw_immediately(decorated)
    if (pyresilience := _load("pyresilience")) is not None:
        out["pyresilience"] = pyresilience.resilient(
            retry=pyresilience.RetryConfig(max_attempts=_THREE_FAILURES_ATTEMPTS, delay=0.0, jitter=False)
        )(make())
    return out


def retry_first_success_async(func: Callable[[int], Awaitable[int]]) -> dict[str, _AsyncCallable]:
    """Async :func:`retry_first_success`: at most 3 attempts; ``func`` succeeds at once."""
    _require_coroutine_function(func)
    out: dict[str, _AsyncCallable] = {}
    if (tenacity := _load("tenacity")) is not None:
        out["tenacity"] = tenacity.retry(stop=tenacity.stop_after_attempt(_FIRST_SUCCESS_ATTEMPTS), reraise=True)(func)
    if (backoff := _load("backoff")) is not None:
        out["backoff"] = backoff.on_exception(backoff.expo, Exception, max_tries=_FIRST_SUCCESS_ATTEMPTS, logger=None)(
            func
        )
    if (stamina := _load("stamina")) is not None:
        out["stamina"] = _silent_stamina(stamina).retry(on=Exception, attempts=_FIRST_SUCCESS_ATTEMPTS, timeout=None)(
            func
        )
    if (opnieuw := _load("opnieuw")) is not None:
        out["opnieuw"] = opnieuw.retry(retry_on_exceptions=Exception, max_calls_total=_FIRST_SUCCESS_ATTEMPTS)(func)
    if (pyresilience := _load("pyresilience")) is not None:
        out["pyresilience"] = pyresilience.resilient(
            retry=pyresilience.RetryConfig(max_attempts=_FIRST_SUCCESS_ATTEMPTS)
        )(func)
    return out


def retry_three_failures_async(make: Callable[[], Callable[[int], Awaitable[int]]]) -> dict[str, _AsyncCallable]:
    """Async :func:`retry_three_failures`: 4 attempts, zero wait, one ``make()`` per peer.

    At zero wait every peer still awaits ``asyncio.sleep(0)`` between attempts, which yields to the event
    loop once per retry (hardy skips the sleep): tenacity, backoff, stamina (through tenacity; sniffio
    is consulted first when installed), opnieuw (again under ``retry_immediately``, entered per call) and
    pyresilience.
    """
    out: dict[str, _AsyncCallable] = {}
    if (tenacity := _load("tenacity")) is not None:
        out["tenacity"] = tenacity.retry(
            stop=tenacity.stop_after_attempt(_THREE_FAILURES_ATTEMPTS), wait=tenacity.wait_none(), reraise=True
        )(_made_async(make))
    if (backoff := _load("backoff")) is not None:
        out["backoff"] = backoff.on_exception(
            backoff.constant, Exception, max_tries=_THREE_FAILURES_ATTEMPTS, jitter=None, logger=None, interval=0
        )(_made_async(make))
    if (stamina := _load("stamina")) is not None:
        out["stamina"] = _silent_stamina(stamina).retry(
            on=Exception, attempts=_THREE_FAILURES_ATTEMPTS, timeout=None, wait_initial=0, wait_max=0, wait_jitter=0
        )(_made_async(make))
    if (opnieuw := _load("opnieuw")) is not None:
        decorated = opnieuw.retry(
            retry_on_exceptions=Exception, max_calls_total=_THREE_FAILURES_ATTEMPTS, namespace=_OPNIEUW_NAMESPACE
        )(_made_async(make))
        out["opnieuw"] = _opnieuw_immediately_async(decorated)
    if (pyresilience := _load("pyresilience")) is not None:
        out["pyresilience"] = pyresilience.resilient(
            retry=pyresilience.RetryConfig(max_attempts=_THREE_FAILURES_ATTEMPTS, delay=0.0, jitter=False)
        )(_made_async(make))
    return out


def _made_async(make: Callable[[], Callable[[int], Awaitable[int]]]) -> Callable[[int], Awaitable[int]]:
    func = make()
    _require_coroutine_function(func)
    return func


# -- fallbacks ----------------------------------------------------------------------------
#
# Only pyresilience has a fallback feature that fits: FallbackConfig(handler=...). Its handler receives
# the exception only, not the call's arguments, so the handler calls ``second(_BENCH_ARGUMENT)``: these
# callables are right for the benchmark's argument 1 only.
# Not included: circuitbreaker's fallback_function runs only while the breaker is OPEN, never when the
# protected call fails, so it is no fallback chain. tenacity's retry_error_callback is a hook for when
# retries run out, not a fallback feature. The other peers have none.


def fallback_primary_success(func: Callable[[int], int], second: Callable[[int], int]) -> dict[str, _SyncCallable]:
    """``func`` with a fallback to ``second``; ``func`` succeeds."""
    return _fallback(func, second)


def fallback_to_second(failing: Callable[[int], int], second: Callable[[int], int]) -> dict[str, _SyncCallable]:
    """``failing`` with a fallback to ``second``; every call falls back."""
    return _fallback(failing, second)


def _fallback(primary: Callable[[int], int], second: Callable[[int], int]) -> dict[str, _SyncCallable]:
    out: dict[str, _SyncCallable] = {}
    if (pyresilience := _load("pyresilience")) is not None:

        def handler(exc: BaseException) -> int:
            return second(_BENCH_ARGUMENT)

        out["pyresilience"] = pyresilience.resilient(fallback=pyresilience.FallbackConfig(handler=handler))(primary)
    return out


def fallback_primary_success_async(
    func: Callable[[int], Awaitable[int]], second: Callable[[int], Awaitable[int]]
) -> dict[str, _AsyncCallable]:
    """Async :func:`fallback_primary_success`."""
    return _fallback_async(func, second)


def fallback_to_second_async(
    failing: Callable[[int], Awaitable[int]], second: Callable[[int], Awaitable[int]]
) -> dict[str, _AsyncCallable]:
    """Async :func:`fallback_to_second`."""
    return _fallback_async(failing, second)


def _fallback_async(
    primary: Callable[[int], Awaitable[int]], second: Callable[[int], Awaitable[int]]
) -> dict[str, _AsyncCallable]:
    _require_coroutine_function(primary)
    out: dict[str, _AsyncCallable] = {}
    if (pyresilience := _load("pyresilience")) is not None:
        # pyresilience awaits the handler only when it is a coroutine function.
        async def handler(exc: BaseException) -> int:
            return await second(_BENCH_ARGUMENT)

        out["pyresilience"] = pyresilience.resilient(fallback=pyresilience.FallbackConfig(handler=handler))(primary)
    return out


# -- timeouts -----------------------------------------------------------------------------
#
# Only pyresilience has a call timeout (stamina's and tenacity's timeouts bound the retrying, not a
# call). Its sync timeout runs every call in a worker thread (submit, then Future.result(timeout)), and
# TimeoutConfig's default pool_size=4 differs from its shared pool's size (min(32, cpus + 4)) on most
# machines, so each decorated function gets a private 4-thread pool. Its async timeout is
# asyncio.wait_for, which on Python < 3.12 wraps every call in a new Task.


def timeout_not_firing(func: Callable[[int], int]) -> dict[str, _SyncCallable]:
    """``func`` under a 10 s timeout that never fires."""
    out: dict[str, _SyncCallable] = {}
    if (pyresilience := _load("pyresilience")) is not None:
        out["pyresilience"] = pyresilience.resilient(timeout=pyresilience.TimeoutConfig(seconds=_TIMEOUT_SECONDS))(func)
    return out


def timeout_not_firing_async(func: Callable[[int], Awaitable[int]]) -> dict[str, _AsyncCallable]:
    """The coroutine function ``func`` under a 10 s timeout that never fires."""
    _require_coroutine_function(func)
    out: dict[str, _AsyncCallable] = {}
    if (pyresilience := _load("pyresilience")) is not None:
        out["pyresilience"] = pyresilience.resilient(timeout=pyresilience.TimeoutConfig(seconds=_TIMEOUT_SECONDS))(func)
    return out


# -- bulkheads ----------------------------------------------------------------------------
#
# Uncontended: a limit of 10 concurrent calls, never reached; no waiting. hyx's bulkhead is
# asyncio-only, so it is in the async builder alone.

_BULKHEAD_LIMIT = 10


def bulkhead_uncontended(func: Callable[[int], int]) -> dict[str, _SyncCallable]:
    """A bulkhead of 10 slots around ``func``; each call enters and leaves."""
    out: dict[str, _SyncCallable] = {}
    if (pyresilience := _load("pyresilience")) is not None:
        out["pyresilience"] = pyresilience.resilient(
            bulkhead=pyresilience.BulkheadConfig(max_concurrent=_BULKHEAD_LIMIT)
        )(func)
    return out


def bulkhead_uncontended_async(func: Callable[[int], Awaitable[int]]) -> dict[str, _AsyncCallable]:
    """As :func:`bulkhead_uncontended`, for a coroutine function."""
    _require_coroutine_function(func)
    out: dict[str, _AsyncCallable] = {}
    if (pyresilience := _load("pyresilience")) is not None:
        out["pyresilience"] = pyresilience.resilient(
            bulkhead=pyresilience.BulkheadConfig(max_concurrent=_BULKHEAD_LIMIT)
        )(func)
    if _load("hyx") is not None:
        from hyx.bulkhead import bulkhead as hyx_bulkhead

        out["hyx"] = hyx_bulkhead(max_concurrency=_BULKHEAD_LIMIT, max_capacity=_BULKHEAD_LIMIT)(func)
    return out


# -- rate limiters ------------------------------------------------------------------------
#
# Uncontended: a rate far above what a benchmark can call (10**9 per second), so every
# permit is granted at once; no waiting. Each peer in its cheapest in-memory setup:
# limits with its fixed window (its cheapest strategy), pyrate-limiter's in-memory
# bucket, aiolimiter (asyncio-only: in the async builder alone).

_RATE = 10**9


def rate_limit_uncontended(func: Callable[[int], int]) -> dict[str, _SyncCallable]:
    """A rate limiter of 10**9 calls per second around ``func``; each call takes a permit."""
    out: dict[str, _SyncCallable] = {}
    if _load("limits") is not None:
        from limits import RateLimitItemPerSecond
        from limits.storage import MemoryStorage
        from limits.strategies import FixedWindowRateLimiter

        limits_limiter = FixedWindowRateLimiter(MemoryStorage())
        item = RateLimitItemPerSecond(_RATE)

        def with_limits(x: int) -> int:
            if not limits_limiter.hit(item, "bench"):
                raise RuntimeError("limits refused a permit")
            return func(x)

        out["limits"] = with_limits
    if _load("pyrate_limiter") is not None:
        from pyrate_limiter import Duration, Limiter, Rate

        pyrate = Limiter(Rate(_RATE, Duration.SECOND))

        def with_pyrate(x: int) -> int:
            if not pyrate.try_acquire("bench"):
                raise RuntimeError("pyrate-limiter refused a permit")
            return func(x)

        out["pyrate-limiter"] = with_pyrate
    return out


def rate_limit_uncontended_async(func: Callable[[int], Awaitable[int]]) -> dict[str, _AsyncCallable]:
    """As :func:`rate_limit_uncontended`, for a coroutine function."""
    _require_coroutine_function(func)
    out: dict[str, _AsyncCallable] = {}
    if _load("aiolimiter") is not None:
        from aiolimiter import AsyncLimiter

        limiter = AsyncLimiter(_RATE, 1.0)

        async def with_aiolimiter(x: int) -> Any:
            async with limiter:
                return await func(x)

        out["aiolimiter"] = with_aiolimiter
    return out
