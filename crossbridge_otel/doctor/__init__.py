"""Doctor: what the distribution did here, and why not.

``report`` (``crossbridge-otel doctor``: collect; its exit codes), ``verdict`` (the first line and the exit code),
``render`` (the text report, grouped and fitted to the terminal), ``audit`` (per CrossBridge module: traced, logs,
retry, health) and ``health`` (the PostgreSQL, InfluxDB and coverage-database checks and their gauge).

May import anything in the package: nothing imports it but the command line and the runtime area.
"""
