//! Allocation functions of the C ABI: stream-ordered tensor allocation, installing an
//! application's allocator per device kind, and the device pools' trim and usage.

use super::handle::{self, TbTensor};
use super::status::{TbStatus, kind_of};
use super::{SendPtr, boundary, read_layout_arg, read_shape, require_out, write_out};
use crate::alloc::{Allocation, Allocator, Request};
use crate::device::{Device, DeviceType, TbDevice};
use crate::dtype::{DataType, TbDataType};
use crate::error::{Error, Result};
use crate::storage::Use;
use crate::stream::Stream;
use crate::tensor::{Requirements, Tensor};
use std::ffi::{c_char, c_void};
use std::sync::Arc;

/// Capacity of the message buffer an allocate callback may fill, including the NUL.
pub const TB_ALLOCATOR_MESSAGE_CAPACITY: usize = 256;

/// An allocate callback of a `TbAllocator`: allocates `bytes` (≥ 1) of `device`'s kind of memory
/// at an address that is a multiple of `alignment` (a power of two), stores it in `*out` and
/// returns `TB_SUCCESS` (as an `int32_t`); or returns another `TbStatus` value and may write a NUL-terminated explanation
/// into `message` (`message_capacity` bytes), which tensorbridge reports. `stream` is the
/// `cudaStream_t` the memory is first used on (the memory may be stream-ordered on it), or NULL
/// when the memory must be usable on every stream as soon as the callback returns. Called from
/// any thread, possibly concurrently; it must not throw or unwind.
pub type TbAllocateFn = Option<
    unsafe extern "C" fn(
        context: *mut c_void,
        bytes: i64,
        alignment: i64,
        device: TbDevice,
        stream: *mut c_void,
        out: *mut *mut c_void,
        message: *mut c_char,
        message_capacity: usize,
    ) -> i32,
>;

/// A free callback of a `TbAllocator`: gives back `data`, which its allocate callback returned for
/// `bytes` on `device`, once the work enqueued so far on `stream` is done (a stream-ordered free
/// on `stream`, or a wait for it); `stream` is NULL when no GPU work on the memory is known.
/// Called exactly once per allocation, from any thread; it must not throw or unwind.
pub type TbFreeFn = Option<
    unsafe extern "C" fn(
        context: *mut c_void,
        data: *mut c_void,
        bytes: i64,
        device: TbDevice,
        stream: *mut c_void,
    ),
>;

/// An application's allocator (RMM, its own pool, a framework's caching allocator), installed
/// per device kind with `tb_allocator_set`. Both callbacks receive `context`, which must stay
/// valid until every allocation made through this allocator has been freed, even after another
/// allocator is installed.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TbAllocator {
    /// Passed to both callbacks.
    pub context: *mut c_void,
    /// Allocates; may not be NULL.
    pub allocate: TbAllocateFn,
    /// Frees; may not be NULL.
    pub free: TbFreeFn,
}

/// An installed `TbAllocator` as the core's `Allocator`.
struct Installed {
    raw: TbAllocator,
}

// SAFETY: the C contract of tb_allocator_set says the callbacks may be called from any thread
// and `context` stays valid for as long as allocations made through it live.
unsafe impl Send for Installed {}
// SAFETY: as above: the callbacks may be called concurrently.
unsafe impl Sync for Installed {}

fn raw_stream(stream: Option<Stream>) -> *mut c_void {
    stream.map_or(std::ptr::null_mut(), |s| s.0 as *mut c_void)
}

impl Installed {
    fn failure(&self, request: &Request, code: i32, message: &[c_char]) -> Error {
        let bytes: Vec<u8> = message.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        let text = String::from_utf8_lossy(&bytes);
        let status = TbStatus::from_code(code);
        let kind = status.and_then(kind_of).unwrap_or(crate::error::ErrorKind::Internal);
        let name =
            status.map_or(format!("status {code}"), |s| s.c_name().to_string_lossy().into_owned());
        Error {
            kind,
            message: format!(
                "the installed allocator failed to allocate {} bytes on {}: {name}{}{text}",
                request.bytes,
                request.device,
                if text.is_empty() { "" } else { ": " },
            ),
        }
    }

