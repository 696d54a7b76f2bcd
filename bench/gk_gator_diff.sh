#!/usr/bin/env bash
# Differential check against gator (not in CI: gator is a Go binary that this
# repository does not build). Runs `gator test` and `regard gk test`, both with
# their default flags (CEL on), on the reference corpus
# (../shared/bench/gen_corpus.py, 2000 files = 6000 objects) and the 15
# gatekeeper-library templates of bench/gk_corpus.sh with bench/gk/constraints.yaml,
# and compares every violation: constraint kind and name, object
# (apiVersion, kind, namespace, name), message and enforcement action, as a
# multiset. Prints the differences and exits 1 when there are any.
#
# usage: GATOR=/path/to/gator bench/gk_gator_diff.sh [FILES]
#        (needs python3; builds --release unless NO_BUILD=1; gator from PATH
#        when GATOR is unset; FILES defaults to 2000)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shared=${REGARD_SHARED:-$here/../shared}
files=${1:-2000}
gator=${GATOR:-$(command -v gator || true)}
if [ -z "$gator" ] || [ ! -x "$gator" ]; then
  echo "gator not found: set GATOR=/path/to/gator (Gatekeeper's release archive has it)" >&2
  exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

. "$here/bench/gk/corpus.sh"
make_gk_corpus "$shared" "$here" "$work" "$files"

[ -n "${NO_BUILD:-}" ] || (cd "$here" && cargo build --release -q -p policy-cli)
regard=${CARGO_TARGET_DIR:-$here/target}/release/regard

"$gator" test -f "$work/policy" -f "$work/corpus" -o json > "$work/gator.json" || true
"$regard" gk test -f "$work/policy" -f "$work/corpus" -o json > "$work/regard.json" || true
echo "gator: $("$gator" --version 2>/dev/null | head -1)"

python3 - "$work/gator.json" "$work/regard.json" <<'PY'
import collections, json, sys

def load(path):
    text = open(path).read().strip()
    results = json.loads(text) if text else []
    out = collections.Counter()
    for r in results or []:
        c = r.get("constraint") or {}
        o = r.get("violatingObject") or {}
        meta = o.get("metadata") or {}
        out[(
            c.get("kind", ""),
            (c.get("metadata") or {}).get("name", ""),
            o.get("apiVersion", ""),
            o.get("kind", ""),
            meta.get("namespace", ""),
            meta.get("name", ""),
            r.get("msg", ""),
            r.get("enforcementAction", ""),
        )] += 1
    return out

gator, regard = load(sys.argv[1]), load(sys.argv[2])
print(f"violations: gator {sum(gator.values())}, regard {sum(regard.values())}")
only_gator = gator - regard
only_regard = regard - gator
for name, diff in (("only in gator", only_gator), ("only in regard", only_regard)):
    for key, n in sorted(diff.items())[:20]:
        print(f"{name} ({n}x): {key}")
    if len(diff) > 20:
        print(f"{name}: {len(diff) - 20} more")
if only_gator or only_regard:
    sys.exit(1)
print("identical: every violation, message and action")
PY
