"""One instrumentor per CrossBridge area, installed as ``crossbridge_otel.instrumentors``.

Each module holds a usage docstring, a table of targets and a little glue; the shared machinery is in
:mod:`crossbridge_otel.instrumentor`.
"""
