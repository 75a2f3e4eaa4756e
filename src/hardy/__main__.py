"""The command line: ``python -m hardy``."""

from __future__ import annotations

import argparse
import sys

from . import IMPLEMENTATION, __version__


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m hardy", description="hardy: resilience for Python calls")
    parser.add_argument("--version", action="version", version=f"hardy {__version__} (core: {IMPLEMENTATION})")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="call a simulated flaky dependency through a circuit breaker")
    demo.add_argument("--seconds", type=float, default=3.0, help="how long to run (default: 3)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        if not args.seconds > 0:
            parser.error(f"--seconds must be > 0, got {args.seconds}")
        from .demo import run_demo

        run_demo(args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
