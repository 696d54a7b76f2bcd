#!/usr/bin/env bash
# Load benchmark for regard-webhook (loopback only, bounded in time).
#
#   bench/webhook/run.sh [GATEKEEPER_LIBRARY_DIR]
#
# 1. Assembles a policy directory from 15 gatekeeper-library Pod templates, each with its
#    first sample constraint (12 pod-security-policy + 3 general).
# 2. Makes a CA + serving certificate (deploy/gen-certs.sh).
# 3. Runs regard-webhook with each evaluator in EVALUATORS and measures fixed rates of
#    1,000, 500, 250 and 50 req/s for DURATION each, then saturation.
# 4. Runs the no-op TLS axum handler (regard-loadgen noop-server) and measures its saturation.
# Environment: DURATION (default 20s), CONNECTIONS (default 16), EVALUATORS (default
# "interpreter rvm"), CARGO_TARGET_DIR.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
lib="${1:-$root/../shared/gatekeeper-library}/library"
duration="${DURATION:-20s}"
conns="${CONNECTIONS:-16}"
evaluators="${EVALUATORS:-interpreter rvm}"
target="${CARGO_TARGET_DIR:-$root/target}"
work="$(mktemp -d)"
trap 'kill "${server_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

. "$root/bench/webhook/pod-templates.sh"
copy_pod_templates "$lib" "$work/policies"

bash "$root/deploy/gen-certs.sh" "$work/certs" >/dev/null 2>&1
# NO_BUILD=1 measures the release binaries already in the target directory.
[ -n "${NO_BUILD:-}" ] || (cd "$root" && cargo build --release -q -p policy-webhook --bins)
body="$root/tests/webhook/reviews/pod-create-allow.json"
loadgen=("$target/release/regard-loadgen" run --addr 127.0.0.1:18443 --ca "$work/certs/ca.crt"
  --body "$body" --duration "$duration" --connections "$conns")

wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/18443) 2>/dev/null && return 0; sleep 0.1; done; return 1; }

echo "== machine: $(nproc) vCPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"
for evaluator in $evaluators; do
  "$target/release/regard-webhook" --policy-dir "$work/policies" --evaluator "$evaluator" \
    --tls-cert-file "$work/certs/tls.crt" --tls-key-file "$work/certs/tls.key" \
    --addr 127.0.0.1:18443 --health-addr 127.0.0.1:19090 --metrics-addr 127.0.0.1:19090 \
    --shutdown-delay 0s --log-level warn &
  server_pid=$!
  wait_port
  for _ in $(seq 100); do curl -sf http://127.0.0.1:19090/readyz >/dev/null && break; sleep 0.1; done
  echo "== regard-webhook --evaluator $evaluator: $(curl -s http://127.0.0.1:19090/metrics | grep -E '^regard_webhook_policy_(templates|constraints) ' | tr '\n' ' ')"
  curl -s --cacert "$work/certs/ca.crt" -H 'content-type: application/json' --data-binary @"$body" \
    https://localhost:18443/v1/admit | head -c 600; echo
  for rate in 1000 500 250 50; do
    echo "== regard-webhook --evaluator $evaluator, fixed $rate req/s"
    "${loadgen[@]}" --rate "$rate"
  done
  echo "== regard-webhook --evaluator $evaluator, saturation"
  "${loadgen[@]}" --rate 0
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
done

"$target/release/regard-loadgen" noop-server --addr 127.0.0.1:18443 \
  --tls-cert-file "$work/certs/tls.crt" --tls-key-file "$work/certs/tls.key" &
server_pid=$!
wait_port
echo "== no-op TLS axum handler, fixed 1000 req/s"
"${loadgen[@]}" --rate 1000
echo "== no-op TLS axum handler, saturation"
"${loadgen[@]}" --rate 0
kill -INT "$server_pid"; wait "$server_pid" 2>/dev/null || true
