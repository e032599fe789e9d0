"""End to end: a program driving the real CrossBridge under ``opentelemetry-instrument`` → the real collector
running collector-config.yaml → the real Jaeger, checked through Jaeger's HTTP query API and the collector's file
exporter. The program is tests/e2e/workload.py; the processes come from conftest.py (never skipped in CI). The
instrumented processes run in production mode: ``CROSSBRIDGE_OTEL_STRICT=false`` (the test run's own ``true``
is not inherited), so what is checked is what a user gets.

1. One traced run (module-scoped, shared by the ``test_run_*`` tests): a root span, CrossBridge's thread pool
   (ParallelStrategy), a child process (the coverage engine's test command is an instrumented Python), swallowed
   failures (a parser's None, a translation's success=False), a caught exception, a retried storage initialize,
   CrossBridge's own retry loop and CrossBridge log records.
2. The collector is SIGKILLed while a program is running and restarted on the same ports.
3. examples/crossbridge-cli.sh (a real CrossBridge CLI command) reaches Jaeger.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pipeline
import pytest
import workload as program
from support.crossbridge_target import CROSSBRIDGE_SRC, crossbridge_env

pytestmark = pytest.mark.pipeline

WORKLOAD = pipeline.E2E_DIR / "workload.py"
VENV_BIN = Path(sys.executable).parent
DROPPED = re.compile(r"crossbridge-otel: dropped (\d+) spans and (\d+) log records")
#: The distribution's promise: exit within CROSSBRIDGE_OTEL_EXPORT_TIMEOUT (1.5 s) plus interpreter teardown.
EXIT_BUDGET_S = 2.0


# ----------------------------------------------------------------------------------------------- helpers
@dataclass
class Workload:
    """A running workload.py under opentelemetry-instrument; stdout/stderr are read as they come."""

    proc: subprocess.Popen[str]
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    exited_at: float | None = None  # time.time() when the process was seen to exit

    def __post_init__(self) -> None:
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line)

    def facts(self) -> list[dict[str, Any]]:
        return [json.loads(line[4:]) for line in list(self.stdout) if line.startswith("E2E {")]

    def wait_for_fact(self, key: str, value: Any, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for fact in self.facts():
                if fact.get(key) == value:
                    return fact
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"workload never printed {key}={value!r}\n{self.output()}")

    def wait(self, timeout: float = 120) -> int:
        rc = self.proc.wait(timeout)
        self.exited_at = time.time()
        for reader in self._readers:
            reader.join(10)
        return rc

    def last_statement_at(self) -> float:
        lines = [line for line in self.stdout if line.startswith("E2E-LAST ")]
        assert lines, f"no E2E-LAST line\n{self.output()}"
        assert self.stdout[-1].startswith("E2E-LAST "), "E2E-LAST must be the program's last output line"
        return float(lines[-1].split()[1])

    def dropped(self) -> tuple[int, int]:
        """(spans, log records) the distribution reported dropped on stderr; (0, 0) when it reported nothing."""
        found = DROPPED.findall("".join(self.stderr))
        return (int(found[-1][0]), int(found[-1][1])) if found else (0, 0)

    def output(self) -> str:
        return f"--- stdout ---\n{''.join(self.stdout)[-6000:]}\n--- stderr ---\n{''.join(self.stderr)[-6000:]}"


def start_workload(mode: str, arg: Path, collector: pipeline.Collector, service: str, **env: str) -> Workload:
    """Start ``opentelemetry-instrument python workload.py <mode> <arg>`` exporting to ``collector``."""
    environ = {
        **crossbridge_env(),
        # production mode (issue 17): the test run's CROSSBRIDGE_OTEL_STRICT=true must not reach the program
        "CROSSBRIDGE_OTEL_STRICT": "false",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.otlp_http_url,
        "OTEL_SERVICE_NAME": service,
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
        **env,
    }
    for name in ("TRACEPARENT", "TRACESTATE"):  # a trace of the test run itself must not leak in
        environ.pop(name, None)
    proc = subprocess.Popen(
        [str(VENV_BIN / "opentelemetry-instrument"), sys.executable, str(WORKLOAD), mode, str(arg)],
        env=environ,
        cwd=arg if arg.is_dir() else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return Workload(proc)


def start_pipeline(jaeger: pipeline.Jaeger, collector: pipeline.Collector) -> None:
    collector.start(jaeger=jaeger)
    collector.wait_ready(timeout=60)


def span_ids(jaeger: pipeline.Jaeger, service: str) -> set[str]:
    """Every distinct span id Jaeger holds for ``service``."""
    return {span["spanID"] for t in jaeger.traces(service, limit=1000) for span in t["spans"]}


def tags(item: dict[str, Any]) -> dict[str, Any]:
    """Jaeger tags (or log fields) as a dict."""
    return {tag["key"]: tag["value"] for tag in item.get("tags", item.get("fields", []))}


def otlp_attrs(attributes: list[dict[str, Any]]) -> dict[str, Any]:
    """OTLP JSON attributes (from the file exporter) as a dict of plain values."""
    return {a["key"]: next(iter(a["value"].values()), None) for a in attributes}


def wait_until(probe: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# ------------------------------------------------------------------------------------- 1. one traced run
@dataclass
class FullRun:
    jaeger: pipeline.Jaeger
    collector: pipeline.Collector
    service: str
    workload: Workload
    facts: dict[str, Any]
    trace: dict[str, Any]

    def spans(self, name: str) -> list[dict[str, Any]]:
        return [s for s in self.trace["spans"] if s["operationName"] == name]

    def span(self, name: str, **tag_values: Any) -> dict[str, Any]:
        found = [s for s in self.spans(name) if all(tags(s).get(k) == v for k, v in tag_values.items())]
        assert len(found) == 1, f"expected one {name} span with {tag_values}, got {len(found)}"
        return found[0]

    def parent(self, span: dict[str, Any]) -> dict[str, Any] | None:
        refs = [r for r in span["references"] if r["refType"] == "CHILD_OF"]
        if not refs:
            return None
        by_id = {s["spanID"]: s for s in self.trace["spans"]}
        return by_id[refs[0]["spanID"]]

    def pid(self, span: dict[str, Any]) -> int:
        return int(tags(self.trace["processes"][span["processID"]])["process.pid"])

    def records(self, kind: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(resource attributes, scope-level item) for ``resourceLogs`` / ``resourceMetrics`` of this service."""
        out = []
        for request in self.collector.file_records():
            for resource in request.get(kind, []):
                attrs = otlp_attrs(resource["resource"].get("attributes", []))
                if attrs.get("service.name") == self.service:
                    for scope in resource.get("scopeLogs", resource.get("scopeMetrics", [])):
                        out.append((attrs, scope))
        return out

    def log_records(self) -> list[dict[str, Any]]:
        return [record for _, scope in self.records("resourceLogs") for record in scope["logRecords"]]


