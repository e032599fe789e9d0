"""CoverageInstrumentor on the real CrossBridge ``core.coverage``: its parsers on real reports, its sqlite
repository, its mapping engine running real shell commands (TARGETS §4, §13 rows 2-7)."""

from __future__ import annotations

import sqlite3
import subprocess
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from opentelemetry.trace import StatusCode

from crossbridge_otel.instrumentors.coverage import CoverageInstrumentor
from crossbridge_otel.patching import status
from crossbridge_otel.patching.status import State
from crossbridge_otel.settings import load as load_settings


@pytest.fixture
def coverage_instrumented(telemetry):
    """CoverageInstrumentor applied with the test's providers, removed afterwards."""
    inst = CoverageInstrumentor()
    inst.instrument(**telemetry.providers)
    yield telemetry
    inst.uninstrument()


@pytest.fixture
def coverage_per_event(telemetry):
    """CoverageInstrumentor with per-event spans switched on."""
    inst = CoverageInstrumentor()
    inst.instrument(settings=load_settings(environ={}, per_event_spans=True), **telemetry.providers)
    yield telemetry
    inst.uninstrument()


def _jacoco():
    from core.coverage.jacoco_parser import JaCoCoXMLParser

    return JaCoCoXMLParser()


def _attrs(span):
    return dict(span.attributes)


# -- parsers -------------------------------------------------------------------------------------------


def test_jacoco_parse_sample(coverage_instrumented, samples):
    """Row 2: the JaCoCo sample gives an OK coverage.parse span with format, counts and confidence."""
    mapping = _jacoco().parse(samples / "jacoco.xml", test_id="LoginTest#testLogin")
    span = coverage_instrumented.span("coverage.parse")
    attrs = _attrs(span)
    assert attrs["crossbridge.coverage.format"] == "jacoco"
    assert attrs["crossbridge.coverage.classes"] == len(mapping.covered_classes) == 1
    assert attrs["crossbridge.coverage.methods"] == len(mapping.covered_methods) == 1
    assert attrs["crossbridge.coverage.confidence"] == mapping.confidence == 0.95
    assert attrs["crossbridge.area"] == "coverage" and attrs["crossbridge.category"] == "testing"
    assert attrs["code.function.name"] == "core.coverage.jacoco_parser.JaCoCoXMLParser.parse"
    assert span.status.status_code == StatusCode.UNSET


def test_jacoco_missing_file_is_recorded_and_reraised(coverage_instrumented, tmp_path):
    """Row 3: FileNotFoundError is recorded on the span and the same object reaches the caller."""
    with pytest.raises(FileNotFoundError) as caught:
        _jacoco().parse(tmp_path / "missing.xml")
    span = coverage_instrumented.span("coverage.parse")
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] == "FileNotFoundError"
    assert span.events[0].name == "exception"
    assert str(caught.value) in span.events[0].attributes["exception.message"]


def test_jacoco_malformed_is_parse_error(coverage_instrumented, samples):
    """Row 3: a malformed report raises ParseError, recorded with its qualified name."""
    with pytest.raises(ET.ParseError):
        _jacoco().parse(samples / "bad.xml")
    span = coverage_instrumented.span("coverage.parse")
    assert span.attributes["error.type"] == "xml.etree.ElementTree.ParseError"
    assert span.status.status_code == StatusCode.ERROR


def test_jacoco_parse_batch(coverage_instrumented, samples):
    """parse_batch records the batch size, the mapping count and the batch confidence."""
    result = _jacoco().parse_batch(samples / "jacoco.xml", ["a", "b", "c"])
    attrs = _attrs(coverage_instrumented.span("coverage.parse_batch"))
    assert attrs["crossbridge.coverage.batch_size"] == 3
    assert attrs["crossbridge.coverage.tests"] == len(result) == 3
    assert attrs["crossbridge.coverage.confidence"] == next(iter(result.values())).confidence
    assert attrs["crossbridge.coverage.execution_mode"] == "small_batch"


