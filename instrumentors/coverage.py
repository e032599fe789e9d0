"""Coverage instrumentation: CrossBridge's ``core.coverage`` parsers, SQLite repository and mapping engine.

Enabled under ``opentelemetry-instrument`` as ``crossbridge_coverage``,
its name in ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``; in code::

    from crossbridge_otel.instrumentors.coverage import CoverageInstrumentor
    CoverageInstrumentor().instrument(tracer_provider=..., meter_provider=...)

Every span carries ``crossbridge.area=coverage``, ``crossbridge.category`` (``testing``; ``persistence``
for the two repositories) and ``code.function.name``. What is traced:

- ``coverage.parse`` (``JaCoCoXMLParser``, ``CoveragePyParser``, ``IstanbulParser`` ``.parse``): ``format``
  (jacoco, coverage.py, istanbul), ``execution_mode``, ``classes``, ``methods``, ``units``, ``confidence``,
  ``source``. JaCoCo's ``FileNotFoundError`` / ``ParseError`` are recorded and re-raised; a ``None`` return
  → ERROR ``returned_none``.
- ``coverage.parse_batch`` (the three ``.parse_batch``): the same plus ``batch_size`` and ``tests``; ``{}``
  → ERROR ``returned_empty``.
- ``coverage.collect`` / ``coverage.collect_batch`` / ``coverage.collect_cucumber``
  (``CoverageMappingEngine.collect_coverage_isolated`` / ``collect_coverage_batch`` /
  ``collect_cucumber_coverage_isolated``): ``framework``, ``timeout_s``, ``batch_size``, ``classes``,
  ``methods``, ``confidence``; ``None`` / ``[]`` → ERROR ``returned_none`` / ``returned_empty``.
  Children: ``coverage.command`` (the test command: redacted ``process.command_line``,
  ``process.exit.code``, ``crossbridge.command.timeout_s``, ``crossbridge.command.shell``; non-zero exit →
  ``nonzero_exit``, timeout → ``subprocess.TimeoutExpired``), ``coverage.parse``, ``coverage.repository.*``.
- ``coverage.query_impact``: ``changed_classes``, ``min_confidence``, ``affected_tests``.
- ``coverage.repository.<method>`` (every ``CoverageRepository`` method, category ``persistence``):
  ``db.system.name=sqlite``, ``rows`` (rows saved or returned), ``total_tests``, ``total_classes``,
  ``total_methods`` and ``average_confidence`` from ``get_coverage_statistics``; sqlite3 exceptions
  recorded and re-raised; the five reads are retried under the ``quick`` policy.
- ``coverage.cucumber.collect_scenario`` / ``collect_feature`` (``CucumberCoverageCollector``) and
  ``coverage.cucumber.aggregate_scenario`` / ``aggregate_feature`` (``CucumberCoverageAggregator
  .aggregate_scenario_coverage`` / ``aggregate_feature_coverage``): ``execution_mode`` (aggregator),
  ``scenarios`` (lists), ``classes``, ``methods``, ``confidence``; CrossBridge's ``AttributeError``
  (its ``ScenarioResult`` has no ``id``) is recorded and re-raised.
- ``coverage.behavioral.{api_call,ui_interaction,network_request,contract_usage}``: high-frequency, counted
  on the enclosing span as ``crossbridge.coverage.behavioral.<name>.count``; a span each only with
  ``CROSSBRIDGE_OTEL_PER_EVENT_SPANS=true``.
- ``coverage.external_refs.extract`` / ``extract_file`` (``extract_external_refs_from_test`` /
  ``extract_external_refs_from_file``, separate calls that never nest): ``framework``, ``refs``.
- ``coverage.functional.<method>`` (every ``FunctionalCoverageRepository`` method, category
  ``persistence``): ``db.system.name=postgresql``, ``rows``; SQLAlchemy 2.x's ``ArgumentError`` recorded.
- ``coverage.export`` (``console_formatter.export_to_csv`` / ``export_to_json``): ``format``, ``report``
  (the report's class name), ``rows`` (its entries); ``export_to_json``'s ``TypeError`` for a report that
  is not a dataclass is recorded and re-raised.

Attribute names above are short for ``crossbridge.coverage.<name>``. The coverage.py and Istanbul parsers
``print()`` their error and return ``None``: stdout is teed during those calls (every write still goes to
stdout unchanged) and the printed ``Error ...`` line becomes the span's description. The engine's
test command runs through :mod:`crossbridge_otel.patching.subprocesses`: a ``coverage.command`` child span and
``TRACEPARENT`` in the command's environment, so an instrumented test run joins the trace.
"""

