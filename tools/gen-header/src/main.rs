//! Writes the C header of the tensorbridge crate with cbindgen and the crate's `cbindgen.toml`.
//!
//! Usage: `tensorbridge-gen-header <crate dir> <output file>`; `scripts/gen-header.sh` calls it.
//! A separate tool rather than build.rs, so that `cargo build` never writes into the source tree.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [crate_dir, output] = args.as_slice() else {
        eprintln!("usage: tensorbridge-gen-header <crate dir> <output file>");
        return ExitCode::from(2);
    };
    let config = match cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("gen-header: {}: {error}", crate_dir.join("cbindgen.toml").display());
            return ExitCode::FAILURE;
        }
    };
    match cbindgen::generate_with_config(crate_dir, config) {
        Ok(bindings) => {
            // write_to_file leaves the file untouched when the text is unchanged.
            bindings.write_to_file(output);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("gen-header: cbindgen could not generate {}: {error}", output.display());
            ExitCode::FAILURE
        }
    }
}
