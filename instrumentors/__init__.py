"""One instrumentor per CrossBridge area, installed as ``crossbridge_otel.instrumentors``.

Each module holds a usage docstring, a table of targets and a little glue; the shared machinery is in
:mod:`crossbridge_otel.patching.instrumentor`.
"""

if __name__ == "instrumentors":  # imported by its directory name from the repository root
    raise ImportError(
        "the instrumentors/ directory is the package crossbridge_otel.instrumentors; import it under that name"
    )
