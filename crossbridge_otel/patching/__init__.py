"""Patching: how CrossBridge's callables become traced ones.

``targets`` (the table rows an area declares), ``invokers`` (the frozen invoker types a row lists, outermost first,
and the per-call chain built from them once at patch time), ``readers`` (what areas read from CrossBridge's calls
and results: arguments, sizes, bounded strings, enums, file names, swallowed-failure outcomes, prefixed fields),
``importhooks`` (post-import hooks that patch a module right after
CrossBridge imports it, never importing it themselves), ``wrapping`` (the wrappers and their per-call hot path),
``instrumentor`` (the ``BaseInstrumentor`` every area subclasses: instrument, uninstrument and the doctor from one
table), ``status`` (what applied, and why not), ``subprocesses`` (commands CrossBridge runs under a traced call).

May import: the top-level ``_guard``, ``redaction``, ``settings``, ``version``; never ``export``, ``logs``, ``retry``
or ``doctor`` (those build on this package, not the other way round).
"""
