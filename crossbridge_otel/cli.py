"""The ``crossbridge-otel`` command: ``doctor`` (status report) and ``settings`` (the settings table)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crossbridge-otel", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    doctor = sub.add_parser("doctor", help="show what instrumentation applies here, and why not")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.add_argument(
        "--no-import", action="store_true", help="do not import CrossBridge modules to check the patches"
    )
    sub.add_parser("settings", help="print the CROSSBRIDGE_OTEL_* settings table (Markdown)")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except BrokenPipeError:
        # `crossbridge-otel settings | head`: the reader left; say nothing more (and nothing at exit either).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _run(args: argparse.Namespace) -> int:
    if args.command == "settings":
        from crossbridge_otel.settings import render_markdown

        print(render_markdown())
        return 0
    from crossbridge_otel.doctor.report import collect, render

    # CrossBridge prints to stdout when its modules are imported (coloured INFO lines); that goes to stderr
    # here, so stdout carries only the report (`doctor --json | jq .` works).
    with contextlib.redirect_stdout(sys.stderr):
        report = collect(import_targets=not args.no_import)
    if args.json:
        json.dump(report, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(report))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
