"""`crossbridge-otel report FILE -o report.html`: one self-contained page, data escaped, failing and slowest first."""

from __future__ import annotations

import re

from support.view import run_cli

from crossbridge_otel.view.html import render_html
from crossbridge_otel.view.read import load
from crossbridge_otel.view.records import Span, Telemetry


def test_report_command_writes_one_html_file(demo_file, tmp_path):
    """The command writes the page where -o says and names what it holds."""
    out = tmp_path / "report.html"
    done = run_cli("report", str(demo_file), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert out.is_file() and out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert re.match(rf"wrote {re.escape(str(out))}: 1 trace\(s\), \d+ spans", done.stdout)


def test_page_needs_no_network(demo_file):
    """Nothing is loaded from elsewhere: no src/href to a URL, no stylesheet or script file, a CSP of 'none'."""
    page = render_html(load(demo_file))
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "<link" not in page and not re.search(r"<script[^>]+src", page)
    assert "default-src 'none'" in page and "script-src 'sha256-" in page


def test_summary_numbers_match_the_file(demo_file):
    """The page's cards show the file's span, error and retry counts."""
    telemetry = load(demo_file)
    page = render_html(telemetry)
    errors = sum(1 for s in telemetry.spans if s.error)
    retries = sum(len(s.retries) for s in telemetry.spans)
    assert f'<b id="n-spans">{len(telemetry.spans)}</b>' in page
    assert f'<b id="n-errors">{errors}</b>' in page and errors >= 3
    assert f'<b id="n-retries">{retries}</b>' in page and retries == 2


def test_values_are_escaped_not_markup():
    """An attribute value, a span name and an error text holding markup are shown as text."""
    evil = "<script>alert(1)</script>"
    span = Span("a" * 32, "b" * 16, "", f"evil{evil}", 0, 1_000_000, status="ERROR", message=evil,
                attributes={"crossbridge.area": "x", "note": evil})
    page = render_html(Telemetry("t", spans=[span]).link())
    assert evil not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_failing_traces_come_first_then_the_slowest(large_file):
    """The waterfalls start with failing traces; among equals the slowest first; past the limit they are counted."""
    telemetry = load(large_file)
    page = render_html(telemetry, max_traces=50)
    drawn = re.findall(r'<details class="trace( failed)?" id="t-([0-9a-f]{32})"', page)
    assert len(drawn) == 50
    assert all(failed for failed, _ in drawn[:50])  # 200 traces failed: the first 50 drawn are all failing
    assert f"{len(telemetry.traces) - 50} more trace(s) not drawn" in page
    by_id = {t.trace_id: t for t in telemetry.traces}
    durations = [by_id[trace_id].duration_ms for _, trace_id in drawn]
    assert durations == sorted(durations, reverse=True)
