"""The registry of metric sources both exporters read, and hardy's own sources.

A source is a function returning a list of :class:`Family`: a metric's
name (Prometheus style: snake case, base unit, counters without their
``_total``), its kind (``"counter"`` or ``"gauge"``), its help text, its label
names and its samples, each a mapping of labels and a value. The Prometheus
collector and the OpenTelemetry instruments turn the same families into
their own types at collection time.

Components add themselves with :func:`add_source`: this module adds the
breakers, bulkheads and rate limiters (every live one, :mod:`hardy._live`),
the retried functions, timeouts and fallbacks (:mod:`hardy._tallies`).

Example::

    def queues() -> list[Family]:
        family = Family("hardy_queue_depth", "gauge", "Jobs waiting, per queue.", ("name",))
        family.samples.extend(({"name": name}, len(queue)) for name, queue in my_queues.items())
        return [family]

    hardy.metrics.add_source(queues)
"""

from __future__ import annotations

import gc
import itertools
import logging
import operator
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .. import _core, _live, _log, _retry_events, _tallies
from ..state import STATE_BY_CODE

__all__ = ["Family", "add_source", "collect", "made_of", "paused_gc", "remove_source"]

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


def made_of(chunks: list[Any], last: tuple[list[Any], list[T]] | None, make: Callable[[Any], T]) -> list[T]:
    """What an exporter makes of each chunk: what it made last time of a chunk seen then, else ``make(chunk)``.

    ``last`` is the previous collection's ``(chunks, made)`` for the same
    metric. The comparisons run in C (identity, position by position while
    the breakers are the same), so a collection's Python code runs for the
    chunks that changed only.
    """
    if last is None:
        return [make(chunk) for chunk in chunks]
    seen, seen_made = last
    made: list[Any]
    if len(seen) == len(chunks):  # the same breakers as last time, most likely: compare in place
        made = list(seen_made)
        stale = itertools.compress(range(len(made)), map(operator.is_not, chunks, seen))
    else:
        # The chunks of the last collection are alive (``last`` holds them): their ids are theirs alone.
        made = list(map(dict(zip(map(id, seen), seen_made, strict=True)).get, map(id, chunks)))
        stale = itertools.compress(range(len(made)), map(operator.is_, made, itertools.repeat(None)))
    for index in stale:
        made[index] = make(chunks[index])
    return made


def sources() -> tuple[Source, ...]:
    """The registered sources, in the order they were added."""
    return _sources


def read(source: Source) -> list[Family]:
    """``source()``'s families; a source that raises is logged (rate-limited) and gives none."""
    try:
        return source()
    except Exception as exc:
        failed(source, exc)
        return []


def failed(source: Source, exc: Exception) -> None:
    """Log that ``source`` raised ``exc`` (rate-limited per source)."""
    _log.warn_limited(
        logger,
        ("source", id(source)),
        "metric source %r failed: %r",
        source,
        exc,
        extra=_log.fields("metrics", None, "source_failed", error_type=type(exc).__name__),
        level=logging.ERROR,
        exc_info=(type(exc), exc, exc.__traceback__),
    )


def _collect() -> list[Family]:
    families: list[Family] = []
    for source in _sources:
        families.extend(read(source))
    return families


# -- the breakers -------------------------------------------------------------------------

# Every state a breaker can be in, in the order of the cores' state codes.
_STATES = tuple(state.value for state in STATE_BY_CODE)
_N = len(_STATES)
_read_counts = operator.methodcaller("_counts")
_name_of = operator.itemgetter(0)
#: The breakers' metrics: name, kind, help, labels, unit (their samples come from the scrape's builder).
BREAKER_FAMILIES = (
    (
        "hardy_circuit_breaker_state",
        "gauge",
        "1 for the state each circuit breaker is in, 0 for the others (breakers sharing a name: how many are in it).",
        ("name", "state"),
        "1",
    ),
    (
        "hardy_circuit_breaker_calls",
        "counter",
        "Calls through each circuit breaker by outcome: success, failure, ignored (excluded exceptions), rejected.",
        ("name", "outcome"),
        "{call}",
    ),
    ("hardy_circuit_breaker_opened", "counter", "Times each circuit breaker opened.", ("name",), "1"),
)
_PAIRS = ("", "", "")  # the builder's metric names when it makes (labels, value) pairs: unused

