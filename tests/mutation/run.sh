#!/usr/bin/env bash
# Mutation testing (mutmut 3) of the modules behind the README's promises; prints the score per module.
#   usage: bash tests/mutation/run.sh [MODULE_PATH ...]     (default: every module in tests/mutation/modules.txt)
# Each module is mutated in its own scratch copy of the repository (the working tree is never touched), and its
# mutants run against the tests listed beside it in modules.txt, inside the loopback-only namespace with
# CROSSBRIDGE_HOOKS_ENABLED=false. Not part of CI: minutes per module on 2 cores (see the report it prints).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${VENV:-$repo/.venv}"
[[ -x "$venv/bin/mutmut" ]] || { echo "mutmut missing: $venv/bin/pip install -e '.[test]'" >&2; exit 2; }
wanted=("$@")
results=()
while IFS='|' read -r module tests; do
  module="$(echo "$module" | xargs)"; tests="$(echo "$tests" | xargs)"
  [[ -z "$module" || "$module" == \#* ]] && continue
  if [[ ${#wanted[@]} -gt 0 ]] && [[ ! " ${wanted[*]} " == *" $module "* ]]; then continue; fi
  work="$(mktemp -d "${TMPDIR:-/tmp}/cb-mutmut.XXXXXX")"
  # The scratch copy: the engine, the area modules where the installed package has them, the tests.
  cp -r "$repo/crossbridge_otel" "$repo/tests" "$work/"
  cp -r "$repo/instrumentors" "$work/crossbridge_otel/instrumentors"
  sed '/^\[tool.mutmut\]/,$d' "$repo/pyproject.toml" > "$work/pyproject.toml"
  {  # mutmut reads lists one value per indented line
    printf '[mutmut]\npaths_to_mutate =\n    %s\ntests_dir =\n' "$module"
    for t in $tests; do printf '    %s\n' "$t"; done
    printf 'pytest_add_cli_args =\n    -p\n    no:cacheprovider\n    -x\nalso_copy =\n    tests/\n'
  } > "$work/setup.cfg"
  start=$(date +%s)
  (cd "$work" && CROSSBRIDGE_HOOKS_ENABLED=false bash "$repo/tests/setup/loopback-only.sh" \
      "$venv/bin/mutmut" run --max-children 2 >"$work/run.log" 2>&1) || true
  (cd "$work" && "$venv/bin/mutmut" export-cicd-stats >/dev/null 2>&1) || true
  (cd "$work" && "$venv/bin/mutmut" results --all true >"$work/results.txt" 2>&1) || true
  line="$("$venv/bin/python" - "$work/mutants/mutmut-cicd-stats.json" "$module" "$(( $(date +%s) - start ))" <<'PY'
import json, sys
path, module, seconds = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    s = json.load(open(path))
except OSError:
    print(f"{module}: no result (see the run log)"); raise SystemExit
done = s["killed"] + s["survived"] + s.get("timeout", 0) + s.get("suspicious", 0)
score = 100.0 * (s["killed"] + s.get("timeout", 0)) / done if done else 0.0
print(f"{module}: {score:.1f}% killed ({s['killed']} killed, {s.get('timeout', 0)} timeout, "
      f"{s['survived']} survived, {s.get('no_tests', 0)} no tests, of {s['total']}) in {seconds}s")
PY
)"
  echo "$line   [work dir: $work; survivors: mutmut results/show there]"
  results+=("$line")
done < "$repo/tests/mutation/modules.txt"
echo "== mutation scores"
printf '%s\n' "${results[@]}"
