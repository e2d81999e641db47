//! Run-time kernels: NVRTC compiles `kernels/layout.cu` with a set of `-D` defines to a cubin
//! for the device's exact architecture (PTX from a newer NVRTC could fail to load on an older
//! driver). Each (defines, device) pair is compiled and loaded once per process; cubins are also
//! kept on disk, keyed by a hash of the source, options, architecture and NVRTC version, so a new
//! process skips the compile. `TENSORBRIDGE_CACHE_DIR` chooses the directory (empty: no disk
//! cache); the default is `$XDG_CACHE_HOME/tensorbridge` or `~/.cache/tensorbridge`.

use super::context::ContextScope;
use super::driver::{During, device};
use super::stream::raw;
use crate::error::{Error, Result};
use crate::stream::Stream;
use cudarc::driver::result as driver;
use cudarc::driver::sys::{CUdevice_attribute, CUfunction, CUmodule};
use cudarc::nvrtc::result::{self as nvrtc, NvrtcError};
use cudarc::nvrtc::sys as nvrtc_sys;
use std::collections::HashMap;
use std::ffi::{CString, c_void};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

const SOURCE: &str = include_str!("kernels/layout.cu");

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
    // SAFETY: the device came from cuDeviceGet.
    unsafe { driver::device::get_attribute(device, attribute) }.during("cuDeviceGetAttribute")
}

/// 64-bit FNV-1a: a stable hash for cache file names (std's hasher may change between releases).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for part in parts {
        for &byte in part.iter().chain(&[0xff]) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
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

/// The cubin for `defines` on an sm_`arch` device: from the disk cache, or compiled (and cached).
fn cubin(defines: &[String], arch: (i32, i32)) -> Result<Vec<u8>> {
    nvrtc_available()?;
    let options = nvrtc_options(defines, arch);
    let version = nvrtc_version()?;
    let key = fnv1a(&[
        SOURCE.as_bytes(),
        options.join(" ").as_bytes(),
        format!("nvrtc {}.{}", version.0, version.1).as_bytes(),
    ]);
    let path = cache_dir().map(|dir| dir.join(format!("{key:016x}.cubin")));
    if let Some(cached) = path.as_ref().and_then(|p| std::fs::read(p).ok()) {
        return Ok(cached);
    }
    let cubin = compile(&options)?;
    if let Some(path) = path {
        // Best effort, atomic: a failure to cache costs only a recompile next time.
        let temporary = path.with_extension(format!("tmp{}", std::process::id()));
        let stored = path.parent().map(std::fs::create_dir_all).transpose().is_ok()
            && std::fs::write(&temporary, &cubin).is_ok();
        if stored {
            let _ = std::fs::rename(&temporary, &path);
        }
    }
    Ok(cubin)
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
            let image = cubin(&spec.defines, compute_capability(ordinal)?)?;
            // SAFETY: a context is current; image is a complete cubin.
            let module = unsafe { driver::module::load_data(image.as_ptr() as *const c_void) }
                .during("cuModuleLoadData")?;
            *loaded().modules.entry(module_key).or_insert(module as usize) as CUmodule
        }
    };
    let entry = CString::new(spec.entry).map_err(|_| Error::internal("kernel name"))?;
    // SAFETY: the module is loaded in the current context.
    let function =
        unsafe { driver::module::get_function(module, entry) }.during("cuModuleGetFunction")?;
    loaded().functions.entry(spec.clone()).or_default().insert(ordinal, function as usize);
    Ok(function)
}

/// Launches `function` with one by-value parameter struct `params` (the kernels' only
/// argument), on `stream`, inside device `ordinal`'s context.
pub(crate) fn launch<P>(
    ordinal: i32,
    function: Function,
    blocks: u64,
    threads: u32,
    stream: Stream,
    params: &P,
) -> Result<()> {
    let _scope = ContextScope::enter(ordinal)?;
    let blocks = u32::try_from(blocks.clamp(1, i32::MAX as u64)).unwrap_or(i32::MAX as u32);
    let mut arguments = [params as *const P as *mut c_void];
    // SAFETY: function is loaded in this context; the kernel takes exactly one parameter whose
    // C layout P mirrors; params outlives the call (the driver copies parameters at launch).
    unsafe {
        driver::launch_kernel(
            function.0 as CUfunction,
            (blocks, 1, 1),
            (threads, 1, 1),
            0,
            raw(stream),
            &mut arguments,
        )
    }
    .during("cuLaunchKernel")
}

/// The function for `spec` on device `ordinal`: compiled (or read from the disk cache) and
/// loaded into the device's primary context on first use, then looked up.
pub(crate) fn load(ordinal: i32, spec: &KernelSpec) -> Result<Function> {
    let _scope = ContextScope::enter(ordinal)?;
    function(ordinal, spec).map(|f| Function(f as usize))
}