# Each breaker name's label mappings (hardy._scrape), made at its first scrape and
# shared by every consumer, so a later scrape of the same names makes none.
_labels: dict[str, tuple[dict[str, str], ...]] = {}
_labels_lock = threading.Lock()


def builder() -> Any:
    """The running core (hardy._core_c or hardy._core_py), which holds the scrape's builder (hardy._scrape)."""
    return _core.load(_core.IMPLEMENTATION)


def breaker_rows() -> tuple[list[str], list[tuple[Any, ...]]]:
    """Every live breaker's ``_counts()`` row and their names, one row per name (sharing a name: added up)."""
    rows = list(map(_read_counts, _live.breakers()))
    names = list(map(_name_of, rows))
    if len(set(names)) != len(names):
        rows = _added_up(rows, names)
        names = list(map(_name_of, rows))
    return names, rows


def breaker_series(last: Any, kind: Any, metrics: tuple[str, str, str]) -> Any:
    """The breakers' chunks now, made by the scrape's builder from ``last`` (a ``ScrapeSeries``).

    ``kind`` is None for ``(labels, value)`` pairs, or prometheus-client's
    ``Sample`` named ``metrics``. The label cache is shared by every consumer
    (a lock: two exporters may scrape at once).
    """
    names, rows = breaker_rows()
    core = builder()
    if not isinstance(last, core.ScrapeSeries):  # the first scrape, or the other core's series (tests switch)
        last = core.scrape_series()
    with _labels_lock:
        series = core.scrape_breakers(last, names, rows, _labels, _STATES, kind, metrics)
        if len(_labels) > 2 * len(names) + 1000:  # names of breakers long gone
            for gone in set(_labels) - set(names):
                _labels.pop(gone, None)
    return series


_last: Any = None


def breakers() -> list[Family]:
    """Every live breaker's state and counts. Breakers that share a name are added up."""
    global _last
    series = _last = breaker_series(_last, None, _PAIRS)
    return [
        Family(name, kind, text, labels, unit=unit, chunks=list(chunks))
        for (name, kind, text, labels, unit), chunks in zip(BREAKER_FAMILIES, series.chunks(), strict=True)
    ]


def _added_up(rows: list[tuple[Any, ...]], names: list[str]) -> list[tuple[Any, ...]]:
    """One row per name: a shared name's states as counts per state and its counts summed.

    The other rows stay as they are (the same tuples, which the scrape's
    builder compares with the last scrape's), and only the shared names' rows
    are read in Python, so a few breakers sharing a name cost a scrape of
    thousands little more than their own rows.
    """
    # A name's last index, against each index: the rows before a name's last one are the shared names'.
    last = dict(zip(names, itertools.count()))
    shared = set(itertools.compress(names, map(operator.ne, map(last.__getitem__, names), itertools.count())))
    totals: dict[str, list[Any]] = {}
    kept = [True] * len(rows)
    for index in itertools.compress(range(len(rows)), map(shared.__contains__, names)):
        name, state, *numbers = rows[index]
        total = totals.get(name)
        if total is None:  # the name's first row: its total takes the row's place
            total = totals[name] = [index, [0] * _N, 0, 0, 0, 0, 0]
        else:
            kept[index] = False
        total[1][state] += 1
        for at, number in enumerate(numbers, 2):
            total[at] += number
    merged = list(rows)
    for name, (index, states, *numbers) in totals.items():
        merged[index] = (name, tuple(states), *numbers)
    return list(itertools.compress(merged, kept))


# -- bulkheads and rate limiters ----------------------------------------------------------


