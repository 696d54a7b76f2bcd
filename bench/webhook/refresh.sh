#!/usr/bin/env bash
# Admission latency while regard-webhook refreshes an OCI bundle: the refresh (pull, compile,
# swap) must not disturb admission. Loopback only, bounded in time.
#
#   bench/webhook/refresh.sh [GATEKEEPER_LIBRARY_DIR]
#
# 1. Starts Debian's docker-registry on a free loopback port and publishes, with
#    `regard gk push`, the 15 gatekeeper-library Pod templates of bench/webhook/run.sh, each with
#    its first sample constraint, in two variants that differ in one constraint's name (same
#    enforcement, another digest): tags `a` and `b` of one repository.
# 2. Serves the tag `live` (a copy of `a`) with regard-webhook --bundle oci://…:live
#    --bundle-refresh 1s and sends the allowed-Pod review at a fixed RATE for DURATION per phase:
#      quiet:      `live` never moves (each refresh is one HEAD request finding the same digest);
#      tag-moves:  the control: another tag, `other`, is re-tagged every 2 s, so the registry
#                  does its share of the work on these shared cores while the webhook refreshes
#                  nothing;
#      refreshing: `live` is re-tagged to the other variant every 2 s (a manifest PUT, no
#                  regard process), so each refresh pulls the bundle, compiles the 15 templates
#                  and swaps the policy set while requests are served.
#    The phases alternate ROUNDS times so the drift of a shared machine shows. The policy-set
#    swaps and bundle pulls of each phase are read from /metrics: the script fails if the
#    refreshing phase swapped nothing, another phase swapped anything, or a request failed.
#    Each phase's CPU time of the webhook and of the registry is read from /proc.
#    Failed digest checks are counted and shown, not fatal: the registry's filesystem storage
#    may answer a HEAD with 500 while the tag is being rewritten (the webhook then keeps its set
#    and checks again a second later).
# 3. Prints p50/p99 per phase (regard-loadgen's latency, and from the send schedule) and a table.
# Environment: RATE (default 500), DURATION (default 30s), ROUNDS (default 2), CONNECTIONS
# (default 16), CARGO_TARGET_DIR; BIN_DIR uses the binaries there (e.g. target/debug, to try the
# script; debug figures mean nothing) instead of building release ones.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
lib="${1:-$root/../shared/gatekeeper-library}/library"
rate="${RATE:-500}"
duration="${DURATION:-30s}"
rounds="${ROUNDS:-2}"
conns="${CONNECTIONS:-16}"
target="${CARGO_TARGET_DIR:-$root/target}"
command -v docker-registry >/dev/null || { echo "needs docker-registry (apt-get install docker-registry)" >&2; exit 1; }
[ -d "$lib" ] || { echo "no gatekeeper-library at $lib" >&2; exit 1; }

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. "$root/bench/webhook/pod-templates.sh"
for variant in a b; do
  copy_pod_templates "$lib" "$work/$variant/gatekeeper"
done
# Variant b renames one constraint: same enforcement, another digest.
sed -i 's/^  name: \(.*\)$/  name: \1-b/' "$work/b/gatekeeper/allowedrepos-constraint.yaml"

if [ -z "${BIN_DIR:-}" ]; then
  (cd "$root" && CARGO_INCREMENTAL=0 cargo build --release -q -p policy-webhook --bins -p policy-cli)
  BIN_DIR="$target/release"
fi
regard="$BIN_DIR/regard"
bash "$root/deploy/gen-certs.sh" "$work/certs" >/dev/null 2>&1

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
reg_port=$(free_port)
cat >"$work/registry.yml" <<YAML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$reg_port, secret: bench}
YAML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
pids+=("$registry_pid")
wait_port "$reg_port" || { echo "the registry did not start:" >&2; cat "$work/registry.log" >&2; exit 1; }

repo="bench/gatekeeper"
registry="http://127.0.0.1:$reg_port/v2/$repo/manifests"
manifest_type="application/vnd.oci.image.manifest.v1+json"
for variant in a b; do
  (cd "$work/$variant" && "$regard" gk push "127.0.0.1:$reg_port/$repo:$variant" -f gatekeeper >/dev/null)
  curl -sf -H "Accept: $manifest_type" "$registry/$variant" >"$work/$variant.json"
done
# Moving the tag is one manifest PUT: the refreshing phase adds no regard process to the machine.
# retag VARIANT [TAG]: points TAG (default `live`) at VARIANT's manifest.
retag() { curl -sf -X PUT -H "Content-Type: $manifest_type" --data-binary @"$work/$1.json" "$registry/${2:-live}" >/dev/null; }
retag a

port=$(free_port)
admin_port=$(free_port)
"$BIN_DIR/regard-webhook" --bundle "oci://127.0.0.1:$reg_port/$repo:live" --bundle-refresh 1s \
  --tls-cert-file "$work/certs/tls.crt" --tls-key-file "$work/certs/tls.key" \
  --addr "127.0.0.1:$port" --health-addr "127.0.0.1:$admin_port" --metrics-addr "127.0.0.1:$admin_port" \
  --shutdown-delay 0s --log-level warn &
webhook_pid=$!
pids+=("$webhook_pid")
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$admin_port/readyz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$admin_port/readyz" >/dev/null || { echo "regard-webhook not ready" >&2; exit 1; }

