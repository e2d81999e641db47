//! Run-time kernels: NVRTC compiles `kernels/layout.cu` (and `kernels/frame.cu`, appended) with a set of `-D` defines to a cubin
//! for the device's exact architecture (PTX from a newer NVRTC could fail to load on an older
//! driver). Each (defines, device) pair is compiled and loaded once per process; cubins are also
//! kept on disk, keyed by a hash of the source, options, architecture and NVRTC version, so a new
//! process skips the compile. `TENSORBRIDGE_CACHE_DIR` chooses the directory (empty: no disk
//! cache); the default is `$XDG_CACHE_HOME/tensorbridge` or `~/.cache/tensorbridge`.
//!
//! A cache file is the cubin followed by a trailer (its length, its FNV-1a hash and a magic
//! tag). `cuModuleLoadData` takes no length and trusts the ELF headers, so a truncated or
//! damaged file must never reach it: a file whose trailer does not match is ignored and
//! replaced by a fresh compile, and so is one the driver still rejects.

use super::context::ContextScope;
use super::driver::{During, device};
use super::stream::raw;
use crate::error::{Error, Result};
use crate::fnv::fnv1a;
use crate::stream::Stream;
use cudarc::driver::result as driver;
use cudarc::driver::sys::{
    CUdevice_attribute, CUfunction, CUlaunchAttribute, CUlaunchAttributeID, CUlaunchAttributeValue,
    CUlaunchConfig, CUmodule,
};
use cudarc::nvrtc::result::{self as nvrtc, NvrtcError};
use cudarc::nvrtc::sys as nvrtc_sys;
use std::collections::HashMap;
use std::ffi::{CString, c_void};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

const SOURCE: &str = concat!(include_str!("kernels/layout.cu"), include_str!("kernels/frame.cu"));

/// A kernel to run: its entry point and the compile-time defines that specialise the source.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct KernelSpec {
    /// The `extern "C" __global__` function name.
    pub entry: &'static str,
    /// `-D` definitions, as `NAME=VALUE`.
    pub defines: Vec<String>,
}

/// A loaded kernel function (valid for the life of the process).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Function(usize);

/// Loaded modules per (device, defines) and functions per (device, defines, entry); stored as
/// addresses so the maps are `Send`. Modules stay loaded for the life of the process.
struct Loaded {
    modules: HashMap<(i32, Vec<String>), usize>,
    functions: HashMap<KernelSpec, HashMap<i32, usize>>,
}

fn loaded() -> std::sync::MutexGuard<'static, Loaded> {
    static LOADED: OnceLock<Mutex<Loaded>> = OnceLock::new();
    LOADED
        .get_or_init(|| Mutex::new(Loaded { modules: HashMap::new(), functions: HashMap::new() }))
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn nvrtc_available() -> Result<()> {
    // SAFETY: only tries to dlopen candidate library names.
    if unsafe { nvrtc_sys::is_culib_present() } {
        return Ok(());
    }
    Err(Error::cuda_unavailable(
        "CUDA unavailable: NVRTC (libnvrtc.so.13) could not be loaded; GPU kernels need the \
         CUDA runtime compiler (a CUDA toolkit, or the nvidia-cuda-nvrtc package on the loader \
         path)",
    ))
}

/// Names the NVRTC operation of a failed result.
fn nvrtc_during<T>(result: std::result::Result<T, NvrtcError>, what: &str) -> Result<T> {
    result.map_err(|error| Error::cuda(format!("{what} failed: {error:?}")))
}

fn nvrtc_version() -> Result<(i32, i32)> {
    let (mut major, mut minor) = (0, 0);
    // SAFETY: NVRTC is loaded; valid out-pointers.
    let status = unsafe { nvrtc_sys::nvrtcVersion(&mut major, &mut minor) };
    nvrtc_during(status.result(), "nvrtcVersion")?;
    Ok((major, minor))
}

/// The cubin of a compiled program (cudarc's result layer wraps only the PTX).
///
/// # Safety
/// `program` was created by `nvrtc::create_program`, compiled, and not destroyed.
unsafe fn cubin_of(program: nvrtc_sys::nvrtcProgram) -> std::result::Result<Vec<u8>, NvrtcError> {
    let mut size = 0usize;
    // SAFETY: valid program (contract) and out-pointer.
    unsafe { nvrtc_sys::nvrtcGetCUBINSize(program, &mut size) }.result()?;
    let mut cubin = vec![0u8; size];
    // SAFETY: cubin has room for size bytes.
    unsafe { nvrtc_sys::nvrtcGetCUBIN(program, cubin.as_mut_ptr() as *mut std::ffi::c_char) }
        .result()?;
    Ok(cubin)
}

