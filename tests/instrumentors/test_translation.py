"""Translation area: translate outcomes, translate_file's bug shown as it is, robot ModuleNotFoundError, hooks."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.trace import StatusCode

from crossbridge_otel.instrumentors.translation import TranslationInstrumentor
from crossbridge_otel.settings import load as load_settings

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
P = "crossbridge.translation."


@pytest.fixture
def translation(instrument):
    return instrument(TranslationInstrumentor)


def test_selenium_to_playwright_success(translation, telemetry):
    """A successful translation: frameworks, parser/generator, counts; no code in any attribute."""
    from core.translation.pipeline import TranslationConfig, TranslationPipeline

    source = (SAMPLES / "LoginTest.java").read_text()
    result = TranslationPipeline(TranslationConfig("selenium-java", "playwright-python")).translate(
        source, source_file="src/LoginTest.java")
    assert result.success
    span = telemetry.span("translation.translate")
    a = span.attributes
    assert (a[P + "source_framework"], a[P + "target_framework"]) == ("selenium-java", "playwright-python")
    assert (a[P + "parser"], a[P + "generator"]) == ("SeleniumParser", "PlaywrightGenerator")
    assert a[P + "success"] is True and a[P + "actions"] == result.actions_translated == 4
    assert a[P + "assertions"] == result.assertions_translated
    assert a[P + "source_bytes"] == len(source) and a[P + "target_bytes"] == len(result.target_code)
    assert a[P + "source_file"] == "LoginTest.java"
    assert a["crossbridge.category"] == "migration"
    assert span.status.status_code != StatusCode.ERROR
    texts = [v for s in telemetry.spans() for v in s.attributes.values() if isinstance(v, str)]
    assert not any("page.goto" in v or "driver.get" in v for v in texts)
    setup = telemetry.span("translation.setup")
    assert setup.attributes[P + "parser"] == "SeleniumParser"


def test_cypress_to_pytest_is_translation_failed(translation, telemetry):
    """success False with errors: ERROR translation_failed described by CrossBridge's first error."""
    from core.translation.pipeline import TranslationConfig, TranslationPipeline

    pipeline = TranslationPipeline(TranslationConfig("cypress", "pytest"))
    result = pipeline.translate((SAMPLES / "login.cy.js").read_text())
    assert not result.success
    span = telemetry.span("translation.translate")
    assert span.attributes["error.type"] == "translation_failed"
    assert span.status.description == result.errors[0] == "Generator cannot handle intent type: IntentType.UI"
    assert span.attributes[P + "errors"] == 1


def test_robot_source_raises_from_the_constructor(translation, telemetry):
    """TranslationPipeline(robot) raises ModuleNotFoundError, recorded on translation.setup and re-raised."""
    from core.translation.pipeline import TranslationConfig, TranslationPipeline

    with pytest.raises(ModuleNotFoundError) as raised:
        TranslationPipeline(TranslationConfig("robot", "pytest"))
    span = telemetry.span("translation.setup")
    assert span.attributes["error.type"] == "ModuleNotFoundError"
    assert span.attributes[P + "source_framework"] == "robot"
    event = [e for e in span.events if e.name == "exception"][0]
    assert event.attributes["exception.message"] == str(raised.value)


def test_translate_file_bug_is_shown_as_it_is(translation, telemetry, tmp_path):
    """translate_file with a config: real file and framework, and source_framework_is_path=true on both spans."""
    from core.translation.pipeline import TranslationConfig, TranslationPipeline

    path = tmp_path / "LoginTest.java"
    path.write_text((SAMPLES / "LoginTest.java").read_text())
    result = TranslationPipeline(TranslationConfig("selenium-java", "robot")).translate_file(path)
    outer = telemetry.span("translation.translate_file")
    inner = telemetry.span("translation.translate")
    assert inner.parent.span_id == outer.context.span_id
    for span in (outer, inner):
        assert span.attributes[FLAG] is True
        assert span.attributes[P + "source_framework"] == "selenium-java"
        assert span.attributes[P + "source_file"] == "LoginTest.java"
    assert result.source_file == ""  # CrossBridge's bug, unchanged
    assert not any(str(tmp_path) in str(v) for s in telemetry.spans() for v in s.attributes.values())