# The spans the run must produce, as (name, tags that single it out) → (parent name, parent's tags).
EXPECTED_TREE = {
    ("execution.strategy", ()): ("e2e.workload", ()),
    ("coverage.collect", ()): ("execution.strategy", ()),
    ("coverage.command", ()): ("coverage.collect", ()),
    ("coverage.parse", (("crossbridge.coverage.format", "coverage.py"),)): ("execution.strategy", ()),
    ("coverage.parse", (("error.type", "FileNotFoundError"),)): ("execution.strategy", ()),
    ("translation.setup", ()): ("execution.strategy", ()),
    ("translation.translate", ()): ("execution.strategy", ()),
    ("profiling.storage.initialize", ()): ("e2e.workload", ()),
    ("runtime.retry", ()): ("e2e.workload", ()),
}


@pytest.fixture(scope="module")
def full(pipeline_binaries: pipeline.Binaries, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FullRun]:
    """Jaeger + collector, then one run of ``workload.py full`` that finished and whose trace reached Jaeger."""
    workdir = tmp_path_factory.mktemp("full")
    jaeger = pipeline.Jaeger(pipeline_binaries.jaeger, workdir=workdir / "jaeger")
    collector = pipeline.Collector(pipeline_binaries.otelcol, workdir=workdir / "otelcol")
    try:
        jaeger.start()
        jaeger.wait_ready(timeout=60)
        start_pipeline(jaeger, collector)
        service = f"e2e-full-{uuid.uuid4().hex[:8]}"
        run = start_workload(
            "full",
            workdir,
            collector,
            service,
            # three quick attempts for the refused storage connection (initialize runs under "quick")
            CROSSBRIDGE_OTEL_RETRY_POLICIES="default=3:0.05:0.1,quick=3:0.05:0.1",
        )
        rc = run.wait(timeout=120)
        assert rc == 0, run.output()
        facts = run.facts()[-1]
        expected = facts["spans_created"]

        def complete() -> dict[str, Any] | None:
            found = jaeger.trace(facts["trace_id"])
            # spans_created counts the parent process only; the child's spans come on top.
            return found if found and len(found["spans"]) > expected else None

        trace = wait_until(complete, 30, f"trace {facts['trace_id']} with more than {expected} spans in Jaeger")
        yield FullRun(jaeger, collector, service, run, facts, trace)
    except BaseException:
        sys.stderr.write(f"{jaeger.describe()}\n{collector.describe()}\n")
        raise
    finally:
        collector.stop()
        jaeger.stop()