def test_coverage_py_parse_sample(coverage_instrumented, samples):
    """Row 4: coverage.py JSON gives two units, source coverage.py, status OK."""
    from core.coverage.coverage_py_parser import CoveragePyParser

    mapping = CoveragePyParser().parse(samples / "coverage.json", test_name="test_login")
    attrs = _attrs(coverage_instrumented.span("coverage.parse"))
    assert attrs["crossbridge.coverage.format"] == "coverage.py"
    assert attrs["crossbridge.coverage.units"] == len(mapping.covered_code_units) == 2
    assert attrs["crossbridge.coverage.source"] == "coverage.py"
    assert "error.type" not in attrs


def test_coverage_py_on_xml_is_returned_none(coverage_instrumented, samples, capsys):
    """Row 5: a Cobertura XML makes the parser print and return None; the span is ERROR returned_none."""
    from core.coverage.coverage_py_parser import CoveragePyParser

    assert CoveragePyParser().parse(samples / "coverage.xml", "t") is None
    printed = capsys.readouterr().out
    assert "Error parsing coverage.py report: Expecting value" in printed  # still printed, unchanged
    span = coverage_instrumented.span("coverage.parse")
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] == "returned_none"
    assert span.status.description == printed.strip().splitlines()[-1]  # CrossBridge's own text
    assert span.events == ()


def test_parser_stdout_is_restored_and_other_output_untouched(coverage_instrumented, samples, capsys):
    """After a teed parse, sys.stdout is the same object again and a successful parse keeps no error text."""
    import sys

    from core.coverage.coverage_py_parser import CoveragePyParser

    before = sys.stdout
    assert CoveragePyParser().parse(samples / "coverage.json", test_name="t") is not None
    assert sys.stdout is before
    span = coverage_instrumented.span("coverage.parse")
    assert span.status.status_code != StatusCode.ERROR


def test_coverage_py_batch_on_missing_is_returned_empty(coverage_instrumented, tmp_path):
    """A batch parse of a missing report returns {} and is marked returned_empty."""
    from core.coverage.coverage_py_parser import CoveragePyParser

    assert CoveragePyParser().parse_batch(tmp_path / "nope.json", ["a"]) == {}
    span = coverage_instrumented.span("coverage.parse_batch")
    assert span.attributes["error.type"] == "returned_empty"
    assert span.attributes["crossbridge.coverage.tests"] == 0


def test_istanbul_parse_sample(coverage_instrumented, samples):
    """Row 6: the Istanbul sample gives two units; format istanbul; OK."""
    from core.coverage.istanbul_parser import IstanbulParser

    mapping = IstanbulParser().parse(samples / "coverage-final.json", "login.spec.js")
    attrs = _attrs(coverage_instrumented.span("coverage.parse"))
    assert attrs["crossbridge.coverage.format"] == "istanbul"
    assert attrs["crossbridge.coverage.units"] == len(mapping.covered_code_units) == 2


def test_istanbul_batch_and_bad_input(coverage_instrumented, samples):
    """Istanbul parse_batch succeeds on the sample and parse on XML is returned_none."""
    from core.coverage.istanbul_parser import IstanbulParser

    assert len(IstanbulParser().parse_batch(samples / "coverage-final.json", ["x", "y"])) == 2
    assert IstanbulParser().parse(samples / "jacoco.xml", "t") is None
    batch = coverage_instrumented.span("coverage.parse_batch")
    assert batch.attributes["crossbridge.coverage.tests"] == 2
    assert batch.attributes["crossbridge.coverage.confidence"] == 0.5
    assert coverage_instrumented.span("coverage.parse").attributes["error.type"] == "returned_none"


# -- engine --------------------------------------------------------------------------------------------


def _engine(tmp_path):
    from core.coverage.engine import CoverageMappingEngine

    return CoverageMappingEngine(tmp_path / "e.db")


def _copy_report(samples) -> str:
    return f"mkdir -p target/site/jacoco && cp {samples / 'jacoco.xml'} target/site/jacoco/jacoco.xml"


