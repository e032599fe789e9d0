#!/usr/bin/env bash
# One real CrossBridge CLI command under `opentelemetry-instrument`: the way you run yours.
#
#   examples/crossbridge-cli.sh         # crossbridge coverage collect-isolated, offline, on tests/samples/jacoco.xml
#   examples/crossbridge-cli.sh coverage stats --db /tmp/crossbridge.db        # any `python -m cli.main` command
#   OTEL_SERVICE_NAME=my-run examples/crossbridge-cli.sh
#
# The default command is CrossBridge's own `coverage collect-isolated` (cli/main.py, argparse): it runs a test
# command in a shell (here: one that puts tests/samples/jacoco.xml where a Maven build would), finds and parses
# the JaCoCo report, and saves the mapping in its SQLite database (in a temporary directory). The trace:
#   cli.command → coverage.collect → coverage.command, coverage.parse, coverage.repository.* (→ sqlite3 spans)
#
# CrossBridge: $CROSSBRIDGE_SRC (a checkout: the directory holding core/, cli/), else ../shared/crossbridge/src
# beside this repository. crossbridge-otel: $CROSSBRIDGE_OTEL_BIN (default .venv/bin; bash examples/run-demo.sh
# creates it). CROSSBRIDGE_HOOKS_ENABLED=false is set unless you set it: with hooks on, CrossBridge's hook SDK
# connects to the PostgreSQL at CROSSBRIDGE_DB_URL (default: a hard-coded host) at import.
#
# Telemetry goes where the standard variables say: OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://localhost:4318, the
# OTLP/HTTP receiver of collector-config.yaml; start the collector and Jaeger first, see
# examples/deploy/README.md), or CROSSBRIDGE_OTEL_LOCAL_OUTPUT=<file> for OTLP JSON lines with no collector.
# With neither, the OpenTelemetry default endpoint http://localhost:4318 is used. The trace tree is printed on
# stderr at exit (CROSSBRIDGE_OTEL_SUMMARY=true). Then Jaeger: http://localhost:16686, or its API:
#   curl -s 'http://localhost:16686/api/traces?service=crossbridge&limit=5'
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${CROSSBRIDGE_OTEL_BIN:-$repo/.venv/bin}
crossbridge=${CROSSBRIDGE_SRC:-$(dirname "$repo")/shared/crossbridge/src}
if [[ ! -d "$crossbridge/cli" || ! -d "$crossbridge/core" ]]; then
  echo "crossbridge-cli: CrossBridge not found at $crossbridge: set CROSSBRIDGE_SRC to a CrossBridge checkout" \
       "(the directory holding core/ and cli/)" >&2
  exit 2
fi
if [[ ! -x "$bin/opentelemetry-instrument" ]]; then
  echo "crossbridge-cli: no opentelemetry-instrument in $bin: run bash examples/run-demo.sh (it creates .venv)" \
       "or set CROSSBRIDGE_OTEL_BIN" >&2
  exit 2
fi

export OTEL_SERVICE_NAME=${OTEL_SERVICE_NAME:-crossbridge}
export CROSSBRIDGE_HOOKS_ENABLED=${CROSSBRIDGE_HOOKS_ENABLED:-false}
export CROSSBRIDGE_OTEL_SUMMARY=${CROSSBRIDGE_OTEL_SUMMARY:-true}
export PYTHONPATH="$crossbridge${PYTHONPATH:+:$PYTHONPATH}"
# Bytecode goes to .cache/pycache here, never into the CrossBridge tree (which may be read-only or shared).
export PYTHONPYCACHEPREFIX=${PYTHONPYCACHEPREFIX:-$repo/.cache/pycache}

if [[ $# -eq 0 ]]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/crossbridge-cli.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  set -- coverage collect-isolated --test-id 'LoginTest#testLogin' \
    --test-command "mkdir -p target/site/jacoco && cp '$repo/tests/samples/jacoco.xml' target/site/jacoco/jacoco.xml" \
    --working-dir "$work" --db "$work/crossbridge.db" --timeout 60
fi

# Say where the telemetry goes, the way the SDK will decide it.
exporters="${OTEL_TRACES_EXPORTER:-otlp},${OTEL_LOGS_EXPORTER:-otlp},${OTEL_METRICS_EXPORTER:-otlp}"
where=()
[[ ",$exporters," == *",otlp,"* ]] && where+=("OTLP ${OTEL_EXPORTER_OTLP_ENDPOINT:-http://localhost:4318 (default)}")
[[ ",$exporters," == *",console,"* ]] && where+=("console")
[[ -n "${CROSSBRIDGE_OTEL_LOCAL_OUTPUT:-}" ]] && where+=("$CROSSBRIDGE_OTEL_LOCAL_OUTPUT")
if [[ ${#where[@]} -eq 0 ]]; then where=("nowhere (every exporter is none; the trace tree is still printed)"); fi
joined=$(printf '%s, ' "${where[@]}")
echo "crossbridge $1 ${2:-} → ${joined%, } as service '$OTEL_SERVICE_NAME'" >&2

cd "${work:-$PWD}"   # CrossBridge reads crossbridge.yml from the working directory
rc=0
"$bin/opentelemetry-instrument" "$bin/python" -m cli.main "$@" || rc=$?
exit "$rc"
