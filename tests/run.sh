#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine, then run every test: ruff, mypy, pytest.
#   - a virtual environment in .venv with the package, its [libraries] extra and the test dependency group (PyPI);
#   - Debian's PostgreSQL server package when initdb is missing (tests start their own server on 127.0.0.1);
#   - the real OpenTelemetry Collector and Jaeger, built from the Go module proxy and cached outside the
#     repository (tests/e2e/build-pipeline.sh; cold build on 2 cores: see the README).
# Without Go, the pipeline tests are skipped with the reason printed (in CI, CI=true, they fail instead).
# pytest imports the real CrossBridge (CROSSBRIDGE_SRC, else ../shared/crossbridge/src), which dials hard-coded
# hosts at import: the whole pytest run goes into a loopback-only network namespace (unshare -n, then lo up), with
# CROSSBRIDGE_HOOKS_ENABLED=false. PostgreSQL, the collector and Jaeger all listen on 127.0.0.1 inside it.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

python=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
# setuptools says at every editable install that a folder named like the package could shadow it: true of
# any editable install and nothing to act on here, so that one notice is not shown.
PYTHONWARNINGS="ignore:::setuptools.command.editable_wheel" .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[libraries]" --group test

bash tests/setup/ensure-postgres.sh
bash tests/setup/ensure-chromium.sh   # headless Chromium (and jq) for the HTML report's browser test
bash tests/packaging/prepare-wheelhouse.sh  # the install test runs offline, from these wheels

if command -v go >/dev/null 2>&1; then
  echo "== building (or reusing) the real collector and Jaeger"
  bash tests/e2e/build-pipeline.sh
else
  echo "== SKIPPING the real-pipeline build: Go is not installed, so the collector and Jaeger tests will be skipped"
fi

echo "== ruff"
.venv/bin/ruff check .
echo "== mypy (strict, crossbridge_otel/)"
.venv/bin/mypy
echo "== pytest (inside a loopback-only network namespace)"
export PATH="$PWD/.venv/bin:$PATH"
export CROSSBRIDGE_HOOKS_ENABLED=false
exec bash tests/setup/loopback-only.sh .venv/bin/python -m pytest "$@"