def test_engine_collect_nests_command_parse_and_sqlite(coverage_instrumented, samples, tmp_path):
    """Row 7: collect → command, parse and repository spans, all children of coverage.collect."""
    engine = _engine(tmp_path)
    mapping = engine.collect_coverage_isolated("LoginTest#testLogin", _copy_report(samples), tmp_path)
    assert mapping is not None and mapping.confidence == 0.95
    t = coverage_instrumented
    collect = t.span("coverage.collect")
    children = {s.name: s for s in t.spans() if s.parent and s.parent.span_id == collect.context.span_id}
    assert {"coverage.command", "coverage.parse", "coverage.repository.create_discovery_run",
            "coverage.repository.save_test_coverage",
            "coverage.repository.complete_discovery_run"} <= set(children)
    save = children["coverage.repository.save_test_coverage"]
    assert save.attributes["crossbridge.coverage.rows"] == 1
    assert save.attributes["crossbridge.category"] == "persistence"
    assert children["coverage.command"].attributes["process.exit.code"] == 0
    assert collect.attributes["crossbridge.coverage.classes"] == 1
    assert collect.attributes["crossbridge.coverage.framework"] == "junit"
    assert collect.status.status_code == StatusCode.UNSET


def test_engine_command_child_joins_trace(coverage_instrumented, samples, tmp_path):
    """The test command sees TRACEPARENT with the trace id of coverage.collect."""
    command = f"echo $TRACEPARENT > tp.txt && {_copy_report(samples)}"
    assert _engine(tmp_path).collect_coverage_isolated("T#t", command, tmp_path) is not None
    traceparent = (tmp_path / "tp.txt").read_text().strip()
    collect = coverage_instrumented.span("coverage.collect")
    assert traceparent.split("-")[1] == format(collect.context.trace_id, "032x")


def test_engine_nonzero_exit_is_returned_none(coverage_instrumented, tmp_path):
    """Row 7: `exit 3` gives None; collect is ERROR returned_none and the command child nonzero_exit."""
    assert _engine(tmp_path).collect_coverage_isolated("T#t", "exit 3", tmp_path) is None
    collect = coverage_instrumented.span("coverage.collect")
    command = coverage_instrumented.span("coverage.command")
    assert collect.attributes["error.type"] == "returned_none"
    assert command.attributes["error.type"] == "nonzero_exit"
    assert command.attributes["process.exit.code"] == 3
    assert command.parent.span_id == collect.context.span_id


def test_engine_timeout_is_swallowed_but_recorded(coverage_instrumented, tmp_path):
    """Row 7: `sleep 5` with timeout=1 returns None, the command cut short; the command span holds the timeout."""
    finished = tmp_path / "finished"
    command = f"sleep 5 && touch {finished}"
    assert _engine(tmp_path).collect_coverage_isolated("T#t", command, tmp_path, timeout=1) is None
    assert not finished.exists()  # the command was stopped at its timeout, not waited for
    command = coverage_instrumented.span("coverage.command")
    assert command.attributes["error.type"] == "subprocess.TimeoutExpired"
    assert command.attributes["crossbridge.command.timeout_s"] == 1.0
    assert coverage_instrumented.span("coverage.collect").attributes["crossbridge.coverage.timeout_s"] == 1.0


def test_engine_password_in_command_is_redacted(coverage_instrumented, tmp_path):
    """A password in the test command never reaches the command span."""
    _engine(tmp_path).collect_coverage_isolated("T#t", "true --password=hunter2 && exit 1", tmp_path)
    line = coverage_instrumented.span("coverage.command").attributes["process.command_line"]
    assert "hunter2" not in line and "--password=***" in line


def test_engine_batch_success_and_failure(coverage_instrumented, samples, tmp_path):
    """collect_coverage_batch: a list on success, [] → returned_empty on failure."""
    engine = _engine(tmp_path)
    assert len(engine.collect_coverage_batch(["a", "b"], _copy_report(samples), tmp_path)) == 2
    assert engine.collect_coverage_batch(["a"], "false", tmp_path) == []
    ok, failed = coverage_instrumented.spans("coverage.collect_batch")
    assert ok.attributes["crossbridge.coverage.tests"] == 2 and "error.type" not in ok.attributes
    assert failed.attributes["error.type"] == "returned_empty"
    assert failed.attributes["crossbridge.coverage.batch_size"] == 1


