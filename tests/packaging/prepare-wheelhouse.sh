#!/usr/bin/env bash
# Download, while the network is there (tests/run.sh runs this before pytest; the tests run without network),
# the wheels tests/packaging/test_install.py installs offline:
#   - the newest OpenTelemetry core (api, sdk, exporter-otlp, instrumentation), as a user may already have it;
#   - what the README's install line resolves to from there (the core release the contrib packages support);
#   - setuptools and wheel, to build this package offline.
# Into $CROSSBRIDGE_OTEL_WHEELHOUSE, else ~/.cache/crossbridge-otel/wheelhouse. Offline, it keeps what is there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
house=${CROSSBRIDGE_OTEL_WHEELHOUSE:-$HOME/.cache/crossbridge-otel/wheelhouse}
pip=(.venv/bin/python -m pip download -q --disable-pip-version-check --prefer-binary -d "$house")
core=(opentelemetry-api opentelemetry-sdk opentelemetry-exporter-otlp opentelemetry-instrumentation)
mkdir -p "$house"
source=$(mktemp -d)  # resolving this package builds its metadata: in a copy, not in the tree
trap 'rm -rf "$source"' EXIT
cp -r pyproject.toml README.md crossbridge_otel instrumentors "$source"/
if "${pip[@]}" --pre "${core[@]}" \
   && "${pip[@]}" "$source[libraries]" "${core[@]}" \
   && "${pip[@]}" "setuptools>=77" wheel; then
  rm -f "$house"/crossbridge_otel-* "$house"/crossbridge-otel-*  # this package is built from the tree by the test
  echo "== wheelhouse for the install test: $house ($(ls "$house" | wc -l) files)"
else
  echo "== could not refresh the wheelhouse in $house (offline?): the install test uses what is there" >&2
fi
