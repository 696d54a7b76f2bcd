#!/usr/bin/env bash
# Times what `--kube-version` adds to `regard test` on the reference corpus (N files x 3
# Kubernetes documents) with the example policy: off, schema validation only, both checks.
# Usage: bench/kube.sh [N] [RUNS]. Needs ../shared/bench/gen_corpus.py and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
runs=${2:-5}
gen=${GEN:-../shared/bench/gen_corpus.py}
[ -f "$gen" ] || { echo "missing $gen" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 "$gen" "$dir/corpus" "$n" >/dev/null
cargo build --release -q -p policy-cli
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/regard
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load: $(cut -d' ' -f1-3 /proc/loadavg)"
for mode in "none" "1.37 --no-deprecations" "1.37"; do
  # shellcheck disable=SC2086
  echo "--kube-version $mode: $("$bin" test -p examples/policy "$dir/corpus" --no-color --kube-version $mode | tail -n 1)"
  for _ in $(seq "$runs"); do
    # shellcheck disable=SC2086
    /usr/bin/time -f "  %e s wall, %U s user, %M KB max RSS" "$bin" test -p examples/policy "$dir/corpus" --no-color --kube-version $mode >/dev/null || true
  done
done
