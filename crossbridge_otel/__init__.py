"""crossbridge-otel: OpenTelemetry instrumentation distribution for CrossBridge.

Install it beside CrossBridge and prefix a command with ``opentelemetry-instrument``; the entry points in
pyproject.toml load the distro (environment defaults), the configurator (providers and exporters) and the
instrumentors of the CrossBridge areas (one entry point for all, ``crossbridge_otel.instrumentors.areas``).
Importing this package does nothing else: no network, no files, no handlers.

Runtime switch: :func:`set_enabled` turns every wrapper into a plain pass-through and back.
"""

from crossbridge_otel.version import __version__

__all__ = ["__version__", "is_enabled", "set_enabled"]


def set_enabled(enabled: bool) -> None:
    """Switch instrumentation on or off at runtime (patches stay in place; off costs one attribute read)."""
    from crossbridge_otel.patching.wrapping import SWITCH  # not at package import: opentelemetry-instrument start-up

    SWITCH.on = bool(enabled)


def is_enabled() -> bool:
    """Whether wrappers currently record telemetry."""
    from crossbridge_otel.patching.wrapping import SWITCH

    return SWITCH.on