    fn give_back(&self, data: u64, request: &Request, stream: Option<Stream>) {
        if let Some(free) = self.raw.free {
            let device = request.device.to_raw();
            // SAFETY: data came from this allocator's allocate callback and is freed once.
            unsafe {
                free(
                    self.raw.context,
                    data as *mut c_void,
                    request.bytes,
                    device,
                    raw_stream(stream),
                )
            };
        }
    }
}

impl Allocator for Installed {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn allocate(&self, request: &Request) -> Result<Allocation> {
        let allocate = self.raw.allocate.ok_or_else(|| Error::internal("allocate is NULL"))?;
        let request = Request { bytes: request.bytes.max(1), ..*request };
        let mut out: *mut c_void = std::ptr::null_mut();
        let mut message = [0 as c_char; TB_ALLOCATOR_MESSAGE_CAPACITY];
        // SAFETY: the application's callback, called as its contract says; out and message are
        // valid for writes.
        let status = unsafe {
            allocate(
                self.raw.context,
                request.bytes,
                request.alignment,
                request.device.to_raw(),
                raw_stream(request.stream),
                &mut out,
                message.as_mut_ptr(),
                message.len(),
            )
        };
        message[TB_ALLOCATOR_MESSAGE_CAPACITY - 1] = 0;
        if status != TbStatus::TB_SUCCESS as i32 {
            return Err(self.failure(&request, status, &message));
        }
        let data = out as u64;
        if data == 0 || !data.is_multiple_of(request.alignment as u64) {
            self.give_back(data, &request, request.stream);
            return Err(Error::internal(format!(
                "the installed allocator returned {data:#x} for {} bytes on {}, which is NULL or \
                 not a multiple of the alignment {}",
                request.bytes, request.device, request.alignment
            )));
        }
        let owner = SendPtr(Arc::into_raw(Arc::new(Installed { raw: self.raw })) as *mut Installed);
        let release = Box::new(move |uses: &[Use]| {
            let owner = owner;
            // SAFETY: owner came from Arc::into_raw above and is taken back once.
            let owner = unsafe { Arc::from_raw(owner.0) };
            let stream = ordered_stream(&request.device, uses);
            owner.give_back(data, &request, stream);
        });
        Ok(Allocation { data, release })
    }
}

/// The stream a free may be ordered on: tensorbridge's private free stream of the device, made
/// to wait (on the device) for every use of the memory. None when no GPU work is known, or when
/// ordering fails (the allocator then frees at once, after the device has finished the work).
fn ordered_stream(device: &Device, uses: &[Use]) -> Option<Stream> {
    if uses.is_empty() || !device.is_cuda() {
        return None;
    }
    crate::cuda::pool::free_stream_after(device.ordinal, uses).ok()
}

fn read_kind(device_type: i32) -> Result<DeviceType> {
    DeviceType::from_code(device_type)
}

/// Installs an application's allocator for every device of kind `device_type`
/// (`TB_DEVICE_CPU`, `TB_DEVICE_CUDA`, `TB_DEVICE_CUDA_HOST` or `TB_DEVICE_CUDA_MANAGED`): every
/// allocation tensorbridge makes for that kind afterwards (`tb_tensor_alloc`,
/// `tb_tensor_alloc_async`, `tb_tensor_clone`, staging-free copies) calls it. NULL restores the
/// built-in allocator. Memory already allocated goes back to the allocator that made it.
/// Thread-safe; an allocation running concurrently uses the old or the new allocator.
///
/// \param[in] device_type  the device kind, a `TbDeviceType` value.
/// \param[in] allocator    the allocator (copied), or NULL for the built-in one.
/// \retval TB_SUCCESS                 installed.
/// \retval TB_ERROR_INVALID_ARGUMENT  unknown device type, or a NULL callback.
/// \retval TB_ERROR_NOT_SUPPORTED     a DLPack device type tensorbridge does not support.
#[unsafe(no_mangle)]
pub extern "C" fn tb_allocator_set(device_type: i32, allocator: *const TbAllocator) -> TbStatus {
    boundary("tb_allocator_set", || {
        let kind = read_kind(device_type)?;
        if allocator.is_null() {
            crate::alloc::install(kind, None);
            return Ok(());
        }
        let raw = super::read_struct(allocator, "allocator")?;
        if raw.allocate.is_none() || raw.free.is_none() {
            return Err(Error::invalid_argument(
                "allocator->allocate and allocator->free may not be NULL",
            ));
        }
        crate::alloc::install(kind, Some(Arc::new(Installed { raw })));
        Ok(())
    })
}

