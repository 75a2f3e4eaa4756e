"""Drive protected awaitables through a scripted protocol sequence, on two cores, in one process.

Used by ``tests/test_protocol_fuzz.py``, which runs it in a subprocess so a
crash of the compiled core fails the test instead of killing the run::

    python -m tests.protocol_probe SUBJECT REFERENCE < scenarios.json

prints, as JSON, the outcome of every scenario on both cores. A scenario
sets up a breaker (closed, open, or open and past its reset timeout), an
``async def`` function that ends in a chosen way (returns, raises, is
interrupted, drives its own awaitable, swallows ``GeneratorExit``), a
listener that re-enters the breaker, and a list of operations on the
awaitable (send, send of a value, throw, close, await, await again, cancel).
The outcome records what each operation returned or raised, and the
breaker's statistics at the end.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sys
import warnings
from types import ModuleType
from typing import Any

from hardy import _core


class Boom(Exception):
    pass


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Finished:
    """Stands in for an awaitable that could not be made (the call was rejected)."""

    def send(self, value: object) -> None:
        raise RuntimeError("no awaitable")

    throw = close = __await__ = send  # type: ignore[assignment]


def _outcome(action: Any) -> list[Any]:
    try:
        value = action()
    except StopIteration as stop:
        return ["return", repr(stop.value)]
    except BaseException as exc:  # every kind is an outcome to compare
        return ["raise", type(exc).__name__, str(exc)]
    return ["value", repr(value)]


def _make_inner(scenario: dict[str, Any], holder: dict[str, Any]) -> Any:
    awaits = scenario["awaits"]
    end = scenario["end"]

    async def inner() -> str:
        for _ in range(awaits):
            try:
                await asyncio.sleep(0)
            except GeneratorExit:
                if end == "ignore_exit" and not holder.get("ignored"):
                    holder["ignored"] = True
                    await asyncio.sleep(0)
                raise
        if end == "raise":
            raise Boom("inner failed")
        if end == "interrupt":
            raise KeyboardInterrupt
        if end.startswith("reenter_"):
            awaitable = holder["aw"]
            operation = end.removeprefix("reenter_")
            try:
                if operation == "send":
                    awaitable.send(None)
                elif operation == "throw":
                    awaitable.throw(ValueError("thrown from inside"))
                else:
                    awaitable.close()
            except ValueError as exc:
                return f"refused: {exc}"
            return "not refused"
        return "done"

    return inner


def _listener(kind: str, breaker: Any, holder: dict[str, Any]) -> Any:
    def listen(b: Any, old: Any, new: Any) -> None:
        holder.setdefault("events", []).append(f"{old.value}->{new.value}")
        if kind == "reset" and new.value == "open":
            b.reset()
        elif kind == "close_aw" and "aw" in holder:
            holder["aw"].close()
        elif kind == "raise":
            raise RuntimeError("listener failed")

    return listen


async def _await(awaitable: Any) -> Any:
    return await awaitable


async def _cancel_after_one_step(awaitable: Any) -> Any:
    task = asyncio.ensure_future(_await(awaitable))
    await asyncio.sleep(0)
    task.cancel()
    return await task


_ACTIONS: dict[str, Any] = {
    "send": lambda awaitable: awaitable.send(None),
    "send_value": lambda awaitable: awaitable.send(1),
    "throw": lambda awaitable: awaitable.throw(Boom("thrown")),
    "throw_exit": lambda awaitable: awaitable.throw(GeneratorExit()),
    "close": lambda awaitable: awaitable.close(),
    "await": lambda awaitable: asyncio.run(_await(awaitable)),
    "cancel": lambda awaitable: asyncio.run(_cancel_after_one_step(awaitable)),
}


def run_scenario(core: ModuleType, scenario: dict[str, Any]) -> dict[str, Any]:
    clock = Clock()
    breaker = core.CircuitBreaker(
        "probe", failure_threshold=1, reset_timeout=10.0, half_open_max_calls=scenario["half_open"], clock=clock
    )
    holder: dict[str, Any] = {}
    if scenario["start"] in ("open", "ready"):
        breaker.record_failure(Boom("opened"))
    if scenario["start"] == "ready":
        clock.now += 10.0
    breaker.add_listener(_listener(scenario["listener"], breaker, holder))
    inner = _make_inner(scenario, holder)
    if scenario["maker"] == "call":
        # Admitted at once; a rejection is the first outcome.
        def protected() -> Any:
            return breaker.call(inner)
    else:
        protected = core.protect(breaker, inner)
    outcomes: list[list[Any]] = []
    try:
        holder["aw"] = protected()
    except BaseException as exc:  # a rejection at call time
        outcomes.append(["raise", type(exc).__name__, str(exc)])
        holder["aw"] = _Finished()
    for operation in scenario["ops"]:
        if operation in _ACTIONS:
            outcomes.append(_outcome(functools.partial(_ACTIONS[operation], holder["aw"])))
        elif operation == "new":
            holder.pop("ignored", None)
            try:
                holder["aw"] = protected()
                outcomes.append(["new"])
            except BaseException as exc:
                outcomes.append(["raise", type(exc).__name__, str(exc)])
        elif operation == "advance":
            clock.now += 10.0
            outcomes.append(["advance"])
    last = holder.pop("aw")
    # Close what is left, or let it go: either way an unfinished awaitable
    # gives its slot back.
    if scenario["close_at_end"]:
        outcomes.append(_outcome(last.close))
    del last, protected
    stats = breaker.get_stats()
    keys = ("state", "calls", "successes", "failures", "ignored", "rejections", "opened", "half_open_calls")
    return {
        "outcomes": outcomes,
        "stats": {key: stats[key] for key in keys},
        "events": holder.get("events", []),
    }


def main() -> int:
    subject, reference = (_core.load(name) for name in sys.argv[1:3])
    scenarios = json.load(sys.stdin)
    logging.disable(logging.CRITICAL)  # listeners that raise are logged; the outcome is what counts
    warnings.simplefilter("ignore")  # "never awaited" warnings of abandoned coroutines
    results = []
    for scenario in scenarios:
        results.append({"subject": run_scenario(subject, scenario), "reference": run_scenario(reference, scenario)})
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
