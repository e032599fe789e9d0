#!/bin/sh
# Ensure Debian's PostgreSQL server binaries exist (for tests/support/pgserver.py). Idempotent and quiet:
# does nothing when initdb is already present in /usr/lib/postgresql/*/bin or on PATH.
set -eu

have_initdb() {
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] && return 0
    done
    command -v initdb >/dev/null 2>&1
}

if have_initdb; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "ensure-postgres: initdb missing and not root (no sudo); install the 'postgresql' package" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq postgresql >/dev/null

if ! have_initdb; then
    echo "ensure-postgres: postgresql installed but initdb still not found" >&2
    exit 1
fi
