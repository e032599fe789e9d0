"""CROSSBRIDGE_OTEL_SUMMARY: the exit summary counts every span and trace, and folds large runs like `show`."""

from __future__ import annotations

import sys

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Status, StatusCode, set_span_in_context
from support.view import instrumented_env, run_instrumented

from crossbridge_otel.export.summary import SummaryProcessor


def _provider() -> tuple[TracerProvider, SummaryProcessor]:
    provider = TracerProvider()
    summary = SummaryProcessor()
    provider.add_span_processor(summary)
    return provider, summary


def test_large_run_counts_every_trace_and_folds_per_name():
    """3,001 spans in 1,001 traces: the headline says so (not a capped count) and the body is one line per name."""
    provider, summary = _provider()
    tracer = provider.get_tracer("tests")
    ms = 1_000_000
    for i in range(1000):
        root = tracer.start_span("batch.run", start_time=0)
        for j in range(2):
            child = tracer.start_span("batch.item", context=set_span_in_context(root), start_time=0)
            if j == 1 and i % 4 == 0:
                child.set_status(Status(StatusCode.ERROR, "failed"))
            child.end(end_time=(i % 100 + 1) * ms)
        root.end(end_time=200 * ms)
    tracer.start_span("cli.command", start_time=0).end(end_time=ms)
    out = summary.render()
    lines = out.splitlines()
    assert lines[0] == "crossbridge-otel: 3001 spans in 1001 trace(s), 250 with errors"
    assert "folded 1001 trace(s) into 3 span names:" in out
    item = next(line for line in lines if line.strip().startswith("batch.item "))
    assert item.split()[1:] == ["2000", "250", "50.0", "ms", "95.0", "ms", "100.0", "ms"]
    assert len(lines) < 12


def test_small_run_is_drawn_as_trees_with_errors():
    """A few spans are drawn as their tree, a failed span with its description."""
    provider, summary = _provider()
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("demo.run"), tracer.start_as_current_span("coverage.parse") as span:
        span.set_attribute("error.type", "returned_none")
        span.set_status(Status(StatusCode.ERROR, "Error parsing coverage.py report"))
    out = summary.render()
    assert out.splitlines()[0] == "crossbridge-otel: 2 spans in 1 trace(s), 1 with errors"
    assert "\n  - demo.run  " in out
    assert "\n    - coverage.parse  " in out and "ERROR returned_none: Error parsing coverage.py report" in out


def test_exit_summary_of_a_real_run_draws_the_tree(tmp_path):
    """An instrumented process with CROSSBRIDGE_OTEL_SUMMARY=true prints its tree on stderr at exit."""
    script = (
        "from opentelemetry import trace\n"
        "t = trace.get_tracer('tests')\n"
        "with t.start_as_current_span('outer'):\n"
        "    with t.start_as_current_span('inner'):\n"
        "        pass\n"
    )
    env = instrumented_env(tmp_path / "s.jsonl", CROSSBRIDGE_OTEL_SUMMARY="true")
    done = run_instrumented([sys.executable, "-c", script], env)
    assert done.returncode == 0, done.stderr
    assert "crossbridge-otel: 2 spans in 1 trace(s)" in done.stderr
    assert "\n  - outer  " in done.stderr and "\n    - inner  " in done.stderr


def _ai_run(tracer) -> None:
    """A skill step (carrying the sum of its calls) with two model calls under it."""
    with tracer.start_as_current_span("ai.skill.translate", attributes={"crossbridge.ai.cost_usd": 0.375}):
        for cost in (0.25, 0.125):
            with tracer.start_as_current_span("chat m", attributes={"gen_ai.operation.name": "chat",
                                                                     "crossbridge.ai.cost_usd": cost}):
                pass


def test_exit_summary_carries_the_runs_ai_cost_counting_model_calls_only():
    """The model calls' costs add up once: the step above them carries their sum and is not added again."""
    provider, summary = _provider()
    _ai_run(provider.get_tracer("t"))
    assert "AI: 2 model call(s), estimated cost $0.375000 (USD" in summary.render()


def test_show_headline_and_report_carry_the_ai_cost(tmp_path):
    """show's headline and the HTML report total the same cost from a local output file."""
    from opentelemetry.sdk.resources import Resource

    from crossbridge_otel.export.localfile import JsonLinesExporter
    from crossbridge_otel.view.html import render_html
    from crossbridge_otel.view.read import load
    from crossbridge_otel.view.stats import totals
    from crossbridge_otel.view.terminal import headline

    path = tmp_path / "t.jsonl"
    provider = TracerProvider(resource=Resource.create({"service.name": "s"}))
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(str(path), "traces")))  # type: ignore[arg-type]
    _ai_run(provider.get_tracer("t"))
    provider.shutdown()
    telemetry = load(path)
    numbers = totals(telemetry)
    assert (numbers.model_calls, numbers.cost_usd) == (2, 0.375)
    assert "AI: 2 model call(s), estimated cost $0.375000" in headline(numbers, "t.jsonl")
    assert "$0.375000" in render_html(telemetry)
