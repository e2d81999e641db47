#!/usr/bin/env bash
# Regenerates include/tensorbridge.h from the Rust sources with cbindgen (tools/gen-header, settings
# in cbindgen.toml). `cargo build` never writes the header; run this after changing the C API and
# commit the result.
#
#   scripts/gen-header.sh           # rewrites include/tensorbridge.h (untouched when unchanged)
#   scripts/gen-header.sh --check   # generates into a temporary file; fails with the diff when the
#                                   # committed header differs (CI and scripts/test.sh run this)
set -euo pipefail
cd "$(dirname "$0")/.."
header=include/tensorbridge.h

generate() {
  cargo run --quiet -p tensorbridge-gen-header -- "$PWD" "$1"
}

case "${1:-}" in
  "")
    generate "$header"
    echo "gen-header: $header regenerated"
    ;;
  --check)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    generate "$tmp/tensorbridge.h"
    if ! diff -u --label "$header (committed)" --label "$header (generated)" \
         "$header" "$tmp/tensorbridge.h"; then
      echo "FAIL: $header is stale; run scripts/gen-header.sh and commit it" >&2
      exit 1
    fi
    echo "gen-header: $header is up to date"
    ;;
  *)
    echo "usage: $0 [--check]" >&2
    exit 2
    ;;
esac
