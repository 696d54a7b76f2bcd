#!/usr/bin/env bash
# Admission latency while regard-webhook refreshes an OCI bundle (issue: the refresh must
# not disturb admission). Loopback only, bounded in time.
#
#   bench/webhook/refresh.sh [GATEKEEPER_LIBRARY_DIR]
#
# 1. Starts Debian's docker-registry on a free loopback port and pushes the 15 gatekeeper-library
#    Pod templates of bench/webhook/run.sh, each with its first sample constraint, as a bundle
#    (`regard push -d`), in two variants that differ in one constraint's name (so their digests
#    differ and each refresh really pulls and recompiles).
# 2. Runs regard-webhook --bundle oci://... --bundle-refresh 1s at a fixed RATE (default 500
#    req/s) for DURATION (default 30s) per phase:
#      quiet:      the tag never changes (each refresh is one HEAD request that finds the same digest);
#      refreshing: a loop re-pushes the tag with the other variant every second, so every refresh
#                  pulls the bundle, compiles the 15 templates and swaps the policy set.
#    The phases alternate ROUNDS times (default 2) so drift of a shared machine shows.
# Environment: RATE, DURATION, ROUNDS, CONNECTIONS (default 16), CARGO_TARGET_DIR.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
lib="${1:-$root/../shared/gatekeeper-library}/library"
rate="${RATE:-500}"
duration="${DURATION:-30s}"
rounds="${ROUNDS:-2}"
conns="${CONNECTIONS:-16}"
target="${CARGO_TARGET_DIR:-$root/target}"
command -v docker-registry >/dev/null || { echo "needs docker-registry (apt-get install docker-registry)" >&2; exit 1; }
work="$(mktemp -d)"
cleanup() {
  kill "${pusher_pid:-}" "${server_pid:-}" "${registry_pid:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

templates=(
  pod-security-policy/allow-privilege-escalation pod-security-policy/capabilities
  pod-security-policy/forbidden-sysctls pod-security-policy/host-filesystem
  pod-security-policy/host-namespaces pod-security-policy/host-network-ports
  pod-security-policy/privileged-containers pod-security-policy/proc-mount
  pod-security-policy/read-only-root-filesystem pod-security-policy/seccomp
  pod-security-policy/users pod-security-policy/volumes
  general/allowedrepos general/containerlimits general/disallowedtags
)
for variant in a b; do
  mkdir -p "$work/$variant/policy"
  for t in "${templates[@]}"; do
    name="$(basename "$t")"
    cp "$lib/$t/template.yaml" "$work/$variant/policy/$name-template.yaml"
    sample="$(ls -d "$lib/$t"/samples/*/ | sort | head -1)"
    cp "$sample/constraint.yaml" "$work/$variant/policy/$name-constraint.yaml"
  done
done
# Variant b renames one constraint: same enforcement, another digest.
sed -i 's/^  name: \(.*\)$/  name: \1-b/' "$work/b/policy/allowedrepos-constraint.yaml"

(cd "$root" && cargo build --release -q -p policy-webhook --bins -p policy-cli)
regard="$target/release/regard"
bash "$root/deploy/gen-certs.sh" "$work/certs" >/dev/null 2>&1

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<YAML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$port, secret: bench}
YAML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.05; done
ref="127.0.0.1:$port/bench/gatekeeper:live"
push() { (cd "$work/$1" && "$regard" push "$ref" -p policy -d policy >/dev/null); }
push a

body="$root/tests/webhook/reviews/pod-create-allow.json"
"$target/release/regard-webhook" --bundle "oci://$ref" --bundle-refresh 1s \
  --tls-cert-file "$work/certs/tls.crt" --tls-key-file "$work/certs/tls.key" \
  --addr 127.0.0.1:18443 --health-addr 127.0.0.1:19090 --metrics-addr 127.0.0.1:19090 \
  --shutdown-delay 0s --log-level warn &
server_pid=$!
for _ in $(seq 300); do curl -sf http://127.0.0.1:19090/readyz >/dev/null && break; sleep 0.1; done
curl -sf http://127.0.0.1:19090/readyz >/dev/null || { echo "webhook not ready" >&2; exit 1; }

metric() { curl -s http://127.0.0.1:19090/metrics | grep -E "^$1" | awk '{s+=$2} END {print s+0}'; }
loadgen=("$target/release/regard-loadgen" run --addr 127.0.0.1:18443 --ca "$work/certs/ca.crt"
  --body "$body" --duration "$duration" --connections "$conns" --rate "$rate")

echo "== machine: $(nproc) vCPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"
echo "== $(metric regard_webhook_policy_templates) templates, $(metric regard_webhook_policy_constraints) constraints from oci://$ref"
for round in $(seq "$rounds"); do
  echo "== round $round, quiet (tag unchanged), $rate req/s"
  before=$(metric regard_webhook_policy_reloads_total)
  "${loadgen[@]}"
  echo "   policy-set swaps during the phase: $(( $(metric regard_webhook_policy_reloads_total) - before ))"

  echo "== round $round, refreshing (tag re-pushed every second), $rate req/s"
  (
    v=b
    while true; do push "$v"; [ "$v" = a ] && v=b || v=a; sleep 1; done
  ) &
  pusher_pid=$!
  before=$(metric regard_webhook_policy_reloads_total)
  "${loadgen[@]}"
  echo "   policy-set swaps during the phase: $(( $(metric regard_webhook_policy_reloads_total) - before ))"
  kill "$pusher_pid"; wait "$pusher_pid" 2>/dev/null || true
  pusher_pid=
  push a
  sleep 2
done
