"""Fail when ``pyright --verifytypes hardy`` scores below a threshold (default 98 %).

Usage: ``python scripts/check_verifytypes.py [--threshold 98]``. It runs
``pyright --verifytypes hardy --ignoreexternal --outputjson`` (pyright exits
non-zero whenever any symbol is ambiguous, so its exit code is not the test)
and prints the score and the symbols that lower it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threshold", type=float, default=98.0, help="minimum score in percent")
    threshold = parser.parse_args().threshold
    run = subprocess.run(
        ["pyright", "--verifytypes", "hardy", "--ignoreexternal", "--outputjson"],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        report = json.loads(run.stdout)["typeCompleteness"]
    except (json.JSONDecodeError, KeyError):
        print(run.stdout, run.stderr, sep="\n")
        return 2
    score = 100.0 * float(report["completenessScore"])
    for symbol in report["symbols"]:
        if symbol["diagnostics"] and (not symbol["isTypeKnown"] or symbol.get("isTypeAmbiguous")):
            print(f"{symbol['name']}: {symbol['diagnostics'][0]['message'].splitlines()[0]}")
    print(f"pyright --verifytypes hardy: {score:.1f} % (threshold {threshold:.1f} %)")
    return 0 if score >= threshold else 1


if __name__ == "__main__":
    sys.exit(main())
