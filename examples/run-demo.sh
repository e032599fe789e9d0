#!/usr/bin/env bash
# The main job, from a fresh clone: set up crossbridge-otel in .venv, then run real CrossBridge work
# (examples/demo.py) under `opentelemetry-instrument`, and say where its telemetry went.
#
#   bash examples/run-demo.sh
#   CROSSBRIDGE_SRC=/path/to/crossbridge bash examples/run-demo.sh         # your CrossBridge checkout
#   OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 bash examples/run-demo.sh   # to a collector (see below)
#
# - CrossBridge: $CROSSBRIDGE_SRC (a checkout: the directory holding core/), else ../shared/crossbridge/src
#   beside this repository. Without it the script stops and says how to point at one.
# - Install: pip install -e ".[libraries]" plus CrossBridge's runtime dependencies
#   (examples/crossbridge-requirements.txt). Skipped when neither file changed since the last install
#   (a hash of both is kept in .venv/.run-demo-installed), so a rerun takes seconds.
# - Safety: CrossBridge dials hard-coded database/sidecar hosts when its hooks are on, so the workload runs with
#   CROSSBRIDGE_HOOKS_ENABLED=false inside a loopback-only network namespace (tests/setup/loopback-only.sh; root
#   or user namespaces). If this shell is already loopback-only, it runs directly.
# - Telemetry: with OTEL_EXPORTER_OTLP_ENDPOINT set, OTLP to that endpoint. The namespace has its own loopback,
#   so the collector must listen inside it: after one plain run (which installs), start both in one namespace:
#     bash tests/setup/loopback-only.sh bash -c '$OTELCOL --config collector-config.yaml & sleep 2;
#       OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 bash examples/run-demo.sh'
#   Without it (no collector needed): OTLP JSON lines in crossbridge-otel-out/telemetry.jsonl (or the file
#   CROSSBRIDGE_OTEL_LOCAL_OUTPUT names), and the trace tree printed at exit.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

# ---------------------------------------------------------------------------------------------- CrossBridge
if [[ -n "${CROSSBRIDGE_SRC:-}" ]]; then
  crossbridge=$CROSSBRIDGE_SRC
else
  crossbridge=$(dirname "$repo")/shared/crossbridge/src
fi
if [[ ! -d "$crossbridge/core" ]]; then
  {
    echo "run-demo: CrossBridge not found at ${crossbridge}"
    echo "  The demo runs the real CrossBridge (github.com/crossstack-ai/crossbridge). Point CROSSBRIDGE_SRC at"
    echo "  a CrossBridge checkout: the directory holding core/, adapters/, cli/ (the root of a clone), e.g."
    echo "    git clone https://github.com/crossstack-ai/crossbridge ../crossbridge"
    echo "    CROSSBRIDGE_SRC=\$PWD/../crossbridge bash examples/run-demo.sh"
    echo "  (CrossBridge is not on the package index: the index's 'crossbridge' is an unrelated project.)"
  } >&2
  exit 2
fi
crossbridge=$(cd "$crossbridge" && pwd)
echo "== CrossBridge: $crossbridge"

# ------------------------------------------------------------------------------------------------- install
requirements=examples/crossbridge-requirements.txt
stamp=.venv/.run-demo-installed
wanted=$(cat pyproject.toml "$requirements" | sha256sum | cut -d' ' -f1)
if [[ -x .venv/bin/python && -f $stamp && "$(cat "$stamp")" == "$wanted" ]]; then
  echo "== .venv is up to date with pyproject.toml and $requirements: skipping pip install"
else
  if [[ ! -x .venv/bin/python ]]; then
    echo "== creating .venv (${PYTHON:-python3} -m venv)"
    "${PYTHON:-python3}" -m venv .venv
  fi
  echo "== installing crossbridge-otel (pip install -e \".[libraries]\") and CrossBridge's runtime dependencies ($requirements)"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  # setuptools says at every editable install that a folder named like the package could shadow it: true of
  # any editable install and nothing to act on here, so that one notice is not shown.
  PYTHONWARNINGS="ignore:::setuptools.command.editable_wheel" .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[libraries]" -r "$requirements"
  echo "$wanted" > "$stamp"
