"""Run every test against both cores: the compiled ``_core_c`` and the twin.

The autouse ``core`` fixture is parametrised over ``"c"`` and ``"py"`` and
patches the core's names into ``hardy._core`` and ``hardy``, so a test written
against the public API (``hardy.CircuitBreaker``, ``hardy.circuit_breaker``,
...) runs once per implementation. With the default ``--c-extensions`` a
missing compiled module makes the ``[c]`` tests *error*, never skip; pass
``--no-c-extensions`` to test a pure build on purpose.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from types import ModuleType

import pytest

import hardy
from hardy import _core, _log

CORE_NAMES = (
    "IMPLEMENTATION",
    "CircuitBreaker",
    "RetryConfig",
    "chain",
    "protect",
    "retrying",
    "timed",
    "timed_async",
    "async_deadlines",
    "await_within",
    "Bulkhead",
    "guard_bulkhead",
    "RateLimiter",
    "guard_rate_limit",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--c-extensions",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the tests against the compiled core too (default: yes)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--c-extensions"):
        return
    selected = [item for item in items if "c_extension" not in item.keywords]
    deselected = [item for item in items if "c_extension" in item.keywords]
    config.hook.pytest_deselected(items=deselected)
    items[:] = selected


@pytest.fixture(
    params=[pytest.param("c", marks=pytest.mark.c_extension), "py"],
    autouse=True,
)
def core(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The core module under test, patched into ``hardy`` for the test's duration."""
    module = _core.load(request.param)
    for name in CORE_NAMES:
        monkeypatch.setattr(_core, name, getattr(module, name))
        if hasattr(hardy, name):
            monkeypatch.setattr(hardy, name, getattr(module, name))
    hardy.registry.clear()
    hardy.bulkheads.clear()
    _log.reset_limits()  # a warning one test logged must not be held back in the next
    hardy.rate_limiters.clear()
    yield module
    hardy.registry.clear()
    hardy.bulkheads.clear()
    hardy.rate_limiters.clear()


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
