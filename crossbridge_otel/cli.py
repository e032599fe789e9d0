"""The ``crossbridge-otel`` command: ``doctor`` (status report) and ``settings`` (the settings table)."""

from __future__ import annotations

import argparse
import json
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
    if args.command == "settings":
        from crossbridge_otel.settings import render_markdown

        print(render_markdown())
        return 0
    from crossbridge_otel.doctor import collect, render

    report = collect(import_targets=not args.no_import)
    if args.json:
        json.dump(report, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
