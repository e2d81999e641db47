//! Replays, on the stable toolchain, what the libFuzzer targets would run: every committed seed
//! (fuzz/seeds/<target>/*), every fixed regression input (fuzz/regressions/<target>/*, except
//! `*.open` files, which record defects not fixed yet), and a few thousand pseudo-random inputs
//! per target. CI runs this (scripts/test.sh); scripts/fuzz.sh runs the real fuzzing.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The targets compare the process-wide live handle count with its value at their start, so
/// the tests of this binary (run on parallel threads) take turns.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

fn replay(target: &str, run: fn(&[u8]), path: &Path) {
    let data = std::fs::read(path).unwrap();
    if let Err(panic) = std::panic::catch_unwind(|| run(&data)) {
        let why = panic_text(&*panic);
        panic!("{target}: {} fails: {why}", path.display());
    }
}

#[test]
fn every_target_has_seeds_and_they_pass() {
    let _turn = turn();
    for &(target, run) in tb_fuzz_harness::TARGETS {
        let seeds = files(&fuzz_dir().join("seeds").join(target));
        assert!(!seeds.is_empty(), "fuzz/seeds/{target} has no seed inputs");
        for path in seeds {
            replay(target, run, &path);
        }
    }
}

#[test]
fn fixed_regressions_stay_fixed() {
    let _turn = turn();
    for &(target, run) in tb_fuzz_harness::TARGETS {
        for path in files(&fuzz_dir().join("regressions").join(target)) {
            if path.extension().is_some_and(|e| e == "open") {
                eprintln!("skipped (defect still open): {}", path.display());
                continue;
            }
            if path.extension().is_some_and(|e| e == "md") {
                continue;
            }
            replay(target, run, &path);
        }
    }
}

#[test]
fn pseudo_random_inputs() {
    let _turn = turn();
    let per_target: usize =
        std::env::var("TB_FUZZ_REPLAY_RANDOM").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for &(target, run) in tb_fuzz_harness::TARGETS {
        for case in 0..per_target {
            let len = (next() % 160) as usize;
            let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if let Err(panic) = std::panic::catch_unwind(|| run(&data)) {
                let why = panic_text(&*panic);
                panic!("{target}: pseudo-random case {case} {data:02x?} fails: {why}");
            }
        }
    }
}
