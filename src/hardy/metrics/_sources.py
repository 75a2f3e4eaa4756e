"""The registry of metric sources both exporters read, and hardy's own sources.

A source is a function returning a list of :class:`Family`: a metric's
name (Prometheus style: snake case, base unit, counters without their
``_total``), its kind (``"counter"`` or ``"gauge"``), its help text, its label
names and its samples, each a mapping of labels and a value. The Prometheus
collector and the OpenTelemetry instruments turn the same families into
their own types at collection time.

Components add themselves with :func:`add_source`: this module adds the
breakers (every live one, :mod:`hardy._live`), the retried functions,
timeouts and fallbacks (:mod:`hardy._tallies`).

Example::

    def bulkheads() -> list[Family]:
        family = Family("hardy_bulkhead_rejected", "counter", "Calls a bulkhead turned away.", ("name",))
        family.samples.extend(({"name": b.name}, b.rejected) for b in live_bulkheads())
        return [family]

    hardy.metrics.add_source(bulkheads)
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .. import _live, _log, _retry_events, _tallies
from ..state import STATE_BY_CODE

__all__ = ["Family", "add_source", "collect", "paused_gc", "remove_source"]

logger = _log.component("metrics")
T = TypeVar("T")
#: One sample: its labels and its value.
Sample = tuple[Mapping[str, str], float]


@dataclass(slots=True)
class Family:
    """One metric and its samples, as every exporter reads it.

    Example::

        Family("hardy_timeouts", "counter", "Timeouts that fired.", ("name",), [({"name": "fetch"}, 3.0)])
    """

    name: str
    kind: str  # "counter" or "gauge"
    help: str
    labels: tuple[str, ...]
    samples: list[Sample] = field(default_factory=list[Sample])
    unit: str = "1"  # for OpenTelemetry (UCUM); Prometheus names carry their unit already
    # More samples, in groups a source hands again as the very same tuple while
    # they do not change (one breaker's): exporters may reuse what they made of one.
    chunks: list[tuple[Sample, ...]] = field(default_factory=list[tuple[Sample, ...]])

    def all_samples(self) -> Iterator[Sample]:
        """Every sample: ``samples``, then those of ``chunks``."""
        yield from self.samples
        for chunk in self.chunks:
            yield from chunk


Source = Callable[[], list[Family]]

_lock = threading.Lock()
_sources: tuple[Source, ...] = ()


def add_source(source: Source) -> None:
    """Have every exporter read ``source()`` at each collection (once per function)."""
    global _sources
    if not callable(source):
        raise TypeError(f"source must be callable, got {source!r} ({type(source).__name__})")
    with _lock:
        if source not in _sources:
            _sources = (*_sources, source)


def remove_source(source: Source) -> None:
    """Stop reading ``source`` (nothing happens if it was not added)."""
    global _sources
    with _lock:
        _sources = tuple(s for s in _sources if s is not source)


def collect() -> list[Family]:
    """Every source's families, read now; a source that raises is logged and left out."""
    return paused_gc(_collect)


def paused_gc(read: Callable[[], T]) -> T:
    """``read()`` with the garbage collector paused.

    A scrape allocates a few objects per series, which with 10,000 breakers
    would otherwise trigger full collections that cost more than the scrape
    itself. Nothing it allocates forms a cycle.
    """
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        return read()
    finally:
        if paused:
            gc.enable()


def _collect() -> list[Family]:
    families: list[Family] = []
    for source in _sources:
        try:
            families.extend(source())
        except Exception as exc:
            _log.warn_limited(
                logger,
                ("source", id(source)),
                "metric source %r failed: %r",
                source,
                exc,
                extra=_log.fields("metrics", None, "source_failed", error_type=type(exc).__name__),
                level=logging.ERROR,
                exc_info=True,
            )
    return families


# -- the breakers -------------------------------------------------------------------------

# Every state a breaker can be in, in the order of the cores' state codes.
_STATES = tuple(state.value for state in STATE_BY_CODE)
_N = len(_STATES)
_OUTCOMES = ("success", "failure", "ignored", "rejected")
# name -> (its counts at the last scrape, its samples then): a breaker whose
# counts did not change reuses its samples, the very same objects, which lets
# the exporters reuse what they made of them (most breakers are idle between
# two scrapes, and building samples is most of a scrape's cost).
_last: dict[str, Any] = {}
_labels: dict[str, tuple[Mapping[str, str], ...]] = {}


