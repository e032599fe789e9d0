"""`crossbridge-otel show FILE`: the trees of a real run, the aggregate of a large one, within the width."""

from __future__ import annotations

import re

from support.view import LARGE_TRACES, run_cli

from crossbridge_otel.view.read import load


def _show(path, *args: str) -> str:
    done = run_cli("show", str(path), *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _line_under(lines: list[str], span: str, text: str) -> bool:
    """Whether ``text`` appears on a line indented beneath the first line naming ``span`` (before the next span)."""
    start = next(i for i, line in enumerate(lines) if re.search(rf"- {re.escape(span)}\b", line))
    indent = len(lines[start]) - len(lines[start].lstrip())
    for line in lines[start + 1:]:
        if line.lstrip().startswith("- ") and len(line) - len(line.lstrip()) <= indent + 2:
            return False
        if text in line:
            return True
    return False


def test_real_run_is_one_tree_rooted_at_demo_run(demo_file):
    """The demo's spans are drawn as one trace whose root is demo.run, CrossBridge's operations beneath it."""
    out = _show(demo_file, "--width", "200")
    assert re.search(r"1 run, 1 process\(es\), 1 trace\(s\), \d+ spans", out.splitlines()[0])
    assert "\n  - demo.run  " in out
    assert "\n    - coverage.parse  " in out and "\n    - translation.translate  " in out


def test_failures_show_their_error_type_and_crossbridge_text(demo_file):
    """A swallowed failure and an exception are drawn ERROR with error.type and CrossBridge's own text."""
    out = _show(demo_file, "--width", "250")
    assert re.search(r"- coverage\.parse  [\d.]+ ms  ERROR returned_none: Error parsing coverage\.py report", out)
    assert re.search(r"- translation\.translate  [\d.]+ ms  ERROR translation_failed: ", out)
    assert "! exception FileNotFoundError: JaCoCo XML not found" in out


def test_retry_events_are_inline_under_their_span(demo_file):
    """CrossBridge's retry_with_backoff shows its two failed attempts as retry lines under runtime.retry."""
    lines = _show(demo_file, "--width", "250").splitlines()
    assert _line_under(lines, "runtime.retry", "! retry 1/4 ConnectionError: service unavailable (call 1)")
    assert _line_under(lines, "runtime.retry", "! retry 2/4 ConnectionError: service unavailable (call 2)")


def test_log_records_are_drawn_under_their_span(demo_file):
    """CrossBridge's own log records appear under the span they were emitted in."""
    lines = _show(demo_file, "--width", "250").splitlines()
    assert _line_under(lines, "execution.results.normalize", "| ")
    assert _line_under(lines, "execution.results.normalize", "Normalizing junit5 results")


def test_every_line_fits_the_width(demo_file):
    """With --width 80 no line is longer than 80 characters (long texts end in an ellipsis)."""
    out = _show(demo_file, "--width", "80")
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "…" in out


def test_large_file_is_folded_per_span_name(large_file):
    """3,001 spans are folded into per-name lines with count, errors and exact p50/p95, naming the traces folded."""
    out = _show(large_file, "--width", "160")
    assert f"folded {LARGE_TRACES + 1} trace(s) (3001 spans) into 3 span names" in out
    item = next(line for line in out.splitlines() if line.strip().startswith("batch.item "))
    assert item.split()[1:] == ["2000", "200", "50.0", "ms", "95.0", "ms", "100.0", "ms"]
    assert len(out.splitlines()) < 40


def test_large_file_lists_failing_and_slowest_traces(large_file):
    """Under the aggregate: how many traces failed, the first few of them, and the slowest traces."""
    out = _show(large_file, "--width", "200")
    assert "failing traces (200):" in out  # one item in ten failed: 200 of the 1,000 batch traces
    assert "ERROR batch.item: task_failed: item " in out
    assert "slowest traces:" in out


def test_full_draws_every_tree(large_file):
    """--full draws every span of a large file as a tree line."""
    out = _show(large_file, "--full", "--width", "160")
    assert sum(1 for line in out.splitlines() if line.lstrip().startswith("- ")) == 3001


def test_trace_option_draws_one_trace(large_file):
    """--trace with an ID prefix draws only that trace."""
    telemetry = load(large_file)
    wanted = telemetry.traces[5].trace_id
    out = _show(large_file, "--trace", wanted[:12])
    assert out.count("\ntrace ") == 1 and wanted in out
    assert sum(1 for line in out.splitlines() if line.lstrip().startswith("- ")) == 3


def test_runs_are_listed_and_last_run_filters(tmp_path, demo_file):
    """A file with two runs lists both; --last-run draws only the last one's traces."""
    two = tmp_path / "two.jsonl"
    text = demo_file.read_text(encoding="utf-8")
    two.write_text(text + text.replace('"crossbridge.run.id","value":{"stringValue":"',
                                       '"crossbridge.run.id","value":{"stringValue":"z-later-'), encoding="utf-8")
    out = _show(two, "--width", "200")
    assert "2 runs" in out.splitlines()[0] and "  run z-later-" in out
    last = _show(two, "--last-run", "--width", "200")
    assert "showing the last run only: z-later-" in last
    assert last.count("\ntrace ") == 1


def test_unreadable_file_exits_2(tmp_path):
    """A file that does not exist is one line on stderr and exit code 2."""
    done = run_cli("show", str(tmp_path / "missing.jsonl"))
    assert done.returncode == 2 and "cannot read" in done.stderr and "Traceback" not in done.stderr
