#!/usr/bin/env bash
# Builds the release library here and copies just what another machine needs (the .so and .a, and
# the Python package's compiled fast path) into .prebuilt/, small enough to carry to the GPU
# machine, which has no Rust.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
mkdir -p .prebuilt
release="$(./scripts/cargo-target-dir.sh)/release"
cp "$release/libtensorbridge.so" "$release/libtensorbridge.a" .prebuilt/
scripts/build-python-native.sh
cp python/tensorbridge/_native.abi3.so .prebuilt/
ls -la .prebuilt
