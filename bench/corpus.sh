#!/usr/bin/env bash
# Times `regard test` on the reference corpus (N files x 3 Kubernetes documents)
# with the example policy (9 rules). Usage: bench/corpus.sh [N] [RUNS]
# Needs ../shared/bench/gen_corpus.py (this project's shared folder) and python3.
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
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "corpus: $n files, $((n * 3)) documents; policy: examples/policy (9 rules)"
"$bin" test -p examples/policy "$dir/corpus" --no-color | tail -n 1 || true
if command -v hyperfine >/dev/null; then
  hyperfine --warmup 1 --runs "$runs" -i "$bin test -p examples/policy $dir/corpus --no-color"
else
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e s wall, %U s user, %M KB max RSS" "$bin" test -p examples/policy "$dir/corpus" --no-color >/dev/null || true
  done
fi
