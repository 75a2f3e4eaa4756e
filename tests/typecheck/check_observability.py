"""Type-checked by mypy (``mypy --strict tests/typecheck``) and pyright (strict), never run.

What a type checker must infer for hardy.events and hardy.metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from typing_extensions import assert_type

import hardy.events
import hardy.metrics
import hardy.metrics.otel
import hardy.metrics.prometheus
from hardy.events import Event


def on_event(event: Event) -> None:
    assert_type(event.kind, str)
    assert_type(event.source, str)
    assert_type(event.time, float)
    assert_type(event.data, Mapping[str, Any])


async def on_event_async(event: Event) -> None: ...


stop = hardy.events.subscribe(on_event, kinds={"retry", "giveup"})
assert_type(stop, Callable[[], None])
hardy.events.subscribe(on_event_async)
hardy.events.subscribe(42)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]

collector = hardy.metrics.prometheus.register()
assert_type(collector, hardy.metrics.prometheus.HardyCollector)
instrumentation = hardy.metrics.otel.instrument(span_events=False)
assert_type(instrumentation, hardy.metrics.otel.Instrumentation)
assert_type(hardy.metrics.collect(), list[hardy.metrics.Family])
