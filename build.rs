//! Build script: regenerates `include/tensorbridge.h` with cbindgen, and gives the shared library
//! its SONAME and an export list holding only the `tb_*` symbols.

use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=tensorbridge.map");

    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("set by cargo");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libtensorbridge.so.{major}");
        let map = root.join("tensorbridge.map");
        println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={}", map.display());
    }

    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    let header = root.join("include").join("tensorbridge.h");
    match cbindgen::generate_with_config(&root, config) {
        // write_to_file leaves the file untouched when the text is unchanged.
        Ok(bindings) => {
            bindings.write_to_file(&header);
        }
        Err(error) => panic!("cbindgen could not generate {}: {error}", header.display()),
    }
}
