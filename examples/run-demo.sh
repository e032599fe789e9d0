#!/usr/bin/env bash
# The main job on a fresh machine: set up crossbridge-otel in .venv and run a CrossBridge workload under
# `opentelemetry-instrument`.
#   - With OTEL_EXPORTER_OTLP_ENDPOINT set, telemetry goes to that collector over OTLP.
#   - Without it (a newcomer, no collector), telemetry is written as OTLP JSON lines to
#     crossbridge-otel-out/telemetry.jsonl and a summary of the trace tree is printed at exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

python=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[libraries]"

export CROSSBRIDGE_OTEL_SUMMARY=${CROSSBRIDGE_OTEL_SUMMARY:-true}
if [[ -z "${OTEL_EXPORTER_OTLP_ENDPOINT:-}${OTEL_EXPORTER_OTLP_TRACES_ENDPOINT:-}" ]]; then
  mkdir -p crossbridge-otel-out
  : > crossbridge-otel-out/telemetry.jsonl
  export OTEL_TRACES_EXPORTER=none OTEL_LOGS_EXPORTER=none OTEL_METRICS_EXPORTER=none
  export CROSSBRIDGE_OTEL_LOCAL_OUTPUT="$PWD/crossbridge-otel-out/telemetry.jsonl"
  echo "No OTEL_EXPORTER_OTLP_ENDPOINT: writing telemetry to $CROSSBRIDGE_OTEL_LOCAL_OUTPUT"
fi
.venv/bin/opentelemetry-instrument .venv/bin/python examples/demo.py
if [[ -n "${CROSSBRIDGE_OTEL_LOCAL_OUTPUT:-}" ]]; then
  echo "Telemetry written: $(wc -l < "$CROSSBRIDGE_OTEL_LOCAL_OUTPUT") OTLP JSON lines in $CROSSBRIDGE_OTEL_LOCAL_OUTPUT"
fi
