#!/usr/bin/env bash
# Load benchmark for regard-webhook's POST /v1/mutate (loopback only, bounded in time).
#
#   bench/webhook/mutate.sh
#
# Serves bench/webhook/mutators-20.yaml (20 mutators of the four kinds) and posts the Pod
# CREATE of tests/webhook/reviews/pod-create-allow.json, which they change (so every answer
# carries a JSON patch; loadgen counts an answer without one as an error), at fixed rates of
# 1,000 and 500 req/s for DURATION each, then saturation. Release build with
# CARGO_INCREMENTAL=0.
# Environment: DURATION (default 20s), CONNECTIONS (default 16), CARGO_TARGET_DIR.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
duration="${DURATION:-20s}"
conns="${CONNECTIONS:-16}"
target="${CARGO_TARGET_DIR:-$root/target}"
work="$(mktemp -d)"
trap 'kill "${server_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

mkdir -p "$work/policies"
cp "$root/bench/webhook/mutators-20.yaml" "$work/policies/"
bash "$root/deploy/gen-certs.sh" "$work/certs" >/dev/null 2>&1
# NO_BUILD=1 measures the release binaries already in the target directory.
[ -n "${NO_BUILD:-}" ] || (cd "$root" && CARGO_INCREMENTAL=0 cargo build --release -q -p policy-webhook --bins)
body="$root/tests/webhook/reviews/pod-create-allow.json"
loadgen=("$target/release/regard-loadgen" run --addr 127.0.0.1:18443 --ca "$work/certs/ca.crt"
  --path /v1/mutate --expect '"patchType":"JSONPatch"' --body "$body"
  --duration "$duration" --connections "$conns")

wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/18443) 2>/dev/null && return 0; sleep 0.1; done; return 1; }

echo "== machine: $(nproc) vCPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"
"$target/release/regard-webhook" --policy-dir "$work/policies" \
  --tls-cert-file "$work/certs/tls.crt" --tls-key-file "$work/certs/tls.key" \
  --addr 127.0.0.1:18443 --health-addr 127.0.0.1:19090 --metrics-addr 127.0.0.1:19090 \
  --shutdown-delay 0s --log-level warn &
server_pid=$!
wait_port
for _ in $(seq 100); do curl -sf http://127.0.0.1:19090/readyz >/dev/null && break; sleep 0.1; done
echo "== regard-webhook: $(curl -s http://127.0.0.1:19090/metrics | grep -E '^regard_webhook_(mutators|mutator_errors|mutator_conflicts) ' | tr '\n' ' ')"
curl -s --cacert "$work/certs/ca.crt" -H 'content-type: application/json' --data-binary @"$body" \
  https://localhost:18443/v1/mutate | head -c 600; echo
for rate in 1000 500; do
  echo "== /v1/mutate, 20 mutators, fixed $rate req/s"
  "${loadgen[@]}" --rate "$rate"
done
echo "== /v1/mutate, 20 mutators, saturation"
"${loadgen[@]}" --rate 0
echo "== $(curl -s http://127.0.0.1:19090/metrics | grep -E '^regard_webhook_mutation_requests_total' | tr '\n' ' ')"
