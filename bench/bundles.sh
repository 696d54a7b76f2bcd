#!/usr/bin/env bash
# Times `regard test` with no policy on the reference corpus (N files x 3
# Kubernetes documents): the embedded default bundles (baseline +
# best-practices, 21 ConstraintTemplates). Usage: bench/bundles.sh [N] [RUNS]
# Needs ../shared/bench/gen_corpus.py (this project's shared folder; GEN=path overrides) and python3.
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
echo "corpus: $n files, $((n * 3)) documents; policy: none (built-in baseline + best-practices bundles)"
# Run from the corpus directory, which has no ./policy, so the defaults apply.
cd "$dir"
"$bin" test corpus --no-color | tail -n 1 || true
if command -v hyperfine >/dev/null; then
  hyperfine --warmup 1 --runs "$runs" -i "$bin test corpus --no-color"
else
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e s wall, %U s user, %M KB max RSS" "$bin" test corpus --no-color >/dev/null || true
  done
fi
