"""Rate limits on high-volume operations: translations and adapter runs wait for a token, visibly."""

from __future__ import annotations

import time
import types
from pathlib import Path

import pytest

from crossbridge_otel.instrumentors.execution import ExecutionInstrumentor
from crossbridge_otel.instrumentors.translation import TranslationInstrumentor
from crossbridge_otel.retry import ratelimit
from crossbridge_otel.retry.ratelimit import reset_buckets
from crossbridge_otel.settings import load as load_settings

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


@pytest.fixture(autouse=True)
def _fresh_buckets():
    reset_buckets()
    yield
    reset_buckets()


@pytest.fixture
def frozen_clock(monkeypatch):
    """The buckets' monotonic clock stands still (sleeps are real): every wait is exact, whatever the load."""
    monkeypatch.setattr(ratelimit, "time", types.SimpleNamespace(monotonic=lambda: 1000.0, sleep=time.sleep))


def _translate_three() -> list:
    from core.translation.pipeline import TranslationConfig, TranslationPipeline

    source = (SAMPLES / "LoginTest.java").read_text()
    pipeline = TranslationPipeline(TranslationConfig("selenium-java", "playwright-python"))
    return [pipeline.translate(source) for _ in range(3)]


def test_translation_beyond_the_bucket_waits_with_an_event(frozen_clock, instrument, telemetry):
    """With translation=2/0.3 the third translation waits for a token and says so on its span."""
    instrument(TranslationInstrumentor, settings=load_settings({"CROSSBRIDGE_OTEL_RATE_LIMITS": "translation=2/0.3"}))
    results = _translate_three()
    assert all(r.success for r in results)
    spans = telemetry.spans("translation.translate")
    waits = [e for s in spans for e in s.events if e.name == "rate_limit.wait"]
    assert len(spans) == 3 and [len(s.events) for s in spans] == [0, 0, 1]
    assert waits[0].attributes["rate_limit.key"] == "translation"
    assert waits[0].attributes["rate_limit.wait_s"] == pytest.approx(0.15)  # one token of 2 per 0.3 s


def test_adapter_runs_take_execution_tokens(frozen_clock, instrument, telemetry, tmp_path, venv_path):
    """execution=1/0.2: the second pytest adapter run waits for the execution bucket, visibly."""
    instrument(ExecutionInstrumentor, settings=load_settings({"CROSSBRIDGE_OTEL_RATE_LIMITS": "execution=1/0.2"}))
    from adapters.pytest.adapter import PytestAdapter

    (tmp_path / "test_one.py").write_text("def test_one():\n    assert True\n")
    adapter = PytestAdapter(str(tmp_path))
    for _ in range(2):
        adapter.run_tests(["test_one"])
    spans = telemetry.spans("execution.adapter.run")
    waits = [[e.attributes["rate_limit.wait_s"] for e in s.events if e.name == "rate_limit.wait"] for s in spans]
    assert waits == [[], [pytest.approx(0.2)]]


def test_no_bucket_configured_adds_no_wait(instrument, telemetry):
    """Without CROSSBRIDGE_OTEL_RATE_LIMITS translations never wait."""
    instrument(TranslationInstrumentor, settings=load_settings({}))
    _translate_three()
    spans = telemetry.spans("translation.translate")
    assert len(spans) == 3
    assert not [e for s in spans for e in s.events if e.name == "rate_limit.wait"]
