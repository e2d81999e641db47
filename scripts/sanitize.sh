#!/usr/bin/env bash
# Runs tensorbridge's host tests under sanitizers and checkers, stage by stage, and prints a
# summary line per stage. Stages (all by default, or name some: scripts/sanitize.sh valgrind miri):
#
#   asan-rust   Rust unit tests with AddressSanitizer (nightly, -Zsanitizer=address, std rebuilt
#               with it through -Zbuild-std so that std's allocations are instrumented too).
#               libnvrtc.so.13 is preloaded (resident): cudarc's NVRTC probe (is_culib_present)
#               dlopens and dlcloses it, and every unload orphans the 72,704-byte emergency
#               exception pool of the libstdc++ linked statically into NVRTC, which LeakSanitizer
#               then reports as a direct leak inside libnvrtc (two per test process). Resident,
#               NVRTC's own memory stays reachable; the library exports only nvrtc* symbols, so
#               preloading it interposes nothing.
#   asan-cpp    The C/C++ suites (tb_abi_tests, tb_hpp_tests, tb_stress_test) built with
#               -fsanitize=address,undefined by GCC, against the library built by nightly with
#               -Zsanitizer=address (linked as TENSORBRIDGE_PREBUILT_DIR). GCC's libasan is
#               loaded by the executables and serves the Rust library's instrumentation too.
#   tsan        The stress program under ThreadSanitizer: the library with -Zsanitizer=thread
#               (std rebuilt), the program with -fsanitize=thread. Nightly's LLVM turns memcpy,
#               memmove and memset into calls to __tsan_memcpy/__tsan_memmove/__tsan_memset, which
#               GCC 12's libtsan lacks; the programs are linked with build-tsan/tsan_mem_shim.o,
#               which forwards them to libtsan's memcpy/memmove/memset interceptors (the same
#               range checks the newer runtime's entry points do).
#   valgrind    valgrind memcheck over the same three C/C++ test binaries of the ordinary release
#               build (build/), leaks reported as errors.
#   miri        Miri over the unit tests of the safe core's pure modules (layout, dtype, error,
#               device, float8): the rest calls the CUDA driver loader (dlopen), which Miri cannot run.
#
# Needs the nightly toolchain with rust-src and miri (installed here if missing), valgrind, and
# the build of scripts/test.sh for the valgrind stage. Build trees: target/sanitize-*, build-*.
# TB_STRESS_ITERATIONS (default 2000) sets the stress program's iterations per thread.
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null

host=$(rustc -vV | sed -n 's/^host: //p')
nvrtc_lib="$PWD/.deps/nvrtc/nvidia/cu13/lib"
cuda_root="$PWD/.deps/cuda/nvidia/cu13"
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(asan-rust asan-cpp tsan valgrind miri)
results=()

prerequisites() {
  rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
  rustup component list --toolchain nightly --installed | grep -q '^rust-src' ||
    rustup component add --toolchain nightly rust-src
  rustup component list --toolchain nightly --installed | grep -q '^miri' ||
    rustup component add --toolchain nightly miri
  command -v valgrind >/dev/null || { echo "sanitize: valgrind is not installed" >&2; return 1; }
}

# cargo +nightly with a sanitizer for the library and std; $1 = address|thread, rest = cargo args.
sanitized_cargo() {
  local sanitizer=$1
  shift
  RUSTFLAGS="-Zsanitizer=$sanitizer -Cforce-frame-pointers=yes" \
    RUSTDOCFLAGS="-Zsanitizer=$sanitizer" \
    CARGO_TARGET_DIR="target/sanitize-$sanitizer" \
    cargo +nightly "$@" -Zbuild-std --target "$host"
}

# Configures and builds the C/C++ tests in build-$1 against the library sanitized with $3, with
# $2 flags; $4 (optional) is added to the executables' link flags only.
sanitized_cmake() {
  local name=$1 flags=$2
  cmake -S . -B "build-$name" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTENSORBRIDGE_PREBUILT_DIR="$PWD/target/sanitize-$3/$host/release" \
    -DTENSORBRIDGE_CUDA_ROOT="$cuda_root" \
    -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS="$flags${4:+ $4}" >/dev/null &&
    cmake --build "build-$name" -j "$(nproc)" --target tb_abi_tests tb_hpp_tests tb_stress_test
}

run_cpp_tests() {
  local dir=$1
  shift
  local ok=0
  for test in tb_abi_tests tb_hpp_tests tb_stress_test; do
    echo "-- $test"
    "$@" "$dir/cpp_tests/$test" --gtest_brief=1 || ok=1
  done
  return $ok
}

stage_asan_rust() {
  LD_LIBRARY_PATH="$nvrtc_lib" LD_PRELOAD="$nvrtc_lib/libnvrtc.so.13" ASAN_OPTIONS=detect_leaks=1 \
    sanitized_cargo address test --release --lib
}

stage_asan_cpp() {
  sanitized_cargo address build --release --lib &&
    sanitized_cmake asan "-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g" address &&
    LD_LIBRARY_PATH="$nvrtc_lib" ASAN_OPTIONS=detect_leaks=1:verify_asan_link_order=0 \
      UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 run_cpp_tests build-asan
}

# The entry points nightly's TSan instrumentation calls and GCC 12's libtsan does not define,
# forwarded to the libc names, which libtsan intercepts (the shim itself is not instrumented).
tsan_mem_shim() {
  mkdir -p build-tsan &&
    cat >build-tsan/tsan_mem_shim.c <<'EOF_SHIM' &&
#include <string.h>
void *__tsan_memcpy(void *d, const void *s, size_t n) { return memcpy(d, s, n); }
void *__tsan_memmove(void *d, const void *s, size_t n) { return memmove(d, s, n); }
void *__tsan_memset(void *d, int c, size_t n) { return memset(d, c, n); }
EOF_SHIM
    cc -O1 -fno-builtin -c build-tsan/tsan_mem_shim.c -o build-tsan/tsan_mem_shim.o
}

stage_tsan() {
  sanitized_cargo thread build --release --lib &&
    tsan_mem_shim &&
    sanitized_cmake tsan "-fsanitize=thread -g" thread "$PWD/build-tsan/tsan_mem_shim.o" &&
    LD_LIBRARY_PATH="$nvrtc_lib" TSAN_OPTIONS=halt_on_error=1 \
      TB_STRESS_ITERATIONS="${TB_STRESS_ITERATIONS:-500}" build-tsan/cpp_tests/tb_stress_test
}

stage_valgrind() {
  [ -x build/cpp_tests/tb_abi_tests ] || ./scripts/test.sh >/dev/null
  cmake --build build -j "$(nproc)" --target tb_stress_test >/dev/null &&
    LD_LIBRARY_PATH="$nvrtc_lib" TB_STRESS_ITERATIONS="${TB_STRESS_ITERATIONS:-200}" run_cpp_tests build \
      valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
      --track-origins=yes
}

stage_miri() {
  MIRIFLAGS="-Zmiri-disable-isolation" CARGO_TARGET_DIR=target/miri \
    cargo +nightly miri test --lib -- layout:: dtype:: error:: device:: float8::
}

prerequisites || exit 1
for stage in "${stages[@]}"; do
  echo "== $stage"
  start=$SECONDS
  if "stage_${stage//-/_}"; then
    results+=("$stage: passed ($((SECONDS - start)) s)")
  else
    results+=("$stage: FAILED ($((SECONDS - start)) s)")
  fi
done
echo "== summary"
printf '%s\n' "${results[@]}"
! printf '%s\n' "${results[@]}" | grep -q FAILED
