#!/usr/bin/env bash
# Mutation testing (mutmut 3) of the modules behind the README's promises; prints the score per module.
#   usage: bash tests/mutation/run.sh [MODULE_PATH ...]     (default: every module in tests/mutation/modules.txt)
#   MUTMUT_DEBUG=true shows mutmut's pytest runs; KEEP=1 keeps the scratch copies (survivors: `mutmut show NAME`).
# Each module is mutated in its own scratch copy of the repository (the working tree is never touched); mutmut
# maps every mutated function to the tests (of those listed beside the module in modules.txt) that reach it, and
# runs only those against each of its mutants. Runs inside the loopback-only namespace with
# CROSSBRIDGE_HOOKS_ENABLED=false. Not part of CI: minutes per module on 2 cores (the table gives the time).
# Why the copy looks the way it does:
# - it is the committed tree (REV, default HEAD; others edit the working tree meanwhile) plus tests/claims as it
#   is in the working tree, so a new claims test counts before it is committed;
# - mutmut copies the whole package (source_paths) into mutants/ and mutates only the one file (only_mutate): a
#   package with one file in it would not import;
# - the editable install maps crossbridge_otel.instrumentors to ./instrumentors; in the copy it sits inside the
#   package, where the import finds it first;
# - CrossBridge is named by an absolute CROSSBRIDGE_SRC: the default (../shared/... beside the repository) does
#   not exist beside mutants/.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${VENV:-$repo/.venv}"
[[ -x "$venv/bin/mutmut" ]] || { echo "mutmut missing: $venv/bin/pip install -e '.[libraries]' --group test" >&2; exit 2; }
src="${CROSSBRIDGE_SRC:-$repo/../shared/crossbridge/src}"
[[ -d "$src/core" ]] || { echo "CrossBridge not found at $src: set CROSSBRIDGE_SRC" >&2; exit 2; }
export CROSSBRIDGE_SRC="$(cd "$src" && pwd -P)" CROSSBRIDGE_HOOKS_ENABLED=false
rev="${REV:-HEAD}"
wanted=("$@")
rows=()
while IFS='|' read -r module tests; do
  module="$(echo "$module" | xargs)"; tests="$(echo "$tests" | xargs)"
  [[ -z "$module" || "$module" == \#* ]] && continue
  if [[ ${#wanted[@]} -gt 0 ]] && [[ ! " ${wanted[*]} " == *" $module "* ]]; then continue; fi
  work="$(mktemp -d "${TMPDIR:-/tmp}/cb-mutmut.XXXXXX")"
  git -C "$repo" archive "$rev" crossbridge_otel instrumentors tests pyproject.toml | tar -x -C "$work"
  cp -r "$repo/tests/claims/." "$work/tests/claims/"   # the claims tests as they are now (being written)
  mv "$work/instrumentors" "$work/crossbridge_otel/instrumentors"
  find "$work" -name __pycache__ -prune -exec rm -rf {} +
  rm -rf "$work/tests/mutation"
  {  # setup.cfg: mutmut reads its lists one value per indented line
    printf '[mutmut]\nsource_paths =\n    crossbridge_otel\nonly_mutate =\n    %s\n' "$module"
    printf 'pytest_add_cli_args_test_selection =\n'
    for t in $tests; do printf '    %s\n' "$t"; done
    printf 'pytest_add_cli_args =\n    -p\n    no:cacheprovider\n'
    printf 'debug = %s\n' "${MUTMUT_DEBUG:-false}"
  } > "$work/setup.cfg"
  start=$(date +%s)
  (cd "$work" && bash "$repo/tests/setup/loopback-only.sh" \
      "$venv/bin/mutmut" run --max-children "${MUTMUT_CHILDREN:-2}" >"$work/run.log" 2>&1) || true
  seconds=$(( $(date +%s) - start ))
  (cd "$work" && "$venv/bin/mutmut" results --all true >"$work/results.txt" 2>&1) || true
  row="$("$venv/bin/python" - "$work/results.txt" "$module" "$seconds" <<'PY'
import collections, sys
path, module, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3])
counts = collections.Counter(
    line.rsplit(": ", 1)[1].strip() for line in open(path) if line.startswith("    ") and ": " in line
)
total = sum(counts.values())
killed, timeout, survived = counts["killed"], counts["timeout"], counts["survived"]
other = total - killed - timeout - survived
score = 100.0 * (killed + timeout) / total if total else 0.0
print(f"{module:<40} {killed:>6} {survived:>8} {timeout:>7} {other:>6} {total:>6} {score:>6.1f}% {seconds:>6}s")
PY
)"
  echo "$row"
  if grep -q ': survived\|: no tests' "$work/results.txt"; then
    echo "  not killed:"; grep ': survived\|: no tests\|: suspicious' "$work/results.txt" | sed 's/^ */    /'
  fi
  if [[ "${KEEP:-0}" == 1 || $(grep -c ': ' "$work/results.txt" || true) -eq 0 ]]; then
    echo "  work dir kept: $work (run.log, results.txt; cd there and 'mutmut show NAME')"
  else rm -rf "$work"; fi
  rows+=("$row")
done < "$repo/tests/mutation/modules.txt"
echo "== mutation scores (killed = killed + timeout; other = no tests / suspicious / segfault)"
printf '%-40s %6s %8s %7s %6s %6s %7s %7s\n' module killed survived timeout other total score time
printf '%s\n' "${rows[@]}"
