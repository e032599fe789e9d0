"""The scale-out recipe on real binaries: concurrent instrumented CrossBridge processes -> one agent
(examples/deploy/agent.yaml, load_balancing by trace id) -> two gateways (collector-config.yaml +
examples/deploy/gateway.yaml: memory_limiter, the shared redaction, tail sampling) -> Jaeger on Badger
(tests/e2e/jaeger.yaml). Everything listens on 127.0.0.x; the processes are tests/e2e/scaleout_workload.py under
``opentelemetry-instrument`` with ``CROSSBRIDGE_OTEL_STRICT=false``.

1. Steady run (static resolver): 3 processes x 40 operations, each operation one trace of a known kind. Checked:
   every kept trace is complete, every error/retry/rate-limit/slow trace kept, ordinary traces kept exactly when
   the probabilistic rule says so (and at the configured share within 4 binomial standard deviations), both
   gateways used, secrets redacted by the gateway, and everything still there after Jaeger restarts.
2. Single node: collector-config.yaml -> jaeger.yaml (Badger by default) keeps traces across a Jaeger SIGKILL.
Also: each tier's config validates, the gateway's redaction is collector-config.yaml's, and a burst of kept traces
leaves a gateway whole. A gateway killed mid-run: test_scaleout_failover.py. Figures print with ``pytest -s``.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pipeline
import pytest
import scaleout as so
import scaleout_sizing as sizing
import yaml

pytestmark = pytest.mark.pipeline

SECRETS = ("hunter2", "s3cr3t", "abc123tok")


# ----------------------------------------------------------------------------------------------- helpers
def send_secret_span(endpoint: str, service: str) -> str:
    """One ERROR span (so the sampler keeps it) with credentials in clear text, straight from the SDK: only the
    gateway's redaction stands between them and Jaeger."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import Status, StatusCode

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=10)))
    with provider.get_tracer("crossbridge.e2e").start_as_current_span("coverage.parse") as span:
        span.set_attribute("password", "hunter2")
        span.set_attribute("db.connection_string", "host=db user=app password=s3cr3t")
        span.set_attribute("url.full", "https://bob:s3cr3t@repo.example/x?token=abc123tok")
        span.set_status(Status(StatusCode.ERROR, "e2e"))
        trace_id = f"{span.get_span_context().trace_id:032x}"
    provider.shutdown()
    return trace_id


def tags(span: dict[str, Any]) -> dict[str, Any]:
    return {t["key"]: t["value"] for t in span["tags"]}


# ----------------------------------------------------------------------------------------------- configs
CONFIGS = {
    "agent-static": [so.AGENT_CONFIG],
    "agent-dns": [so.AGENT_CONFIG, so.AGENT_DNS_CONFIG],
    "gateway": [pipeline.COLLECTOR_CONFIG, so.GATEWAY_CONFIG],
}


def _clean_env(tmp_path: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}


