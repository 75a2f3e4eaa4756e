"""Retry cost: hardy (compiled and pure) beside the floors and peers.

Run: ``python -m pytest benchmarks -k retry --benchmark-only``; the target
ratios come from ``python -m benchmarks.targets``.
"""

from __future__ import annotations

from typing import Any

import pytest

from ._harness import PARTIAL, load_core, peer, unrolled, work

tenacity = peer("tenacity")
backoff = peer("backoff")
stamina = peer("stamina")


def mini_retry(func: Any, attempts: int = 3) -> Any:
    """The floor for the twin: a minimal hand-written Python retry loop."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for attempt in range(attempts):
            try:
                return func(*args, **kwargs)
            except Exception:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    return wrapper


def _hardy(name: str, func: Any, **settings: Any) -> Any:
    core = load_core(name)
    return core.retrying(core.RetryConfig(**settings), func)


# -- success on the first attempt ---------------------------------------------------

FIRST: dict[str, Any] = {
    "bare": lambda: work,
    "partial": lambda: PARTIAL,
    "mini-retry": lambda: mini_retry(work),
    "hardy-c": lambda: _hardy("c", work),
    "hardy-py": lambda: _hardy("py", work),
}
if tenacity is not None:
    FIRST["tenacity"] = lambda: tenacity.retry(stop=tenacity.stop_after_attempt(3))(work)
if backoff is not None:
    FIRST["backoff"] = lambda: backoff.on_exception(backoff.expo, Exception, max_tries=3)(work)
if stamina is not None:
    FIRST["stamina"] = lambda: stamina.retry(on=Exception, attempts=3)(work)


@pytest.mark.benchmark(group="retry-first-attempt-success")
@pytest.mark.parametrize("case", list(FIRST))
def test_first_attempt_success(benchmark: Any, case: str) -> None:
    benchmark(unrolled(FIRST[case]()))


# -- three failures, then success, zero delay --------------------------------------


def three_failures_then_success() -> Any:
    calls = 0

    def func(x: int) -> int:
        nonlocal calls
        calls += 1
        if calls % 4:
            raise ValueError("x")
        return x

    return func


def three_raises_floor(x: int) -> int:
    """The floor: three raise-and-catch of a fresh ValueError, in the same frame."""
    for _ in range(3):
        try:
            raise ValueError("x")
        except ValueError:
            pass
    return x


ZERO_WAIT = {"max_attempts": 4, "initial_delay": 0.0, "max_delay": 0.0}
THREE_FAILURES: dict[str, Any] = {
    "floor-3-raises": lambda: three_raises_floor,
    "mini-retry": lambda: mini_retry(three_failures_then_success(), attempts=4),
    "hardy-c": lambda: _hardy("c", three_failures_then_success(), **ZERO_WAIT),
    "hardy-py": lambda: _hardy("py", three_failures_then_success(), **ZERO_WAIT),
}
if tenacity is not None:
    THREE_FAILURES["tenacity"] = lambda: tenacity.retry(stop=tenacity.stop_after_attempt(4), wait=tenacity.wait_none())(
        three_failures_then_success()
    )
if backoff is not None:
    THREE_FAILURES["backoff"] = lambda: backoff.on_exception(
        backoff.constant, Exception, max_tries=4, interval=0, jitter=None
    )(three_failures_then_success())
if stamina is not None:
    THREE_FAILURES["stamina"] = lambda: stamina.retry(
        on=Exception, attempts=4, wait_initial=0, wait_max=0, wait_jitter=0
    )(three_failures_then_success())


@pytest.mark.benchmark(group="retry-three-failures-zero-delay")
@pytest.mark.parametrize("case", list(THREE_FAILURES))
def test_three_failures_then_success(benchmark: Any, case: str) -> None:
    benchmark(unrolled(THREE_FAILURES[case]()))


# -- get_delay -------------------------------------------------------------------------


@pytest.mark.benchmark(group="retry-get-delay")
@pytest.mark.parametrize("implementation", ["c", "py"])
def test_get_delay(benchmark: Any, implementation: str) -> None:
    config = load_core(implementation).RetryConfig()  # full jitter, the default
    benchmark(unrolled(config.get_delay, 3))


@pytest.mark.benchmark(group="retry-get-delay")
def test_get_delay_floor_float(benchmark: Any) -> None:
    """For scale: ``float(3)``, about the cheapest call of a C function there is."""
    benchmark(unrolled(float, 3))