def test_engine_cucumber_bug_is_visible(coverage_instrumented, samples, tmp_path):
    """CrossBridge's cucumber AttributeError shows on the collector span; the engine's None on its own."""
    cmd = _copy_report(samples)
    assert _engine(tmp_path).collect_cucumber_coverage_isolated("login;valid-login", cmd, tmp_path,
                                                                samples / "cucumber.json") is None
    scenario = coverage_instrumented.span("coverage.cucumber.collect_scenario")
    assert scenario.attributes["error.type"] == "AttributeError"
    collect = coverage_instrumented.span("coverage.collect_cucumber")
    assert collect.attributes["error.type"] == "returned_none"
    assert collect.attributes["crossbridge.coverage.framework"] == "cucumber"
    assert scenario.parent.span_id == collect.context.span_id


def test_query_impact_counts_affected_tests(coverage_instrumented, samples, tmp_path):
    """query_impact records how many classes changed and how many tests are affected."""
    engine = _engine(tmp_path)
    engine.collect_coverage_isolated("LoginTest#testLogin", _copy_report(samples), tmp_path)
    query = engine.query_impact({"com.example.app.LoginService", "x.Other"})
    span = coverage_instrumented.span("coverage.query_impact")
    assert span.attributes["crossbridge.coverage.changed_classes"] == 2
    assert span.attributes["crossbridge.coverage.affected_tests"] == len(query.affected_tests) == 1
    read = coverage_instrumented.span("coverage.repository.get_impact_for_changed_classes")
    assert read.parent.span_id == span.context.span_id


# -- repository ----------------------------------------------------------------------------------------


def _repository(tmp_path):
    from core.coverage.repository import CoverageRepository

    return CoverageRepository(tmp_path / "r.db")


def test_repository_reads_have_rows_and_sqlite(coverage_instrumented, samples, tmp_path):
    """Repository reads are persistence spans with db.system.name sqlite and a row count."""
    repo = _repository(tmp_path)
    repo.save_test_coverage(_jacoco().parse(samples / "jacoco.xml", test_id="T#t"))
    rows = repo.get_tests_covering_class("com.example.app.LoginService")
    method_rows = repo.get_tests_covering_method("com.example.app.LoginService", "login")
    own = repo.get_coverage_for_test("T#t")
    read = coverage_instrumented.span("coverage.repository.get_tests_covering_class")
    assert read.attributes["crossbridge.coverage.rows"] == len(rows) == 1
    assert read.attributes["db.system.name"] == "sqlite"
    assert read.attributes["crossbridge.category"] == "persistence"
    method = coverage_instrumented.span("coverage.repository.get_tests_covering_method")
    assert method.attributes["crossbridge.coverage.rows"] == len(method_rows)
    assert coverage_instrumented.span("coverage.repository.get_coverage_for_test").attributes[
        "crossbridge.coverage.rows"] == len(own)


def test_repository_statistics_and_runs(coverage_instrumented, samples, tmp_path):
    """Discovery-run methods are traced and get_coverage_statistics' counts become span attributes."""
    from core.coverage.models import CoverageSource

    repo = _repository(tmp_path)
    run_id = repo.create_discovery_run("isolated", "junit", CoverageSource.JACOCO)
    repo.save_test_coverage(_jacoco().parse(samples / "jacoco.xml", test_id="T#t"), run_id)
    repo.fail_discovery_run(run_id, "boom")
    stats = repo.get_coverage_statistics()
    attrs = _attrs(coverage_instrumented.span("coverage.repository.get_coverage_statistics"))
    assert attrs["crossbridge.coverage.total_tests"] == stats["total_tests"] == 1
    assert attrs["crossbridge.coverage.total_classes"] == stats["total_classes"] == 1
    assert attrs["crossbridge.coverage.total_methods"] == stats["total_methods"] == 1
    assert attrs["crossbridge.coverage.average_confidence"] == stats["average_confidence"] == 0.95
    assert coverage_instrumented.span("coverage.repository.fail_discovery_run").status.status_code \
        == StatusCode.UNSET
    assert len(coverage_instrumented.spans("coverage.repository.create_discovery_run")) == 1