def test_run_finishes_cleanly_with_nothing_dropped(full: FullRun) -> None:
    """The workload exits 0 within budget, every 'test' ran to its expected status, and nothing was dropped."""
    assert full.facts["results"] == {
        "child-process": "passed",
        "swallowed-failure": "failed",
        "exception": "error",
        "translation": "failed",
    }
    assert full.facts["storage_initialized"] is False
    assert full.facts["flaky_result"] == "ok"
    assert full.workload.dropped() == (0, 0), full.workload.output()
    exit_s = full.workload.exited_at - full.workload.last_statement_at()  # type: ignore[operator]
    print(f"\n[{full.service}] exit {exit_s:.3f}s after the last statement")
    assert exit_s < EXIT_BUDGET_S


def test_run_drives_the_real_crossbridge_in_both_processes(full: FullRun) -> None:
    """The program and its child imported CrossBridge from CROSSBRIDGE_SRC, the real target, not anything else."""
    assert CROSSBRIDGE_SRC is not None
    assert full.facts["crossbridge_src"] == str(CROSSBRIDGE_SRC)
    assert full.facts["child"] is not None, "the child process never wrote its facts"
    assert full.facts["child"]["crossbridge_src"] == str(CROSSBRIDGE_SRC)


def test_run_is_in_production_mode_not_strict(full: FullRun) -> None:
    """Issue 17: the instrumented program and its child run with CROSSBRIDGE_OTEL_STRICT=false, whatever the test
    run itself set."""
    assert full.facts["strict"] == "false"
    assert full.facts["child"]["strict"] == "false"


def test_run_service_is_listed_in_jaeger(full: FullRun) -> None:
    """Jaeger lists the workload's OTEL_SERVICE_NAME among its services."""
    assert full.service in full.jaeger.services()


def test_run_is_one_trace_across_threads_and_the_child_process(full: FullRun) -> None:
    """All spans share the root's trace id: pool-thread work and the child process are parented under it."""
    facts, trace = full.facts, full.trace
    assert {s["traceID"] for s in trace["spans"]} == {facts["trace_id"]}
    root = full.span("e2e.workload")
    assert root["spanID"] == facts["root_span_id"] and full.parent(root) is None
    for (name, keys), (parent_name, parent_keys) in EXPECTED_TREE.items():
        parent = full.parent(full.span(name, **dict(keys)))
        assert parent is not None and parent["operationName"] == parent_name, (name, keys)
        assert parent["spanID"] == full.span(parent_name, **dict(parent_keys))["spanID"]
    # the pool work really ran on other threads than the root span
    threads = facts["threads"]
    assert {threads[t] for t in program.POOL_TESTS}.isdisjoint({threads["main"]})
    # the child process's span hangs under the command span that started it, from another process
    command = full.span("coverage.command")
    in_child = [s for s in full.spans("coverage.parse") if full.parent(s) is command]
    assert len(in_child) == 1
    assert full.pid(in_child[0]) == facts["child"]["pid"] != facts["pid"] and full.pid(command) == facts["pid"]
    assert tags(full.trace["processes"][in_child[0]["processID"]]).get("service.instance.id") != tags(
        full.trace["processes"][command["processID"]]
    ).get("service.instance.id")


