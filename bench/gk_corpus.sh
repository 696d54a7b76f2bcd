#!/usr/bin/env bash
# Times `regard gk test` on the reference corpus (../shared/bench/gen_corpus.py,
# 2000 files = 6000 objects) against 15 gatekeeper-library templates with the
# constraints in bench/gk/constraints.yaml.
#
# usage: bench/gk_corpus.sh [RUNS]     (needs python3 and hyperfine; builds --release)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shared=${REGARD_SHARED:-$here/../shared}
runs=${1:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

. "$here/bench/gk/corpus.sh"
make_gk_corpus "$shared" "$here" "$work" 2000

(cd "$here" && cargo build --release -q -p policy-cli)
regard=${CARGO_TARGET_DIR:-$here/target}/release/regard

echo "objects: $(cat "$work"/corpus/*.yaml | grep -c '^kind:')  templates: $(ls "$work/policy" | grep -vc constraints)"
"$regard" gk test --evaluator interpreter -f "$work/policy" -f "$work/corpus" -o json > "$work/out.json" || true
python3 - "$work/out.json" <<'PY'
import collections, json, sys
res = json.load(open(sys.argv[1]))
by = collections.Counter(r["constraint"]["metadata"]["name"] for r in res)
print(f"violations: {len(res)}")
for name, n in sorted(by.items()):
    print(f"  {name}: {n}")
PY
hyperfine --warmup 1 --runs "$runs" \
  -n "regard gk test --evaluator interpreter (json)" "$regard gk test --evaluator interpreter -f $work/policy -f $work/corpus -o json > /dev/null || true" \
  -n "regard gk test (text)" "$regard gk test -f $work/policy -f $work/corpus > /dev/null || true" \
  -n "regard gk test (json, rvm: the default)" "$regard gk test -f $work/policy -f $work/corpus -o json > /dev/null || true"
# Same results on both evaluators for this corpus?
"$regard" gk test --evaluator rvm -f "$work/policy" -f "$work/corpus" -o json > "$work/out-rvm.json" || true
cmp -s "$work/out.json" "$work/out-rvm.json" && echo "rvm output: identical" || echo "rvm output: DIFFERS"
