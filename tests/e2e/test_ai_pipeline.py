"""End to end for the AI area (issue 13): a migration with AI transformation on the real CrossBridge, run under
``opentelemetry-instrument`` (tests/e2e/ai_workload.py) → the real collector running collector-config.yaml → the
real Jaeger, checked through Jaeger's HTTP query API and the collector's file exporter.

The fake Bitbucket (two Java tests) and the fake model server (Anthropic's API) run in this test process, so the
model calls are counted by the server, not by the instrumented program. The same pipeline takes two runs, each
with its own service name and its own unique marker in the Java sources CrossBridge puts into its prompt:

- the default run (no content capture): the trace, the metrics, and the marker nowhere;
- a control run with ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``: its marker does reach Jaeger,
  which shows the "nowhere" check can see a prompt when one is exported.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pipeline
import pytest
from support import fake_bitbucket, fake_llm
from support.crossbridge_target import CROSSBRIDGE_SRC, SAMPLES, crossbridge_env

from crossbridge_otel import genai

pytestmark = pytest.mark.pipeline

AI_WORKLOAD = pipeline.E2E_DIR / "ai_workload.py"
VENV_BIN = Path(sys.executable).parent
MODEL = "claude-3-5-sonnet-20241022"
CHAT = f"chat {MODEL}"
#: The fake Bitbucket's Java tests; each is one AI transformation, so one model call.
JAVA_TESTS = ("LoginTest", "LogoutTest")
#: The explicit bucket boundaries the GenAI semantic conventions give for the two client histograms.
CONVENTIONS_TOKEN_BOUNDS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216,
                            67108864]
CONVENTIONS_DURATION_BOUNDS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96,
                               81.92]
#: Text only the completion contains (the fake model's reply) and text only CrossBridge's prompt contains.
COMPLETION_TEXT = "migrated by the fake model"
PROMPT_TEXT = "expert in test automation"


def tags(item: dict[str, Any]) -> dict[str, Any]:
    """Jaeger tags as a dict."""
    return {tag["key"]: tag["value"] for tag in item.get("tags", [])}


def otlp_attrs(attributes: list[dict[str, Any]]) -> dict[str, Any]:
    """OTLP JSON attributes (from the file exporter) as a dict of plain values."""
    return {a["key"]: next(iter(a["value"].values()), None) for a in attributes}


def wait_until(probe: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := probe():
            return found
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class AIRun:
    service: str
    marker: str
    facts: dict[str, Any]
    model_requests: list[tuple[str, str, dict[str, str], Any]]
    trace: dict[str, Any]
    output: str

    def spans(self, prefix: str) -> list[dict[str, Any]]:
        return [s for s in self.trace["spans"] if s["operationName"].startswith(prefix)]

    def parent(self, span: dict[str, Any]) -> dict[str, Any] | None:
        refs = [r for r in span["references"] if r["refType"] == "CHILD_OF"]
        by_id = {s["spanID"]: s for s in self.trace["spans"]}
        return by_id.get(refs[0]["spanID"]) if refs else None

    def ancestors(self, span: dict[str, Any]) -> list[str]:
        names, current = [], self.parent(span)
        while current is not None:
            names.append(current["operationName"])
            current = self.parent(current)
        return names


@dataclass
class Pipeline:
    jaeger: pipeline.Jaeger
    collector: pipeline.Collector
    default: AIRun
    captured: AIRun

    def metrics(self, service: str) -> dict[str, dict[str, Any]]:
        """The collector file's metrics of ``service``, by name (the last export of each wins)."""
        found: dict[str, dict[str, Any]] = {}
        for request in self.collector.file_records():
            for resource in request.get("resourceMetrics", []):
                if otlp_attrs(resource["resource"].get("attributes", [])).get("service.name") == service:
                    for scope in resource.get("scopeMetrics", []):
                        found.update({m["name"]: m for m in scope.get("metrics", [])})
        return found

    def file_of(self, service: str) -> str:
        """Every resource block (traces, logs, metrics) ``service`` sent, as the file exporter wrote it."""
        blocks = []
        for request in self.collector.file_records():
            for kind in ("resourceSpans", "resourceLogs", "resourceMetrics"):
                for resource in request.get(kind, []):
                    if otlp_attrs(resource["resource"].get("attributes", [])).get("service.name") == service:
                        blocks.append(json.dumps(resource, ensure_ascii=False))
        return "\n".join(blocks)

    def jaeger_of(self, service: str) -> str:
        """Every trace Jaeger holds for ``service``, as its query API returns it."""
        return json.dumps(self.jaeger.traces(service, limit=1000), ensure_ascii=False)