/// Reports the allocator installed for `device_type`: `*installed` is true and `*out` holds it
/// when an application installed one (zeroed for one installed with
/// `tb_allocator_set_exchange_api`); false (and `*out` zeroed) when the built-in allocator is in
/// use.
///
/// \param[in] device_type  the device kind, a `TbDeviceType` value.
/// \param[out] out         receives the installed allocator, or zeroes.
/// \param[out] installed   receives whether an application's allocator is installed.
/// \retval TB_SUCCESS                 both outputs written.
/// \retval TB_ERROR_INVALID_ARGUMENT  a NULL output or an unknown device type.
/// \retval TB_ERROR_NOT_SUPPORTED     a DLPack device type tensorbridge does not support.
#[unsafe(no_mangle)]
pub extern "C" fn tb_allocator_get(
    device_type: i32,
    out: *mut TbAllocator,
    installed: *mut bool,
) -> TbStatus {
    boundary("tb_allocator_get", || {
        require_out(out, "out")?;
        require_out(installed, "installed")?;
        let kind = read_kind(device_type)?;
        let none = TbAllocator { context: std::ptr::null_mut(), allocate: None, free: None };
        let current = crate::alloc::installed_for(kind);
        // An allocator installed from a DLPack exchange API has no C callbacks to report.
        let raw = current
            .as_ref()
            .and_then(|allocator| allocator.as_any().downcast_ref::<Installed>())
            .map_or(none, |installed| installed.raw);
        write_out(out, raw, "out")?;
        write_out(installed, current.is_some(), "installed")
    })
}

/// Allocates a new tensor that owns its memory, ordered on `stream`: the allocation is
/// stream-ordered (from the device's memory pool, or the installed allocator), usable at once by
/// work on `stream`, and by other streams once `tb_tensor_sync` or a tensorbridge operation has
/// ordered them after it. The memory goes back after the last work tensorbridge knows of on it:
/// its own operations and every stream named to it (`tb_tensor_sync`, DLPack and CUDA Array
/// Interface exports); nothing blocks the host. Arguments otherwise as `tb_tensor_alloc`.
///
/// \param[in] device         where the memory lives.
/// \param[in] dtype          element type.
/// \param[in] rank           0 ≤ rank ≤ `TB_MAX_RANK`.
/// \param[in] shape          `rank` extents ≥ 0 (may be NULL when rank is 0).
/// \param[in] layout         labels such as `"NCHW"`, or NULL for none.
/// \param[in] row_alignment  0 (packed) or a power of two: rows start at multiples of it.
/// \param[in] stream         the `cudaStream_t` of the first use; NULL = legacy default stream.
///                           Ignored for `TB_DEVICE_CPU`.
/// \param[out] out           receives the new tensor (one reference); NULL on failure.
/// \retval TB_SUCCESS                 `*out` holds the tensor.
/// \retval TB_ERROR_INVALID_ARGUMENT  a bad shape, layout, alignment or device, or NULL `out`.
/// \retval TB_ERROR_NOT_SUPPORTED     an unsupported dtype or device type.
/// \retval TB_ERROR_OVERFLOW          the size does not fit int64.
/// \retval TB_ERROR_OUT_OF_MEMORY     the memory cannot be allocated (the message names the bytes
///                                    and the device).
/// \retval TB_ERROR_CUDA_UNAVAILABLE  a CUDA kind without a driver or GPU.
/// \retval TB_ERROR_CUDA              a driver call failed.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic), or an installed allocator returned
///                                    a NULL or misaligned pointer.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn tb_tensor_alloc_async(
    device: TbDevice,
    dtype: TbDataType,
    rank: i32,
    shape: *const i64,
    layout: *const c_char,
    row_alignment: i64,
    stream: *mut c_void,
    out: *mut *mut TbTensor,
) -> TbStatus {
    boundary("tb_tensor_alloc_async", || {
        let first_use = Some(Stream::from_handle(stream as u64));
        allocate_into(device, dtype, rank, shape, layout, row_alignment, first_use, out)
    })
}

