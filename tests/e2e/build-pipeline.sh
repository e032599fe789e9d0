#!/usr/bin/env bash
# Build (or reuse) the two real binaries the end-to-end tests run:
#   * an OpenTelemetry Collector built with ocb v0.161.0 from tests/e2e/otelcol-builder.yaml
#   * Jaeger v2 (github.com/jaegertracing/jaeger/cmd/jaeger@v1.76.0, i.e. Jaeger v2.13.0)
#
# Both are cached OUTSIDE the repository:
#   ${CROSSBRIDGE_OTEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crossbridge-otel}/
#     ocb-v0.161.0/builder               the collector builder
#     otelcol-<hash>/otelcol-e2e         the collector; <hash> = sha256(manifest + ocb version), 16 hex chars
#     jaeger-v1.76.0/jaeger              Jaeger; built from a throwaway wrapper module in jaeger-v1.76.0/mod
# A binary is rebuilt only when its key changes (edit the manifest or a pinned version) or it is missing.
# GOMODCACHE and GOCACHE are left at Go's defaults so that a reused machine keeps its module/build caches.
#
# Usage: tests/e2e/build-pipeline.sh [--check]
#   --check   build nothing; print the paths if both binaries are cached, else exit 4.
# Output: progress and per-component elapsed times on stdout (tool output on stderr); the last two lines are
#   OTELCOL=<absolute path>
#   JAEGER=<absolute path>
# Exit codes: 0 ok, 3 Go toolchain missing, 4 (--check) not built yet, other: build failure.
set -euo pipefail

OCB_VERSION=v0.161.0
JAEGER_MODULE=github.com/jaegertracing/jaeger
JAEGER_VERSION=v1.76.0   # = Jaeger v2.13.0; newer v2.x tags cannot be served (module path has no /v2)
JAEGER_V2_VERSION=v2.13.0  # what `jaeger version` reports (Jaeger's Makefile sets it from the v2 tag)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
manifest="$here/otelcol-builder.yaml"
cache="${CROSSBRIDGE_OTEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crossbridge-otel}"

key="$( { cat "$manifest"; echo "ocb=$OCB_VERSION"; } | sha256sum | cut -c1-16)"
otel_dir="$cache/otelcol-$key"
otel_bin="$otel_dir/otelcol-e2e"
jaeger_dir="$cache/jaeger-$JAEGER_VERSION"
jaeger_bin="$jaeger_dir/jaeger"
ocb_dir="$cache/ocb-$OCB_VERSION"

log() { printf '[build-pipeline] %s\n' "$*"; }
die() { printf '[build-pipeline] ERROR: %s\n' "$1" >&2; exit "${2:-1}"; }

# A cached binary counts only if it executes: the collector answers --version, Jaeger the `version` command.
usable() { [[ -x "$1" ]] && "$@" >/dev/null 2>&1; }

if [[ "${1:-}" == "--check" ]]; then
  if usable "$otel_bin" --version && usable "$jaeger_bin" version; then
    echo "OTELCOL=$otel_bin"
    echo "JAEGER=$jaeger_bin"
    exit 0
  fi
  die "binaries not built yet (run tests/e2e/build-pipeline.sh); expected $otel_bin and $jaeger_bin" 4
fi

if ! command -v go >/dev/null 2>&1; then
  die "Go toolchain not found on PATH: cannot build the OpenTelemetry Collector and Jaeger. Install Go >= 1.22 (https://go.dev/dl/; ocb v0.161.0 needs Go 1.26, which Go >= 1.21 fetches by itself unless GOTOOLCHAIN=local) and re-run." 3
fi
log "using $(go version) ($(command -v go)); GOMODCACHE=$(go env GOMODCACHE)"
log "cache: $cache"

mkdir -p "$cache"
# Serialise concurrent runs (e.g. a manual build and a pytest session): the second waits, then reuses.
exec 9>"$cache/.build.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
fi

