"""Build hardy's compiled core, or fall back to the pure-Python twin.

Environment:

* ``HARDY_NO_EXTENSIONS=1``: build nothing; the package is pure Python.
* ``HARDY_REQUIRE_EXTENSIONS=1``: a missing Cython, a non-CPython
  interpreter or a failed compile is fatal (CI and the wheels set it).
* ``HARDY_CYTHON_TRACE=1``: compile with line tracing, for coverage.
* ``HARDY_DEBUG_SYMBOLS=1``: keep the C debug information (for gdb); release
  builds are compiled with ``-g0`` and, on Linux, linked with ``-s``, which
  takes the module from about 1.8 MB to under 0.3 MB.

Without either of the first two switches the extension is optional: a failed
compile (no compiler, no Python headers, a broken toolchain) prints a warning
and installs the pure-Python twin, so ``hardy.IMPLEMENTATION == "py"``. pip
shows a build's output only with ``pip install -v``, so the warning also goes
to the terminal, when there is one; elsewhere (CI, Docker builds) check that
attribute (or ``python -m hardy --version``) after installing from the sdist.
"""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

try:  # setuptools >= 59 vendors distutils under this name
    from setuptools.errors import CCompilerError, CompileError, ExecError, LinkError, PlatformError
except ImportError:  # pragma: no cover - older setuptools
    from distutils.errors import CCompilerError, CompileError, LinkError  # type: ignore[no-redef]
    from distutils.errors import DistutilsExecError as ExecError  # type: ignore[no-redef]
    from distutils.errors import DistutilsPlatformError as PlatformError  # type: ignore[no-redef]

# Everything a missing or broken toolchain raises (MSVC missing on Windows is
# a PlatformError, a compiler that exits non-zero a CompileError, ...).
BUILD_ERRORS = (CCompilerError, CompileError, ExecError, LinkError, PlatformError, OSError)


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


NO_EXTENSIONS = _flag("HARDY_NO_EXTENSIONS")
REQUIRE_EXTENSIONS = _flag("HARDY_REQUIRE_EXTENSIONS")
CYTHON_TRACE = _flag("HARDY_CYTHON_TRACE")
DEBUG_SYMBOLS = _flag("HARDY_DEBUG_SYMBOLS")

if NO_EXTENSIONS and REQUIRE_EXTENSIONS:
    raise RuntimeError("HARDY_NO_EXTENSIONS and HARDY_REQUIRE_EXTENSIONS cannot both be set")


def _warn(message: str) -> None:
    bar = "*" * 78
    text = f"\n{bar}\nhardy: WARNING: {message}\n{bar}\n"
    print(text, file=sys.stderr, flush=True)
    # pip shows a build's output only when the build fails or with -v, so a
    # successful fallback would go unseen: tell the terminal directly when
    # there is one (an interactive `pip install`; never in CI, which has none).
    try:
        with open("/dev/tty", "w", encoding="utf-8") as terminal:
            terminal.write(text)
    except OSError:
        pass


FALLBACK = (
    "the compiled core was not built ({reason}); the pure-Python twin is installed "
    "instead: the same behaviour, with 3 to 10 times the compiled core's overhead per call. "
    'Check with: python -c "import hardy; print(hardy.IMPLEMENTATION)". '
    "Install a C compiler and reinstall (pip install --no-cache-dir --force-reinstall hardy), "
    "or set HARDY_REQUIRE_EXTENSIONS=1 to make this an error."
)


class optional_build_ext(build_ext):
    """``build_ext`` with release flags, whose failure leaves the pure twin unless extensions are required."""

    def run(self) -> None:
        try:
            super().run()
        except BUILD_ERRORS as exc:
            self._fallback(exc)

    def build_extension(self, ext: Any) -> None:
        compiler_type = getattr(self.compiler, "compiler_type", "")
        # MSVC keeps its debug information in a separate .pdb, never in the
        # .pyd, so only gcc/clang-style compilers need telling.
        if compiler_type in ("unix", "mingw32", "cygwin") and not DEBUG_SYMBOLS:
            ext.extra_compile_args = [*ext.extra_compile_args, "-g0"]
            if sys.platform.startswith("linux"):
                # Drop the symbol table too; PyInit__core_c stays in the
                # dynamic symbol table, which -s keeps.
                ext.extra_link_args = [*ext.extra_link_args, "-s"]
        try:
            super().build_extension(ext)
        except BUILD_ERRORS as exc:
            self._fallback(exc)

    def _fallback(self, exc: BaseException) -> None:
        if REQUIRE_EXTENSIONS:
            raise exc
        reason = f"{type(exc).__name__}: {exc}"
        _warn(FALLBACK.format(reason=reason if len(reason) <= 240 else reason[:240] + " ..."))


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
        _warn(FALLBACK.format(reason="Cython is missing"))
        return []
    macros = [("CYTHON_TRACE_NOGIL", "1")] if CYTHON_TRACE else []
    # The .pyx includes the policies (hardy/policies/*.py) and the dispatch
    # (hardy/_c/*.pxi), whose C helpers are hardy/_c/hardy.h.
    extension = Extension(
        "hardy._core_c", ["src/hardy/_core_c.pyx"], include_dirs=["src/hardy/_c"], define_macros=macros
    )
    directives = {"linetrace": True} if CYTHON_TRACE else {}
    print("hardy: accelerated build (Cython)", file=sys.stderr)
    extensions: list[Extension] = cythonize([extension], compiler_directives=directives, language_level=3)
    for built in extensions:
        # cythonize() returns new Extension objects and drops `optional`;
        # optional_build_ext does the falling back, this keeps setuptools' own
        # parallel build path (build_ext -j) in agreement with it.
        built.optional = not REQUIRE_EXTENSIONS
    return extensions


setup(ext_modules=_extensions(), cmdclass={"build_ext": optional_build_ext})
