"""A pytest plugin (entry point ``pytest11``, found when hardy is installed): hardy's test fixtures.

``instant_retries`` makes every retry sleep instant for the test and
yields the :class:`~hardy.testing.SleepRecord`; ``hardy_registry`` clears
the global breaker registry before and after the test, so a breaker opened
in one test does not reject calls in the next. Neither is autouse: ask for
them, or make them autouse in a ``conftest.py``.

Example::

    def test_fetch_retries(instant_retries):
        fetch()
        assert instant_retries.count == 2

    @pytest.fixture(autouse=True)
    def _clean_breakers(hardy_registry):
        yield

Cap attempts too with the marker ``@pytest.mark.hardy_max_attempts(1)``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import breaker, testing
from ._sleep import SleepRecord

__all__ = ["instant_retries", "hardy_registry"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hardy_max_attempts(n): with instant_retries, cap every retry at n attempts")


@pytest.fixture
def instant_retries(request: pytest.FixtureRequest) -> Iterator[SleepRecord]:
    """Instant retries for the test (``hardy.testing.instant_retries``); yields the record of the sleeps."""
    marker = request.node.get_closest_marker("hardy_max_attempts")
    cap = None if marker is None else marker.args[0]
    with testing.instant_retries(max_attempts=cap) as record:
        yield record


@pytest.fixture
def hardy_registry() -> Iterator[breaker.BreakerRegistry]:
    """The global breaker registry, cleared before and after the test."""
    breaker.registry.clear()
    yield breaker.registry
    breaker.registry.clear()
