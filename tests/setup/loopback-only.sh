#!/usr/bin/env bash
# Run a command inside a new network namespace that has only the loopback interface, up: nothing it starts can
# reach any address but 127.0.0.0/8. As root: `unshare -n`; otherwise an unprivileged user namespace
# (`unshare -rn`). If neither is possible the command is refused rather than run with the network.
#   usage: tests/setup/loopback-only.sh COMMAND [ARG...]
set -euo pipefail
if [[ $# -eq 0 ]]; then echo "usage: $0 COMMAND [ARG...]" >&2; exit 2; fi
if [[ "$(id -u)" -eq 0 ]]; then flags=(-n); else flags=(-r -n); fi
if ! unshare "${flags[@]}" true 2>/dev/null; then
  echo "loopback-only: cannot create a network namespace here (unshare ${flags[*]} failed);" >&2
  echo "  the tests import CrossBridge, which dials hard-coded hosts: run them as root or with user namespaces" >&2
  exit 1
fi
exec unshare "${flags[@]}" bash -c '
  if command -v ip >/dev/null 2>&1; then ip link set lo up
  else python3 -c "import fcntl,socket,struct; s=socket.socket(); fcntl.ioctl(s,0x8914,struct.pack(\"16sH\",b\"lo\",0x1|0x40))"
  fi
  exec "$@"' loopback-only "$@"