# CPU time (user + system, ms) a process has used so far, from /proc.
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{print int(($14 + $15) * 1000 / hz)}' "/proc/$1/stat"; }
# Sum of a counter's samples whose line starts with $1 (name and labels).
metric() { curl -sf "http://127.0.0.1:$admin_port/metrics" | awk -v p="$1" 'index($0, p) == 1 {s += $NF} END {print s + 0}'; }
swaps() { metric 'regard_webhook_policy_reloads_total{result="success"}'; }
pulls() { metric 'regard_webhook_bundle_pulls_total{result="success"}'; }
failures() {
  echo $(( $(metric 'regard_webhook_policy_reloads_total{result="failure"}') + $(metric 'regard_webhook_bundle_pulls_total{result="failure"}') ))
}
# Waits until the webhook has pulled and compiled the last tag move: no pull, swap or failure for
# 4 s (4 refresh periods), so that a quiet phase starts quiet.
settle() {
  local last="" now stable=0
  for _ in $(seq 150); do
    now="$(pulls) $(swaps) $(failures)"
    if [ "$now" = "$last" ]; then stable=$((stable + 1)); else stable=0; fi
    [ "$stable" -ge 2 ] && return 0
    last=$now
    sleep 2
  done
  echo "regard-webhook did not settle after the tag moved back" >&2
  exit 1
}
body="$root/tests/webhook/reviews/pod-create-allow.json"
loadgen=("$BIN_DIR/regard-loadgen" run --addr "127.0.0.1:$port" --ca "$work/certs/ca.crt"
  --body "$body" --duration "$duration" --connections "$conns" --rate "$rate")

echo "== machine: $(nproc) vCPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"
echo "== serving $(metric 'regard_webhook_policy_templates ') templates, $(metric 'regard_webhook_policy_constraints ') constraints from oci://127.0.0.1:$reg_port/$repo:live; $rate req/s, $duration per phase, $conns connections"
summary=()
status=0
phase() {
  local round=$1 name=$2 swaps0 pulls0 fail0 out d_swaps d_pulls d_fail p50 p99 s50 s99 errors
  local web0 reg0 d_web d_reg
  swaps0=$(swaps); pulls0=$(pulls); fail0=$(failures)
  web0=$(cpu_ms "$webhook_pid"); reg0=$(cpu_ms "$registry_pid")
  out="$("${loadgen[@]}")"
  d_web=$(( $(cpu_ms "$webhook_pid") - web0 )); d_reg=$(( $(cpu_ms "$registry_pid") - reg0 ))
  d_swaps=$(( $(swaps) - swaps0 )); d_pulls=$(( $(pulls) - pulls0 )); d_fail=$(( $(failures) - fail0 ))
  echo "== round $round, $name"
  echo "$out" | sed 's/^/   /'
  echo "   policy-set swaps: $d_swaps, bundle pulls: $d_pulls, failed pulls or reloads: $d_fail"
  echo "   CPU used in the phase: regard-webhook $d_web ms, docker-registry $d_reg ms"
  p50=$(echo "$out" | sed -n 's/^latency_ms p50=\([^ ]*\).* p99=\([^ ]*\) .*/\1/p')
  p99=$(echo "$out" | sed -n 's/^latency_ms p50=\([^ ]*\).* p99=\([^ ]*\) .*/\2/p')
  s50=$(echo "$out" | sed -n 's/^from_schedule_ms p50=\([^ ]*\) p99=\([^ ]*\) .*/\1/p')
  s99=$(echo "$out" | sed -n 's/^from_schedule_ms p50=\([^ ]*\) p99=\([^ ]*\) .*/\2/p')
  errors=$(echo "$out" | sed -n 's/^requests=[0-9]* errors=\([0-9]*\) .*/\1/p')
  summary+=("$(printf '%-5s %-10s %9s %9s %13s %13s %6s %6s %6s %10s %10s' "$round" "$name" "$p50" "$p99" "$s50" "$s99" "$d_swaps" "$d_pulls" "$errors" "$d_web" "$d_reg")")
  if [ "${errors:-1}" != 0 ]; then
    echo "   FAILED: ${errors:-?} request errors" >&2; status=1
  fi
  if [ "$name" != refreshing ] && [ "$d_swaps" != 0 ]; then
    echo "   FAILED: the $name phase swapped the policy set" >&2; status=1
  fi
  if [ "$name" = refreshing ] && [ "$d_swaps" = 0 ]; then
    echo "   FAILED: no refresh happened in the refreshing phase" >&2; status=1
  fi
}

# Moves tag $1 between the variants every 2 s until killed.
start_mover() {
  (
    # Stop promptly on TERM, leaving no sleep behind.
    trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
    v=b
    while true; do
      # A failed PUT must not end the mover (set -e): say so and go on.
      retag "$v" "$1" || echo "   (moving the tag $1 to $v failed)" >&2
      if [ "$v" = a ]; then v=b; else v=a; fi
      # Every 2 s, twice the refresh period: moving it every period let the checks see the
      # same variant each time (a 2 s cycle sampled every 2 s by the reload interval then).
      sleep 2 & sleeper=$!
      wait "$sleeper"
    done
  ) &
  mover=$!
  pids+=("$mover")
}

for round in $(seq "$rounds"); do
  phase "$round" quiet
  # The control: the registry rewrites a tag the webhook does not serve, on the same schedule,
  # so the registry's own CPU on these shared cores shows without any refresh.
  start_mover other
  phase "$round" tag-moves
  kill "$mover"; wait "$mover" 2>/dev/null || true
  start_mover live
  phase "$round" refreshing
  kill "$mover"; wait "$mover" 2>/dev/null || true
  # Back to `a` and settled before the next quiet phase.
  if [ "$round" -lt "$rounds" ]; then
    retag a
    settle
  fi
done

echo "== summary (ms; 'schedule' counts from when each request was due, so queueing shows)"
printf '%-5s %-10s %9s %9s %13s %13s %6s %6s %6s %10s %10s\n' round phase p50 p99 schedule_p50 schedule_p99 swaps pulls errors cpu_webhook cpu_registry
printf '%s\n' "${summary[@]}"
exit "$status"
