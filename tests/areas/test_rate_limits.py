"""Rate limits on high-volume operations: translations and adapter runs wait for a token, visibly."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossbridge_otel.instrumentors.translation import TranslationInstrumentor
from crossbridge_otel.ratelimit import reset_buckets
from crossbridge_otel.settings import load as load_settings

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


@pytest.fixture(autouse=True)
def _fresh_buckets():
    reset_buckets()
    yield
    reset_buckets()


def _translate_three() -> list:
    from core.translation.pipeline import TranslationConfig, TranslationPipeline

    source = (SAMPLES / "LoginTest.java").read_text()
    pipeline = TranslationPipeline(TranslationConfig("selenium-java", "playwright-python"))
    return [pipeline.translate(source) for _ in range(3)]


def test_translation_beyond_the_bucket_waits_with_an_event(instrument, telemetry):
    """With translation=2/0.3 the third translation waits for a token and says so on its span."""
    instrument(TranslationInstrumentor, settings=load_settings({"CROSSBRIDGE_OTEL_RATE_LIMITS": "translation=2/0.3"}))
    results = _translate_three()
    assert all(r.success for r in results)
    spans = telemetry.spans("translation.translate")
    waits = [e for s in spans for e in s.events if e.name == "rate_limit.wait"]
    assert len(spans) == 3 and len(waits) == 1
    assert waits[0].attributes["rate_limit.key"] == "translation"
    assert 0 < waits[0].attributes["rate_limit.wait_s"] <= 0.3


def test_no_bucket_configured_adds_no_wait(instrument, telemetry):
    """Without CROSSBRIDGE_OTEL_RATE_LIMITS translations never wait."""
    instrument(TranslationInstrumentor, settings=load_settings({}))
    _translate_three()
    spans = telemetry.spans("translation.translate")
    assert len(spans) == 3
    assert not [e for s in spans for e in s.events if e.name == "rate_limit.wait"]
