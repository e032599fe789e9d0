"""The HTML report in a real headless browser (Debian's Chromium): it loads cleanly and shows the run's traces.

The page of a real run is opened from disk over the DevTools protocol; the test fails on any console error or
warning, uncaught exception, Content-Security-Policy violation or request for anything but the file itself. A
screenshot of the page is kept under .cache/view/ (its path is printed) for the closing note.
"""

from __future__ import annotations

import pytest
from support.cdp import Browser, chromium
from support.crossbridge_target import REPO, ci
from support.view import run_cli

from crossbridge_otel.view import html
from crossbridge_otel.view.read import load

pytestmark = pytest.mark.skipif(
    chromium() is None and not ci(), reason="chromium is not installed (bash tests/setup/ensure-chromium.sh)"
)
SCREENSHOT = REPO / ".cache" / "view" / "report.png"


@pytest.fixture(scope="module")
def report_page(demo_file, tmp_path_factory):
    """The report of the real run, written by the command, open in Chromium: (page, telemetry, file)."""
    out = tmp_path_factory.mktemp("report") / "report.html"
    done = run_cli("report", str(demo_file), "-o", str(out))
    assert done.returncode == 0, done.stderr
    with Browser() as browser:
        yield browser.open(out), load(demo_file), out


def test_page_loads_without_console_errors_or_requests(report_page):
    """No console error or warning, exception, CSP report or failed load; the only request is the file itself."""
    page, _, out = report_page
    assert page.problems == []
    assert page.requests == [out.resolve().as_uri()]


def test_page_shows_the_runs_traces_and_totals(report_page):
    """The waterfall holds the run's trace with every span as a row, and the cards show the file's totals."""
    page, telemetry, _ = report_page
    [trace] = telemetry.traces
    ids = page.evaluate("Array.from(document.querySelectorAll('details.trace')).map(d => d.id)")
    assert ids == [f"t-{trace.trace_id}"]
    rows = page.evaluate("document.querySelectorAll('details.trace details.span').length")
    assert rows == len(trace.spans)
    assert page.evaluate("document.getElementById('n-spans').textContent") == str(len(telemetry.spans))
    names = page.evaluate("Array.from(document.querySelectorAll('.sname')).map(e => e.textContent.trim())")
    assert names[0].startswith("demo.run") and any(n.startswith("runtime.retry") for n in names)


def test_failing_operations_are_listed_and_drawn_red(report_page):
    """The failing-operations table names the swallowed failures; their rows in the waterfall are marked failed."""
    page, telemetry, _ = report_page
    failing = page.evaluate("document.getElementById('failing').textContent")
    assert "returned_none" in failing and "translation_failed" in failing
    red = page.evaluate("document.querySelectorAll('details.span.failed').length")
    assert red == sum(1 for s in telemetry.spans if s.error)


def test_a_span_expands_to_its_attributes_events_and_logs(report_page):
    """Opening runtime.retry's row shows its retry events; a span's attributes table holds crossbridge.area."""
    page, _, _ = report_page
    text = page.evaluate(
        "(() => { const row = Array.from(document.querySelectorAll('details.span'))"
        ".find(d => d.querySelector('.sname').textContent.trim().startsWith('runtime.retry'));"
        " row.open = true; return row.querySelector('.detail').innerText; })()"
    )
    assert "retry" in text and "service unavailable (call 1)" in text and "crossbridge.area" in text


def test_filter_and_errors_only_work(report_page):
    """Typing a name no trace has hides every trace; the errors-only box keeps the failing trace."""
    page, _, _ = report_page
    shown = page.evaluate(
        "(() => { const f = document.getElementById('filter'); f.value = 'no-such-span';"
        " f.dispatchEvent(new Event('input')); return document.getElementById('shown').textContent; })()"
    )
    assert shown == "0 of 1 traces shown"
    shown = page.evaluate(
        "(() => { const f = document.getElementById('filter'); f.value = '';"
        " f.dispatchEvent(new Event('input')); const c = document.getElementById('only-errors');"
        " c.checked = true; c.dispatchEvent(new Event('change'));"
        " return document.getElementById('shown').textContent; })()"
    )
    assert shown == "1 of 1 traces shown"
    assert page.problems == []


def test_screenshot_is_kept(report_page):
    """A screenshot of the loaded report is written under .cache/view/ and is a PNG."""
    page, _, _ = report_page
    path = page.screenshot(SCREENSHOT)
    print(f"report screenshot: {path}")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_a_script_the_policy_forbids_is_caught(demo_file, tmp_path, monkeypatch):
    """The detector itself: a page whose script hash is wrong gets a CSP error, and the test would see it."""
    monkeypatch.setattr(html, "_script", lambda: ("console.log('x')", "'sha256-AAAA'"))
    out = tmp_path / "broken.html"
    out.write_text(html.render_html(load(demo_file)), encoding="utf-8")
    with Browser() as browser:
        page = browser.open(out)
    assert any("Content Security Policy" in p or "Content-Security-Policy" in p for p in page.problems), page.problems


def test_large_report_loads_and_counts_what_it_does_not_draw(large_file, tmp_path):
    """A 3,001-span report draws 200 traces, failing first, says how many more, and loads cleanly."""
    out = tmp_path / "large.html"
    done = run_cli("report", str(large_file), "-o", str(out))
    assert done.returncode == 0, done.stderr
    with Browser() as browser:
        page = browser.open(out)
        drawn = page.evaluate("document.querySelectorAll('details.trace').length")
        first_failed = page.evaluate("document.querySelector('details.trace').classList.contains('failed')")
        omitted = page.evaluate("document.getElementById('omitted').textContent")
    assert drawn == 200 and first_failed is True
    assert "801 more trace(s) not drawn" in omitted
    assert page.problems == []