def test_repository_sqlite_error_is_reraised(coverage_instrumented, tmp_path):
    """A sqlite3 error is recorded with its qualified class name and re-raised unchanged."""
    repo = _repository(tmp_path)
    (tmp_path / "r.db").write_bytes(b"this is not a sqlite database" * 100)
    with pytest.raises(sqlite3.DatabaseError):
        repo.get_coverage_for_test("T#t")
    span = coverage_instrumented.span("coverage.repository.get_coverage_for_test")
    assert span.attributes["error.type"] == "sqlite3.DatabaseError"
    assert span.status.status_code == StatusCode.ERROR


# -- cucumber, behavioral, external, functional, exports ----------------------------------------------


def _scenarios(samples):
    """CrossBridge's own ScenarioResult objects, parsed from the Cucumber JSON sample."""
    from adapters.selenium_bdd_java import parse_cucumber_json

    return [scenario for feature in parse_cucumber_json(samples / "cucumber.json") for scenario in feature.scenarios]


def test_cucumber_aggregate_scenario_bug_is_recorded(coverage_instrumented, samples):
    """aggregate_scenario_coverage on a real ScenarioResult raises AttributeError ('id'): recorded, re-raised."""
    from core.coverage.cucumber_coverage import CucumberCoverageAggregator

    scenario = _scenarios(samples)[0]
    with pytest.raises(AttributeError) as caught:
        CucumberCoverageAggregator().aggregate_scenario_coverage(scenario, samples / "jacoco.xml")
    span = coverage_instrumented.span("coverage.cucumber.aggregate_scenario")
    assert span.attributes["error.type"] == "AttributeError"
    assert span.attributes["crossbridge.coverage.execution_mode"] == "isolated"
    assert span.status.status_code == StatusCode.ERROR
    assert "'id'" in str(caught.value)


def test_cucumber_aggregate_scenario_counts(coverage_instrumented, samples):
    """A scenario carrying the id and name CrossBridge reads aggregates: classes, confidence, a parse child."""
    from types import SimpleNamespace

    from core.coverage.cucumber_coverage import CucumberCoverageAggregator

    # The attributes aggregate_scenario_coverage reads (its ScenarioResult lacks id/name: see the test above)
    scenario = SimpleNamespace(id="login;valid-login", name="Valid login", steps=[])
    mapping = CucumberCoverageAggregator().aggregate_scenario_coverage(scenario, samples / "jacoco.xml")
    span = coverage_instrumented.span("coverage.cucumber.aggregate_scenario")
    assert span.attributes["crossbridge.coverage.classes"] == len(mapping.aggregated_classes) == 1
    assert span.attributes["crossbridge.coverage.methods"] == len(mapping.aggregated_methods) == 1
    assert span.attributes["crossbridge.coverage.confidence"] == mapping.confidence == 0.95
    assert span.status.status_code == StatusCode.UNSET
    assert coverage_instrumented.span("coverage.parse").parent.span_id == span.context.span_id


def test_cucumber_feature_collection_nests_and_records(coverage_instrumented, samples):
    """collect_feature_coverage → aggregate_feature_coverage: nested spans, both recording CrossBridge's error."""
    from core.coverage.cucumber_coverage import CucumberCoverageCollector

    with pytest.raises(AttributeError):
        CucumberCoverageCollector().collect_feature_coverage(samples / "cucumber.json", samples / "jacoco.xml")
    collect = coverage_instrumented.span("coverage.cucumber.collect_feature")
    aggregate = coverage_instrumented.span("coverage.cucumber.aggregate_feature")
    assert aggregate.parent.span_id == collect.context.span_id
    assert aggregate.attributes["crossbridge.coverage.execution_mode"] == "small_batch"
    assert collect.attributes["error.type"] == aggregate.attributes["error.type"] == "AttributeError"


