#!/usr/bin/env bash
# Builds the release library here and copies just what another machine needs (the .so and .a, the
# Python package's compiled fast path, and a fault-injection build of the .so) into .prebuilt/,
# small enough to carry to the GPU machine, which has no Rust.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
mkdir -p .prebuilt
release="$(./scripts/cargo-target-dir.sh)/release"
cp "$release/libtensorbridge.so" "$release/libtensorbridge.a" .prebuilt/
scripts/build-python-native.sh
cp python/tensorbridge/_native.abi3.so .prebuilt/
# The library with the test-only feature fault-injection, for the GPU fault walk (built in a target
# directory of its own so that the release library above is not replaced; about 1 MiB).
cargo build --release --quiet --features fault-injection --lib \
  --target-dir "$(./scripts/cargo-target-dir.sh)/fault"
mkdir -p .prebuilt/fault
cp "$(./scripts/cargo-target-dir.sh)/fault/release/libtensorbridge.so" .prebuilt/fault/
ls -la .prebuilt .prebuilt/fault
