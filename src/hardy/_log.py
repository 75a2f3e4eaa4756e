"""hardy's loggers: one per component, structured fields on every record, rate-limited warnings.

Every logger is a child of ``hardy`` (``hardy.breaker``, ``hardy.retry``,
``hardy.timeout``, ``hardy.fallback``, ``hardy.health``, ``hardy.redis``,
``hardy.events``), so configuring ``hardy`` configures them all. Every record
carries the same ``extra`` fields, for JSON formatters and structlog:
``component``, ``source`` (the breaker's or function's name; ``name`` is the
record's own), ``event``, ``attempt``, ``delay`` and ``error_type`` (``None``
where they do not apply). Messages do not repeat the logger's name.

A warning that can repeat once per failed call (a timeout firing, a fallback
step failing) goes through :func:`warn_limited`: the first one for a key is
logged, the next ones within :data:`INTERVAL` seconds are counted, and the
first one after it says how many were left out (field ``suppressed``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Hashable
from typing import Any

__all__ = ["INTERVAL", "component", "fields", "warn_limited"]

COMPONENTS = ("breaker", "retry", "timeout", "fallback", "health", "redis", "events", "metrics")

#: Seconds between two records of the same repeated warning.
INTERVAL = 60.0

_clock = time.monotonic
_lock = threading.Lock()
# key -> [time of the last record logged, records left out since]
_limited: dict[Hashable, list[float]] = {}
_MAX_KEYS = 10_000  # keys are names from the code, but never let them grow without bound


def component(name: str) -> logging.Logger:
    """The logger of component ``name`` (``hardy.<name>``)."""
    return logging.getLogger(f"hardy.{name}")


def fields(
    component: str,
    source: str | None,
    event: str,
    *,
    attempt: int | None = None,
    delay: float | None = None,
    error_type: str | None = None,
    **more: Any,
) -> dict[str, Any]:
    """The ``extra`` of a record: the same six keys on every record hardy emits."""
    extra = {
        "component": component,
        "source": source,
        "event": event,
        "attempt": attempt,
        "delay": delay,
        "error_type": error_type,
    }
    extra.update(more)
    return extra


def warn_limited(
    logger: logging.Logger,
    key: Hashable,
    msg: str,
    *args: Any,
    extra: dict[str, Any],
    level: int = logging.WARNING,
    exc_info: Any = None,
) -> None:
    """Log ``msg`` unless a record of ``key`` was logged less than :data:`INTERVAL` seconds ago."""
    if not logger.isEnabledFor(level):
        return
    now = _clock()
    with _lock:
        entry = _limited.get(key)
        if entry is not None and now - entry[0] < INTERVAL:
            entry[1] += 1
            return
        suppressed = 0 if entry is None else int(entry[1])
        if entry is None and len(_limited) >= _MAX_KEYS:
            _limited.clear()
        _limited[key] = [now, 0]
    if suppressed:
        msg = f"{msg} ({suppressed} more like it since the last one not logged)"
    logger.log(level, msg, *args, extra={**extra, "suppressed": suppressed}, exc_info=exc_info, stacklevel=2)


def reset_limits() -> None:
    """Forget every rate-limited key (tests)."""
    with _lock:
        _limited.clear()
