#!/usr/bin/env bash
# CTest: install the build into a temporary prefix, then build and run consumers outside the
# tree against it — find_package (shared and static) and pkg-config — and check the installed
# library's SONAME links and that it exports only tb_* symbols.
# Usage: install_consumers.sh BUILD_DIR CONSUMERS_DIR CMAKE
set -euo pipefail
build=$1 consumers=$2 cmake=$3
prefix=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$prefix" "$work"' EXIT

"$cmake" --install "$build" --prefix "$prefix" >/dev/null
libdir="$prefix/lib"
[ -d "$libdir/pkgconfig" ] || libdir=$(dirname "$(find "$prefix" -name tensorbridge.pc | head -1)")/..
libdir=$(cd "$libdir" && pwd)

# Layout of the install: versioned file, SONAME link, dev link, headers, package files.
real=$(find "$libdir" -maxdepth 1 -name 'libtensorbridge.so.*.*.*' -type f | head -1)
[ -n "$real" ] || { echo "no versioned libtensorbridge.so.X.Y.Z installed"; exit 1; }
[ "$(readlink "$libdir/libtensorbridge.so.0")" = "$(basename "$real")" ] || { echo "bad SONAME link"; exit 1; }
[ "$(readlink "$libdir/libtensorbridge.so")" = "libtensorbridge.so.0" ] || { echo "bad dev link"; exit 1; }
soname=$(objdump -p "$real" | awk '/SONAME/ {print $2}')
[ "$soname" = "libtensorbridge.so.0" ] || { echo "SONAME is '$soname'"; exit 1; }
others=$(nm -D --defined-only "$real" | awk '{print $3}' | grep -v '^tb_' || true)
[ -z "$others" ] || { echo "exports non-tb_ symbols: $others"; exit 1; }
for f in include/tensorbridge.h include/tensorbridge.hpp; do [ -f "$prefix/$f" ] || { echo "missing $f"; exit 1; }; done
echo "installed: $(basename "$real"), SONAME $soname, $(nm -D --defined-only "$real" | grep -c ' tb_') tb_* symbols"

# find_package consumer (shared + static).
"$cmake" -S "$consumers/cmake_consumer" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
"$cmake" --build "$work/cmake" >/dev/null
LD_LIBRARY_PATH="$libdir" "$work/cmake/consumer"
"$work/cmake/consumer_static"

# pkg-config consumer.
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -std=c99 -Wall -Werror "$consumers/pkgconfig_consumer/main.c" $(pkg-config --cflags --libs tensorbridge) \
  -o "$work/pkgconfig_consumer"
LD_LIBRARY_PATH="$libdir" "$work/pkgconfig_consumer"
echo "consumers built and ran against $prefix"
