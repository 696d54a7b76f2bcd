#!/usr/bin/env bash
# `--policy-source cluster` benchmarks on the in-process fake API server
# (policy-webhook/tests/cluster_bench.rs): policy-set rebuild time and apply->enforce latency with
# 50 templates / 500 constraints, and a whole-cluster audit of 10,000 Pods against 15
# gatekeeper-library Pod templates (time, peak RSS). Release build.
# Usage: bench/cluster.sh [GATEKEEPER_LIBRARY_DIR]   (default ../shared/gatekeeper-library)
set -euo pipefail
cd "$(dirname "$0")/.."
export REGARD_GATEKEEPER_LIBRARY="${1:-$PWD/../shared/gatekeeper-library}"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load: $(cut -d' ' -f1-3 /proc/loadavg)"
CARGO_INCREMENTAL=0 cargo test --release -q -p policy-webhook --test cluster_bench -- \
  --ignored --nocapture --test-threads 1 2>&1 | grep -E '^(50 templates|rebuilds|apply|peak|audit|test result)'