from __future__ import annotations

from typing import Any

from crossbridge_otel.patching.readers import Prefix, arg, enum_value, failed_if_empty, failed_if_none, fields, size
from crossbridge_otel.patching.targets import Attrs, Target
from crossbridge_otel.retry.invoker import Retry

from ._support import RunsCommands, TeeStdout, printed_error

__all__ = ["CoverageInstrumentor"]

_P = Prefix("crossbridge.coverage.")
_SQLITE = {"db.system.name": "sqlite"}
_QUICK = (Retry("quick"),)


def _either(obj: Any, covered: str, aggregated: str) -> Any:
    """A mapping's ``covered_*`` field, or the ``aggregated_*`` one of a scenario mapping."""
    value = getattr(obj, covered, None)
    return getattr(obj, aggregated, None) if value is None else value


def _mapping_attrs(mapping: Any) -> Attrs:
    """Counts and confidence of a ``TestCoverageMapping`` (or ``ScenarioCoverageMapping``)."""
    if mapping is None:
        return {}
    return {_P.classes: size(_either(mapping, "covered_classes", "aggregated_classes")),
            _P.methods: size(_either(mapping, "covered_methods", "aggregated_methods")),
            _P.units: size(_either(mapping, "covered_code_units", "aggregated_code_units")),
            _P.confidence: getattr(mapping, "confidence", None),
            _P.source: enum_value(getattr(mapping, "coverage_source", None))}


def _batch_attrs(result: Any) -> Attrs:
    if not isinstance(result, dict) or not result:
        return {_P.tests: 0}
    return {**_mapping_attrs(next(iter(result.values()))), _P.tests: len(result)}


def _list_attrs(result: Any) -> Attrs:
    first = result[0] if isinstance(result, list) and result else None
    return {**_mapping_attrs(first), _P.tests: size(result)}


def _mode(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, default: str) -> Any:
    """CrossBridge's ``execution_mode`` argument, or the mode it defaults to."""
    mode = arg(args, kwargs, index, "execution_mode")
    return enum_value(mode) if mode is not None else default


def _parse(fmt: str, mode_index: int) -> Any:
    def call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
        return {_P.format: fmt, _P.execution_mode: _mode(args, kwargs, mode_index, "isolated")}

    return call


def _parse_batch(fmt: str) -> Any:
    def call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
        ids = arg(args, kwargs, 2, "test_ids")
        if ids is None:
            ids = arg(args, kwargs, 2, "test_names")
        return {_P.format: fmt, _P.batch_size: size(ids), _P.execution_mode: _mode(args, kwargs, 3, "small_batch")}

    return call


# Parsers that print their error: CrossBridge's own printed line (TeeStdout), else the generic text.
_PARSE_NONE = failed_if_none(
    "returned_none", "the parser returned None: the report is missing, is not valid JSON of this format or "
    "has no files", detail=printed_error)
_PARSE_EMPTY = failed_if_empty(
    "returned_empty", "the batch parser returned no mappings: the report could not be read or parsed",
    detail=printed_error)
_COLLECT_NONE = failed_if_none(
    "returned_none", "coverage collection returned None: the test command failed or timed out, the JaCoCo "
    "report was not found, or an error was swallowed (see the coverage.command child span)")
_COLLECT_EMPTY = failed_if_empty(
    "returned_empty", "batch coverage collection returned []: the test command failed or timed out, the "
    "JaCoCo report was not found, or an error was swallowed (see the coverage.command child span)")


def _collect_call(batch: bool = False, cucumber: bool = False) -> Any:
    """``collect_*(self, id(s), test_command, working_dir, test_framework | cucumber_json, timeout)``."""

    def call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
        timeout = arg(args, kwargs, 5, "timeout")
        return {_P.batch_size: size(arg(args, kwargs, 1, "test_ids")) if batch else None,
                _P.framework: "cucumber" if cucumber else arg(args, kwargs, 4, "test_framework", "junit"),
                _P.timeout_s: float(timeout) if isinstance(timeout, (int, float)) else None}

    return call


def _impact_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    return {_P.changed_classes: size(arg(args, kwargs, 1, "changed_classes")),
            _P.min_confidence: arg(args, kwargs, 2, "min_confidence", 0.5)}