FLAG = P + "source_framework_is_path"


def test_translate_file_without_config_fails_and_never_names_the_path_a_framework(translation, telemetry, tmp_path):
    """Without a config the path-as-framework bug gives 'Translation error: '; no source_framework attribute."""
    from core.translation.pipeline import TranslationPipeline

    path = tmp_path / "login.cy.js"
    path.write_text("cy.visit('/')\n")
    result = TranslationPipeline().translate_file(path)
    assert not result.success
    outer = telemetry.span("translation.translate_file")
    assert outer.attributes["error.type"] == "translation_failed"
    assert outer.status.description == result.errors[0]
    assert outer.attributes[FLAG] is True
    assert P + "source_framework" not in outer.attributes


def test_translate_batch_counts_failures(translation, telemetry):
    """translate_batch over two RestAssured files, one CrossBridge cannot translate to Robot: failed 1, ERROR."""
    from core.translation.pipeline import TranslationConfig, TranslationPipeline

    files = [SAMPLES / "OrdersApiTest.java", SAMPLES / "AdminApiTest.java"]  # a ':' in a basic-auth user
    results = TranslationPipeline(TranslationConfig("restassured", "robot")).translate_batch(files)
    assert [r.success for r in results] == [True, False]
    span = telemetry.span("translation.translate_batch")
    assert (span.attributes[P + "files"], span.attributes[P + "succeeded"], span.attributes[P + "failed"]) == (2, 1, 1)
    assert span.attributes["error.type"] == "translation_failed"
    assert span.status.description == f"1 of 2 files failed: {results[1].errors[0]}"
    assert results[1].errors[0] == "Translation error: too many values to unpack (expected 2)"
    outer = telemetry.spans("translation.translate_file")
    assert [s.status.status_code == StatusCode.ERROR for s in outer] == [False, True]
    assert all(s.parent.span_id == span.context.span_id for s in outer)
    assert not any("not-a-real-password" in str(v) for s in telemetry.spans() for v in s.attributes.values())


def test_integrate_hooks_outcomes(translation, telemetry, tmp_path):
    """integrate_hooks: the plugin and its files; unsupported framework and a failed write are errors; disabled
    is not."""
    from core.translation.migration_hooks import MigrationHookConfig, MigrationHookIntegrator

    integrator = MigrationHookIntegrator(MigrationHookConfig())
    ok = integrator.integrate_hooks("pytest", tmp_path, [tmp_path / "test_a.py"])
    unsupported = integrator.integrate_hooks("nunit", tmp_path, [])
    broken = integrator.integrate_hooks("cypress", tmp_path / "missing" / "dir", [])
    disabled = MigrationHookIntegrator(MigrationHookConfig(enable_hooks=False)).integrate_hooks("pytest", tmp_path, [])
    s_ok, s_unsupported, s_broken, s_disabled = telemetry.spans("translation.hooks.integrate")
    assert ok["enabled"] and (tmp_path / "conftest.py").is_file()
    assert (s_ok.attributes[P + "hook_type"], s_ok.attributes[P + "hook_files"]) == ("pytest_plugin", 2)
    assert s_ok.attributes[P + "migrated_files"] == 1 and s_ok.status.status_code != StatusCode.ERROR
    assert s_unsupported.attributes["error.type"] == unsupported["reason"] == "unsupported_framework"
    assert s_broken.attributes["error.type"] == broken["reason"] == "integration_error"
    assert s_broken.status.description == f"integration_error: {broken['error']}"
    assert s_disabled.attributes[P + "hooks_reason"] == disabled["reason"] == "disabled_by_config"
    assert s_disabled.attributes[P + "hooks_enabled"] is False
    assert s_disabled.status.status_code != StatusCode.ERROR


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


def test_no_bucket_configured_adds_no_wait(instrument, telemetry):
    """Without CROSSBRIDGE_OTEL_RATE_LIMITS translations never wait."""
    instrument(TranslationInstrumentor, settings=load_settings({}))
    _translate_three()
    spans = telemetry.spans("translation.translate")
    assert len(spans) == 3
    assert not [e for s in spans for e in s.events if e.name == "rate_limit.wait"]