@pytest.mark.parametrize("files", list(CONFIGS.values()), ids=list(CONFIGS))
def test_scaleout_config_validates_with_defaults(
    pipeline_binaries: pipeline.Binaries, tmp_path: Path, files: list[Path]
) -> None:
    """Each tier's config, with no environment variable set, passes the real collector's `validate`."""
    proc = subprocess.run(
        [str(pipeline_binaries.otelcol), "validate", *(f"--config={f}" for f in files)],
        env=_clean_env(tmp_path), capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("config", [pipeline.JAEGER_CONFIG, pipeline.E2E_DIR / "jaeger-memory.yaml"],
                         ids=["badger", "memory"])
def test_jaeger_config_validates(pipeline_binaries: pipeline.Binaries, tmp_path: Path, config: Path) -> None:
    """Both Jaeger configs (Badger default, in-memory variant) pass Jaeger's own `validate`."""
    proc = subprocess.run(
        [str(pipeline_binaries.jaeger), "validate", f"--config={config}"],
        env=_clean_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _print_config(binary: Path, files: list[Path], tmp_path: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [str(binary), "print-config", *(f"--config={f}" for f in files)],
        env=_clean_env(tmp_path), capture_output=True, text=True, timeout=60, check=True,
    )
    return dict(yaml.safe_load(proc.stdout))


def test_gateway_redaction_is_the_single_node_redaction(pipeline_binaries: pipeline.Binaries, tmp_path: Path) -> None:
    """The gateway's redaction processors come from collector-config.yaml alone: same definitions, same order."""
    assert "redact" not in "".join(
        line for line in so.GATEWAY_CONFIG.read_text().splitlines(keepends=True)
        if not line.lstrip().startswith("#") and "processors: [" not in line
    ), "gateway.yaml must not define a redaction processor of its own"
    single = _print_config(pipeline_binaries.otelcol, [pipeline.COLLECTOR_CONFIG], tmp_path)
    gateway = _print_config(pipeline_binaries.otelcol, CONFIGS["gateway"], tmp_path)
    for name in ("attributes/redact", "transform/redact"):
        assert gateway["processors"][name] == single["processors"][name]
    processors = gateway["service"]["pipelines"]["traces"]["processors"]
    assert processors == ["memory_limiter", "attributes/redact", "transform/redact", "tail_sampling"]


def test_gateway_forwards_a_burst_of_kept_traces_without_dropping(
    pipeline_binaries: pipeline.Binaries, tmp_path: Path
) -> None:
    """3,200 traces kept at once all reach Jaeger: the gateway's Jaeger queue is sized in spans, not requests."""
    procs: list[pipeline._Process] = []
    try:
        jaeger = so.start_jaeger(pipeline_binaries, tmp_path)
        procs.append(jaeger)
        gateway = so.Gateway(pipeline_binaries.otelcol, tmp_path / "gateway", "gateway")
        procs.append(gateway.start_gateway(jaeger, f"{pipeline.HOST}:{pipeline.free_port()}",
                                           {**so.SAMPLING_ENV, "TAIL_SAMPLING_PERCENT": "100"}))
        gateway.wait_ready()
        requests = sizing.build_requests(400)  # 400 x 64 spans, 8 per trace
        sizing.send(gateway.http_port, requests)
        spans = len(requests) * sizing.TRACES_PER_REQUEST * sizing.SPANS_PER_TRACE
        so.wait_until(lambda: sizing.sampling_done([gateway]), 60, "every trace decided and exported")
        samples = so.prometheus(gateway.metrics_url)
        assert so.metric(samples, "otelcol_exporter_enqueue_failed_spans") == 0
        assert so.metric(samples, "otelcol_exporter_sent_spans", exporter="otlp_grpc/jaeger") == spans
    finally:
        so.stop_all(reversed(procs))


# ----------------------------------------------------------------------------------------------- 1. steady
@dataclass
class SteadyRun:
    outcome: so.Outcome
    service_traces: int  # traces Jaeger lists for the workload's service
    agent: list[tuple[str, dict[str, str], float]]
    gateways: list[list[tuple[str, dict[str, str], float]]]
    dropped: list[int]  # spans each process reported dropped
    secret_trace: dict[str, Any] | None
    after_restart: so.Outcome

    def figures(self) -> dict[str, Any]:
        return {
            **self.outcome.figures(),
            "agent_accepted": so.metric(self.agent, "otelcol_receiver_accepted_spans"),
            "agent_send_failed": so.metric(self.agent, "otelcol_exporter_send_failed_spans"),
            "gateway_accepted": [so.metric(g, "otelcol_receiver_accepted_spans") for g in self.gateways],
            "process_dropped": self.dropped,
            "kept_after_restart": sum(s is not None for s in self.after_restart.found.values()),
        }


@pytest.fixture(scope="module")
def steady(pipeline_binaries: pipeline.Binaries, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SteadyRun]:
    """The whole steady run, once per module; every process is stopped before the tests look at the record."""
    workdir = tmp_path_factory.mktemp("scaleout-steady")
    procs: list[pipeline._Process] = []
    try:
        jaeger = so.start_jaeger(pipeline_binaries, workdir)
        procs.append(jaeger)
        gateways = [so.Gateway(pipeline_binaries.otelcol, workdir / f"gateway-{n}", f"gateway-{n}") for n in "ab"]
        for gw in gateways:
            procs.append(gw.start_gateway(jaeger, f"{pipeline.HOST}:{pipeline.free_port()}", so.SAMPLING_ENV))
        for gw in gateways:
            gw.wait_ready()
        agent = so.Agent(pipeline_binaries.otelcol, workdir / "agent")
        procs.append(agent.start_agent(gateways=[gw.grpc_endpoint for gw in gateways]))
        agent.wait_ready()

        service = f"scaleout-{uuid.uuid4().hex[:8]}"
        workloads = so.start_workloads(3, agent, service, workdir / "work", operations=40, pace_s=0.02, slow_s=0.6)
        secret_id = send_secret_span(agent.otlp_grpc_endpoint, service + "-secrets")
        rcs = so.wait_all(workloads, timeout=150)
        assert rcs == [0] * len(rcs), [w.stderr()[-3000:] for w in workloads]
        facts = so.Facts.read(sorted((workdir / "work").glob("facts-*.jsonl")))
        outcome = so.settle(jaeger, facts)
        secret_trace = jaeger.trace(secret_id)
        service_traces = len(jaeger.traces(service, limit=5000))
        agent_samples = agent.samples()
        gateway_samples = [so.prometheus(gw.metrics_url) for gw in gateways]
        so.restart_jaeger(jaeger, kill=False)
        run = SteadyRun(outcome, service_traces, agent_samples, gateway_samples,
                        [w.dropped_spans() for w in workloads], secret_trace, so.observe(jaeger, facts))
        so.report("steady", run.figures())
        yield run
    finally:
        so.stop_all(reversed(procs))


def test_steady_every_kept_trace_is_complete(steady: SteadyRun) -> None:
    """Every trace in Jaeger has all the spans its processes and threads made (including the child process's)."""
    outcome = steady.outcome
    kept = [op for op in outcome.facts.ops if outcome.kept(op)]
    assert kept
    incomplete = [(op["kind"], op["trace_id"]) for op in kept if not outcome.complete(op)]
    assert not incomplete, f"{len(incomplete)} incomplete: {incomplete[:5]}; {outcome.summary()}"
    child = [op for op in kept if op["kind"] == "child"]
    assert child and len(outcome.facts.pids[child[0]["trace_id"]]) == 2, "no complete two-process trace"
    assert steady.dropped == [0] * len(steady.dropped), "a process reported dropped spans"


def test_steady_error_retry_ratelimit_and_slow_traces_are_all_kept(steady: SteadyRun) -> None:
    """No trace with an ERROR span, a retry event, a rate_limit.wait event or a slow duration is sampled out."""
    outcome = steady.outcome
    for kind in ("error", "retry", "ratelimit", "slow", "child"):
        ops = [op for op in outcome.facts.ops if op["kind"] == kind]
        assert ops, f"the workload made no {kind} operation"
        missing = [op["trace_id"] for op in ops if not outcome.kept(op)]
        assert not missing, f"{len(missing)} of {len(ops)} {kind} traces dropped; {outcome.summary()}"


def test_steady_ordinary_traces_are_kept_at_the_configured_share(steady: SteadyRun) -> None:
    """Ordinary traces are kept exactly when the probabilistic rule says so, at the set share within 4 sigma."""
    outcome = steady.outcome
    ordinary = [op for op in outcome.facts.ops if op["kind"] == "ok" and int(op["duration_ms"]) <= so.SLOW_MS]
    assert len(ordinary) >= 50
    rule = {op["trace_id"]: so.probabilistic_keeps(op["trace_id"], so.PERCENT) for op in ordinary}
    wrong = [op["trace_id"] for op in ordinary if outcome.kept(op) != rule[op["trace_id"]]]
    assert not wrong, f"{len(wrong)} ordinary traces decided against the probabilistic rule: {wrong[:5]}"
    share = sum(outcome.kept(op) for op in ordinary) / len(ordinary)
    p, n = so.PERCENT / 100, len(ordinary)
    assert abs(share - p) <= 4 * (p * (1 - p) / n) ** 0.5, f"kept {share:.3f} of {n} ordinary traces, expected {p}"
    # nothing else of ours in Jaeger: no fragment of a dropped trace was kept on its own
    assert steady.service_traces == sum(outcome.kept(op) for op in outcome.facts.ops)


def test_steady_traffic_is_spread_over_both_gateways(steady: SteadyRun) -> None:
    """The agent delivered every span it accepted, and each gateway received a share of them."""
    accepted = so.metric(steady.agent, "otelcol_receiver_accepted_spans")
    assert accepted >= steady.outcome.facts.span_count
    assert so.metric(steady.agent, "otelcol_exporter_sent_spans", exporter="load_balancing") == accepted
    assert so.metric(steady.agent, "otelcol_exporter_send_failed_spans") == 0
    per_gateway = [so.metric(g, "otelcol_receiver_accepted_spans") for g in steady.gateways]
    assert sum(per_gateway) == accepted
    assert min(per_gateway) >= 0.2 * accepted, per_gateway


def test_steady_gateway_redacts_secrets(steady: SteadyRun) -> None:
    """Credentials sent in clear text through agent and gateway reach Jaeger redacted."""
    assert steady.secret_trace is not None, "the ERROR span with secrets was not kept"
    (span,) = steady.secret_trace["spans"]
    found = tags(span)
    assert "password" not in found
    assert found["db.connection_string"] == "host=db user=app password=***"
    assert found["url.full"] == "https://REDACTED:REDACTED@repo.example/x?token=***"
    assert not any(secret in str(steady.secret_trace) for secret in SECRETS)


def test_steady_jaeger_restart_keeps_what_it_stored(steady: SteadyRun) -> None:
    """After a Jaeger restart on the same Badger directory every stored trace is still there, whole."""
    before, after = steady.outcome, steady.after_restart
    stored = {t: sorted(s) for t, s in before.found.items() if s is not None}
    assert stored
    assert {t: sorted(s) for t, s in after.found.items() if s is not None} == stored


# ----------------------------------------------------------------------------------------------- 2. single node
def test_single_node_jaeger_keeps_traces_across_a_kill(jaeger: pipeline.Jaeger, collector: pipeline.Collector) -> None:
    """collector-config.yaml -> jaeger.yaml (Badger by default): what Jaeger stored survives a SIGKILL and restart."""
    collector.start(jaeger=jaeger)
    collector.wait_ready()
    service = f"single-{uuid.uuid4().hex[:8]}"
    trace_id = send_secret_span(collector.otlp_grpc_endpoint, service)
    before = jaeger.wait_for_traces(service, timeout=30)
    assert [t["traceID"] for t in before] == [trace_id]
    so.restart_jaeger(jaeger, kill=True)
    after = jaeger.traces(service)
    assert [t["traceID"] for t in after] == [trace_id]
    assert after[0]["spans"][0]["spanID"] == before[0]["spans"][0]["spanID"]