def _impact_result(query: Any) -> Attrs:
    return {_P.affected_tests: size(getattr(query, "affected_tests", None))}


def _rows(result: Any) -> Attrs:
    return {_P.rows: result if isinstance(result, int) and not isinstance(result, bool) else size(result)}


_STATISTICS = fields(_P, "total_tests", "total_classes", "total_methods", "average_confidence")


def _statistics(result: Any) -> Attrs:
    if not isinstance(result, dict):
        return {}
    return {key: value for key, value in _STATISTICS(result).items() if isinstance(value, (int, float))}


def _sqlite(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    return _SQLITE


def _save_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    return {**_SQLITE, **_mapping_attrs(arg(args, kwargs, 1, "mapping"))}


def _repository(method: str, **extra: Any) -> Target:
    extra.setdefault("call_attributes", _sqlite)
    extra.setdefault("result_attributes", _rows)
    return Target("core.coverage.repository", f"CoverageRepository.{method}", f"coverage.repository.{method}",
                  **extra)


def _functional(method: str) -> Target:
    return Target("core.coverage.functional_repository", f"FunctionalCoverageRepository.{method}",
                  f"coverage.functional.{method}", call_attributes=_functional_call,
                  result_attributes=_rows_if_list)


def _functional_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    return {"db.system.name": "postgresql"}


def _rows_if_list(result: Any) -> Attrs:
    return {_P.rows: len(result)} if isinstance(result, list) else {}


def _refs_call(framework_index: int) -> Any:
    def call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
        return {_P.framework: arg(args, kwargs, framework_index, "framework", "java")}

    return call


def _refs_result(result: Any) -> Attrs:
    return {_P.refs: size(result)}


def _export(fmt: str) -> Any:
    """``export_to_*(report, output_file)``: CrossBridge's report dataclasses hold their rows in ``entries``."""

    def call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
        report = arg(args, kwargs, 0, "report")
        return {_P.format: fmt, _P.report: type(report).__name__, _P.rows: size(getattr(report, "entries", None))}

    return call


def _scenario_result(result: Any) -> Attrs:
    """One ``ScenarioCoverageMapping``, or a feature's list of them (they share the batch's coverage)."""
    if isinstance(result, list):
        return {**_mapping_attrs(result[0] if result else None), _P.scenarios: len(result)}
    return _mapping_attrs(result)


def _aggregate_call(default_mode: str) -> Any:
    """``aggregate_*_coverage(self, scenario | cucumber_json, jacoco_xml, step_map, execution_mode)``."""

    def call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
        return {_P.execution_mode: _mode(args, kwargs, 4, default_mode)}

    return call


def _parsers(module: str, cls: str, fmt: str, mode_index: int, none_fails: bool) -> tuple[Target, ...]:
    """``parse`` and ``parse_batch`` of one parser class."""
    return (
        Target(f"core.coverage.{module}", f"{cls}.parse", "coverage.parse",
               call_attributes=_parse(fmt, mode_index), result_attributes=_mapping_attrs,
               outcome=_PARSE_NONE if none_fails else None, invokers=(TeeStdout(),) if none_fails else ()),
        Target(f"core.coverage.{module}", f"{cls}.parse_batch", "coverage.parse_batch",
               call_attributes=_parse_batch(fmt), result_attributes=_batch_attrs, outcome=_PARSE_EMPTY,
               invokers=(TeeStdout(),)),
    )


_READS = ("get_tests_covering_class", "get_tests_covering_method", "get_coverage_for_test",
          "get_impact_for_changed_classes")
_FUNCTIONAL = (
    "upsert_feature", "get_feature_by_name", "get_all_features", "upsert_code_unit", "get_code_unit",
    "get_code_units_by_file", "upsert_external_test_case", "get_external_test_case",
    "create_test_external_mapping", "create_test_feature_mapping", "create_test_code_coverage_mapping",
    "get_functional_coverage_map", "get_test_to_feature_coverage", "get_change_impact_surface",
    "get_coverage_gaps", "create_change_event", "create_change_impact",
)
_BEHAVIORAL = (("ApiEndpointCollector.record_api_call", "api_call"),
               ("UiComponentCollector.record_interaction", "ui_interaction"),
               ("NetworkCaptureCollector.record_request", "network_request"),
               ("ContractCoverageCollector.record_contract_usage", "contract_usage"))

_ENGINE = "core.coverage.engine"
_CUCUMBER = "core.coverage.cucumber_coverage"
_EXTRACTORS = "core.coverage.external_extractors"
_FORMATTER = "core.coverage.console_formatter"


class CoverageInstrumentor(RunsCommands):
    """Traces ``core.coverage``: see the module docstring for the table."""

    area = "coverage"
    category = "testing"
    module_categories = {"core.coverage.repository": "persistence",
                         "core.coverage.functional_repository": "persistence"}
    targets = (
        # Parsers: JaCoCo raises; coverage.py and Istanbul print and return None / {}
        *_parsers("jacoco_parser", "JaCoCoXMLParser", "jacoco", 4, none_fails=False),
        *_parsers("coverage_py_parser", "CoveragePyParser", "coverage.py", 3, none_fails=True),
        *_parsers("istanbul_parser", "IstanbulParser", "istanbul", 3, none_fails=True),
        # Repository (sqlite3): reads are idempotent and retried ("database is locked")
        _repository("save_test_coverage", call_attributes=_save_call),
        _repository("save_scenario_coverage", call_attributes=_save_call),
        *(_repository(method, invokers=_QUICK) for method in _READS),
        _repository("get_coverage_statistics", result_attributes=_statistics, invokers=_QUICK),
        _repository("create_discovery_run", result_attributes=None),
        _repository("complete_discovery_run", result_attributes=None),
        _repository("fail_discovery_run", result_attributes=None),
        # Mapping engine (runs the test command through the shared subprocess layer)
        Target(_ENGINE, "CoverageMappingEngine.collect_coverage_isolated", "coverage.collect",
               call_attributes=_collect_call(), result_attributes=_mapping_attrs, outcome=_COLLECT_NONE),
        Target(_ENGINE, "CoverageMappingEngine.collect_coverage_batch", "coverage.collect_batch",
               call_attributes=_collect_call(batch=True), result_attributes=_list_attrs,
               outcome=_COLLECT_EMPTY),
        Target(_ENGINE, "CoverageMappingEngine.collect_cucumber_coverage_isolated",
               "coverage.collect_cucumber", call_attributes=_collect_call(cucumber=True),
               result_attributes=_mapping_attrs, outcome=_COLLECT_NONE),
        Target(_ENGINE, "CoverageMappingEngine.query_impact", "coverage.query_impact",
               call_attributes=_impact_call, result_attributes=_impact_result,
               outcome=failed_if_none("returned_none", "query_impact returned None")),
        # Cucumber
        Target(_CUCUMBER, "CucumberCoverageCollector.collect_isolated_scenario_coverage",
               "coverage.cucumber.collect_scenario", result_attributes=_scenario_result),
        Target(_CUCUMBER, "CucumberCoverageCollector.collect_feature_coverage",
               "coverage.cucumber.collect_feature", result_attributes=_scenario_result),
        Target(_CUCUMBER, "CucumberCoverageAggregator.aggregate_scenario_coverage",
               "coverage.cucumber.aggregate_scenario", call_attributes=_aggregate_call("isolated"),
               result_attributes=_scenario_result),
        Target(_CUCUMBER, "CucumberCoverageAggregator.aggregate_feature_coverage",
               "coverage.cucumber.aggregate_feature", call_attributes=_aggregate_call("small_batch"),
               result_attributes=_scenario_result),
        # Behavioral collectors: high-frequency, counted on the enclosing span
        *(Target("core.coverage.behavioral_collectors", qualname, f"coverage.behavioral.{name}", mode="count")
          for qualname, name in _BEHAVIORAL),
        # External test-case references
        Target(_EXTRACTORS, "extract_external_refs_from_test", "coverage.external_refs.extract",
               call_attributes=_refs_call(2), result_attributes=_refs_result),
        Target(_EXTRACTORS, "extract_external_refs_from_file", "coverage.external_refs.extract_file",
               call_attributes=_refs_call(1), result_attributes=_refs_result),
        # Functional coverage repository (SQLAlchemy)
        *(_functional(method) for method in _FUNCTIONAL),
        # Console formatter exports
        Target(_FORMATTER, "export_to_csv", "coverage.export", call_attributes=_export("csv")),
        Target(_FORMATTER, "export_to_json", "coverage.export", call_attributes=_export("json")),
    )
