"""The configurator ``opentelemetry-instrument`` loads: providers, exporters and the resource.

All the work is in :func:`crossbridge_otel.export.pipeline.configure`; this is the entry-point glue. It installs
global providers that build that pipeline on first use (:mod:`crossbridge_otel.export.lazy`), so a process that
never traces anything never imports the SDK. With ``CROSSBRIDGE_OTEL_ENABLED=false`` it builds nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from crossbridge_otel import _voice
from crossbridge_otel._guard import guarded
from crossbridge_otel.export.lazy import LazyPipeline
from crossbridge_otel.patching import importhooks
from crossbridge_otel.settings import Settings
from crossbridge_otel.settings import load as load_settings

__all__ = ["CrossBridgeConfigurator", "active_pipeline"]

_active: list[Any] = []


def active_pipeline() -> Any:
    """The pipeline this process's configurator built (building it if it was not yet), or None."""
    return _active[0].get() if _active else None


def join_parent_trace(environ: Mapping[str, str]) -> bool:
    """Make ``TRACEPARENT``/``TRACESTATE`` from the environment the process's current context.

    CrossBridge runs test commands in child processes; the distribution puts the running span's context in
    their environment, and an instrumented child joins that trace here, before its own code runs.
    """
    traceparent = environ.get("TRACEPARENT", "").strip()
    if not traceparent:
        return False
    from opentelemetry import context
    from opentelemetry.trace import get_current_span
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier = {"traceparent": traceparent, "tracestate": environ.get("TRACESTATE", "")}
    parent = TraceContextTextMapPropagator().extract(carrier)
    if not get_current_span(parent).get_span_context().is_valid:
        return False
    context.attach(parent)
    return True


def _install_lazy(settings: Settings) -> LazyPipeline:
    """Install global providers that build the SDK pipeline on first use (see crossbridge_otel.export.lazy).

    The tracer provider at once (``opentelemetry.trace`` is already imported by ``opentelemetry-instrument``); the
    meter and logger providers right after ``opentelemetry.metrics`` / ``opentelemetry._logs`` are first imported,
    before the importer gets them back: nobody can ask for a meter or a logger earlier, and a process that never
    imports them does not pay for them at start-up.
    """
    from opentelemetry import trace

    # Before the instrumentors load: what the SDK and they log goes to our one voice from the start.
    _voice.install()

    def build() -> Any:
        from crossbridge_otel.export.pipeline import arm_exit, configure

        pipeline = configure(settings, set_global=False)
        arm_exit(pipeline)
        return pipeline

    lazy = LazyPipeline(build)
    trace.set_tracer_provider(lazy.tracer_provider)
    importhooks.when_imported("opentelemetry.metrics", lambda api: api.set_meter_provider(lazy.meter_provider))
    importhooks.when_imported("opentelemetry._logs", lambda api: api.set_logger_provider(lazy.logger_provider))
    return lazy


class CrossBridgeConfigurator:
    """Builds the providers through :mod:`crossbridge_otel.export.pipeline`.

    ``opentelemetry-instrument`` only calls ``configure(**kwargs)`` on the entry point's instance, so this
    does not subclass the SDK's ``_BaseConfigurator``: importing ``opentelemetry.sdk._configuration`` pulls
    in the SDK's whole environment-driven set-up that we never use (start-up budget).
    """

    def configure(self, **kwargs: Any) -> None:
        """Entry-point API of ``opentelemetry_configurator``."""
        self._configure(**kwargs)

    @guarded("configurator", default=None)
    def _configure(self, **kwargs: Any) -> None:
        settings = load_settings()
        if not settings.enabled:
            return
        _active.append(_install_lazy(settings))
        join_parent_trace(os.environ)
