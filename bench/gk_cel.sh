#!/usr/bin/env bash
# CEL against Rego on the gatekeeper-library templates that carry both:
#  1. the 16 CEL templates with their first sample constraint, over every
#     sample object of those templates, repeated REPEAT times (per-review cost);
#  2. bench/gk_corpus.sh's 15 templates on the 6,000-object reference corpus.
# Each run twice: CEL (the default) and --enable-k8s-native-validation=false.
#
# usage: bench/gk_cel.sh [REPEAT] [RUNS]   (needs python3; builds --release unless NO_BUILD=1)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shared=${REGARD_SHARED:-$here/../shared}
repeat=${1:-50}
runs=${2:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# NO_BUILD=1 measures the release binary already in the target directory.
[ -n "${NO_BUILD:-}" ] || (cd "$here" && cargo build --release -q -p policy-cli)
regard=${CARGO_TARGET_DIR:-$here/target}/release/regard

lib="$shared/gatekeeper-library/library"
mkdir -p "$work/cel/policy" "$work/cel/objects"
n=0
for t in $(grep -l K8sNativeValidation -r "$lib" --include=template.yaml | sort); do
  d=$(dirname "$t"); name=$(basename "$d")
  cp "$t" "$work/cel/policy/$name.yaml"
  c=$(find "$d/samples" -name constraint.yaml | sort | head -1)
  cp "$c" "$work/cel/policy/$name-constraint.yaml"
  for o in $(find "$d/samples" -name 'example_*.yaml' | sort); do
    grep -q 'kind: AdmissionReview' "$o" && continue
    for i in $(seq 1 "$repeat"); do
      sed "s/^  name: \(.*\)/  name: \1-$i/" "$o" > "$work/cel/objects/$name-$(basename "$o" .yaml)-$i.yaml"
    done
    n=$((n + 1))
  done
done
objects=$(ls "$work/cel/objects" | wc -l)
echo "library CEL templates: $(ls "$work/cel/policy" | grep -vc constraint), sample objects: $n x $repeat = $objects"

time_it() { # label, args...
  local label=$1; shift
  local best=
  for _ in $(seq 1 "$runs"); do
    local s e
    s=$(date +%s.%N)
    "$regard" gk test "$@" > /dev/null || true
    e=$(date +%s.%N)
    t=$(python3 -c "print($e - $s)")
    if [ -z "$best" ] || python3 -c "import sys; sys.exit(0 if $t < $best else 1)"; then best=$t; fi
  done
  echo "$label: best of $runs: ${best}s"
}
export RAYON_NUM_THREADS=1
time_it "CEL  (1 thread)" -f "$work/cel/policy" -f "$work/cel/objects"
time_it "Rego (1 thread)" -f "$work/cel/policy" -f "$work/cel/objects" --enable-k8s-native-validation=false
time_it "load only (1 thread)" -f "$work/cel/policy" -f "$work/cel/objects/$(ls "$work/cel/objects" | head -1)"
unset RAYON_NUM_THREADS

# The reference corpus.
. "$here/bench/gk/corpus.sh"
make_gk_corpus "$shared" "$here" "$work" 2000
time_it "corpus, CEL (default)" -f "$work/policy" -f "$work/corpus" -o json
time_it "corpus, Rego" -f "$work/policy" -f "$work/corpus" -o json --enable-k8s-native-validation=false
for flag in true false; do
  "$regard" gk test -f "$work/policy" -f "$work/corpus" -o json --enable-k8s-native-validation=$flag > "$work/out-$flag.json" || true
done
python3 - "$work/out-true.json" "$work/out-false.json" <<'PY'
import json, sys
for f in sys.argv[1:]:
    print(f"{'CEL ' if 'true' in f else 'Rego'} violations: {len(json.load(open(f)))}")
PY