/// Compute capability of a device, e.g. (9, 0).
pub(crate) fn compute_capability(ordinal: i32) -> Result<(i32, i32)> {
    let major =
        attribute(ordinal, CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?;
    let minor =
        attribute(ordinal, CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?;
    Ok((major, minor))
}

/// A device attribute.
pub(crate) fn attribute(ordinal: i32, attribute: CUdevice_attribute) -> Result<i32> {
    let device = device(ordinal)?;
    crate::fault::driver_call("cuDeviceGetAttribute")?;
    // SAFETY: the device came from cuDeviceGet.
    unsafe { driver::device::get_attribute(device, attribute) }.during("cuDeviceGetAttribute")
}

fn cache_dir() -> Option<PathBuf> {
    match std::env::var_os("TENSORBRIDGE_CACHE_DIR") {
        Some(dir) if dir.is_empty() => None,
        Some(dir) => Some(PathBuf::from(dir)),
        None => std::env::var_os("XDG_CACHE_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|base| base.join("tensorbridge")),
    }
}

fn compile(options: &[String]) -> Result<Vec<u8>> {
    let source = CString::new(SOURCE).map_err(|_| Error::internal("kernel source has a NUL"))?;
    let program = nvrtc_during(
        nvrtc::create_program(&source, Some(c"tensorbridge_layout.cu")),
        "nvrtcCreateProgram",
    )?;
    // SAFETY: the program was just created; source outlives it (dropped after destroy below).
    let compiled = unsafe { nvrtc::compile_program(program, options) };
    let result = match compiled {
        // SAFETY: the program compiled and is still alive.
        Ok(()) => nvrtc_during(unsafe { cubin_of(program) }, "nvrtcGetCUBIN"),
        Err(_) => {
            // SAFETY: as above; the log exists after a failed compile.
            let log = unsafe { nvrtc::get_program_log(program) }.unwrap_or_default();
            let bytes: Vec<u8> = log.iter().map(|&c| c as u8).collect();
            let text = String::from_utf8_lossy(&bytes).trim_end_matches('\0').to_string();
            Err(Error::cuda(format!("NVRTC could not compile {options:?}: {text}")))
        }
    };
    // SAFETY: the program was created above and is destroyed once.
    let _ = unsafe { nvrtc::destroy_program(program) };
    result
}

fn nvrtc_options(defines: &[String], arch: (i32, i32)) -> Vec<String> {
    let mut options: Vec<String> = vec![
        format!("--gpu-architecture=sm_{}{}", arch.0, arch.1),
        "--std=c++17".to_string(),
        "-default-device".to_string(),
    ];
    options.extend(defines.iter().map(|d| format!("-D{d}")));
    options
}

#[cfg(test)]
/// Compiles `spec` for an sm_`arch` GPU without a GPU or the disk cache, returning the cubin's
/// size: lets machines without a GPU check that every kernel specialisation compiles.
pub(crate) fn compile_only(spec: &KernelSpec, arch: (i32, i32)) -> Result<usize> {
    nvrtc_available()?;
    Ok(compile(&nvrtc_options(&spec.defines, arch))?.len())
}

#[cfg(test)]
/// Compiles each of `specs` for sm_90 with NVRTC (no GPU needed): a kernel that does not compile
/// fails here, on any machine with NVRTC.
///
/// A missing NVRTC fails the test rather than letting it pass without compiling anything:
/// `scripts/test.sh` puts `.deps/nvrtc` on the loader path (and sets
/// `TENSORBRIDGE_REQUIRE_NVRTC=1`). Only an explicit `TENSORBRIDGE_REQUIRE_NVRTC=0` lets it
/// return early, printing that nothing was compiled.
pub(crate) fn compile_all_for_sm_90(specs: &[KernelSpec]) {
    let first = compile_only(&specs[0], (9, 0));
    if let Err(error) = &first
        && error.kind == crate::error::ErrorKind::CudaUnavailable
    {
        let required = std::env::var("TENSORBRIDGE_REQUIRE_NVRTC").as_deref() != Ok("0");
        assert!(
            !required,
            "NVRTC is needed to compile the kernels and could not be loaded ({}); run \
             scripts/test.sh, or put .deps/nvrtc/nvidia/cu13/lib on LD_LIBRARY_PATH; \
             TENSORBRIDGE_REQUIRE_NVRTC=0 skips this check explicitly",
            error.message
        );
        println!(
            "NOT RUN (TENSORBRIDGE_REQUIRE_NVRTC=0): no kernel was compiled: {}",
            error.message
        );
        return;
    }
    first.unwrap();
    let failures: Vec<String> = specs
        .iter()
        .filter_map(|spec| compile_only(spec, (9, 0)).err().map(|e| e.message))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        specs.len(),
        failures.join("\n")
    );
}

/// Ends every cache file; the version digit changes with the file format.
const CACHE_MAGIC: &[u8; 8] = b"tbcubin1";
const TRAILER: usize = 8 + 8 + CACHE_MAGIC.len();

/// A cache file's bytes: the cubin, its length and hash (little-endian u64 each), the magic.
fn encode_cached(cubin: &[u8]) -> Vec<u8> {
    let mut file = Vec::with_capacity(cubin.len() + TRAILER);
    file.extend_from_slice(cubin);
    file.extend_from_slice(&(cubin.len() as u64).to_le_bytes());
    file.extend_from_slice(&fnv1a(&[cubin]).to_le_bytes());
    file.extend_from_slice(CACHE_MAGIC);
    file
}

/// The cubin inside a cache file, or `None` when the file is truncated, damaged or not ours.
fn decode_cached(mut file: Vec<u8>) -> Option<Vec<u8>> {
    let body = file.len().checked_sub(TRAILER)?;
    let trailer = &file[body..];
    let length = u64::from_le_bytes(trailer[..8].try_into().ok()?);
    let hash = u64::from_le_bytes(trailer[8..16].try_into().ok()?);
    let intact = &trailer[16..] == CACHE_MAGIC
        && length == body as u64
        && hash == fnv1a(&[&file[..body]])
        && file.starts_with(b"\x7fELF");
    if !intact {
        return None;
    }
    file.truncate(body);
    Some(file)
}

/// The cache file for `options` in `dir`, keyed by source, options and NVRTC version.
fn cache_path(dir: &Path, options: &[String]) -> Result<PathBuf> {
    let version = nvrtc_version()?;
    let key = fnv1a(&[
        SOURCE.as_bytes(),
        options.join(" ").as_bytes(),
        format!("nvrtc {}.{}", version.0, version.1).as_bytes(),
    ]);
    Ok(dir.join(format!("{key:016x}.cubin")))
}

/// Writes a cache file, best effort and atomically: a failure to cache costs only a recompile.
fn store(path: &Path, cubin: &[u8]) {
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    let stored = path.parent().map(std::fs::create_dir_all).transpose().is_ok()
        && std::fs::write(&temporary, encode_cached(cubin)).is_ok();
    if stored {
        let _ = std::fs::rename(&temporary, path);
    } else {
        let _ = std::fs::remove_file(&temporary);
    }
}

/// Where a cubin came from: a compile or a cache file (which the driver may still reject).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    Compiled,
    Disk,
}

/// The cubin for `defines` on an sm_`arch` device: from an intact file in the disk cache `dir`,
/// or compiled (and cached there). `fresh` skips the cache read.
fn cubin(
    defines: &[String],
    arch: (i32, i32),
    dir: Option<&Path>,
    fresh: bool,
) -> Result<(Vec<u8>, Origin)> {
    nvrtc_available()?;
    let options = nvrtc_options(defines, arch);
    let path = dir.map(|dir| cache_path(dir, &options)).transpose()?;
    if !fresh
        && let Some(cached) =
            path.as_ref().and_then(|p| std::fs::read(p).ok()).and_then(decode_cached)
    {
        return Ok((cached, Origin::Disk));
    }
    let cubin = compile(&options)?;
    if let Some(path) = path {
        store(&path, &cubin);
    }
    Ok((cubin, Origin::Compiled))
}

/// Loads a cubin image as a module of the current context.
fn load_module(image: &[u8]) -> Result<CUmodule> {
    crate::fault::driver_call("cuModuleLoadData")?;
    // SAFETY: a context is current; image is a complete cubin (compiled here, or a cache file
    // whose length and hash matched), which the driver parses from its ELF headers.
    unsafe { driver::module::load_data(image.as_ptr() as *const c_void) }.during("cuModuleLoadData")
}

/// The module for `defines` on device `ordinal`: a cached cubin the driver rejects (written by
/// another driver or damaged in a way the hash missed) is compiled again and replaced.
fn module_for(ordinal: i32, defines: &[String]) -> Result<CUmodule> {
    let arch = compute_capability(ordinal)?;
    let dir = cache_dir();
    let (image, origin) = cubin(defines, arch, dir.as_deref(), false)?;
    match load_module(&image) {
        Err(_) if origin == Origin::Disk => {
            let (image, _) = cubin(defines, arch, dir.as_deref(), true)?;
            load_module(&image)
        }
        loaded => loaded,
    }
}

/// The loaded function for `spec` on device `ordinal`, compiling and loading it on first use.
/// The caller has entered the device's context.
fn function(ordinal: i32, spec: &KernelSpec) -> Result<CUfunction> {
    if let Some(&function) =
        loaded().functions.get(spec).and_then(|per_device| per_device.get(&ordinal))
    {
        return Ok(function as CUfunction);
    }
    let module_key = (ordinal, spec.defines.clone());
    let existing = loaded().modules.get(&module_key).copied();
    let module = match existing {
        Some(module) => module as CUmodule,
        None => {
            let module = module_for(ordinal, &spec.defines)?;
            *loaded().modules.entry(module_key).or_insert(module as usize) as CUmodule
        }
    };
    let entry = CString::new(spec.entry).map_err(|_| Error::internal("kernel name"))?;
    crate::fault::driver_call("cuModuleGetFunction")?;
    // SAFETY: the module is loaded in the current context.
    let function =
        unsafe { driver::module::get_function(module, entry) }.during("cuModuleGetFunction")?;
    loaded().functions.entry(spec.clone()).or_default().insert(ordinal, function as usize);
    Ok(function)
}

/// Whether device `ordinal` can start a kernel's grid while the stream's previous kernel
/// finishes (programmatic dependent launch: compute capability 9.0 and later); asked once per
/// device.
fn dependent_launch(ordinal: i32) -> Result<bool> {
    static SUPPORTED: OnceLock<Mutex<HashMap<i32, bool>>> = OnceLock::new();
    let supported =
        || SUPPORTED.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(&known) = supported().get(&ordinal) {
        return Ok(known);
    }
    let known = compute_capability(ordinal)?.0 >= 9;
    supported().insert(ordinal, known);
    Ok(known)
}

/// Launches `function` with one by-value parameter struct `params` (the kernels' only
/// argument), on `stream`, inside device `ordinal`'s context. `programmatic`: the kernel waits
/// for the stream's previous kernel on the device before its first memory access
/// (`wait_for_prior_grids` in layout.cu), so on devices that support it the launch lets its grid
/// start while that kernel finishes, hiding the gap between back-to-back kernels.
pub(crate) fn launch<P>(
    ordinal: i32,
    function: Function,
    blocks: u64,
    threads: u32,
    stream: Stream,
    params: &P,
    programmatic: bool,
) -> Result<()> {
    let _scope = ContextScope::enter(ordinal)?;
    let blocks = u32::try_from(blocks.clamp(1, i32::MAX as u64)).unwrap_or(i32::MAX as u32);
    let mut arguments = [params as *const P as *mut c_void];
    crate::fault::driver_call("cuLaunchKernel")?;
    let programmatic = programmatic && dependent_launch(ordinal)?;
    let mut attribute = CUlaunchAttribute {
        id: CUlaunchAttributeID::CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION,
        pad: [0; 4],
        value: CUlaunchAttributeValue { pad: [0; 64] },
    };
    attribute.value.programmaticStreamSerializationAllowed = 1;
    let config = CUlaunchConfig {
        gridDimX: blocks,
        gridDimY: 1,
        gridDimZ: 1,
        blockDimX: threads,
        blockDimY: 1,
        blockDimZ: 1,
        sharedMemBytes: 0,
        hStream: raw(stream),
        attrs: &mut attribute,
        numAttrs: u32::from(programmatic),
    };
    // SAFETY: function is loaded in this context; the kernel takes exactly one parameter whose
    // C layout P mirrors; params, config and its attribute outlive the call (the driver copies
    // parameters at launch).
    unsafe {
        cudarc::driver::sys::cuLaunchKernelEx(
            &config,
            function.0 as CUfunction,
            arguments.as_mut_ptr(),
            std::ptr::null_mut(),
        )
    }
    .result()
    .during("cuLaunchKernel")
}

/// The function for `spec` on device `ordinal`: compiled (or read from the disk cache) and
/// loaded into the device's primary context on first use, then looked up.
pub(crate) fn load(ordinal: i32, spec: &KernelSpec) -> Result<Function> {
    let _scope = ContextScope::enter(ordinal)?;
    function(ordinal, spec).map(|f| Function(f as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that start like an ELF file, standing in for a cubin.
    fn fake_cubin() -> Vec<u8> {
        let mut bytes = b"\x7fELF".to_vec();
        bytes.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
        bytes
    }

    #[test]
    fn intact_cache_files_round_trip() {
        let cubin = fake_cubin();
        assert_eq!(decode_cached(encode_cached(&cubin)), Some(cubin));
    }

    #[test]
    fn damaged_cache_files_are_rejected_before_the_driver_sees_them() {
        let file = encode_cached(&fake_cubin());
        let mut flipped = file.clone();
        flipped[100] ^= 0x01;
        let mut not_elf = fake_cubin();
        not_elf[0] = b'X';
        let damaged: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("shorter than the trailer", file[..TRAILER - 1].to_vec()),
            ("truncated", file[..file.len() / 2].to_vec()),
            ("cut before the trailer", file[..file.len() - 1].to_vec()),
            ("one bit flipped", flipped),
            ("a raw cubin without trailer (the old format)", fake_cubin()),
            ("not ELF", encode_cached(&not_elf)),
            ("garbage", vec![0xAB; 4096]),
        ];
        for (what, bytes) in damaged {
            assert_eq!(decode_cached(bytes), None, "{what}");
        }
    }

    /// NVRTC, or `None` where it is missing and `TENSORBRIDGE_REQUIRE_NVRTC=0` allows that.
    fn nvrtc_or_explicit_opt_out() -> Option<()> {
        match nvrtc_available() {
            Ok(()) => Some(()),
            Err(error) => {
                assert!(
                    std::env::var("TENSORBRIDGE_REQUIRE_NVRTC").as_deref() == Ok("0"),
                    "NVRTC could not be loaded ({}); run scripts/test.sh",
                    error.message
                );
                None
            }
        }
    }

    #[test]
    fn a_corrupt_cache_file_is_compiled_again_and_replaced() {
        if nvrtc_or_explicit_opt_out().is_none() {
            return;
        }
        let dir =
            std::env::temp_dir().join(format!("tensorbridge-cache-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // The general kernel over 1-byte elements, as ops::gpu specialises it.
        let defines: Vec<String> =
            ["TB_TIN=tb_raw1", "TB_TOUT=tb_raw1", "TB_AFFINE=0", "TB_RANK=4"]
                .map(String::from)
                .to_vec();
        let arch = (9, 0);

        let (first, origin) = cubin(&defines, arch, Some(&dir), false).unwrap();
        assert_eq!(origin, Origin::Compiled, "an empty cache directory compiles");
        let path = cache_path(&dir, &nvrtc_options(&defines, arch)).unwrap();
        assert!(path.exists(), "the compile populated {}", path.display());

        let (again, origin) = cubin(&defines, arch, Some(&dir), false).unwrap();
        assert_eq!((origin, &again), (Origin::Disk, &first), "a second call reads the file");

        let mut file = std::fs::read(&path).unwrap();
        file.truncate(file.len() / 3);
        std::fs::write(&path, &file).unwrap();
        let (rebuilt, origin) = cubin(&defines, arch, Some(&dir), false).unwrap();
        assert_eq!(origin, Origin::Compiled, "a truncated file is not handed to the driver");
        assert_eq!(rebuilt.len(), first.len());
        assert_eq!(
            decode_cached(std::fs::read(&path).unwrap()).map(|c| c.len()),
            Some(first.len())
        );

        let (uncached, origin) = cubin(&defines, arch, None, false).unwrap();
        assert_eq!(origin, Origin::Compiled, "no directory: no disk cache");
        assert_eq!(uncached.len(), first.len());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
