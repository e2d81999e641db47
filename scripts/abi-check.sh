#!/usr/bin/env bash
# Checks that libtensorbridge.so's C ABI is compatible with the committed baseline
# (abi/libtensorbridge.abi + abi/header-enums.txt), the policy of docs/guide.md ("ABI stability"):
#
#   * builds the library with debug info (`cargo build --profile abi`, target/abi/; the shipped
#     release build has no DWARF, from which libabigail reads struct layouts and signatures);
#   * dumps its ABI with abidw, reduced by scripts/abi-filter.py to the exported tb_* functions and
#     the types reachable from them, and compares it with the baseline with abidiff: a removed
#     function, a changed signature, a struct whose size, field offsets or field types changed, a
#     changed enumerator value fails; added functions (and added enumerators) pass;
#   * compares the values of the header's enumerators (TbStatus, TbDataTypeCode, TbDeviceType: the
#     last two reach the ABI as int32_t/uint8_t, so abidw cannot see them) with
#     abi/header-enums.txt: a removed or changed value fails, a new one passes.
#
# An incompatible change is allowed only together with a new SONAME major version (the crate's
# major version, see build.rs): then the check fails until the baseline is regenerated for it.
#
#   scripts/abi-check.sh            check (exit 0: compatible; 1: incompatible or stale baseline)
#   scripts/abi-check.sh --update   regenerate the baseline from the current library
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C # one sort order for abi/header-enums.txt and comm

update=0
case "${1:-}" in
  --update) update=1 ;;
  "") ;;
  *)
    echo "usage: $0 [--update]" >&2
    exit 2
    ;;
esac

baseline=abi/libtensorbridge.abi
baseline_enums=abi/header-enums.txt
for tool in abidw abidiff; do
  command -v "$tool" >/dev/null || {
    echo "abi-check: $tool not found (Debian package abigail-tools; scripts/setup.sh installs it)" >&2
    exit 1
  }
done

cargo build --profile abi --quiet --lib
lib="$(./scripts/cargo-target-dir.sh)/abi/libtensorbridge.so"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

abidw --no-corpus-path --no-comp-dir-path --no-show-locs --no-elf-needed --type-id-style hash \
  --out-file "$tmp/raw.abi" "$lib"
python3 scripts/abi-filter.py "$tmp/raw.abi" "$tmp/current.abi"
# "NAME VALUE" for every enumerator of the header (enumerators are the only `TB_X = N,` lines).
sed -nE 's/^[[:space:]]+(TB_[A-Z0-9_]+) = (-?[0-9]+),?$/\1 \2/p' include/tensorbridge.h |
  sort >"$tmp/enums.txt"

soname_of() { grep -oE -m1 "soname=['\"][^'\"]*" "$1" | cut -c9-; }
current_soname=$(soname_of "$tmp/current.abi")

if [ $update -eq 1 ]; then
  mkdir -p abi
  cp "$tmp/current.abi" "$baseline"
  cp "$tmp/enums.txt" "$baseline_enums"
  echo "abi-check: baseline regenerated for $current_soname ($baseline, $(wc -c <"$baseline") bytes;" \
    "$baseline_enums, $(wc -l <"$baseline_enums") enumerators): commit both"
  exit 0
fi

if [ ! -f "$baseline" ] || [ ! -f "$baseline_enums" ]; then
  echo "abi-check: no baseline ($baseline, $baseline_enums): run scripts/abi-check.sh --update" >&2
  exit 1
fi
baseline_soname=$(soname_of "$baseline")

# abidiff's exit status is a bit mask: 1 error, 2 usage error, 4 ABI change, 8 incompatible change
# (a removed symbol). Added functions are left out of the verdict (--no-added-syms), so any change
# that remains — removals, changed signatures, struct layouts, enumerator values — fails.
status=0
abidiff --no-added-syms "$baseline" "$tmp/current.abi" >"$tmp/report.txt" 2>&1 || status=$?
# New enumerators are allowed; a removed or changed one shows up as a baseline line missing now.
comm -23 "$baseline_enums" "$tmp/enums.txt" >"$tmp/enums-changed.txt"

incompatible=0
if [ $((status & 3)) -ne 0 ]; then
  cat "$tmp/report.txt" >&2
  echo "abi-check: abidiff failed (exit status $status)" >&2
  exit 1
fi
if [ $((status & 12)) -ne 0 ]; then
  incompatible=1
  echo "abi-check: incompatible changes to the exported functions and their types:"
  sed 's/^/  /' "$tmp/report.txt"
fi
if [ -s "$tmp/enums-changed.txt" ]; then
  incompatible=1
  echo "abi-check: enumerators of include/tensorbridge.h removed or changed (baseline value; now):"
  while read -r name value; do
    now=$(awk -v n="$name" '$1 == n { print $2 }' "$tmp/enums.txt")
    echo "  $name = $value; now ${now:-removed}"
  done <"$tmp/enums-changed.txt"
fi

added=$( (abidiff "$baseline" "$tmp/current.abi" || true) | grep -cE "^  \[A\] " || true)
new_enums=$(comm -13 "$baseline_enums" "$tmp/enums.txt" | wc -l)

if [ "$current_soname" != "$baseline_soname" ]; then
  echo "abi-check: the SONAME changed ($baseline_soname -> $current_soname): incompatible changes" \
    "are allowed with a new major version, and the baseline must follow it:" \
    "run scripts/abi-check.sh --update and commit abi/" >&2
  exit 1
fi
if [ $incompatible -eq 1 ]; then
  echo "abi-check: FAILED: $current_soname would break callers built against the baseline." >&2
  echo "  Keep the old signature/layout/value (add a new function or struct instead), or bump the" >&2
  echo "  major version (the SONAME) and regenerate the baseline: scripts/abi-check.sh --update" >&2
  exit 1
fi
echo "abi-check: $current_soname is compatible with the baseline" \
  "($added function(s) and $new_enums enumerator(s) added since)"
