"""Distro defaults, the configurator's providers and resource, exporter protocol, contained instrumentors."""

from __future__ import annotations

import os
import uuid
from importlib.metadata import EntryPoint

import pytest
from support.engine import run_instrumented

from crossbridge_otel.distro import DEFAULTS, CrossBridgeDistro
from crossbridge_otel.export import pipeline
from crossbridge_otel.settings import load
from crossbridge_otel.version import __version__


@pytest.fixture
def environ():
    """os.environ without OTEL_* variables for the test, restored exactly afterwards."""
    saved = dict(os.environ)
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        del os.environ[name]
    yield os.environ
    os.environ.clear()
    os.environ.update(saved)


def test_distro_sets_defaults_when_unset(environ):
    """On a clean environment the distro sets OTLP exporters, http/protobuf and service name crossbridge."""
    CrossBridgeDistro()._configure()
    assert {k: environ[k] for k in DEFAULTS} == DEFAULTS
    assert environ["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    assert environ["OTEL_SERVICE_NAME"] == "crossbridge"


def test_distro_never_overrides_user_values(environ):
    """Values the user set (protocol, exporters, service name) are left exactly as they were."""
    environ.update({
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "ci-run",
    })
    CrossBridgeDistro()._configure()
    assert environ["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
    assert environ["OTEL_TRACES_EXPORTER"] == "console"
    assert environ["OTEL_SERVICE_NAME"] == "ci-run"
    assert environ["OTEL_LOGS_EXPORTER"] == "otlp"


@pytest.mark.parametrize("attributes", ["service.name=nightly", "team=qa, service.name = nightly"])
def test_distro_respects_service_name_in_resource_attributes(environ, attributes):
    """A service.name given in OTEL_RESOURCE_ATTRIBUTES is not shadowed by a default OTEL_SERVICE_NAME."""
    environ["OTEL_RESOURCE_ATTRIBUTES"] = attributes
    CrossBridgeDistro()._configure()
    assert "OTEL_SERVICE_NAME" not in environ


def _resource_of(environ) -> dict:
    built = pipeline.configure(load({}, warn=False), environ={"OTEL_TRACES_EXPORTER": "none",
                                                               "OTEL_LOGS_EXPORTER": "none",
                                                               "OTEL_METRICS_EXPORTER": "none"},
                               set_global=False)
    try:
        return dict(built.tracer_provider.resource.attributes)
    finally:
        built.shutdown(report=False)


def test_configure_builds_providers_with_the_telemetry_resource(environ):
    """configure(set_global=False) builds providers whose resource is the one TELEMETRY.md describes."""
    attributes = _resource_of(environ)
    assert attributes["service.name"] == "crossbridge"
    assert attributes["telemetry.distro.name"] == "crossbridge-otel"
    assert attributes["telemetry.distro.version"] == __version__
    assert attributes["process.pid"] == os.getpid()
    uuid.UUID(attributes["service.instance.id"])


def test_configure_uses_the_user_service_name(environ):
    """OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) replaces the crossbridge default."""
    environ["OTEL_SERVICE_NAME"] = "ci-run"
    assert _resource_of(environ)["service.name"] == "ci-run"
    del environ["OTEL_SERVICE_NAME"]
    environ["OTEL_RESOURCE_ATTRIBUTES"] = "service.name=nightly"
    assert _resource_of(environ)["service.name"] == "nightly"


def test_configure_gives_each_pipeline_its_own_instance_id(environ):
    """service.instance.id is unique per built resource (per process in practice)."""
    assert _resource_of(environ)["service.instance.id"] != _resource_of(environ)["service.instance.id"]


def test_configure_does_not_install_globals(environ):
    """set_global=False leaves the global tracer provider alone."""
    from opentelemetry import trace

    before = trace.get_tracer_provider()
    _resource_of(environ)
    assert trace.get_tracer_provider() is before


def test_exporters_default_to_http_protobuf():
    """With no protocol chosen every OTLP exporter is http/protobuf."""
    settings = load({}, warn=False)
    for signal in pipeline.SIGNALS:
        labels = [label for label, _ in pipeline.exporter_factories(signal, settings, {})]
        assert labels == ["otlp (http/protobuf)"]


def test_grpc_only_when_chosen():
    """OTEL_EXPORTER_OTLP_PROTOCOL=grpc (or a per-signal protocol) selects gRPC for those signals only."""
    settings = load({}, warn=False)
    env = {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}
    assert pipeline.exporter_factories("traces", settings, env)[0][0] == "otlp (grpc)"
    assert pipeline.exporter_factories("logs", settings, env)[0][0] == "otlp (http/protobuf)"
    env = {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    assert all(pipeline.exporter_factories(s, settings, env)[0][0] == "otlp (grpc)" for s in pipeline.SIGNALS)


_GRPC_PROBE = """
import sys, time
from opentelemetry import trace
from crossbridge_otel.configurator import active_pipeline
with trace.get_tracer("probe").start_as_current_span("probe"):
    pass
trace.get_tracer_provider().force_flush(500)
(queue,) = active_pipeline().span_queues
deadline = time.monotonic() + 30  # bounds a failure only
while queue._exporter is None:  # the export thread built its exporter: what that imports is imported now
    assert time.monotonic() < deadline, "the span exporter was never built"
    time.sleep(0.01)
print("GRPC" if "grpc" in sys.modules else "NO-GRPC")
"""


def test_grpc_is_not_imported_by_default():
    """Under opentelemetry-instrument with default settings, exporting a span never imports grpc."""
    done = run_instrumented(_GRPC_PROBE, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")
    assert done.stdout.strip() == "NO-GRPC", done.stderr


def test_grpc_is_imported_when_chosen():
    """With OTEL_EXPORTER_OTLP_PROTOCOL=grpc the exporter (and grpc) is loaded on the export thread."""
    done = run_instrumented(
        _GRPC_PROBE, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc", CROSSBRIDGE_OTEL_EXPORT_TIMEOUT="0.2",
    )
    assert done.stdout.strip() == "GRPC", done.stderr


def test_python_c_pass_imports_no_grpc_and_no_crossbridge():
    """`opentelemetry-instrument python -c ...` with defaults imports neither grpc nor any CrossBridge package."""
    code = "import sys; print(sorted(m for m in sys.modules if m.split('.')[0] in "
    code += "('grpc', 'core', 'adapters', 'services', 'cli', 'persistence')))"
    done = run_instrumented(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def _entry_point(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group="opentelemetry_instrumentor")


def test_one_failing_instrumentor_does_not_stop_the_next(lenient, caplog):
    """load_instrumentor contains an instrumentor whose instrument() raises; the next one still loads."""
    from victims import entrypoints

    distro = CrossBridgeDistro()
    distro.load_instrumentor(_entry_point("victim_broken", "victims.entrypoints:BrokenInstrumentor"))
    distro.load_instrumentor(_entry_point("victim_good", "victims.entrypoints:GoodInstrumentor"))
    try:
        assert entrypoints.loaded == ["good"]
        assert any("instrumentor victim_broken" in r.getMessage() for r in caplog.records)
    finally:
        entrypoints.GoodInstrumentor().uninstrument()


def test_area_instrumentor_waits_for_the_first_crossbridge_import(monkeypatch):
    """A crossbridge_* entry point is loaded when a CrossBridge package is first imported, not at start-up."""
    import sys

    from victims import entrypoints

    for name in ("core", "adapters", "services", "cli", "persistence"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    distro = CrossBridgeDistro()
    distro.load_instrumentor(_entry_point("crossbridge_good", "victims.entrypoints:GoodInstrumentor"))
    try:
        assert entrypoints.loaded == []
        import services  # noqa: F401 (the CrossBridge-shaped fixture package: importing it is the test)

        assert entrypoints.loaded == ["good"]
    finally:
        if entrypoints.loaded:
            entrypoints.GoodInstrumentor().uninstrument()


def test_missing_instrumentor_module_is_left_to_opentelemetry_instrument():
    """An entry point whose module is not installed re-raises ImportError, which opentelemetry-instrument skips."""
    distro = CrossBridgeDistro()
    with pytest.raises(ModuleNotFoundError):
        distro.load_instrumentor(_entry_point("victim_nothing", "victims.no_such_module:Instrumentor"))


# Modules the start-up defers to first use (README, Performance): each would cost milliseconds in every process.
_DEFERRED = ("crossbridge_otel.redaction", "difflib", "opentelemetry.sdk", "crossbridge_otel.patching.wrapping")


def test_start_up_imports_none_of_the_deferred_modules():
    """`python -c` under the distribution loads no redaction patterns, no difflib, no SDK and no wrappers."""
    code = f"import sys; print(*[m for m in {_DEFERRED!r} if m in sys.modules] or ['none'])"
    done = run_instrumented(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["none"]