def test_behavioral_records_are_counted_not_spanned(coverage_instrumented):
    """record_* calls add to a count on the enclosing span and create no span of their own."""
    from core.coverage.behavioral_collectors import ApiEndpointCollector, UiComponentCollector

    tracer = coverage_instrumented.tracer_provider.get_tracer("test")
    api, ui = ApiEndpointCollector(), UiComponentCollector()
    test_id = uuid.uuid4()
    with tracer.start_as_current_span("test.case"):
        for user in (1, 2, 3):
            api.record_api_call(test_id, f"/api/users/{user}", "get", 200)
        ui.record_interaction(test_id, "LoginButton", "button", "click")
    # CrossBridge folds the three calls into one endpoint; the count is of calls made
    assert [e.endpoint_path for e in api.get_covered_endpoints()] == ["/api/users/{id}"]
    parent = coverage_instrumented.span("test.case")
    assert parent.attributes["crossbridge.coverage.behavioral.api_call.count"] == 3
    assert parent.attributes["crossbridge.coverage.behavioral.ui_interaction.count"] == 1
    assert [s.name for s in coverage_instrumented.spans()] == ["test.case"]


def test_behavioral_per_event_spans_opt_in(coverage_per_event):
    """With per-event spans switched on, each record_* call gets its own span."""
    from core.coverage.behavioral_collectors import ContractCoverageCollector, NetworkCaptureCollector

    capture = NetworkCaptureCollector().record_request(uuid.uuid4(), "http://127.0.0.1:9/x", "get", response_status=200)
    ContractCoverageCollector().record_contract_usage(uuid.uuid4(), "users", "v1", {"name"}, {"id"})
    span = coverage_per_event.span("coverage.behavioral.network_request")
    assert capture.request_method == "GET"
    assert span.attributes["crossbridge.area"] == "coverage"
    assert span.attributes["code.function.name"] == \
        "core.coverage.behavioral_collectors.NetworkCaptureCollector.record_request"
    assert len(coverage_per_event.spans("coverage.behavioral.contract_usage")) == 1


def test_external_refs_extract_from_test(coverage_instrumented):
    """extract_external_refs_from_test records the framework and how many refs it found."""
    from core.coverage.external_extractors import extract_external_refs_from_test

    source = '@TestRail(id = "C1234")\npublic void testLogin() {}'
    refs = extract_external_refs_from_test(source, ["@zephyr:SHOP-T7", "smoke"], framework="junit")
    span = coverage_instrumented.span("coverage.external_refs.extract")
    assert [(r.system, r.external_id) for r in refs] == [("testrail", "C1234"), ("zephyr", "SHOP-T7")]
    assert span.attributes["crossbridge.coverage.refs"] == 2
    assert span.attributes["crossbridge.coverage.framework"] == "junit"


def test_external_refs_extract_from_file(coverage_instrumented, samples):
    """extract_external_refs_from_file on a Java test records framework and refs (annotation + JavaDoc tag)."""
    from core.coverage.external_extractors import extract_external_refs_from_file

    refs = extract_external_refs_from_file(str(samples / "CheckoutTest.java"))
    span = coverage_instrumented.span("coverage.external_refs.extract_file")
    assert sorted(r.external_id for r in refs) == ["C1234", "SHOP-T42"]
    assert span.attributes["crossbridge.coverage.refs"] == 2
    assert span.attributes["crossbridge.coverage.framework"] == "java"
    assert coverage_instrumented.spans("coverage.external_refs.extract") == []  # the file path never nests it


@pytest.mark.postgres
def test_functional_repository_argument_error_is_recorded(coverage_instrumented, postgres_server, postgres_db):
    """On a PostgreSQL session, SQLAlchemy 2.x makes FunctionalCoverageRepository raise ArgumentError: recorded."""
    import sqlalchemy
    from core.coverage.functional_repository import FunctionalCoverageRepository
    from sqlalchemy.orm import Session

    engine = sqlalchemy.create_engine(
        f"postgresql+psycopg2://{postgres_server.user}@{postgres_server.host}:{postgres_server.port}/{postgres_db}")
    try:
        with Session(engine) as session, pytest.raises(sqlalchemy.exc.ArgumentError):
            FunctionalCoverageRepository(session).get_all_features()
    finally:
        engine.dispose()
    span = coverage_instrumented.span("coverage.functional.get_all_features")
    assert span.attributes["error.type"] == "sqlalchemy.exc.ArgumentError"
    assert span.attributes["db.system.name"] == "postgresql"
    assert span.attributes["crossbridge.category"] == "persistence"