def _java_sources(marker: str) -> dict[str, str]:
    """Two Java tests whose source (so CrossBridge's prompt) carries ``marker`` in a comment."""
    login = (SAMPLES / "LoginTest.java").read_text()
    return {f"src/{name}.java": f"// {marker}\n" + login.replace("class LoginTest", f"class {name}")
            for name in JAVA_TESTS}


def _run(jaeger: pipeline.Jaeger, collector: pipeline.Collector, llm: fake_llm.FakeLLM,
         bitbucket: fake_bitbucket.FakeBitbucket, **env: str) -> AIRun:
    """One ai_workload.py run with a fresh service name and marker; waits for its trace in Jaeger."""
    service, marker = f"e2e-ai-{uuid.uuid4().hex[:8]}", f"e2e-prompt-marker-{uuid.uuid4().hex}"
    bitbucket.files = {**_java_sources(marker), "README.md": "# demo\n"}
    seen_before = len(llm.requests)
    environ = {
        **crossbridge_env(),
        # production mode (issue 17): the test run's CROSSBRIDGE_OTEL_STRICT=true must not reach the program
        "CROSSBRIDGE_OTEL_STRICT": "false",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.otlp_http_url,
        "OTEL_SERVICE_NAME": service,
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
        "ANTHROPIC_BASE_URL": llm.base,
        **bitbucket.routing_env,
    }
    for name in ("TRACEPARENT", "TRACESTATE", "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
                 "OTEL_SEMCONV_STABILITY_OPT_IN"):
        environ.pop(name, None)
    environ.update(env)
    proc = subprocess.run([str(VENV_BIN / "opentelemetry-instrument"), sys.executable, str(AI_WORKLOAD)],
                          env=environ, capture_output=True, text=True, timeout=180, check=False)
    output = f"--- stdout ---\n{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-6000:]}"
    assert proc.returncode == 0, output
    facts = [json.loads(line[4:]) for line in proc.stdout.splitlines() if line.startswith("E2E {")][-1]
    assert len(facts["migrate_trace_ids"]) == 1, output
    model_requests = [r for r in llm.requests[seen_before:] if r[0] == "POST"]

    trace_id = facts["migrate_trace_ids"][0]
    expected = facts["spans_in_trace"][trace_id]

    def complete() -> dict[str, Any] | None:
        found = jaeger.trace(trace_id)
        return found if found and len(found["spans"]) >= expected else None

    trace = wait_until(complete, 30, f"the {expected} spans of {service}'s migration trace in Jaeger")
    return AIRun(service, marker, facts, model_requests, trace, output)


