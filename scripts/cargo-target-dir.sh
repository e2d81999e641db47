#!/usr/bin/env bash
# Prints cargo's output directory for this workspace as cargo itself resolves it: target/ unless
# $CARGO_TARGET_DIR or a .cargo/config.toml says otherwise. Scripts use it instead of assuming
# target/, e.g. "$(scripts/cargo-target-dir.sh)/release/libtensorbridge.so".
set -euo pipefail
cd "$(dirname "$0")/.."
cargo metadata --format-version 1 --no-deps --offline |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
