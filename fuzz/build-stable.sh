#!/bin/sh
# Builds the fuzz targets with a stable toolchain: the same coverage
# instrumentation `cargo fuzz build -s none` asks rustc for, without
# nightly-only sanitizer flags. Usage: fuzz/build-stable.sh [target...]
# Binaries land in $CARGO_TARGET_DIR/<host>/release/ (or fuzz/target/...).
set -eu
cd "$(dirname "$0")"
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 -Cdebug-assertions -Coverflow-checks"
# An explicit --target keeps the flags off build scripts and proc macros.
host=$(rustc -vV | sed -n 's/^host: //p')
if [ "$#" -eq 0 ]; then
  cargo build --release --target "$host" --bins
else
  for t in "$@"; do cargo build --release --target "$host" --bin "$t"; done
fi
