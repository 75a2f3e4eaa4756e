"""hardy's counters, read at scrape time: Prometheus (``hardy[prometheus]``) and OpenTelemetry (``hardy[otel]``).

The cores already count every call; these exporters read the counts when
they are asked (a scrape, an OpenTelemetry collection), so a call pays
nothing for being measured. What the cores do not count themselves (retries
and give-ups per function, timeouts fired, fallbacks used) is counted on
those paths only, never on a success.

* :mod:`hardy.metrics.prometheus`: ``register()`` a collector with
  prometheus-client.
* :mod:`hardy.metrics.otel`: ``instrument()`` observable instruments on an
  OpenTelemetry meter, and span events on the current span.

Every component lists its metrics through one registry of sources
(:func:`add_source`): breakers, bulkheads, rate limiters and the tallies are
hardy's own, and a new component (yours) appears in both exporters by adding
one function.

Example::

    import hardy.metrics.prometheus
    hardy.metrics.prometheus.register()
"""

from __future__ import annotations

from ._sources import Family, add_source, collect, remove_source

__all__ = ["Family", "add_source", "collect", "remove_source"]
