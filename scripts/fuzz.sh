#!/usr/bin/env bash
# Runs tensorbridge's libFuzzer targets (fuzz/, cargo-fuzz on the nightly toolchain), installing
# both if missing.
#
#   scripts/fuzz.sh quick [SECONDS]    every target for SECONDS (default 20) each
#   scripts/fuzz.sh long SECONDS       the recorded campaign: every target for SECONDS each; the
#                                      last libFuzzer status line of each goes to
#                                      fuzz/campaign-<date>.log
#   scripts/fuzz.sh runs COUNT         the campaign by executions: every target until COUNT
#                                      executions each (libFuzzer -runs), logged as `long` logs
#   scripts/fuzz.sh replay             the seed corpus and fixed regressions on stable (what CI runs)
#   scripts/fuzz.sh run TARGET ARGS…   one target, libFuzzer arguments passed through
#
# Working corpora grow in fuzz/corpus/<target> (ignored by git), seeded from fuzz/seeds/<target>
# (committed). A crash leaves its input in fuzz/artifacts/<target>/; minimise it with
# `cargo +nightly fuzz tmin TARGET FILE`, commit it as fuzz/regressions/<target>/<name>.open with
# a line in fuzz/regressions/README.md, and drop `.open` once fixed (CI then replays it).
# TB_FUZZ_JOBS (default 1) runs that many libFuzzer workers per target: mind shared machines.
# TB_FUZZ_TARGETS (default: all) names the targets of quick/long/runs, space-separated.
set -euo pipefail
cd "$(dirname "$0")/.."

read -r -a targets <<<"${TB_FUZZ_TARGETS:-layout_parse dtype_typestr array_interface dlpack_import wrap_views ops_differential}"

prerequisites() {
  rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
  cargo +nightly fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked
}

run_target() {
  local target=$1 seconds=$2
  shift 2
  mkdir -p "fuzz/corpus/$target"
  local parallel=()
  [ "${TB_FUZZ_JOBS:-1}" -gt 1 ] && parallel=(-jobs="$TB_FUZZ_JOBS" -workers="$TB_FUZZ_JOBS")
  (cd fuzz && cargo +nightly fuzz run -O "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 "${parallel[@]}" "$@")
}

mode=${1:-quick}
case "$mode" in
  quick | long | runs)
    seconds=${2:-20}
    limit=()
    [ "$mode" != quick ] && [ $# -lt 2 ] && { echo "usage: $0 $mode COUNT_PER_TARGET" >&2; exit 2; }
    # -max_total_time=0 is no time limit: the run ends after COUNT executions.
    [ "$mode" = runs ] && { limit=(-runs="$2"); seconds=0; }
    prerequisites
    (cd fuzz && cargo +nightly fuzz build -O)
    log=/dev/null
    [ "$mode" != quick ] && log="fuzz/campaign-$(date +%F).log"
    failed=()
    for target in "${targets[@]}"; do
      echo "== $target: ${limit[*]:-${seconds}s}"
      out=$(mktemp)
      if run_target "$target" "$seconds" "${limit[@]}" 2>&1 | tee "$out" | grep -E '^(#[0-9]+ +DONE|==[0-9]+==|thread .* panicked|SUMMARY)'; then :; fi
      status=${PIPESTATUS[0]}
      summary="$target: $(grep -E '^#[0-9]+ ' "$out" | tail -1) $(grep -E 'stat::number_of_executed_units' "$out" | tail -1)"
      if grep -qE 'panicked|ERROR: (libFuzzer|AddressSanitizer)|deadly signal' "$out"; then
        failed+=("$target")
        summary="$summary CRASH (see fuzz/artifacts/$target)"
      fi
      echo "$summary" | tee -a "$log"
      rm -f "$out"
    done
    if [ ${#failed[@]} -gt 0 ]; then
      printf 'fuzz: crashes in %s\n' "${failed[@]}" >&2
      exit 1
    fi
    echo "fuzz: no crashes"
    ;;
  replay)
    cargo test --release --quiet --manifest-path fuzz/Cargo.toml -p tb-fuzz-harness
    ;;
  run)
    target=${2:?usage: $0 run TARGET [libFuzzer args]}
    shift 2
    prerequisites
    mkdir -p "fuzz/corpus/$target"
    cd fuzz && exec cargo +nightly fuzz run -O "$target" "corpus/$target" "seeds/$target" -- "$@"
    ;;
  *)
    echo "usage: $0 quick [SECONDS] | long SECONDS | runs COUNT | replay | run TARGET [ARGS…]" >&2
    exit 2
    ;;
esac
