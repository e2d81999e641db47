#!/usr/bin/env bash
# Builds the release library here and copies just what another machine needs (the .so and .a)
# into .prebuilt/, small enough to carry to the GPU machine, which has no Rust.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
mkdir -p .prebuilt
release="$(./scripts/cargo-target-dir.sh)/release"
cp "$release/libtensorbridge.so" "$release/libtensorbridge.a" .prebuilt/
ls -la .prebuilt
