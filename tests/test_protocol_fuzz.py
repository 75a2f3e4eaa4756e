"""Differential fuzzing of the awaitable protocol: the core under test against the twin.

Hypothesis writes batches of scenarios (see ``tests/protocol_probe.py``);
each batch runs in a subprocess on the core under test and on the twin, and
every operation's outcome and the breaker's statistics must agree. A crash
is a non-zero exit status, reported with the batch that caused it. The
number of batches is bounded for CI (``HARDY_FUZZ_EXAMPLES`` raises it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = int(os.environ.get("HARDY_FUZZ_EXAMPLES", "12"))

OPERATIONS = ["send", "send_value", "throw", "throw_exit", "close", "await", "cancel", "new", "advance"]

scenario = st.fixed_dictionaries(
    {
        "half_open": st.sampled_from([1, 2]),
        "start": st.sampled_from(["closed", "open", "ready"]),
        "awaits": st.integers(0, 2),
        "end": st.sampled_from(
            ["return", "raise", "interrupt", "reenter_send", "reenter_throw", "reenter_close", "ignore_exit"]
        ),
        "listener": st.sampled_from(["none", "reset", "close_aw", "raise"]),
        "ops": st.lists(st.sampled_from(OPERATIONS), min_size=1, max_size=7),
        "close_at_end": st.booleans(),
        "maker": st.sampled_from(["protect", "call"]),
    }
)


def run_batch(core: ModuleType, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    env = dict(os.environ)
    env.pop("HARDY_NO_EXTENSIONS", None)
    result = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-m", "tests.protocol_probe", core.IMPLEMENTATION, "py"],
        input=json.dumps(batch),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert result.returncode == 0, f"the probe died ({result.returncode}) on {batch}:\n{result.stderr[-4000:]}"
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(scenario, min_size=8, max_size=8))
def test_awaitables_behave_alike_under_any_protocol_sequence(core: ModuleType, batch: list[dict[str, Any]]) -> None:
    for case, result in zip(batch, run_batch(core, batch), strict=True):
        assert result["subject"] == result["reference"], case
