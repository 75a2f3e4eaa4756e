"""hardy's metrics and span events for OpenTelemetry (``pip install "hardy[otel]"``).

:func:`instrument` creates one observable instrument per hardy metric on a
meter (the global meter provider's when none is given): their callbacks read
the same counters as the Prometheus collector, when the SDK collects, so a
call pays nothing for being measured. The instruments carry the Prometheus
names (``hardy_circuit_breaker_calls``, counter, unit ``{call}``; see
:mod:`hardy.metrics.prometheus`), so an OpenTelemetry-to-Prometheus pipeline
serves the same dashboard.

It also adds span events to the current span, only on the paths that are
not a plain success: ``hardy.retry``, ``hardy.giveup``, ``hardy.rejection``,
``hardy.state_change``, ``hardy.fallback`` and ``hardy.timeout``, with
attributes ``hardy.source`` and the event's data (``hardy.attempt``,
``hardy.delay``, ``hardy.error_type``, ``hardy.by`` for a rejection...).
Rejection events make a rejection (by an open breaker, a full bulkhead, a
rate limiter over its rate) call into Python (see :mod:`hardy.events`); pass
``span_events=False`` for metrics alone.

Example::

    from opentelemetry.sdk.metrics import MeterProvider
    import hardy.metrics.otel

    instrumentation = hardy.metrics.otel.instrument(MeterProvider(metric_readers=[reader]))
    ...
    instrumentation.close()
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

try:
    from opentelemetry import metrics, trace
except ModuleNotFoundError as _missing:  # pragma: no cover - depends on the install
    raise ModuleNotFoundError(
        'hardy.metrics.otel needs opentelemetry-api: pip install "hardy[otel]"', name=_missing.name
    ) from _missing

from .. import __version__, events
from . import _sources
from ._sources import Family

__all__ = ["SPAN_EVENT_KINDS", "Instrumentation", "instrument"]

#: The events that become span events.
SPAN_EVENT_KINDS = frozenset({"retry", "giveup", "rejection", "state_change", "fallback", "timeout"})

_instrumented: weakref.WeakSet[Any] = weakref.WeakSet()
_instrumented_lock = threading.Lock()


class _Reader:
    """One reading of every source per collection, shared by the instruments' callbacks.

    The SDK calls each instrument's callback once per collection, in an order
    of its own: a callback asking again for a family it was already served
    starts the next collection's reading.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._families: dict[str, Family] | None = None
        self._served: set[str] = set()
        # Per metric: the chunks of the last collection and the Observations made of each
        # (a breaker that did not change hands the same chunk, and gets the same Observations).
        self._made: dict[str, tuple[list[Any], list[tuple[metrics.Observation, ...]]]] = {}
        self.closed = False

    def family(self, name: str) -> Family | None:
        with self._lock:
            if self._families is None or name in self._served:
                families: dict[str, Family] = {}
                for family in _sources.collect():
                    families.setdefault(family.name, family)
                self._families = families
                self._served = set()
            self._served.add(name)
            return self._families.get(name)

    def observations(self, name: str) -> list[metrics.Observation]:
        """The Observations of metric ``name`` at this collection."""
        family = self.family(name)
        if family is None:
            return []
        found = [metrics.Observation(value, dict(labels)) for labels, value in family.samples]
        if family.chunks:
            with self._lock:
                last = self._made.get(name)
            made = _sources.paused_gc(lambda: _sources.made_of(family.chunks, last, _observed))
            with self._lock:
                self._made[name] = (family.chunks, made)
            found.extend(itertools.chain.from_iterable(made))
        return found


def _observed(chunk: Iterable[tuple[Any, float]]) -> tuple[metrics.Observation, ...]:
    return tuple([metrics.Observation(value, dict(labels)) for labels, value in chunk])


class Instrumentation:
    """What :func:`instrument` set up; :meth:`close` stops its span events and its readings.

    OpenTelemetry cannot remove an instrument: once closed, the instruments
    stay on the meter and report nothing.

    Example::

        instrumentation = hardy.metrics.otel.instrument()
        instrumentation.close()
    """

    def __init__(self, provider: Any, reader: _Reader, unsubscribe: Callable[[], None] | None) -> None:
        self._provider = provider
        self._reader = reader
        self._unsubscribe = unsubscribe
        self.instruments: list[Any] = []

    def close(self) -> None:
        """Stop adding span events and reporting measurements (idempotent)."""
        self._reader.closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        with _instrumented_lock:
            _instrumented.discard(self._provider)


def _callback(reader: _Reader, name: str) -> Callable[[Any], Iterable[metrics.Observation]]:
    def observe(options: Any) -> Iterable[metrics.Observation]:
        if reader.closed:
            return []
        return reader.observations(name)

    return observe


def _attributes(event: events.Event) -> dict[str, Any]:
    attributes: dict[str, Any] = {"hardy.source": event.source}
    for key, value in event.data.items():
        # Span attributes are primitives: the exception itself is left out (error_type names it).
        if isinstance(value, (str, bool, int, float)):
            attributes[f"hardy.{key}"] = value
    return attributes


def _add_span_event(event: events.Event) -> None:
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event(f"hardy.{event.kind}", attributes=_attributes(event))


def instrument(meter_provider: Any = None, *, span_events: bool = True) -> Instrumentation:
    """Observable instruments for every hardy metric on ``meter_provider``, and span events.

    ``meter_provider`` is an OpenTelemetry ``MeterProvider`` (the global one
    when ``None``). Instruments are made for the metrics of every source known
    now (``hardy.metrics.add_source``): add yours before instrumenting.
    Instrumenting one provider twice is a ``ValueError``; :meth:`Instrumentation.close`
    first.

    Example::

        instrumentation = hardy.metrics.otel.instrument()
    """
    provider = metrics.get_meter_provider() if meter_provider is None else meter_provider
    if not hasattr(provider, "get_meter"):
        raise TypeError(f"meter_provider must be an OpenTelemetry MeterProvider or None, got {meter_provider!r}")
    with _instrumented_lock:
        if provider in _instrumented:
            raise ValueError(f"{provider!r} is already instrumented by hardy: close() that instrumentation first")
        _instrumented.add(provider)
    meter = provider.get_meter("hardy", __version__)
    reader = _Reader()
    unsubscribe = events.subscribe(_add_span_event, kinds=SPAN_EVENT_KINDS) if span_events else None
    instrumentation = Instrumentation(provider, reader, unsubscribe)
    seen: set[str] = set()
    for family in _sources.collect():
        if family.name in seen:
            continue
        seen.add(family.name)
        callbacks = [_callback(reader, family.name)]
        if family.kind == "counter":
            made = meter.create_observable_counter(family.name, callbacks, unit=family.unit, description=family.help)
        else:
            made = meter.create_observable_gauge(family.name, callbacks, unit=family.unit, description=family.help)
        instrumentation.instruments.append(made)
    return instrumentation
