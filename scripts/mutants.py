#!/usr/bin/env python3
"""Shows that the GPU promise tests can fail: each mutant breaks one promise in the library's
source, and the test that guards the promise must fail against that build while it passes
against the unchanged one.

    scripts/mutants.py build   # here (Rust): one libtensorbridge.so per mutant in .prebuilt/mutants/
    scripts/mutants.py run     # on the GPU machine, after scripts/gpu-check.sh built build-gpu/
    scripts/mutants.py run NAME…   # only the mutants named

The fault-walk mutants (FAULT_MUTANTS) break what the GPU fault walk guards: they are built with
the cargo feature fault-injection and run against build-gpu/cpp_tests/tb_gpu_fault_walk.

``build`` edits one file at a time, builds, copies the library out and restores the file (also
when interrupted), then rebuilds the unchanged library. ``run`` runs each mutant's tests from
build-gpu/cpp_tests/tb_cuda_runtime_tests with the mutant preloaded (LD_PRELOAD: its soname
satisfies the test binary's dependency), and the same tests without it; it prints a table and
exits non-zero unless every mutant is caught and every unmutated run passes.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / ".prebuilt" / "mutants"
TESTS = ROOT / "build-gpu" / "cpp_tests" / "tb_cuda_runtime_tests"
FAULT_WALK = ROOT / "build-gpu" / "cpp_tests" / "tb_gpu_fault_walk"

# (name, promise broken, file, text, replacement, gtest filter of the tests that must catch it)
MUTANTS = [
    ("host-waits-for-the-stream", "operations return without blocking the host",
     "src/ops/mod.rs", "    enqueued?;\n",
     "    enqueued?;\n    crate::cuda::stream::synchronize(ordinal, stream)?;\n",
     "StreamPromises.ImportSyncReformatAndConvertReturnWhileTheProducerIsHeldAndWaitOnTheDevice"),
    ("no-wait-for-the-producer", "work waits for the producer's stream on the device",
     "src/ops/ordering.rs", "        wait_for(tensor.device().ordinal, stream, producer)?;\n",
     "        let _ = (wait_for, producer);\n",
     "StreamPromises.ImportSyncReformatAndConvertReturnWhileTheProducerIsHeldAndWaitOnTheDevice"),
    ("read-only-destination-written", "read-only destinations are refused",
     "src/ops/mod.rs", "    dst.require_writable(\"destination\")?;\n", "",
     "GpuErrors.ReadOnlyDestinationsAreRefused"),
    ("success-clears-the-message", "successful calls leave the error message unchanged",
     "src/ffi/mod.rs", "        Ok(Ok(())) => TbStatus::TB_SUCCESS,\n",
     "        Ok(Ok(())) => {\n            set_last_error(\"\");\n            TbStatus::TB_SUCCESS\n        }\n",
     "GpuErrors.SuccessfulGpuCallsLeaveTheErrorMessageUnchanged"),
    ("nan-becomes-one", "NaN converts to 0 in a GPU convert to uint8",
     "src/cuda/kernels/layout.cu", "  r = fminf(fmaxf(r, 0.0f), 255.0f);\n  return (tb_u8)(r == r ? r : 0.0f);\n",
     "  r = y < 0.0f ? 0.0f : (y > 255.0f ? 255.0f : r);\n  return (tb_u8)(r == r ? r : 1.0f);\n",
     "GpuOps.ConvertToUint8TurnsNanIntoZeroAndSaturates"),
    ("corrupt-cache-file-used", "a corrupt kernel cache file is compiled again, not loaded",
     "src/cuda/kernel.rs", "    if !intact {\n        return None;\n    }\n", "    let _ = intact;\n",
     "GpuKernelCache.DiskCacheIsPopulatedCanBeDisabledAndSurvivesACorruptFile"),
    ("cleanup-runs-twice", "a concurrent last release runs the cleanup once",
     "src/ffi/tensor.rs", "            unsafe { function(context.0, data.0) }\n",
     "            unsafe {\n                function(context.0, data.0);\n                function(context.0, data.0)\n"
     "            }\n",
     "GpuLifetime.ConcurrentLastReleasesOfADeviceTensorRunTheCleanupOnce"),
]

# (name, what the fault walk must catch, file, text, replacement): built with fault-injection.
FAULT_MUTANTS = [
    ("staging-kept-after-a-failed-copy", "a copy that fails gives its staging memory back",
     "src/ops/mod.rs", "    let result = work(host_data, device_data);\n",
     "    let result = work(host_data, device_data);\n    if result.is_err() {\n        return result;\n    }\n"),
    ("failed-gpu-work-reported-as-success", "a failed launch or copy is a failed call",
     "src/ops/mod.rs", "    enqueued?;\n", "    let _ = enqueued;\n"),
    ("refused-wrap-runs-the-cleanup", "a wrap whose handle cannot be made leaves the memory the caller's",
     "src/tensor.rs", "        hand_off(self).inspect_err(|_| drop(storage.disarm()))\n", "        hand_off(self)\n"),
]


def cargo_build(fault=False):
    target = subprocess.run([str(ROOT / "scripts" / "cargo-target-dir.sh")], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip()
    command = ["cargo", "build", "--release", "--quiet", "--lib"]
    if fault:  # its own target directory, as scripts/stage-prebuilt.sh builds it
        target = str(Path(target) / "fault")
        command += ["--features", "fault-injection", "--target-dir", target]
    subprocess.run(command, cwd=ROOT, check=True)
    return Path(target) / "release" / "libtensorbridge.so"


def build():
    OUT.mkdir(parents=True, exist_ok=True)
    everything = [(m[0], m[2], m[3], m[4], False) for m in MUTANTS] + \
        [(m[0], m[2], m[3], m[4], True) for m in FAULT_MUTANTS]
    for name, file, text, replacement, fault in everything:
        path = ROOT / file
        original = path.read_text()
        count = original.count(text)
        if count == 0:
            sys.exit(f"mutant {name}: the text to replace is not in {file} (the code moved: update MUTANTS)")
        try:
            path.write_text(original.replace(text, replacement))
            print(f"building mutant {name} ({count} edit(s) in {file})", flush=True)
            shutil.copyfile(cargo_build(fault), OUT / f"{name}.so")
        finally:
            path.write_text(original)
    cargo_build()  # the unchanged libraries again
    cargo_build(fault=True)


def passes(gtest_filter, preload=None, tests=TESTS):
    env = dict(os.environ)
    if preload:
        env["LD_PRELOAD"] = str(preload)
    env["TENSORBRIDGE_CACHE_DIR"] = ""  # no kernel from an earlier build's cache
    done = subprocess.run([str(tests), f"--gtest_filter={gtest_filter}"], env=env, capture_output=True,
                          text=True, timeout=600)
    return done.returncode == 0, done.stdout + done.stderr


def run():
    if not TESTS.is_file():
        sys.exit(f"{TESTS} is missing: run scripts/gpu-check.sh first")
    if not FAULT_WALK.is_file():
        sys.exit(f"{FAULT_WALK} is missing: stage .prebuilt/fault/ and run scripts/gpu-check.sh first")
    rows, failures = [], 0
    everything = [(m[0], m[1], m[5], TESTS) for m in MUTANTS] + \
        [(m[0], m[1], "GpuFaultWalk.*", FAULT_WALK) for m in FAULT_MUTANTS]
    chosen = sys.argv[2:]
    unknown = set(chosen) - {m[0] for m in everything}
    if unknown:
        sys.exit(f"unknown mutant(s): {', '.join(sorted(unknown))}")
    unchanged = {}  # (filter, binary) → result against the unchanged library, run once
    for name, promise, gtest_filter, tests in everything:
        if chosen and name not in chosen:
            continue
        if (gtest_filter, tests) not in unchanged:
            unchanged[(gtest_filter, tests)] = passes(gtest_filter, tests=tests)
        clean, clean_log = unchanged[(gtest_filter, tests)]
        mutant, mutant_log = passes(gtest_filter, OUT / f"{name}.so", tests=tests)
        caught = clean and not mutant
        failures += not caught
        rows.append((name, promise, gtest_filter, "passes" if clean else "FAILS", "fails" if not mutant else "PASSES",
                     "caught" if caught else "NOT CAUGHT"))
        if not caught:
            print(f"--- {name}: unchanged library\n{clean_log[-3000:]}\n--- mutant\n{mutant_log[-3000:]}")
    print("| mutant | promise broken | test | unchanged library | mutant | verdict |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    {"build": build, "run": run}.get(sys.argv[1] if len(sys.argv) > 1 else "", lambda: sys.exit(__doc__))()