@pytest.fixture(scope="module")
def ai_pipeline(pipeline_binaries: pipeline.Binaries, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """Jaeger + collector + the two fakes, then the default run and the content-capture control run."""
    workdir = tmp_path_factory.mktemp("ai")
    jaeger = pipeline.Jaeger(pipeline_binaries.jaeger, workdir=workdir / "jaeger")
    collector = pipeline.Collector(pipeline_binaries.otelcol, workdir=workdir / "otelcol")
    try:
        jaeger.start()
        jaeger.wait_ready(timeout=60)
        collector.start(jaeger=jaeger)
        collector.wait_ready(timeout=60)
        with fake_llm.serve() as llm, fake_bitbucket.serve() as (_, bitbucket):
            default = _run(jaeger, collector, llm, bitbucket)
            captured = _run(jaeger, collector, llm, bitbucket,
                            OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true")
        yield Pipeline(jaeger, collector, default, captured)
    except BaseException:
        sys.stderr.write(f"{jaeger.describe()}\n{collector.describe()}\n")
        raise
    finally:
        collector.stop()
        jaeger.stop()


def test_the_real_migration_transformed_every_file_with_the_fake_model(ai_pipeline: Pipeline) -> None:
    """CrossBridge (from CROSSBRIDGE_SRC) transformed both Java tests by AI: one Anthropic call each, every prompt
    carrying the run's marker, no name resolved but loopback."""
    run = ai_pipeline.default
    assert run.facts["crossbridge_src"] == str(CROSSBRIDGE_SRC)
    assert run.facts["capture"] is None
    assert run.facts["files_transformed"] == run.facts["ai_metrics"]["files_transformed"] == len(JAVA_TESTS)
    assert [path for _, path, _, _ in run.model_requests] == ["/v1/messages"] * len(JAVA_TESTS)
    assert all(run.marker in json.dumps(body) for _, _, _, body in run.model_requests)
    assert set(run.facts["names_resolved"]) <= fake_bitbucket.LOOPBACK


def test_jaeger_shows_migration_step_and_one_chat_span_per_model_call(ai_pipeline: Pipeline) -> None:
    """One trace: orchestration.migrate at the root, an ai.transform.* step per file, and under each step one
    'chat <model>' CLIENT span per call the fake server counted, with tokens and cost."""
    run = ai_pipeline.default
    trace_id = run.facts["migrate_trace_ids"][0]
    assert {s["traceID"] for s in run.trace["spans"]} == {trace_id}
    assert len(run.trace["spans"]) == run.facts["spans_in_trace"][trace_id]
    [migrate] = run.spans("orchestration.migrate")
    assert run.parent(migrate) is None
    steps, chats = run.spans("ai.transform."), run.spans(CHAT)
    assert len(chats) == len(run.model_requests) == len(steps) == len(JAVA_TESTS)
    assert sorted(tags(s)["crossbridge.ai.source_file"] for s in steps) == sorted(f"{n}.java" for n in JAVA_TESTS)
    for step in steps:
        assert "orchestration.migrate" in run.ancestors(step)
        [chat] = [c for c in chats if run.parent(c) is step]
        t = tags(chat)
        assert (t["span.kind"], t["gen_ai.operation.name"], t["gen_ai.provider.name"]) == ("client", "chat",
                                                                                           "anthropic")
        assert (t["gen_ai.usage.input_tokens"], t["gen_ai.usage.output_tokens"]) == (23, 7)
        assert t["crossbridge.ai.cost_usd"] > 0
        assert tags(step)["crossbridge.ai.cost_usd"] == pytest.approx(t["crossbridge.ai.cost_usd"])
    total = sum(tags(c)["crossbridge.ai.cost_usd"] for c in chats)
    assert total == pytest.approx(run.facts["ai_metrics"]["total_cost"])
    print(f"\n[{run.service}] {len(run.trace['spans'])} spans; chat: "
          + "; ".join(f"in={tags(c)['gen_ai.usage.input_tokens']} out={tags(c)['gen_ai.usage.output_tokens']} "
                      f"cost_usd={tags(c)['crossbridge.ai.cost_usd']}" for c in chats)
          + f"; total {total} USD; steps {[s['operationName'] for s in steps]}")


def _histogram(ai_pipeline: Pipeline, service: str, name: str, points: int) -> dict[str, Any]:
    """The histogram ``name`` of ``service`` once the collector file holds ``points`` data points of it."""
    def probe() -> dict[str, Any] | None:
        metric = ai_pipeline.metrics(service).get(name)
        return metric if metric and len(metric["histogram"]["dataPoints"]) >= points else None

    return wait_until(probe, 30, f"{name} of {service} at the collector's file exporter")


def test_token_histogram_arrives_with_the_conventions_boundaries(ai_pipeline: Pipeline) -> None:
    """gen_ai.client.token.usage ({token}) reaches the collector per token type, with the conventions' explicit
    boundaries (those the distribution sets in crossbridge_otel.genai), summing the calls' tokens."""
    run = ai_pipeline.default
    metric = _histogram(ai_pipeline, run.service, genai.TOKEN_METRIC, 2)
    assert metric["unit"] == "{token}"
    by_type = {otlp_attrs(p["attributes"])["gen_ai.token.type"]: p for p in metric["histogram"]["dataPoints"]}
    assert set(by_type) == {"input", "output"}
    calls = len(run.model_requests)
    for kind, per_call in (("input", 23), ("output", 7)):
        point = by_type[kind]
        assert point["explicitBounds"] == CONVENTIONS_TOKEN_BOUNDS == list(genai.TOKEN_BUCKETS)
        assert (int(point["count"]), point["sum"]) == (calls, per_call * calls)
        assert otlp_attrs(point["attributes"])["gen_ai.provider.name"] == "anthropic"
    print(f"\n[{run.service}] token bounds {by_type['input']['explicitBounds']}; "
          f"input sum {by_type['input']['sum']}, output sum {by_type['output']['sum']}")


def test_duration_histogram_arrives_with_the_conventions_boundaries(ai_pipeline: Pipeline) -> None:
    """gen_ai.client.operation.duration (s) reaches the collector with the conventions' explicit boundaries, one
    measurement per model call."""
    run = ai_pipeline.default
    metric = _histogram(ai_pipeline, run.service, genai.DURATION_METRIC, 1)
    assert metric["unit"] == "s"
    [point] = metric["histogram"]["dataPoints"]
    assert point["explicitBounds"] == CONVENTIONS_DURATION_BOUNDS == list(genai.DURATION_BUCKETS)
    assert int(point["count"]) == len(run.model_requests) and point["sum"] > 0
    assert "error.type" not in otlp_attrs(point["attributes"])
    print(f"\n[{run.service}] duration bounds {point['explicitBounds']}; count {point['count']}, "
          f"sum {point['sum']:.4f} s")


def test_default_run_exports_no_prompt_or_completion_text(ai_pipeline: Pipeline) -> None:
    """Without content capture, the prompt's marker is nowhere in Jaeger or the collector's file, and neither
    CrossBridge's prompt text nor the model's completion is in anything the run exported."""
    run = ai_pipeline.default
    everything_in_jaeger = "\n".join(ai_pipeline.jaeger_of(s) for s in ai_pipeline.jaeger.services())
    assert run.marker not in everything_in_jaeger
    assert run.marker not in ai_pipeline.collector.file_path.read_text()
    exported = ai_pipeline.jaeger_of(run.service) + ai_pipeline.file_of(run.service)
    assert CHAT in exported  # the run's exports are really there
    assert PROMPT_TEXT not in exported and COMPLETION_TEXT not in exported


def test_control_run_with_content_capture_exports_its_marker(ai_pipeline: Pipeline) -> None:
    """With OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true the prompt, marker included, is on the chat
    spans in Jaeger: the default run's absence is the distribution's choice, not a blind check."""
    run = ai_pipeline.captured
    assert run.facts["capture"] == "true"
    chats = run.spans(CHAT)
    assert len(chats) == len(run.model_requests) == len(JAVA_TESTS)
    assert all(run.marker in str(tags(c).get("gen_ai.input.messages")) for c in chats)
    assert all(COMPLETION_TEXT in str(tags(c).get("gen_ai.output.messages")) for c in chats)
    assert run.marker in ai_pipeline.collector.file_path.read_text()