/// The body of `tb_tensor_alloc` (`first_use` = None: usable on every stream at once) and
/// `tb_tensor_alloc_async`: reads the arguments, allocates, hands the tensor out.
#[allow(clippy::too_many_arguments)]
pub(crate) fn allocate_into(
    device: TbDevice,
    dtype: TbDataType,
    rank: i32,
    shape: *const i64,
    layout: *const c_char,
    row_alignment: i64,
    first_use: Option<Stream>,
    out: *mut *mut TbTensor,
) -> Result<()> {
    write_out(out, std::ptr::null_mut(), "out")?;
    let requirements = Requirements::compute(
        Device::from_raw(device)?,
        DataType::from_raw(dtype)?,
        &read_shape(rank, shape)?,
        read_layout_arg(layout)?,
        row_alignment,
    )?;
    let tensor = Tensor::allocate(requirements, first_use)?;
    write_out(out, handle::create(tensor)?, "out")
}

/// Gives the unused memory of device `ordinal`'s memory pool back to the driver, keeping at least
/// `keep_bytes` reserved, and frees the idle cached page-locked blocks. tensorbridge keeps freed
/// memory in the pool for reuse (it raises the pool's release threshold once); call this to
/// return it, e.g. before handing the GPU to another process. May wait for the device.
///
/// \param[in] ordinal     the CUDA device.
/// \param[in] keep_bytes  bytes the pool may keep.
/// \retval TB_SUCCESS                 trimmed.
/// \retval TB_ERROR_INVALID_ARGUMENT  no such device.
/// \retval TB_ERROR_CUDA_UNAVAILABLE  no driver or GPU.
/// \retval TB_ERROR_CUDA              a driver call failed.
#[unsafe(no_mangle)]
pub extern "C" fn tb_cuda_pool_trim(ordinal: i32, keep_bytes: u64) -> TbStatus {
    boundary("tb_cuda_pool_trim", || {
        crate::cuda::pinned::trim();
        crate::cuda::pool::trim(ordinal, usize::try_from(keep_bytes).unwrap_or(usize::MAX))
    })
}

/// Stores in `*bytes` how much of device `ordinal`'s memory pool is in use now — by tensorbridge
/// and by everyone sharing the pool (`cudaMallocAsync` users) — not counting freed memory kept
/// for reuse: a diagnostic for leak checks.
///
/// \param[in] ordinal  the CUDA device.
/// \param[out] bytes   receives the bytes in use.
/// \retval TB_SUCCESS                 `*bytes` written.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `bytes` or no such device.
/// \retval TB_ERROR_CUDA_UNAVAILABLE  no driver or GPU.
/// \retval TB_ERROR_CUDA              a driver call failed.
#[unsafe(no_mangle)]
pub extern "C" fn tb_cuda_pool_used_bytes(ordinal: i32, bytes: *mut u64) -> TbStatus {
    boundary("tb_cuda_pool_used_bytes", || {
        require_out(bytes, "bytes")?;
        write_out(bytes, crate::cuda::pool::used_bytes(ordinal)?, "bytes")
    })
}
