"""Instrumentors for the distro's load_instrumentor tests: one that raises, one that works."""

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

loaded: list[str] = []


class BrokenInstrumentor(BaseInstrumentor):
    """Raises from _instrument, as a buggy area would."""

    def instrumentation_dependencies(self):
        return ()

    def _instrument(self, **kwargs):
        raise RuntimeError("area failed to load")

    def _uninstrument(self, **kwargs):
        pass


class GoodInstrumentor(BaseInstrumentor):
    """Records that it was instrumented."""

    def instrumentation_dependencies(self):
        return ()

    def _instrument(self, **kwargs):
        loaded.append("good")

    def _uninstrument(self, **kwargs):
        loaded.remove("good")
