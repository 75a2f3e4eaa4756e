"""hardy's metrics for prometheus-client (``pip install "hardy[prometheus]"``).

:class:`HardyCollector` reads every live circuit breaker's state and counts,
every live bulkhead's and rate limiter's, and every retried function's,
timeout's and fallback's, when Prometheus scrapes: a call pays nothing for
being measured. :func:`register` adds one to a registry (the default one
when none is given).

The metrics (``name`` is the breaker's, bulkhead's or rate limiter's name,
the retried function's ``module.qualname``, the fallback chain's name or the
timed operation):

* ``hardy_circuit_breaker_state{name, state}``: gauge, 1 for the breaker's
  state (``closed``, ``open``, ``half_open``, ``forced_open``, ``disabled``),
  0 for the others;
* ``hardy_circuit_breaker_calls_total{name, outcome}``: counter, outcome
  ``success``, ``failure``, ``ignored`` (an excluded exception) or ``rejected``;
* ``hardy_circuit_breaker_opened_total{name}``: counter, times opened;
* ``hardy_bulkhead_calls_total{name, outcome}`` (``admitted``, ``rejected``),
  ``hardy_bulkhead_waited_calls_total{name}``, and the gauges
  ``hardy_bulkhead_concurrent_calls``, ``hardy_bulkhead_waiting_calls`` and
  ``hardy_bulkhead_max_concurrent_calls`` (``{name}``);
* ``hardy_rate_limiter_calls_total{name, outcome}`` (``permitted``,
  ``rejected``), ``hardy_rate_limiter_waited_calls_total{name}``, and the
  gauges ``hardy_rate_limiter_available_permits``,
  ``hardy_rate_limiter_burst_permits`` and
  ``hardy_rate_limiter_permits_per_second`` (``{name}``);
* ``hardy_retries_total{name}`` and ``hardy_retry_giveups_total{name}``;
* ``hardy_timeouts_total{name}`` (timeouts fired) and
  ``hardy_fallbacks_total{name}`` (fallbacks used).

Example::

    import prometheus_client
    import hardy.metrics.prometheus

    hardy.metrics.prometheus.register()
    prometheus_client.start_http_server(9100)
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, cast

try:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import REGISTRY, Collector
    from prometheus_client.samples import Sample
except ModuleNotFoundError as _missing:  # pragma: no cover - depends on the install
    raise ModuleNotFoundError(
        'hardy.metrics.prometheus needs prometheus-client: pip install "hardy[prometheus]"', name=_missing.name
    ) from _missing

from . import _sources

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

__all__ = ["HardyCollector", "register"]


class HardyCollector(Collector):
    """A prometheus-client collector of every hardy metric, read at scrape time.

    Register it once per registry (:func:`register` does). ``describe()``
    returns nothing, so a registry never collects it at registration: names
    come and go with the breakers and functions of the process.

    Example::

        registry = prometheus_client.CollectorRegistry()
        registry.register(hardy.metrics.prometheus.HardyCollector())
        print(prometheus_client.generate_latest(registry).decode())
    """

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        return iter(_sources.paused_gc(self._metrics))

    def __init__(self) -> None:
        # Per sample name: the chunks of the last collection and the Samples made of each.
        # A source that hands the same chunk again (a breaker that did not change) gets the same Samples.
        self._made: dict[str, tuple[list[Any], list[tuple[Sample, ...]]]] = {}
        # The breakers' Samples of the last collection (hardy._scrape.ScrapeSeries), made by the
        # scrape's builder straight from the breakers' counts: those that did not change are reused.
        self._series: Any = None

    def _metrics(self) -> list[Metric]:
        metrics: list[Metric] = []
        kept: dict[str, tuple[list[Any], list[tuple[Sample, ...]]]] = {}
        for source in _sources.sources():
            if source is _sources.breakers and _DIRECT:
                metrics += self._breakers()
                continue
            for family in _sources.read(source):
                metric = Metric(family.name, family.help, family.kind)
                name = _sample_name(family.name, family.kind)
                samples = _samples(name, family.samples)
                if family.chunks:
                    made = _sources.made_of(family.chunks, self._made.get(name), functools.partial(_sample_tuple, name))
                    kept[name] = (family.chunks, made)
                    samples.extend(itertools.chain.from_iterable(made))
                metric.samples = samples
                metrics.append(metric)
        self._made = kept
        return metrics

    def _breakers(self) -> list[Metric]:
        """The breakers' metrics, their Samples made in one pass over the breakers (the ``breakers`` source's)."""
        try:
            series = _sources.breaker_series(self._series, Sample, _BREAKER_SAMPLES)
        except Exception as exc:
            _sources.failed(_sources.breakers, exc)
            return []
        self._series = series
        metrics: list[Metric] = []
        for (name, kind, text, _, _), samples in zip(_sources.BREAKER_FAMILIES, series.exported(), strict=True):
            metric = Metric(name, text, kind)
            metric.samples = samples  # a copy: the series keeps its own for the next collection
            metrics.append(metric)
        return metrics


def _sample_name(name: str, kind: str) -> str:
    return f"{name}_total" if kind == "counter" else name


# The builder makes Samples itself (hardy._scrape) for prometheus-client's Sample of six fields.
_DIRECT = issubclass(Sample, tuple) and Sample._fields == (
    "name",
    "labels",
    "value",
    "timestamp",
    "exemplar",
    "native_histogram",
)
_BREAKER_SAMPLES = cast(
    "tuple[str, str, str]", tuple(_sample_name(name, kind) for name, kind, *_ in _sources.BREAKER_FAMILIES)
)


def _sample_tuple(name: str, chunk: Iterable[tuple[Any, float]]) -> tuple[Sample, ...]:
    new = _new_sample
    return tuple([new(Sample, (name, labels, value, None, None, None)) for labels, value in chunk])


_new_sample = cast("Callable[[type[Sample], tuple[Any, ...]], Sample]", tuple.__new__)  # pyright: ignore[reportUnknownMemberType]


def _samples(name: str, pairs: Iterable[tuple[Any, float]]) -> list[Sample]:
    # Made directly (Sample's fields in order): add_metric would copy every label
    # mapping, and the namedtuple's __new__ is Python code.
    new = _new_sample
    return [new(Sample, (name, labels, value, None, None, None)) for labels, value in pairs]


def register(registry: CollectorRegistry | None = None) -> HardyCollector:
    """Register a :class:`HardyCollector` with ``registry`` (prometheus-client's default one if ``None``).

    Returns the collector, for ``registry.unregister(collector)``. A
    registry already holding one raises ``ValueError``, as registering any
    collector twice does in prometheus-client.

    Example::

        collector = hardy.metrics.prometheus.register()
    """
    target: Any = REGISTRY if registry is None else registry
    if not hasattr(target, "register"):
        raise TypeError(f"registry must be a prometheus_client CollectorRegistry or None, got {registry!r}")
    for existing in list(getattr(target, "_collector_to_names", {})):
        if isinstance(existing, HardyCollector):
            raise ValueError(f"registry {registry!r} already has a HardyCollector: register it once")
    collector = HardyCollector()
    target.register(collector)
    return collector