def _coverage_map_report():
    from core.coverage.functional_models import FunctionalCoverageMapEntry, FunctionalCoverageMapReport

    entries = [FunctionalCoverageMapEntry("com.example.app.LoginService.login", 2, ["C1234"]),
               FunctionalCoverageMapEntry("com.example.app.Unused.noop", 0)]
    return FunctionalCoverageMapReport(entries, total_code_units=2, total_tests=2, total_external_tcs=1)


def test_exports_are_traced(coverage_instrumented, tmp_path):
    """export_to_csv and export_to_json produce coverage.export spans with format, report type and rows."""
    from core.coverage.console_formatter import export_to_csv, export_to_json

    report = _coverage_map_report()
    export_to_csv(report, str(tmp_path / "r.csv"))
    export_to_json(report, str(tmp_path / "r.json"))
    assert (tmp_path / "r.csv").read_text().startswith("Code Unit,Tests,TestRail TCs")
    csv_span, json_span = coverage_instrumented.spans("coverage.export")
    assert csv_span.attributes["crossbridge.coverage.format"] == "csv"
    assert json_span.attributes["crossbridge.coverage.format"] == "json"
    assert csv_span.attributes["crossbridge.coverage.report"] == "FunctionalCoverageMapReport"
    assert csv_span.attributes["crossbridge.coverage.rows"] == json_span.attributes["crossbridge.coverage.rows"] == 2


def test_export_json_type_error_is_recorded(coverage_instrumented, tmp_path):
    """export_to_json of something that is not a report dataclass raises TypeError: recorded and re-raised."""
    from core.coverage.console_formatter import export_to_json

    with pytest.raises(TypeError):
        export_to_json({"entries": []}, str(tmp_path / "r.json"))
    span = coverage_instrumented.span("coverage.export")
    assert span.attributes["error.type"] == "TypeError"
    assert span.attributes["crossbridge.coverage.report"] == "dict"
    assert "crossbridge.coverage.rows" not in span.attributes


# -- patch bookkeeping ---------------------------------------------------------------------------------


def test_every_target_is_patched(coverage_instrumented):
    """After importing every coverage module, each target of the table is PATCHED in the status registry."""
    import importlib

    for target in CoverageInstrumentor.targets:
        importlib.import_module(target.module)
    states = {(s.module, s.qualname): s.state for s in status.snapshot() if s.area == "coverage"}
    for target in CoverageInstrumentor.targets:
        assert states[(target.module, target.qualname)] == State.PATCHED, target.function_name


def test_uninstrument_restores_originals(telemetry):
    """uninstrument puts back the original functions and subprocess.run."""
    from core.coverage.jacoco_parser import JaCoCoXMLParser

    original_parse, original_run = JaCoCoXMLParser.__dict__["parse"], subprocess.run
    inst = CoverageInstrumentor()
    inst.instrument(**telemetry.providers)
    assert JaCoCoXMLParser.__dict__["parse"] is not original_parse
    assert subprocess.run is not original_run
    inst.uninstrument()
    assert JaCoCoXMLParser.__dict__["parse"] is original_parse
    assert subprocess.run is original_run


def test_no_spans_after_uninstrument(telemetry, samples):
    """After uninstrument, parsing makes no span, even through a method bound while instrumented."""
    inst = CoverageInstrumentor()
    inst.instrument(**telemetry.providers)
    parser = _jacoco()
    bound_parse = parser.parse  # a reference taken while the wrapper was installed
    bound_parse(samples / "jacoco.xml", test_id="T#t")
    assert len(telemetry.spans("coverage.parse")) == 1  # the providers are really wired
    inst.uninstrument()
    parser.parse(samples / "jacoco.xml", test_id="T#t")
    bound_parse(samples / "jacoco.xml", test_id="T#t")
    assert len(telemetry.spans("coverage.parse")) == 1


def test_mapping_path_not_in_attributes(coverage_instrumented, samples):
    """No attribute value carries the report path (paths are unbounded and may be private)."""
    _jacoco().parse(samples / "jacoco.xml", test_id="T#t")
    values = [str(v) for v in coverage_instrumented.span("coverage.parse").attributes.values()]
    assert not any(str(Path(samples)) in v for v in values)