def test_run_spans_carry_the_contract_attributes(full: FullRun) -> None:
    """Every span of ours has crossbridge.area, crossbridge.category and code.function.name; the contrib
    library spans (sqlite3 under the coverage repository) sit under ours."""
    spans = [s for s in full.trace["spans"] if s["operationName"] != "e2e.workload"]
    instrumented = [s for s in spans if str(tags(s).get("otel.scope.name", "")).startswith("crossbridge_otel")]
    library = [s for s in spans if s not in instrumented]
    assert len(instrumented) >= len(EXPECTED_TREE) + 2
    for span in library:
        parent = full.parent(span)
        assert parent is not None and parent in instrumented, span["operationName"]
    for span in instrumented:
        t = tags(span)
        area = span["operationName"].split(".")[0]
        assert t["crossbridge.area"] == area, span["operationName"]
        assert t["crossbridge.category"], span["operationName"]
        assert t["code.function.name"], span["operationName"]
    assert tags(full.span("profiling.storage.initialize"))["code.function.name"] == (
        "core.profiling.storage.PostgresStorageBackend.initialize"
    )
    assert tags(full.span("coverage.collect"))["code.function.name"] == (
        "core.coverage.engine.CoverageMappingEngine.collect_coverage_isolated"
    )
    categories = {s["operationName"]: tags(s)["crossbridge.category"] for s in instrumented}
    assert categories["execution.strategy"] == "execution"
    assert categories["profiling.storage.initialize"] == "performance"
    assert categories["coverage.repository.save_test_coverage"] == "persistence"
    assert categories["translation.translate"] == "migration"


def test_run_error_statuses_reach_jaeger(full: FullRun) -> None:
    """Swallowed failures and the raised exception are ERROR with error.type; successful spans are not."""
    swallowed = tags(full.span("coverage.parse", **{"crossbridge.coverage.format": "coverage.py"}))
    assert (swallowed["otel.status_code"], swallowed["error"], swallowed["error.type"]) == (
        "ERROR",
        True,
        "returned_none",
    )
    raised_span = full.span("coverage.parse", **{"error.type": "FileNotFoundError"})
    assert tags(raised_span)["otel.status_code"] == "ERROR"
    exception_logs = [tags(log) for log in raised_span["logs"] if tags(log).get("event") == "exception"]
    assert len(exception_logs) == 1 and exception_logs[0]["exception.type"].endswith("FileNotFoundError")
    storage = tags(full.span("profiling.storage.initialize"))
    assert (storage["otel.status_code"], storage["error.type"]) == ("ERROR", "returned_false")
    translation = tags(full.span("translation.translate"))
    assert (translation["otel.status_code"], translation["error.type"]) == ("ERROR", "translation_failed")
    # CrossBridge's own error text, from its real generator, is the description
    assert translation["otel.status_description"] == "Generator cannot handle intent type: IntentType.UI"
    assert translation["crossbridge.translation.source_framework"] == "cypress"
    for ok in ("coverage.collect", "coverage.command", "execution.strategy", "runtime.retry", "translation.setup"):
        assert tags(full.span(ok)).get("otel.status_code") != "ERROR", ok


def test_run_retry_events_are_jaeger_span_logs(full: FullRun) -> None:
    """Each refused storage connect is a `retry` span log with the contract fields; the span counts attempts."""
    span = full.span("profiling.storage.initialize")
    retries = [tags(log) for log in span["logs"] if tags(log).get("event") == "retry"]
    assert [r["retry.attempt"] for r in retries] == [1, 2, 3]
    assert [r["retry.will_retry"] for r in retries] == [True, True, False]
    assert all(r["retry.max_attempts"] == 3 for r in retries)
    assert retries[-1]["retry.delay_s"] == 0 and all(r["retry.delay_s"] <= 0.1 for r in retries)
    assert all(r["error.type"] and "refused" in r["exception.message"].lower() for r in retries)
    assert not any("hunter2" in json.dumps(r) for r in retries)
    assert tags(span)["retry.attempts"] == 3


def test_run_crossbridge_retry_loop_is_observed_as_retry_span_logs(full: FullRun) -> None:
    """CrossBridge's own retry_with_backoff: one span, a `retry` log per failed attempt, not repeated by us."""
    span = full.span("runtime.retry")
    retries = [tags(log) for log in span["logs"] if tags(log).get("event") == "retry"]
    assert [r["retry.attempt"] for r in retries] == [1, 2]
    assert all(r["retry.will_retry"] is True and r["retry.max_attempts"] == 4 for r in retries)
    assert all(r["error.type"].endswith("ConnectionError") and "unavailable" in r["exception.message"] for r in retries)
    assert tags(span)["retry.attempts"] == 3
    assert tags(span).get("otel.status_code") != "ERROR"


