"""Build hardy's compiled core, or fall back to the pure-Python twin.

Environment:

* ``HARDY_NO_EXTENSIONS=1``: build nothing; the package is pure Python.
* ``HARDY_REQUIRE_EXTENSIONS=1``: a missing Cython, a non-CPython
  interpreter or a failed compile is fatal (CI and the wheels set it).
* ``HARDY_CYTHON_TRACE=1``: compile with line tracing, for coverage.

Without either switch the extension is optional: a failed compile prints a
warning and leaves the pure-Python twin in charge.
"""

from __future__ import annotations

import os
import platform
import sys

from setuptools import Extension, setup


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


NO_EXTENSIONS = _flag("HARDY_NO_EXTENSIONS")
REQUIRE_EXTENSIONS = _flag("HARDY_REQUIRE_EXTENSIONS")
CYTHON_TRACE = _flag("HARDY_CYTHON_TRACE")

if NO_EXTENSIONS and REQUIRE_EXTENSIONS:
    raise RuntimeError("HARDY_NO_EXTENSIONS and HARDY_REQUIRE_EXTENSIONS cannot both be set")


def _extensions() -> list[Extension]:
    if NO_EXTENSIONS:
        print("hardy: HARDY_NO_EXTENSIONS is set: pure Python build", file=sys.stderr)
        return []
    if platform.python_implementation() != "CPython":
        if REQUIRE_EXTENSIONS:
            raise RuntimeError("HARDY_REQUIRE_EXTENSIONS: the compiled core needs CPython")
        print("hardy: not CPython: pure Python build", file=sys.stderr)
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        if REQUIRE_EXTENSIONS:
            raise
        print("hardy: WARNING: Cython is missing: pure Python build", file=sys.stderr)
        return []
    macros = [("CYTHON_TRACE_NOGIL", "1")] if CYTHON_TRACE else []
    extension = Extension(
        "hardy._core_c",
        ["src/hardy/_core_c.pyx"],
        define_macros=macros,
        optional=not REQUIRE_EXTENSIONS,
    )
    directives = {"linetrace": True} if CYTHON_TRACE else {}
    print("hardy: accelerated build (Cython)", file=sys.stderr)
    return cythonize([extension], compiler_directives=directives, language_level=3)


setup(ext_modules=_extensions())
