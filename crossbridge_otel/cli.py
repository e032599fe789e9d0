"""The ``crossbridge-otel`` command.

``doctor``    what instrumentation applies here and why not; first line a verdict. Exit 0 healthy, 1 degraded,
              2 broken or disabled (see :mod:`crossbridge_otel.doctor.report`).
``settings``  the ``CROSSBRIDGE_OTEL_*`` settings table (Markdown).
``show``      a ``CROSSBRIDGE_OTEL_LOCAL_OUTPUT`` file's traces in the terminal (trees; per span name past 300 spans).
``report``    the same file as one self-contained HTML page (``-o report.html``).

``show`` and ``report`` exit 0, or 2 when the file cannot be read.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crossbridge-otel", description="crossbridge-otel: doctor, settings, show and report."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    doctor = sub.add_parser("doctor", help="show what instrumentation applies here, and why not (exit 0/1/2)")
    doctor.add_argument("--json", action="store_true", help="machine-readable output (only JSON on stdout)")
    doctor.add_argument(
        "--no-import", action="store_true", help="do not import CrossBridge modules to check the patches"
    )
    doctor.add_argument("-v", "--verbose", action="store_true", help="list every target, not grouped")
    doctor.add_argument("--width", type=int, default=0, help="line width (default: the terminal's)")
    sub.add_parser("settings", help="print the CROSSBRIDGE_OTEL_* settings table (Markdown)")
    show = sub.add_parser("show", help="draw the traces of a CROSSBRIDGE_OTEL_LOCAL_OUTPUT file")
    show.add_argument("file", help="the JSON lines file ('-' for stdin)")
    show.add_argument("--full", action="store_true", help="draw every tree, however many spans")
    show.add_argument("--trace", default="", metavar="ID", help="draw only the trace(s) whose ID starts so")
    show.add_argument("--last-run", action="store_true", help="only the last run in the file")
    show.add_argument("--max-spans", type=int, default=300, help="aggregate past this many spans (default 300)")
    show.add_argument("--width", type=int, default=0, help="line width (default: the terminal's)")
    report = sub.add_parser("report", help="write a self-contained HTML report of a CROSSBRIDGE_OTEL_LOCAL_OUTPUT file")
    report.add_argument("file", help="the JSON lines file ('-' for stdin)")
    report.add_argument("-o", "--output", default="", help="the HTML file to write (default: FILE with .html)")
    report.add_argument("--last-run", action="store_true", help="only the last run in the file")
    report.add_argument("--max-traces", type=int, default=200, help="traces drawn as waterfalls (default 200)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except BrokenPipeError:
        # `crossbridge-otel settings | head`: the reader left; say nothing more (and nothing at exit either).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _width(asked: int) -> int:
    return asked if asked > 0 else shutil.get_terminal_size((120, 24)).columns


def _run(args: argparse.Namespace) -> int:
    if args.command == "settings":
        from crossbridge_otel.settings import render_markdown

        print(render_markdown())
        return 0
    if args.command in ("show", "report"):
        return _view(args)
    from crossbridge_otel.doctor.report import collect, render

    # CrossBridge prints to stdout when its modules are imported (coloured INFO lines); that goes to stderr
    # here, so stdout carries only the report (`doctor --json | jq .` works).
    with contextlib.redirect_stdout(sys.stderr):
        report = collect(import_targets=not args.no_import)
    if args.json:
        json.dump(report, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(report, width=_width(args.width), verbose=args.verbose))
    sys.stdout.flush()
    return int(report["verdict"]["exit_code"])


def _view(args: argparse.Namespace) -> int:
    from crossbridge_otel.view.read import load, parse_lines
    from crossbridge_otel.view.terminal import render

    try:
        telemetry = parse_lines(sys.stdin, "<stdin>") if args.file == "-" else load(args.file)
    except OSError as exc:
        print(f"crossbridge-otel {args.command}: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if args.command == "show":
        sys.stdout.write(render(telemetry, width=_width(args.width), full=args.full, max_spans=args.max_spans,
                                trace_id=args.trace, last_run=args.last_run))
        return 0
    from crossbridge_otel.view.html import render_html

    runs = telemetry.runs()
    if args.last_run and runs:
        telemetry = telemetry.only_run(runs[-1].id)
    output = Path(args.output or (Path(args.file).with_suffix(".html") if args.file != "-" else "report.html"))
    try:
        output.write_text(render_html(telemetry, max_traces=args.max_traces), encoding="utf-8")
    except OSError as exc:
        print(f"crossbridge-otel report: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    drawn = min(len(telemetry.traces), args.max_traces)
    print(f"wrote {output}: {len(telemetry.traces)} trace(s), {len(telemetry.spans)} spans "
          f"({drawn} trace(s) drawn), {len(telemetry.logs)} log records")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
