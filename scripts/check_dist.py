"""Check built distributions: what the sdist and the wheels hold.

* The sdist has ``LICENSE``, ``README.md``, ``CHANGELOG.md``,
  ``CONTRIBUTING.md``, the Cython source and the tests, and no generated C
  or compiled module.
* Each wheel has ``LICENSE`` under ``.dist-info/licenses/`` and names it in
  ``METADATA`` (``License-File: LICENSE``, ``License-Expression: MIT``).
* A compiled wheel's module is a release build: no DWARF debug sections,
  and under ``--max-module-kb`` (default 1000; about 670 KB on Linux x86_64
  since windows, budgets and shared limiters were compiled in, against
  several MB with debug information: the bound catches a debug build, not
  growth by new policies).

Usage::

    python scripts/check_dist.py dist/hardy-0.1.0.tar.gz dist/hardy-0.1.0-*.whl
"""

from __future__ import annotations

import argparse
import email.parser
import sys
import tarfile
import zipfile
from pathlib import Path

SDIST_MUST_HAVE = ("LICENSE", "README.md", "CHANGELOG.md", "CONTRIBUTING.md", "pyproject.toml", "setup.py")
COMPILED_SUFFIXES = (".so", ".pyd")
# Section names a compiled module with debug information carries (ELF, and
# Mach-O's __debug_info); stripped release builds have none of them.
DEBUG_MARKERS = (b".debug_info", b"__debug_info", b".debug_line")


def check_sdist(path: Path) -> list[str]:
    problems: list[str] = []
    with tarfile.open(path) as archive:
        names = archive.getnames()
    top = names[0].split("/")[0]
    inside = {name.removeprefix(f"{top}/") for name in names}
    for required in (*SDIST_MUST_HAVE, "src/hardy/_core_c.pyx", "tests/conftest.py"):
        if required not in inside:
            problems.append(f"{path.name}: no {required}")
    generated = sorted(name for name in inside if name.endswith((".c", *COMPILED_SUFFIXES)))
    if generated:
        problems.append(f"{path.name}: generated or compiled files: {generated}")
    return problems


def check_wheel(path: Path, max_module_kb: int) -> list[str]:
    problems: list[str] = []
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        metadata_name = next((name for name in names if name.endswith(".dist-info/METADATA")), None)
        if metadata_name is None:
            return [f"{path.name}: no METADATA"]
        metadata = email.parser.Parser().parsestr(archive.read(metadata_name).decode())
        licence = metadata_name.replace("METADATA", "licenses/LICENSE")
        if licence not in names:
            problems.append(f"{path.name}: no {licence}")
        elif not archive.read(licence).startswith(b"MIT License"):
            problems.append(f"{path.name}: {licence} is not the MIT licence")
        if metadata.get_all("License-File") != ["LICENSE"]:
            problems.append(f"{path.name}: License-File is {metadata.get_all('License-File')}, not ['LICENSE']")
        if metadata.get("License-Expression") != "MIT":
            problems.append(f"{path.name}: License-Expression is {metadata.get('License-Expression')!r}")
        modules = [name for name in names if name.startswith("hardy/_core_c") and name.endswith(COMPILED_SUFFIXES)]
        pure = path.name.endswith("-none-any.whl")
        if pure and modules:
            problems.append(f"{path.name}: a pure wheel with compiled modules {modules}")
        if not pure and not modules:
            problems.append(f"{path.name}: a platform wheel without the compiled core")
        for module in modules:
            data = archive.read(module)
            size_kb = len(data) / 1024
            print(f"{path.name}: {module}: {size_kb:.0f} KB")
            if size_kb > max_module_kb:
                problems.append(f"{path.name}: {module} is {size_kb:.0f} KB, over {max_module_kb} KB")
            markers = [marker.decode() for marker in DEBUG_MARKERS if marker in data]
            if markers:
                problems.append(f"{path.name}: {module} carries debug information ({', '.join(markers)})")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dists", nargs="+", type=Path, help="sdists (.tar.gz) and wheels (.whl)")
    parser.add_argument("--max-module-kb", type=int, default=1000)
    args = parser.parse_args(argv)
    problems: list[str] = []
    for dist in args.dists:
        if dist.name.endswith(".tar.gz"):
            problems += check_sdist(dist)
        elif dist.suffix == ".whl":
            problems += check_wheel(dist, args.max_module_kb)
        else:
            problems.append(f"{dist}: neither an sdist nor a wheel")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    if problems:
        return 1
    print(f"distributions OK: {', '.join(dist.name for dist in args.dists)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
