"""Fallback and timeout cost: hardy beside the floors.

Run: ``python -m pytest benchmarks -k "fallback or timeout" --benchmark-only``.
"""

from __future__ import annotations

from typing import Any

import pytest

import hardy

from ._harness import PARTIAL, load_core, unrolled, work


def _chain(implementation: str, *funcs: Any) -> Any:
    return load_core(implementation).chain("bench", funcs, hardy._sentinel.NO_DEFAULT, (Exception,), False)


def _down(x: int) -> int:
    raise ValueError("x")


FALLBACK: dict[str, Any] = {
    "bare": lambda: work,
    "partial": lambda: PARTIAL,
    "hardy-c": lambda: _chain("c", work, work),
    "hardy-py": lambda: _chain("py", work, work),
}


@pytest.mark.benchmark(group="fallback-primary-success")
@pytest.mark.parametrize("case", list(FALLBACK))
def test_fallback_primary_success(benchmark: Any, case: str) -> None:
    benchmark(unrolled(FALLBACK[case]()))


SECOND: dict[str, Any] = {
    "hardy-c": lambda: _chain("c", _down, work),
    "hardy-py": lambda: _chain("py", _down, work),
}


@pytest.mark.benchmark(group="fallback-to-second")
@pytest.mark.parametrize("case", list(SECOND))
def test_fallback_to_second(benchmark: Any, case: str) -> None:
    benchmark(unrolled(SECOND[case]()))


TIMEOUT: dict[str, Any] = {
    "bare": lambda: work,
    "hardy": lambda: hardy.timeout(10.0)(work),
}


@pytest.mark.benchmark(group="timeout-sync-not-firing")
@pytest.mark.parametrize("case", list(TIMEOUT))
def test_timeout_not_firing(benchmark: Any, case: str) -> None:
    benchmark(unrolled(TIMEOUT[case]()))