def test_run_log_records_reach_the_collector_with_category_and_trace_ids(full: FullRun) -> None:
    """CrossBridge log records (the child's too) arrive at the file exporter with category and the trace's ids."""
    records = wait_until(
        lambda: [r for r in full.log_records() if "workload finished" in str(r["body"])] and full.log_records(),
        15,
        "the workload's log records in the collector's file output",
    )
    ids = {s["spanID"] for s in full.trace["spans"]}
    by_body = {str(next(iter(r["body"].values()))): r for r in records}
    expected = {
        "workload started": ("execution", "e2e.workload"),
        "JaCoCo report missing": ("execution", "execution.strategy"),
        "child parsed the report": ("testing", "coverage.command"),
        "Failed to initialize PostgreSQL storage": ("performance", "profiling.storage.initialize"),
        "Retry attempt 1/4": ("general", "runtime.retry"),
    }
    for prefix, (category, span_name) in expected.items():
        matches = [r for body, r in by_body.items() if body.startswith(prefix)]
        assert matches, f"no log record starting {prefix!r} in {sorted(by_body)}"
        record = matches[0]
        assert otlp_attrs(record["attributes"])["crossbridge.category"] == category
        assert record["traceId"] == full.facts["trace_id"]
        assert record["spanId"] in ids and record["spanId"] == full.span(span_name)["spanID"], prefix
    assert not any("hunter2" in json.dumps(r) for r in records)


def test_run_duration_metric_reaches_the_collector(full: FullRun) -> None:
    """crossbridge.operation.duration arrives at the file exporter per area, operation and outcome."""

    def points() -> list[dict[str, Any]]:
        found = []
        for _, scope in full.records("resourceMetrics"):
            for metric in scope["metrics"]:
                if metric["name"] == "crossbridge.operation.duration":
                    assert metric["unit"] == "s"
                    found += [otlp_attrs(p["attributes"]) for p in metric["histogram"]["dataPoints"]]
        return found

    expected = {
        ("coverage", "coverage.collect", "ok"),
        ("coverage", "coverage.parse", "failed"),
        ("coverage", "coverage.parse", "error"),
        ("execution", "execution.strategy", "ok"),
        ("profiling", "profiling.storage.initialize", "failed"),
        ("translation", "translation.translate", "failed"),
        ("runtime", "runtime.retry", "ok"),
    }
    seen = wait_until(
        lambda: (s := {(p["area"], p["operation"], p["outcome"]) for p in points()}) >= expected and s,
        15,
        "crossbridge.operation.duration points in the collector's file output",
    )
    assert expected <= seen