def _labels_of(name: str) -> tuple[Mapping[str, str], ...]:
    labels = _labels.get(name)
    if labels is None:
        labels = (
            *({"name": name, "state": state} for state in _STATES),
            *({"name": name, "outcome": outcome} for outcome in _OUTCOMES),
            {"name": name},
        )
        _labels[name] = labels
    return labels


def _samples_of(counts: tuple[Any, ...]) -> Any:
    name, state, successes, failures, ignored, rejections, opened = counts
    labels = _labels_of(name)
    if isinstance(state, int):  # one breaker: a state code (hardy.policies.breaker)
        states = tuple((labels[code], int(state == code)) for code in range(_N))
    else:  # breakers added up: how many are in each state
        states = tuple((labels[code], state[code]) for code in range(_N))
    outcomes = (
        (labels[_N], successes),
        (labels[_N + 1], failures),
        (labels[_N + 2], ignored),
        (labels[_N + 3], rejections),
    )
    return (counts, states, outcomes, ((labels[_N + 4], opened),))


def breakers() -> list[Family]:
    """Every live breaker's state and counts. Breakers that share a name are added up."""
    global _last
    counts = [breaker._counts() for breaker in _live.breakers()]
    if len({row[0] for row in counts}) != len(counts):
        counts = _added_up(counts)
    state_family = Family(
        "hardy_circuit_breaker_state",
        "gauge",
        "1 for the state each circuit breaker is in, 0 for the others (breakers sharing a name: how many are in it).",
        ("name", "state"),
    )
    calls = Family(
        "hardy_circuit_breaker_calls",
        "counter",
        "Calls through each circuit breaker by outcome: success, failure, ignored (excluded exceptions), rejected.",
        ("name", "outcome"),
        unit="{call}",
    )
    opened = Family("hardy_circuit_breaker_opened", "counter", "Times each circuit breaker opened.", ("name",))
    add_states = state_family.chunks.append
    add_outcomes = calls.chunks.append
    add_opened = opened.chunks.append
    last = _last.get
    now: dict[str, Any] = {}
    for row in counts:
        before = last(row[0])
        entry = before if before is not None and before[0] == row else _samples_of(row)
        now[row[0]] = entry
        add_states(entry[1])
        add_outcomes(entry[2])
        add_opened(entry[3])
    _last = now
    if len(_labels) > 2 * len(now) + 1000:  # names of breakers long gone
        for gone in set(_labels) - set(now):
            _labels.pop(gone, None)
    return [state_family, calls, opened]


def _added_up(counts: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """One row per name: states as counts per state, the counts summed."""
    rows: dict[str, list[Any]] = {}
    for name, state, *numbers in counts:
        row = rows.get(name)
        if row is None:
            row = rows[name] = [name, [0] * _N, 0, 0, 0, 0, 0]
        row[1][state] += 1
        for index, number in enumerate(numbers, 2):
            row[index] += number
    return [tuple(row) for row in rows.values()]


# -- retries, timeouts, fallbacks ---------------------------------------------------------


def _tally(name: str, text: str, tally: dict[str, int], unit: str = "1") -> Family:
    family = Family(name, "counter", text, ("name",), unit=unit)
    family.samples.extend(({"name": key}, float(value)) for key, value in tally.items())
    return family


def tallies() -> list[Family]:
    """Retries and give-ups per retried function, timeouts fired and fallbacks used per operation."""
    retries, giveups = _retry_events.counts()
    return [
        _tally("hardy_retries", "Retries made by each retried function (attempts after the first).", retries),
        _tally(
            "hardy_retry_giveups",
            "Calls each retried function gave up on (out of attempts or out of time) with a retryable failure.",
            giveups,
        ),
        _tally("hardy_timeouts", "Timeouts that fired, by operation.", _tallies.snapshot(_tallies.timeouts)),
        _tally(
            "hardy_fallbacks",
            "Fallbacks used, by chain or timed operation: a later function, a default or a timeout's fallback "
            "answered.",
            _tallies.snapshot(_tallies.fallbacks),
        ),
    ]


add_source(breakers)
add_source(tallies)
