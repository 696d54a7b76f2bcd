#!/usr/bin/env bash
# Evaluation cost of each of the 15 gatekeeper-library Pod templates (those of the webhook and
# cluster benchmarks), in CPU instructions counted by valgrind (callgrind): unlike time, the
# count does not move with the load of a shared machine, so a change is measurable to the
# percent on it. `regard gk test -o json` reviews N copies of the webhook benchmark's Pod
# (default 200) against each template alone; a template that denies nothing
# (`violation { false }`) over the same Pods gives the fixed part (reading the Pods, loading),
# which is subtracted.
#
# usage: bench/gk_instructions.sh [N] [GATEKEEPER_LIBRARY_DIR]
#        (needs valgrind and python3; builds --release unless NO_BUILD=1; extra regard flags
#        in REGARD_FLAGS, e.g. REGARD_FLAGS="--evaluator interpreter")
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-200}
lib="${2:-$here/../shared/gatekeeper-library}/library"
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
[ -d "$lib" ] || { echo "no gatekeeper-library at $lib" >&2; exit 1; }
[ -n "${NO_BUILD:-}" ] || (cd "$here" && CARGO_INCREMENTAL=0 cargo build --release -q -p policy-cli)
regard=${CARGO_TARGET_DIR:-$here/target}/release/regard
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

. "$here/bench/webhook/pod-templates.sh"
copy_pod_templates "$lib" "$work/templates"
python3 - "$here/tests/webhook/reviews/pod-create-allow.json" "$n" "$work/pods.yaml" <<'EOF'
import json, sys
pod = json.load(open(sys.argv[1]))["request"]["object"]
docs = []
for i in range(int(sys.argv[2])):
    pod["metadata"]["name"] = f"pod-{i}"
    docs.append(json.dumps(pod))
open(sys.argv[3], "w").write("\n---\n".join(docs) + "\n")
EOF
cat >"$work/none-template.yaml" <<'EOF'
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8snone}
spec:
  crd: {spec: {names: {kind: K8sNone}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8snone
        violation[{"msg": "none"}] { false }
EOF
printf 'apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sNone\nmetadata: {name: none}\n' \
  >"$work/none-constraint.yaml"

# Instructions of one `regard gk test` run (every process: the binary may re-execute itself).
count() {
  # shellcheck disable=SC2086
  env -u RUST_BACKTRACE valgrind --tool=callgrind --trace-children=yes \
    --callgrind-out-file="$work/cg.%p" "$regard" gk test -f "$1" -f "$2" -f "$work/pods.yaml" \
    -o json ${REGARD_FLAGS:-} >/dev/null 2>"$work/valgrind.log" || true
  local total
  total=$(grep -o 'Collected : [0-9]*' "$work/valgrind.log" | awk '{s += $3} END {print s + 0}')
  rm -f "$work"/cg.*
  echo "$total"
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $n Pods"
base=$(count "$work/none-template.yaml" "$work/none-constraint.yaml")
printf '%-28s %12s %14s\n' template "M instr" "K instr/Pod"
printf '%-28s %12.1f %14s\n' "(fixed part)" "$(echo "$base / 1000000" | bc -l)" -
sum=0
for t in "$work"/templates/*-template.yaml; do
  name=$(basename "$t" -template.yaml)
  total=$(count "$t" "$work/templates/$name-constraint.yaml")
  own=$((total - base))
  sum=$((sum + own))
  printf '%-28s %12.1f %14.1f\n' "$name" "$(echo "$own / 1000000" | bc -l)" "$(echo "$own / $n / 1000" | bc -l)"
done
printf '%-28s %12.1f %14.1f\n' "all 15" "$(echo "$sum / 1000000" | bc -l)" "$(echo "$sum / $n / 1000" | bc -l)"
