//! Build script: gives the shared library its SONAME and an export list holding only the `tb_*`
//! symbols. It writes nothing into the source tree: `scripts/gen-header.sh` regenerates
//! `include/tensorbridge.h`.

fn main() {
    println!("cargo:rerun-if-changed=tensorbridge.map");

    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("set by cargo");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        let root =
            std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libtensorbridge.so.{major}");
        let map = root.join("tensorbridge.map");
        println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={}", map.display());
    }
}