def _summed(stats: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """``keys`` of each ``get_stats()``, added up per name (objects sharing a name are one series)."""
    by_name: dict[str, dict[str, float]] = {}
    for one in stats:
        row = by_name.get(one["name"])
        if row is None:
            by_name[one["name"]] = {key: one[key] for key in keys}
        else:
            for key in keys:
                row[key] += one[key]
    return by_name


_BULKHEAD_KEYS = ("admitted", "rejections", "waited", "active", "waiting", "max_concurrent")


def bulkheads() -> list[Family]:
    """Every live bulkhead's calls by outcome, its waits and its slots. Bulkheads sharing a name are added up."""
    rows = _summed([pool.get_stats() for pool in _live.bulkheads.live()], _BULKHEAD_KEYS)
    calls = Family(
        "hardy_bulkhead_calls",
        "counter",
        "Calls through each bulkhead by outcome: admitted (at once or after waiting), rejected (full).",
        ("name", "outcome"),
        unit="{call}",
    )
    waited = Family(
        "hardy_bulkhead_waited_calls",
        "counter",
        "Calls each bulkhead admitted after waiting for a slot (part of the admitted ones).",
        ("name",),
        unit="{call}",
    )
    active = Family(
        "hardy_bulkhead_concurrent_calls", "gauge", "Calls inside each bulkhead now.", ("name",), unit="{call}"
    )
    waiting = Family(
        "hardy_bulkhead_waiting_calls",
        "gauge",
        "Calls waiting for a slot of each bulkhead now.",
        ("name",),
        unit="{call}",
    )
    limit = Family(
        "hardy_bulkhead_max_concurrent_calls",
        "gauge",
        "How many calls each bulkhead lets in at once (its max_concurrent).",
        ("name",),
        unit="{call}",
    )
    for name, row in rows.items():
        labels = {"name": name}
        calls.samples.append(({"name": name, "outcome": "admitted"}, row["admitted"]))
        calls.samples.append(({"name": name, "outcome": "rejected"}, row["rejections"]))
        waited.samples.append((labels, row["waited"]))
        active.samples.append((labels, row["active"]))
        waiting.samples.append((labels, row["waiting"]))
        limit.samples.append((labels, row["max_concurrent"]))
    return [calls, waited, active, waiting, limit]


_LIMITER_KEYS = ("admitted", "rejections", "waited", "available", "burst", "per_second")


def rate_limiters() -> list[Family]:
    """Every live rate limiter's calls by outcome, its waits and its permits. Limiters sharing a name are added up."""
    stats: list[dict[str, Any]] = []
    for limiter in _live.rate_limiters.live():
        one = limiter.get_stats()
        one["per_second"] = one["rate"] / one["period"]
        stats.append(one)
    rows = _summed(stats, _LIMITER_KEYS)
    calls = Family(
        "hardy_rate_limiter_calls",
        "counter",
        "Calls through each rate limiter by outcome: permitted (at once or after waiting), rejected (over the rate).",
        ("name", "outcome"),
        unit="{call}",
    )
    waited = Family(
        "hardy_rate_limiter_waited_calls",
        "counter",
        "Calls each rate limiter permitted after waiting for a permit (part of the permitted ones).",
        ("name",),
        unit="{call}",
    )
    available = Family(
        "hardy_rate_limiter_available_permits",
        "gauge",
        "Permits each rate limiter could hand out now without waiting.",
        ("name",),
        unit="{permit}",
    )
    burst = Family(
        "hardy_rate_limiter_burst_permits",
        "gauge",
        "Permits each rate limiter hands out at once after a quiet period (its burst).",
        ("name",),
        unit="{permit}",
    )
    rate = Family(
        "hardy_rate_limiter_permits_per_second",
        "gauge",
        "Permits each rate limiter hands out per second at steady state (rate / period).",
        ("name",),
        unit="{permit}/s",
    )
    for name, row in rows.items():
        labels = {"name": name}
        calls.samples.append(({"name": name, "outcome": "permitted"}, row["admitted"]))
        calls.samples.append(({"name": name, "outcome": "rejected"}, row["rejections"]))
        waited.samples.append((labels, row["waited"]))
        available.samples.append((labels, row["available"]))
        burst.samples.append((labels, row["burst"]))
        rate.samples.append((labels, row["per_second"]))
    return [calls, waited, available, burst, rate]


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
add_source(bulkheads)
add_source(rate_limiters)
add_source(tallies)
