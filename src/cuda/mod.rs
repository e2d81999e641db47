//! The only code that touches cudarc: driver presence, primary contexts, streams and events,
//! memory, peer access and the kernel cache. The bottom layer: it imports only `error`,
//! `device`, `stream` and `storage` (a test below checks it), plus the injection points of
//! `fault` (no-ops unless a test build enables the `fault-injection` feature).
//!
//! Every CUDA driver status is turned into `crate::error::Error` here, at the lowest level;
//! nothing above this module sees a raw `CUresult`. cudarc panics when libcuda cannot be loaded,
//! so every entry point first calls `driver::available`.

pub(crate) mod calls;
pub(crate) mod context;
pub(crate) mod driver;
pub(crate) mod ipc;
pub(crate) mod kernel;
pub(crate) mod memory;
pub(crate) mod peer;
pub(crate) mod pinned;
pub(crate) mod pointer;
pub(crate) mod pool;
pub(crate) mod stream;

#[cfg(test)]
mod tests {
    /// The layer rule of DESIGN.md: `cuda` is the bottom layer and imports only the value types
    /// and the storage, never the modules that use it.
    #[test]
    fn cuda_imports_nothing_from_the_layers_above() {
        let forbidden: Vec<String> = ["ops", "interop", "ffi", "tensor", "alloc"]
            .iter()
            .map(|module| format!("crate::{module}"))
            .chain([["super", "super"].join("::")])
            .collect();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cuda");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (number, line) in text.lines().enumerate() {
                if let Some(name) = forbidden.iter().find(|name| line.contains(*name)) {
                    panic!("{}:{}: imports {name}: {line}", path.display(), number + 1);
                }
            }
            checked += 1;
        }
        assert!(checked >= 7, "only {checked} files found in {}", dir.display());
    }
}
