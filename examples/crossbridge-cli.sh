#!/usr/bin/env bash
# One CrossBridge CLI command under `opentelemetry-instrument`, exporting traces, logs and metrics over OTLP to
# the collector at $OTEL_EXPORTER_OTLP_ENDPOINT (default http://localhost:4318, the OTLP/HTTP receiver of
# collector-config.yaml). Start the collector and Jaeger first: see examples/deploy/README.md.
#
#   examples/crossbridge-cli.sh                       # translate tests/samples/LoginTest.java (selenium-java → playwright-python)
#   examples/crossbridge-cli.sh run --framework pytest --project-root /path/to/tests
#   OTEL_SERVICE_NAME=my-run examples/crossbridge-cli.sh
#
# Then open Jaeger: http://localhost:16686 (UI), or its API:
#   curl -s 'http://localhost:16686/api/traces?service=crossbridge&limit=5'
#
# This repository has no CrossBridge in it: the command runs the CrossBridge-shaped fixture app in
# tests/fixtures/crossbridge (the same `cli.main` Typer app, `translate` and `run` commands). To run it against
# real CrossBridge instead:
#   1. install crossbridge-otel into CrossBridge's own environment:  pip install -e /path/to/crossbridge-otel
#   2. cd into the CrossBridge checkout and drop the PYTHONPATH line below (CrossBridge's packages `core`,
#      `adapters`, `cli`, ... are then importable from the checkout or its installed distribution);
#   3. keep CROSSBRIDGE_HOOKS_ENABLED=false unless CROSSBRIDGE_DB_URL points at a database you own: CrossBridge's
#      hook SDK connects to PostgreSQL at import time otherwise;
#   4. prefix CrossBridge's usual command with `opentelemetry-instrument`, e.g.
#      opentelemetry-instrument python -m cli.main translate tests/LoginTest.java --from selenium-java --to playwright-python
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${CROSSBRIDGE_OTEL_BIN:-$repo/.venv/bin}          # where crossbridge-otel is installed (opentelemetry-instrument)

export OTEL_EXPORTER_OTLP_ENDPOINT=${OTEL_EXPORTER_OTLP_ENDPOINT:-http://localhost:4318}
export OTEL_SERVICE_NAME=${OTEL_SERVICE_NAME:-crossbridge}
export CROSSBRIDGE_HOOKS_ENABLED=${CROSSBRIDGE_HOOKS_ENABLED:-false}
export CROSSBRIDGE_OTEL_SUMMARY=${CROSSBRIDGE_OTEL_SUMMARY:-true}   # the trace tree on stderr at exit
export PYTHONPATH="$repo/tests/fixtures/crossbridge${PYTHONPATH:+:$PYTHONPATH}"   # fixture CrossBridge only

if [[ $# -eq 0 ]]; then
  set -- translate "$repo/tests/samples/LoginTest.java" --from selenium-java --to playwright-python
fi
echo "crossbridge $1 → $OTEL_EXPORTER_OTLP_ENDPOINT as service '$OTEL_SERVICE_NAME'" >&2
exec "$bin/opentelemetry-instrument" "$bin/python" -m cli.main "$@"