fi

# ------------------------------------------------------------------------------------------------- telemetry
export CROSSBRIDGE_OTEL_SUMMARY=${CROSSBRIDGE_OTEL_SUMMARY:-true}
local_output=""
if [[ -z "${OTEL_EXPORTER_OTLP_ENDPOINT:-}${OTEL_EXPORTER_OTLP_TRACES_ENDPOINT:-}" ]]; then
  local_output=${CROSSBRIDGE_OTEL_LOCAL_OUTPUT:-$repo/crossbridge-otel-out/telemetry.jsonl}
  mkdir -p "$(dirname "$local_output")"
  : > "$local_output"
  export OTEL_TRACES_EXPORTER=none OTEL_LOGS_EXPORTER=none OTEL_METRICS_EXPORTER=none
  export CROSSBRIDGE_OTEL_LOCAL_OUTPUT=$local_output
  echo "== no OTEL_EXPORTER_OTLP_ENDPOINT: telemetry goes to $local_output (OTLP JSON lines)"
else
  echo "== exporting over OTLP to ${OTEL_EXPORTER_OTLP_TRACES_ENDPOINT:-$OTEL_EXPORTER_OTLP_ENDPOINT}" \
       "as service '${OTEL_SERVICE_NAME:-crossbridge}'"
fi

# ------------------------------------------------------------------------------------------------------ run
export CROSSBRIDGE_HOOKS_ENABLED=false
export PYTHONPATH="$crossbridge${PYTHONPATH:+:$PYTHONPATH}"
# Bytecode goes to .cache/pycache here, never into the CrossBridge tree (which may be read-only or shared).
export PYTHONPYCACHEPREFIX=${PYTHONPYCACHEPREFIX:-$repo/.cache/pycache}
command=(.venv/bin/opentelemetry-instrument .venv/bin/python examples/demo.py)
# /proc/net/dev lists the interfaces of this process's own network namespace (/sys/class/net may not).
interfaces=$(awk -F: 'NR > 2 { gsub(/ /, "", $1); print $1 }' /proc/net/dev 2>/dev/null || true)
if [[ "$interfaces" == "lo" ]]; then
  echo "== running examples/demo.py under opentelemetry-instrument (this shell is already loopback-only)"
  "${command[@]}"
else
  echo "== running examples/demo.py under opentelemetry-instrument, in a loopback-only network namespace"
  bash tests/setup/loopback-only.sh "${command[@]}"
fi

# ------------------------------------------------------------------------------------------------- report
if [[ -n $local_output ]]; then
  echo "== telemetry written to $local_output:"
  .venv/bin/python - "$local_output" <<'PY'
import json, sys
spans, logs, metrics = [], 0, set()
for line in open(sys.argv[1], encoding="utf-8"):
    request = json.loads(line)
    for rs in request.get("resourceSpans", []):
        spans += [s["name"] for ss in rs.get("scopeSpans", []) for s in ss.get("spans", [])]
    for rl in request.get("resourceLogs", []):
        logs += sum(len(sl.get("logRecords", [])) for sl in rl.get("scopeLogs", []))
    for rm in request.get("resourceMetrics", []):
        metrics |= {m["name"] for sm in rm.get("scopeMetrics", []) for m in sm.get("metrics", [])}
print(f"   {len(spans)} spans ({len(set(spans))} names), {logs} log records, metrics: {', '.join(sorted(metrics))}")
PY
else
  echo "== telemetry sent over OTLP to ${OTEL_EXPORTER_OTLP_TRACES_ENDPOINT:-$OTEL_EXPORTER_OTLP_ENDPOINT};" \
       "traces in Jaeger under service '${OTEL_SERVICE_NAME:-crossbridge}' (e.g. http://localhost:16686)"
fi
