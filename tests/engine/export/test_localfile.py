"""CROSSBRIDGE_OTEL_LOCAL_OUTPUT: one record per line with its resource, runs told apart, unwritable in one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.crossbridge_target import ci
from support.view import instrumented_env, run_instrumented

from crossbridge_otel.export.localfile import RUN_ATTRIBUTE

_SPAN_SCRIPT = (
    "from opentelemetry import trace\n"
    "with trace.get_tracer('crossbridge_otel.tests').start_as_current_span('local.file.check'):\n"
    "    pass\n"
)


_SCOPES = {"resourceSpans": "scopeSpans", "resourceLogs": "scopeLogs", "resourceMetrics": "scopeMetrics"}
_NO_JQ = shutil.which("jq") is None and not ci()


def _records(path: Path) -> list[tuple[str, dict, dict]]:
    """(kind, resource attributes, record) per line; fails unless each line holds exactly one record."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        request = json.loads(line)
        assert len(request) == 1, line[:200]
        (top, [res]), = request.items()
        scopes = res[_SCOPES[top]]
        assert len(scopes) == 1
        [records] = [v for k, v in scopes[0].items() if k in ("spans", "logRecords", "metrics")]
        assert len(records) == 1, line[:200]
        record = records[0]
        if top == "resourceMetrics":
            [data] = [v for k, v in record.items() if k in ("sum", "gauge", "histogram")]
            assert len(data["dataPoints"]) == 1, line[:200]  # one metric point per line
        resource = {a["key"]: next(iter(a["value"].values())) for a in res["resource"]["attributes"]}
        out.append((top, resource, record))
    return out


def test_each_line_is_one_span_log_record_or_metric_point_with_its_resource(demo_file):
    """Every line of a real run's file holds exactly one record, with the resource that produced it."""
    records = _records(demo_file)
    kinds = {kind for kind, _, _ in records}
    assert kinds == {"resourceSpans", "resourceLogs", "resourceMetrics"}
    assert all(r["service.name"] == "crossbridge" and r.get("service.instance.id") for _, r, _ in records)
    spans = [rec for kind, _, rec in records if kind == "resourceSpans"]
    assert len(spans) > 20 and len(spans) == sum(1 for k, _, _ in records if k == "resourceSpans")


def test_grep_counts_records(demo_file):
    """A grep for a span name counts that name's spans, because a line is a record."""
    lines = demo_file.read_text(encoding="utf-8").splitlines()
    grepped = [line for line in lines if '"name":"coverage.parse"' in line]
    records = _records(demo_file)
    parses = [rec for kind, _, rec in records if kind == "resourceSpans" and rec["name"] == "coverage.parse"]
    assert len(grepped) == len(parses) >= 3


@pytest.mark.skipif(_NO_JQ, reason="jq is not installed (bash tests/setup/ensure-chromium.sh installs it)")
def test_jq_selects_failed_spans(demo_file):
    """jq, line by line, lists the failed spans' names and error types."""
    query = ('.resourceSpans[]?.scopeSpans[].spans[] | select(.status.code == "STATUS_CODE_ERROR") | '
             '.name + " " + (.attributes[] | select(.key == "error.type") | .value.stringValue)')
    done = subprocess.run(["jq", "-r", query, str(demo_file)], capture_output=True, text=True, check=True, timeout=30)
    failed = set(done.stdout.splitlines())
    assert {"coverage.parse returned_none", "coverage.parse FileNotFoundError",
            "translation.translate translation_failed"} <= failed


def test_a_run_id_on_every_line_and_a_new_run_per_command(tmp_path):
    """Two instrumented commands appending to one file: each line carries its run's id, and the runs differ."""
    output = tmp_path / "runs.jsonl"
    for _ in range(2):
        done = run_instrumented([sys.executable, "-c", _SPAN_SCRIPT], instrumented_env(output))
        assert done.returncode == 0, done.stderr
    runs = [resource.get(RUN_ATTRIBUTE) for _, resource, _ in _records(output)]
    assert None not in runs
    assert len(set(runs)) == 2 and runs == sorted(runs)


def test_processes_a_run_starts_share_its_run_id(tmp_path):
    """A child the instrumented process starts writes under the parent's run id (inherited at start-up)."""
    output = tmp_path / "tree.jsonl"
    opentelemetry_instrument = str(Path(sys.executable).parent / "opentelemetry-instrument")
    parent = (
        "import subprocess, sys\n" + _SPAN_SCRIPT
        + f"subprocess.run([{opentelemetry_instrument!r}, sys.executable, '-c', {_SPAN_SCRIPT!r}], check=True)\n"
    )
    done = run_instrumented([sys.executable, "-c", parent], instrumented_env(output))
    assert done.returncode == 0, done.stderr
    records = _records(output)
    processes = {resource["service.instance.id"] for _, resource, _ in records}
    runs = {resource[RUN_ATTRIBUTE] for _, resource, _ in records}
    assert len(processes) == 2 and len(runs) == 1


def test_a_set_run_id_is_used(tmp_path):
    """CROSSBRIDGE_OTEL_RUN_ID set by the user (a CI job id) is the run id of every line."""
    output = tmp_path / "ci.jsonl"
    done = run_instrumented([sys.executable, "-c", _SPAN_SCRIPT],
                            instrumented_env(output, CROSSBRIDGE_OTEL_RUN_ID="ci-job-4711"))
    assert done.returncode == 0, done.stderr
    assert {resource[RUN_ATTRIBUTE] for _, resource, _ in _records(output)} == {"ci-job-4711"}


def test_unwritable_file_is_one_line_without_traceback(tmp_path):
    """A local output path that cannot be written: one line names it and why, no traceback, the program exits 0."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    output = blocker / "telemetry.jsonl"
    done = run_instrumented([sys.executable, "-c", _SPAN_SCRIPT], instrumented_env(output))
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stderr.splitlines() if str(output) in line]
    assert len(said) == 1 and "Not a directory" in said[0], done.stderr
    assert "Traceback" not in done.stderr, done.stderr