# --------------------------------------------------------------------------- 2. collector killed mid-run
@pytest.mark.parametrize(
    ("exporter_timeout", "expect_drops"),
    [
        # The SDK exporter's own timeout (10 s) outlasts the outage: the batch that failed is retried into the
        # restarted collector and nothing is lost.
        pytest.param(None, False, id="outage-shorter-than-exporter-timeout"),
        # A 0.5 s exporter timeout gives up on every batch sent during the outage: those spans are dropped,
        # and the distribution must say exactly how many.
        pytest.param("0.5", True, id="outage-longer-than-exporter-timeout"),
    ],
)
def test_collector_killed_and_restarted_mid_run(
    jaeger: pipeline.Jaeger,
    collector: pipeline.Collector,
    tmp_path: Path,
    exporter_timeout: str | None,
    expect_drops: bool,
) -> None:
    """SIGKILL the collector mid-run and restart it: the program is unaffected, exits in budget, and every
    span it created is either in Jaeger or in the drop count it reported."""
    start_pipeline(jaeger, collector)
    service = f"e2e-kill-{uuid.uuid4().hex[:8]}"
    extra = {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": exporter_timeout} if exporter_timeout else {}
    run = start_workload("steady", tmp_path, collector, service, **extra)

    # Kill only once Jaeger holds everything exported so far and the program is idle: then nothing the
    # collector accepted can be sitting in its exporter queue when it dies (that loss would be invisible to
    # the program, and the count could not be exact).
    paused = run.wait_for_fact("phase", "paused")
    assert paused["crossbridge_src"] == str(CROSSBRIDGE_SRC) and paused["strict"] == "false"
    wait_until(
        lambda: len(span_ids(jaeger, service)) == paused["spans_created"],
        30,
        f"{paused['spans_created']} spans of {service} in Jaeger before the kill",
    )
    assert collector.kill() == -9
    killed_at = time.monotonic()
    (tmp_path / "go").touch()
    # The program keeps creating spans while the collector is down.
    if expect_drops:
        # the outage lasts until a whole export attempt (0.5 s timeout) against the dead port failed and counted
        wait_until(lambda: (tmp_path / "dropped").exists(), 60, "a span batch dropped during the outage")
    else:
        # the outage's length is what this case is about: shorter than the exporter's own 10 s timeout (its
        # thread wakes every second, so the attempt it retries into the restarted collector starts within it)
        time.sleep(2.0)
    assert run.proc.poll() is None, "the workload should still be running when the collector comes back"
    start_pipeline(jaeger, collector)  # same ports: Collector keeps the ones it picked
    outage_s = time.monotonic() - killed_at

    rc = run.wait(timeout=120)
    assert rc == 0, run.output()
    done = run.wait_for_fact("phase", "done", timeout=1)
    assert done["operations"] == program.STEADY_BEFORE + program.STEADY_AFTER  # its own output is complete
    exit_s = run.exited_at - run.last_statement_at()  # type: ignore[operator]
    print(f"\n[{service}] outage {outage_s:.2f}s; exit {exit_s:.3f}s after the last statement")
    assert exit_s < EXIT_BUDGET_S, run.output()

    created = done["spans_created"]
    dropped_spans, _ = run.dropped()
    # Spans accepted by the restarted collector are on their way to Jaeger; wait for the books to balance
    # (or time out with the last figures).
    last: dict[str, int] = {}

    def balanced() -> bool:
        last["jaeger"] = len(span_ids(jaeger, service))
        return last["jaeger"] + dropped_spans == created

    try:
        wait_until(balanced, 20, "Jaeger's span count to settle")
    except AssertionError:
        pass
    print(f"[{service}] created {created}, in Jaeger {last['jaeger']}, reported dropped {dropped_spans}")
    # Exact by construction: the kill happens while nothing is in flight and Jaeger already holds everything the
    # collector accepted; during the outage an export either cannot connect (nothing delivered, the batch is
    # counted as dropped) or reaches the restarted collector, which stays up. The one way left to break the
    # equality is a request the collector accepted but answered after the exporter's timeout (counted dropped
    # AND stored): not expected on loopback within 0.5 s, and the figures printed above would show it.
    assert last["jaeger"] + dropped_spans == created, run.output()
    if expect_drops:
        assert dropped_spans > 0, run.output()
        assert "could not be exported to " + collector.otlp_http_url in "".join(run.stderr)  # the one exit line
    else:
        assert dropped_spans == 0, run.output()


# ------------------------------------------------------------------------------------- 3. the example
def test_example_cli_script_trace_reaches_jaeger(jaeger: pipeline.Jaeger, collector: pipeline.Collector) -> None:
    """examples/crossbridge-cli.sh (CrossBridge's own `coverage collect-isolated`) gives one trace in Jaeger."""
    start_pipeline(jaeger, collector)
    service = f"e2e-example-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "CROSSBRIDGE_SRC": str(CROSSBRIDGE_SRC),
        "CROSSBRIDGE_OTEL_STRICT": "false",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.otlp_http_url,
        "OTEL_SERVICE_NAME": service,
    }
    for name in ("PYTHONPATH", "TRACEPARENT", "TRACESTATE"):
        env.pop(name, None)
    done = subprocess.run(
        ["bash", str(pipeline.REPO_ROOT / "examples" / "crossbridge-cli.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Coverage collected successfully" in done.stdout  # CrossBridge's own CLI output
    expected = {"cli.command", "coverage.collect", "coverage.command", "coverage.parse",
                "coverage.repository.save_test_coverage"}
    traces = jaeger.wait_for_traces(service, lambda found: expected <= {s["operationName"] for s in found[0]["spans"]})
    assert len(traces) == 1
    spans = traces[0]["spans"]
    collect = next(s for s in spans if s["operationName"] == "coverage.collect")
    assert tags(collect)["code.function.name"] == "core.coverage.engine.CoverageMappingEngine.collect_coverage_isolated"
    parse = next(s for s in spans if s["operationName"] == "coverage.parse")
    assert [r["spanID"] for r in parse["references"]] == [collect["spanID"]], "the parse runs inside the collection"
    command = next(s for s in spans if s["operationName"] == "cli.command")
    assert not command["references"], "the CLI command is the root"
    assert [r["spanID"] for r in collect["references"]] == [command["spanID"]]
