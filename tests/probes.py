"""Run a snippet of Python in a fresh interpreter, on the core under test.

Probes that could crash, wedge or fork the interpreter run here, so that a
crash fails the test that caused it instead of killing the whole run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from types import ModuleType

__all__ = ["run_python"]


def run_python(core: ModuleType, source: str, *, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run ``source`` (dedented) with ``core``'s implementation selected; stdout and stderr captured."""
    env = dict(os.environ)
    env.pop("HARDY_NO_EXTENSIONS", None)
    if core.IMPLEMENTATION == "py":
        env["HARDY_NO_EXTENSIONS"] = "1"
    prelude = f"import hardy\nassert hardy.IMPLEMENTATION == {core.IMPLEMENTATION!r}, hardy.IMPLEMENTATION\n"
    return subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", prelude + textwrap.dedent(source)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