elapsed() { local s=$(( $(date +%s) - $1 )); printf '%dm%02ds (%ds)' $((s / 60)) $((s % 60)) "$s"; }

# ---------------------------------------------------------------------------------------------- collector
if usable "$otel_bin" --version; then
  log "collector: cached at $otel_bin (key $key), build time 0s"
else
  t0=$(date +%s)
  if ! [[ -x "$ocb_dir/builder" ]]; then
    log "collector: installing ocb $OCB_VERSION into $ocb_dir"
    mkdir -p "$ocb_dir"
    GOBIN="$ocb_dir" go install "go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION" >&2
  fi
  log "collector: building from $manifest (key $key)"
  rm -rf "$otel_dir.tmp"
  mkdir -p "$otel_dir.tmp"
  # Copy the manifest with output_path pointing into the cache (generated sources + binary stay out of the repo).
  sed -E "s#^([[:space:]]*output_path:).*#\1 $otel_dir.tmp/src#" "$manifest" > "$otel_dir.tmp/manifest.yaml"
  grep -q "output_path: $otel_dir.tmp/src" "$otel_dir.tmp/manifest.yaml" \
    || die "could not rewrite dist.output_path in the copied manifest"
  (cd "$otel_dir.tmp" && "$ocb_dir/builder" --config="$otel_dir.tmp/manifest.yaml") >&2 \
    || die "ocb failed to build the collector (see the output above)"
  mv "$otel_dir.tmp/src/otelcol-e2e" "$otel_dir.tmp/otelcol-e2e"
  rm -rf "$otel_dir"
  mv "$otel_dir.tmp" "$otel_dir"
  usable "$otel_bin" --version || die "built collector does not run: $otel_bin"
  log "collector: built in $(elapsed "$t0")"
fi

# ---------------------------------------------------------------------------------------------- jaeger
if usable "$jaeger_bin" version; then
  log "jaeger: cached at $jaeger_bin, build time 0s"
else
  t0=$(date +%s)
  log "jaeger: building $JAEGER_MODULE/cmd/jaeger@$JAEGER_VERSION via a wrapper module"
  mod="$jaeger_dir/mod"
  rm -rf "$mod"
  mkdir -p "$mod"
  (
    cd "$mod"
    go mod init jaegerbuild.invalid >&2
    # `go install pkg@version` refuses modules whose go.mod has replace directives; replaces only apply in the
    # main module, so copy Jaeger's own replace lines into the wrapper to get the exact graph Jaeger tests with.
    gomod="$(go mod download -json "$JAEGER_MODULE@$JAEGER_VERSION" | sed -nE 's/^[[:space:]]*"GoMod": "(.*)",?$/\1/p')"
    [[ -f "$gomod" ]] || { echo "cannot locate go.mod of $JAEGER_MODULE@$JAEGER_VERSION" >&2; exit 1; }
    awk '
      /^replace[[:space:]]*\(/ {blk=1; next}
      blk && /^\)/ {blk=0; next}
      blk && NF {print "replace " $0; next}
      /^replace[[:space:]]/ {print}
    ' "$gomod" | grep -v '=>[[:space:]]*\.' >> go.mod || true   # skip local-path replaces
    go get -tool "$JAEGER_MODULE/cmd/jaeger@$JAEGER_VERSION" >&2
    CGO_ENABLED=0 go build -trimpath \
      -ldflags="-s -w -X $JAEGER_MODULE/internal/version.latestVersion=$JAEGER_V2_VERSION" -o "$jaeger_bin.tmp" "$JAEGER_MODULE/cmd/jaeger" >&2
  ) || die "building Jaeger failed (see the output above)"
  mv "$jaeger_bin.tmp" "$jaeger_bin"
  usable "$jaeger_bin" version || die "built Jaeger does not run: $jaeger_bin"
  log "jaeger: built in $(elapsed "$t0")"
fi

echo "OTELCOL=$otel_bin"
echo "JAEGER=$jaeger_bin"
