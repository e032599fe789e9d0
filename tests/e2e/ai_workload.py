"""A migration with AI transformation on the real CrossBridge, run under ``opentelemetry-instrument`` for the AI
area's end-to-end test (tests/e2e/test_ai_pipeline.py).

It imports CrossBridge (on ``PYTHONPATH``: ``crossbridge_target.crossbridge_env()``) and the OpenTelemetry API
only, never crossbridge_otel: what it exports comes from the distribution the way a user gets it. The test runs
the fake Bitbucket and the fake model server and hands them over in the environment: ``https_proxy`` +
``REQUESTS_CA_BUNDLE`` route ``https://api.bitbucket.org`` to the fake Bitbucket, ``ANTHROPIC_BASE_URL`` points
the ``anthropic`` SDK at the fake model. The migration request is the in-memory AI test's
(tests/instrumentors/test_ai.py).

    python ai_workload.py

Run with ``CROSSBRIDGE_HOOKS_ENABLED=false`` inside a loopback-only network namespace. The facts for the test are
one ``E2E {json}`` line on stdout.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: fake_bitbucket's loopback guard

from support.fake_bitbucket import loopback_names_only  # noqa: E402

MODEL = "claude-3-5-sonnet-20241022"


class MigrateSpans(SpanProcessor):
    """Remembers the trace id of every ``orchestration.migrate`` span and counts the spans ended per trace (the
    number Jaeger must end up holding)."""

    def __init__(self) -> None:
        self.trace_ids: list[str] = []
        self.per_trace: dict[str, int] = {}

    def on_end(self, span) -> None:  # type: ignore[no-untyped-def]
        trace_id = f"{span.context.trace_id:032x}"
        self.per_trace[trace_id] = self.per_trace.get(trace_id, 0) + 1
        if span.name == "orchestration.migrate":
            self.trace_ids.append(trace_id)


def migration_request():  # type: ignore[no-untyped-def]
    """The fake Bitbucket's Java tests, migrated with AI transformation by Anthropic (the fake model)."""
    from core.orchestration import MigrationRequest, RepositoryAuth
    from core.orchestration.models import AIConfig, AIMode

    return MigrationRequest(
        repo_url="https://bitbucket.org/acme/demo", branch="main", target_branch="crossbridge/migration",
        auth=RepositoryAuth(auth_type="bitbucket_app_password", token="bb-token-1", username="u"),
        framework_config={"java_src_path": "src"}, max_workers=2, create_pr=False, use_ai=True,
        ai_config=AIConfig(mode=AIMode.PUBLIC_CLOUD, provider="anthropic", api_key="sk-ant-migration-key",
                           model=MODEL))


def main() -> None:
    from core.orchestration import MigrationOrchestrator

    spans = MigrateSpans()
    trace.get_tracer_provider().add_span_processor(spans)  # type: ignore[attr-defined]
    orchestrator = MigrationOrchestrator()
    # As in the in-memory test: no name but loopback is ever resolved (Bitbucket goes through the fake's proxy).
    with loopback_names_only() as asked:
        response = orchestrator.run(migration_request())
    print("E2E " + json.dumps({
        "migrate_trace_ids": spans.trace_ids,
        "spans_in_trace": {t: spans.per_trace[t] for t in spans.trace_ids},
        "files_transformed": len(response.files_transformed),
        "ai_metrics": {k: v for k, v in orchestrator.ai_metrics.items() if isinstance(v, int | float)},
        "names_resolved": sorted(set(map(str, asked))),
        "capture": os.environ.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"),
        "crossbridge_src": str(Path(sys.modules["core"].__file__ or "").resolve().parents[1]),
    }, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
