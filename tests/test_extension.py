"""Which core is active, and that the compiled one really is loaded."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from types import ModuleType

import pytest

import hardy
from hardy import _core


def test_fixture_selects_the_requested_core(core: ModuleType) -> None:
    assert hardy.IMPLEMENTATION == core.IMPLEMENTATION
    assert hardy.CircuitBreaker is core.CircuitBreaker
    expected_file = "_core_py.py" if core.IMPLEMENTATION == "py" else "_core_c."
    assert expected_file in (core.__file__ or "")


@pytest.mark.c_extension  # deselected with --no-c-extensions, like every compiled-core test
def test_compiled_core_is_active_when_built() -> None:
    # CI builds with HARDY_REQUIRE_EXTENSIONS=1: the default import must be
    # the compiled core unless the twin was asked for.
    if _core.NO_EXTENSIONS:
        assert importlib.import_module("hardy._core").IMPLEMENTATION == "py"
        return
    result = subprocess.run(
        [sys.executable, "-c", "import hardy; print(hardy.IMPLEMENTATION)"],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "HARDY_NO_EXTENSIONS"},
    )
    assert result.stdout.strip() == "c"


def test_no_extensions_switch_selects_the_twin() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import hardy; print(hardy.IMPLEMENTATION)"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "HARDY_NO_EXTENSIONS": "1"},
    )
    assert result.stdout.strip() == "py"


def test_load_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="implementation must be 'c' or 'py', got 'rust'"):
        _core.load("rust")
