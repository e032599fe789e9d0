#!/bin/sh
# Ensure Debian's Chromium (and jq) exist for tests/view (the HTML report opened in a real headless browser;
# the local output file read with jq). Idempotent and quiet: does nothing when both are already on PATH.
set -eu

have_all() {
    command -v jq >/dev/null 2>&1 || return 1
    for name in chromium chromium-browser google-chrome; do
        command -v "$name" >/dev/null 2>&1 && return 0
    done
    return 1
}

if have_all; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "ensure-chromium: chromium or jq missing and not root (no sudo); install the 'chromium' and 'jq' packages" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq chromium jq >/dev/null

if ! have_all; then
    echo "ensure-chromium: chromium and jq installed but still not found on PATH" >&2
    exit 1
fi
