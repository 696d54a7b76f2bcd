#!/usr/bin/env bash
# Times `regard pull` of a FILES-file policy bundle (default 200) from a real
# registry on loopback (Debian's docker-registry, started here on a free port).
# Usage: bench/pull.sh [FILES] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
files=${1:-200}
runs=${2:-10}
command -v docker-registry >/dev/null || { echo "needs docker-registry (apt-get install docker-registry)" >&2; exit 1; }
cargo build --release -q -p policy-cli
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/regard
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$dir/config.yml" <<YAML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $dir/data}}
http: {addr: 127.0.0.1:$port, secret: bench}
YAML
docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
registry=$!
trap 'kill $registry; rm -rf "$dir"' EXIT
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
mkdir -p "$dir/src/policy"
for i in $(seq "$files"); do
  printf 'package bench.p%d\n\ndeny contains msg if {\n\tinput.kind == "Pod"\n\tnot input.metadata.labels["l%d"]\n\tmsg := "missing label l%d"\n}\n' "$i" "$i" "$i" >"$dir/src/policy/p$i.rego"
done
(cd "$dir/src" && "$bin" push "127.0.0.1:$port/bench/policies:v1" >/dev/null)
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "bundle: $files .rego files ($(du -sb "$dir/src/policy" | cut -f1) bytes)"
cd "$dir"
for _ in $(seq "$runs"); do
  rm -rf out
  /usr/bin/time -f "%e s wall, %U s user, %S s sys" "$bin" pull -p out "127.0.0.1:$port/bench/policies:v1"
done
test "$(find out -name '*.rego' | wc -l)" -eq "$files"
