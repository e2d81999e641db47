//! DLPack's C exchange API (`DLPackExchangeAPI` of dlpack.h 1.3) under tb-prefixed names, and the
//! functions that consume a producer's table: a framework (PyTorch exposes it as the capsule
//! `torch.Tensor.__dlpack_c_exchange_api__`) hands tensorbridge its objects without any
//! Python-level `__dlpack__` call, and names its current work stream.
//!
//! The table's functions take `PyObject*` and, by the producer's contract, run with the Python
//! GIL held and report failures as a Python exception: call these functions with the GIL held
//! (from Python: through a `ctypes.PyDLL` function object, which also raises that exception).

use super::dlpack::{
    TbDLManagedTensorVersioned, TbDLPackVersion, TbDLTensor, call_deleter, import_versioned,
    read_dl_tensor,
};
use super::handle::{self, TbTensor};
use super::status::TbStatus;
use super::{boundary, read_layout_arg, read_struct, require_out, write_out};
use crate::alloc::{Allocation, Allocator, Request};
use crate::device::{Device, DeviceType, TbDevice};
use crate::dtype::DataType;
use crate::error::{Error, Result};
use crate::interop::dlpack::ImportFlags;
use crate::interop::exchange::{MAX_CHAIN, usable_version};
use crate::stream::Stream;
use crate::tensor::Tensor;
use std::ffi::{CStr, c_char, c_void};
use std::sync::Arc;

/// `DLPackExchangeAPIHeader`: the version of a table and, optionally, an older table.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TbDLPackExchangeAPIHeader {
    /// The DLPack version of this table.
    pub version: TbDLPackVersion,
    /// An older version of the table (NULL when none).
    pub prev_api: *mut TbDLPackExchangeAPIHeader,
}

/// The error callback given to `managed_tensor_allocator`: `kind` names the error (a Python
/// exception class name, e.g. "MemoryError"), `message` says what went wrong.
pub type TbDLPackSetError = Option<
    unsafe extern "C" fn(error_ctx: *mut c_void, kind: *const c_char, message: *const c_char),
>;

/// `DLPackManagedTensorAllocator`: allocates a new tensor like `prototype` (dtype, ndim, shape,
/// device); returns 0 and `*out`, or -1 after calling `set_error`.
pub type TbDLPackManagedTensorAllocator = Option<
    unsafe extern "C" fn(
        prototype: *mut TbDLTensor,
        out: *mut *mut TbDLManagedTensorVersioned,
        error_ctx: *mut c_void,
        set_error: TbDLPackSetError,
    ) -> i32,
>;

/// `DLPackManagedTensorFromPyObjectNoSync`: an owning DLPack tensor of a `PyObject*`; 0, or -1
/// with a Python exception set.
pub type TbDLPackManagedTensorFromPyObjectNoSync = Option<
    unsafe extern "C" fn(py_object: *mut c_void, out: *mut *mut TbDLManagedTensorVersioned) -> i32,
>;

/// `DLPackManagedTensorToPyObjectNoSync`: a `PyObject*` owning a DLPack tensor; 0, or -1 with a
/// Python exception set.
pub type TbDLPackManagedTensorToPyObjectNoSync = Option<
    unsafe extern "C" fn(
        tensor: *mut TbDLManagedTensorVersioned,
        out_py_object: *mut *mut c_void,
    ) -> i32,
>;

/// `DLPackDLTensorFromPyObjectNoSync`: a borrowed `DLTensor` of a `PyObject*`, valid while the
/// object lives and the caller has not returned to Python; 0, or -1 with a Python exception set.
pub type TbDLPackDLTensorFromPyObjectNoSync =
    Option<unsafe extern "C" fn(py_object: *mut c_void, out: *mut TbDLTensor) -> i32>;

/// `DLPackCurrentWorkStream`: the producer's current stream on a device (a `cudaStream_t`; NULL
/// is the legacy default stream); 0, or -1.
pub type TbDLPackCurrentWorkStream = Option<
    unsafe extern "C" fn(
        device_type: i32,
        device_id: i32,
        out_current_stream: *mut *mut c_void,
    ) -> i32,
>;

/// `DLPackExchangeAPI`: a producer's table, ABI-identical to dlpack.h 1.3 (cast a
/// `DLPackExchangeAPI*` to it). It lives as long as the process.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TbDLPackExchangeAPI {
    /// The table's version and the chain of older tables.
    pub header: TbDLPackExchangeAPIHeader,
    /// Allocates a tensor of the producer's (may be NULL).
    pub managed_tensor_allocator: TbDLPackManagedTensorAllocator,
    /// An owning DLPack tensor of a producer object.
    pub managed_tensor_from_py_object_no_sync: TbDLPackManagedTensorFromPyObjectNoSync,
    /// A producer object of a DLPack tensor.
    pub managed_tensor_to_py_object_no_sync: TbDLPackManagedTensorToPyObjectNoSync,
    /// A borrowed `DLTensor` of a producer object.
    pub dltensor_from_py_object_no_sync: TbDLPackDLTensorFromPyObjectNoSync,
    /// The producer's current work stream (may be NULL: the producer does not manage streams).
    pub current_work_stream: TbDLPackCurrentWorkStream,
}

/// The table of `api`'s chain that tensorbridge can use (major version 1). Runs on every import,
/// so the chain (at most `MAX_CHAIN` tables) is walked on the stack, without allocating.
fn resolve(api: *const TbDLPackExchangeAPI) -> Result<TbDLPackExchangeAPI> {
    let mut header = read_struct(api as *const TbDLPackExchangeAPIHeader, "api")?;
    let mut chain = [(header.version.major, header.version.minor); MAX_CHAIN];
    let mut tables = [api; MAX_CHAIN];
    let mut len = 1;
    while !header.prev_api.is_null() && len < MAX_CHAIN {
        let older = header.prev_api;
        // SAFETY: the producer's chain of tables, each starting with a header, lives forever.
        header = unsafe { older.read() };
        chain[len] = (header.version.major, header.version.minor);
        tables[len] = older as *const TbDLPackExchangeAPI;
        len += 1;
    }
    let index = usable_version(&chain[..len])?;
    // SAFETY: a major-1 table has the layout of TbDLPackExchangeAPI.
    Ok(unsafe { tables[index].read() })
}

/// The producer's current work stream on `device`, for ordering: `None` for host memory or a
/// producer without streams.
fn producer_stream(api: &TbDLPackExchangeAPI, device: Device) -> Result<Option<Stream>> {
    let Some(current) = api.current_work_stream.filter(|_| device.is_cuda()) else {
        return Ok(None);
    };
    let mut stream: *mut c_void = std::ptr::null_mut();
    // SAFETY: the producer's function, called as dlpack.h specifies.
    let status = unsafe { current(device.kind as i32, device.ordinal, &mut stream) };
    if status != 0 {
        return Err(Error::invalid_argument(format!(
            "the producer's current_work_stream failed for {device} (status {status})"
        )));
    }
    Ok(Some(Stream::from_handle(stream as u64)))
}

/// Records the producer's current stream as the memory's pending work (named: the producer's
/// later work there is its own), as a CUDA Array Interface import records its `stream`.
fn order_after_producer(tensor: &Tensor, api: &TbDLPackExchangeAPI) -> Result<()> {
    if let Some(stream) = producer_stream(api, tensor.device())? {
        tensor.storage().record_use(stream, true);
    }
    Ok(())
}

/// Imports a producer's Python object as a tensor that owns a DLPack tensor of it, zero-copy,
/// through the producer's exchange API table (`managed_tensor_from_py_object_no_sync`): no
/// Python-level `__dlpack__` call. The producer's current work stream on the tensor's device
/// (`current_work_stream`) is recorded as the memory's pending work, as for a CUDA Array
/// Interface `stream`: tensorbridge's operations on other streams wait for it on the device.
/// The managed tensor's deleter runs exactly once, when the last reference goes (also when the
/// import fails after the producer handed it over). Call with the Python GIL held.
///
/// \param[in] api        the producer's table (e.g. from `torch.Tensor.__dlpack_c_exchange_api__`);
///                       the first table of major version 1 in its chain is used.
/// \param[in] py_object  the producer's object, a `PyObject*` of the type the table came from.
/// \param[in] layout     labels such as `"NHWC"`, or NULL for none.
/// \param[out] out       receives the new tensor (one reference); NULL on failure.
/// \retval TB_SUCCESS                 `*out` holds the tensor.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `api`, `py_object` or `out`; the producer failed (its
///                                    Python exception is set); a bad layout or descriptor.
/// \retval TB_ERROR_NOT_SUPPORTED     no table of major version 1; a dtype or device tensorbridge
///                                    does not support.
/// \retval TB_ERROR_OVERFLOW          the descriptor's sizes do not fit int64.
/// \retval TB_ERROR_OUT_OF_MEMORY     the handle table is full.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_from_exchange_api(
    api: *const TbDLPackExchangeAPI,
    py_object: *mut c_void,
    layout: *const c_char,
    out: *mut *mut TbTensor,
) -> TbStatus {
    boundary("tb_tensor_from_exchange_api", || {
        write_out(out, std::ptr::null_mut(), "out")?;
        let api = resolve(api)?;
        let layout = read_layout_arg(layout)?;
        let object = super::require_ptr(py_object, "py_object")?;
        let convert = api.managed_tensor_from_py_object_no_sync.ok_or_else(|| {
            Error::not_supported("the producer's managed_tensor_from_py_object_no_sync is NULL")
        })?;
        let mut managed: *mut TbDLManagedTensorVersioned = std::ptr::null_mut();
        // SAFETY: the producer's function, called as dlpack.h specifies, with the GIL held.
        if unsafe { convert(object, &mut managed) } != 0 || managed.is_null() {
            return Err(Error::invalid_argument(
                "the producer's managed_tensor_from_py_object_no_sync failed (see its Python \
                 exception)",
            ));
        }
        let tensor = import_versioned(managed, layout).inspect_err(|_| {
            // The producer handed the managed tensor over: it is ours to give back, once.
            // SAFETY: managed is live and its deleter has not run.
            if let Some(deleter) = unsafe { (*managed).deleter } {
                // SAFETY: as above.
                unsafe { deleter(managed) };
            }
        })?;
        order_after_producer(&tensor, &api)?;
        write_out(out, handle::create(tensor)?, "out")
    })
}

/// Imports a producer's Python object as a tensor that **borrows** its memory, through the
/// producer's `dltensor_from_py_object_no_sync` (no allocation by the producer, about half the
/// cost of `tb_tensor_from_exchange_api`). The tensor is valid only while `py_object` lives and
/// is not resized: release it before returning control to Python code that may drop or change
/// the object — the pattern of an operation on framework tensors (import, operate, release).
/// The producer's current work stream is recorded as for `tb_tensor_from_exchange_api`. Call
/// with the Python GIL held.
///
/// \param[in] api        the producer's table.
/// \param[in] py_object  the producer's object (`PyObject*`), kept alive by the caller.
/// \param[in] layout     labels such as `"NHWC"`, or NULL for none.
/// \param[out] out       receives the new tensor (one reference); NULL on failure.
/// \retval TB_SUCCESS                 `*out` holds the tensor.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `api`, `py_object` or `out`; the producer failed (its
///                                    Python exception is set); a bad layout or descriptor.
/// \retval TB_ERROR_NOT_SUPPORTED     no table of major version 1; an unsupported dtype/device.
/// \retval TB_ERROR_OVERFLOW          the descriptor's sizes do not fit int64.
/// \retval TB_ERROR_OUT_OF_MEMORY     the handle table is full.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_from_exchange_api_borrowed(
    api: *const TbDLPackExchangeAPI,
    py_object: *mut c_void,
    layout: *const c_char,
    out: *mut *mut TbTensor,
) -> TbStatus {
    boundary("tb_tensor_from_exchange_api_borrowed", || {
        write_out(out, std::ptr::null_mut(), "out")?;
        let api = resolve(api)?;
        let layout = read_layout_arg(layout)?;
        let object = super::require_ptr(py_object, "py_object")?;
        let describe = api.dltensor_from_py_object_no_sync.ok_or_else(|| {
            Error::not_supported("the producer's dltensor_from_py_object_no_sync is NULL")
        })?;
        // SAFETY: all-zero is a valid (empty) DLTensor to be overwritten.
        let mut dl_tensor: TbDLTensor = unsafe { std::mem::zeroed() };
        // SAFETY: the producer's function, called as dlpack.h specifies, with the GIL held.
        if unsafe { describe(object, &mut dl_tensor) } != 0 {
            return Err(Error::invalid_argument(
                "the producer's dltensor_from_py_object_no_sync failed (see its Python exception)",
            ));
        }
        let fields = read_dl_tensor(&dl_tensor, ImportFlags::default())?;
        let tensor = Tensor::adopt(fields.into_desc(layout)?, None)?;
        order_after_producer(&tensor, &api)?;
        write_out(out, handle::create(tensor)?, "out")
    })
}

/// Stores in `*stream` the producer's current work stream on `device` (through the table's
/// `current_work_stream`): where a consumer following the producer's stream discipline enqueues
/// its work. NULL (the legacy default stream) when the producer does not manage streams or the
/// device is not a CUDA device. Call with the Python GIL held.
///
/// \param[in] api      the producer's table.
/// \param[in] device   the device.
/// \param[out] stream  receives the `cudaStream_t` (NULL = legacy default stream).
/// \retval TB_SUCCESS                 `*stream` written.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL argument, bad device, or the producer's function failed.
/// \retval TB_ERROR_NOT_SUPPORTED     no table of major version 1; an unsupported device type.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_exchange_api_current_stream(
    api: *const TbDLPackExchangeAPI,
    device: TbDevice,
    stream: *mut *mut c_void,
) -> TbStatus {
    boundary("tb_exchange_api_current_stream", || {
        require_out(stream, "stream")?;
        let api = resolve(api)?;
        let found = producer_stream(&api, Device::from_raw(device)?)?;
        let raw = found.filter(|s| *s != Stream::LEGACY).map_or(0, |s| s.0);
        write_out(stream, raw as *mut c_void, "stream")
    })
}

/// Where an exchange-API allocator's error lands.
struct ErrorSlot {
    text: String,
}

unsafe extern "C" fn collect_error(
    error_ctx: *mut c_void,
    kind: *const c_char,
    message: *const c_char,
) {
    let text = |ptr: *const c_char| match ptr.is_null() {
        true => String::new(),
        // SAFETY: the producer passes NUL-terminated strings.
        false => unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned(),
    };
    let record = || {
        // SAFETY: error_ctx is the ErrorSlot passed to the allocator call below, alive during it.
        let slot = unsafe { &mut *(error_ctx as *mut ErrorSlot) };
        slot.text = format!("{}: {}", text(kind), text(message));
    };
    // Called by the producer's C code: nothing may unwind into it.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(record));
}

/// A producer's `managed_tensor_allocator` as a tensorbridge allocator: each request becomes a
/// one-dimensional uint8 tensor of the producer's on the device; its deleter gives it back.
struct ExchangeAllocator {
    allocate: unsafe extern "C" fn(
        *mut TbDLTensor,
        *mut *mut TbDLManagedTensorVersioned,
        *mut c_void,
        TbDLPackSetError,
    ) -> i32,
}

impl Allocator for ExchangeAllocator {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn allocate(&self, request: &Request) -> Result<Allocation> {
        let mut shape = [request.bytes.max(1)];
        let mut strides = [1i64];
        let mut prototype = TbDLTensor {
            data: std::ptr::null_mut(),
            device: request.device.to_raw(),
            ndim: 1,
            dtype: DataType::U8.to_raw(),
            shape: shape.as_mut_ptr(),
            strides: strides.as_mut_ptr(),
            byte_offset: 0,
        };
        let mut managed: *mut TbDLManagedTensorVersioned = std::ptr::null_mut();
        let mut slot = ErrorSlot { text: String::new() };
        // SAFETY: the producer's allocator, called as dlpack.h specifies; the prototype's arrays
        // and the error slot outlive the call.
        let status = unsafe {
            (self.allocate)(
                &mut prototype,
                &mut managed,
                &mut slot as *mut ErrorSlot as *mut c_void,
                Some(collect_error),
            )
        };
        if status != 0 || managed.is_null() {
            return Err(Error::out_of_memory(format!(
                "the producer's managed_tensor_allocator could not allocate {} bytes on {}: {}",
                request.bytes, request.device, slot.text
            )));
        }
        // SAFETY: the producer returned a live managed tensor.
        let (dl, deleter) = unsafe { ((*managed).dl_tensor, (*managed).deleter) };
        let data = (dl.data as u64).wrapping_add(dl.byte_offset);
        let release = call_deleter(managed, deleter);
        if !data.is_multiple_of(request.alignment as u64) {
            release(&[]);
            return Err(Error::internal(format!(
                "the producer's allocator returned {data:#x}, not a multiple of {}",
                request.alignment
            )));
        }
        Ok(Allocation { data, release })
    }
}

/// Installs a producer's `managed_tensor_allocator` as tensorbridge's allocator for every device
/// of kind `device_type`, so tensorbridge's outputs are allocated by the framework that will
/// consume them (PyTorch's caching allocator, say). Memory goes back through the producer's
/// deleter. Frees are not stream-ordered by the producer: tensorbridge waits for nothing, the
/// producer's allocator orders reuse after its own stream. `tb_allocator_set(device_type, NULL)`
/// restores the built-in allocator. Allocations may then call into the producer, which may need
/// the Python GIL: allocate from threads that hold it or that the producer allows.
///
/// \param[in] device_type  the device kind, a `TbDeviceType` value.
/// \param[in] api          the producer's table; its allocator may not be NULL.
/// \retval TB_SUCCESS                 installed.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `api`, or an unknown device type.
/// \retval TB_ERROR_NOT_SUPPORTED     no table of major version 1, no allocator in it, or an
///                                    unsupported device type.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_allocator_set_exchange_api(
    device_type: i32,
    api: *const TbDLPackExchangeAPI,
) -> TbStatus {
    boundary("tb_allocator_set_exchange_api", || {
        let kind = DeviceType::from_code(device_type)?;
        let api = resolve(api)?;
        let allocate = api.managed_tensor_allocator.ok_or_else(|| {
            Error::not_supported("the producer's managed_tensor_allocator is NULL")
        })?;
        crate::alloc::install(kind, Some(Arc::new(ExchangeAllocator { allocate })));
        Ok(())
    })
}

/// The Python callable that makes a `tensorbridge.Tensor` of a handle (set by the Python package).
static TENSOR_FACTORY: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The library handle of a `tensorbridge.Tensor` object (its `_handle` attribute).
///
/// # Safety
/// The GIL is held and `py_object` is a live `PyObject*`.
unsafe fn handle_of(py_object: *mut c_void) -> Result<*const TbTensor> {
    let python = super::python::python()?;
    // SAFETY: contract.
    match unsafe { python.unsigned_attribute(py_object, c"_handle") } {
        Some(handle) if handle != 0 => Ok(handle as usize as *const TbTensor),
        _ => Err(Error::invalid_argument("the object is not a live tensorbridge.Tensor")),
    }
}

/// Runs an offered function's body: a failure becomes -1 with a Python `BufferError` naming it
/// (and the library's thread-local message), never an unwind into the consumer.
fn offered(function: &str, body: impl FnOnce() -> Result<()>) -> i32 {
    match boundary(function, body) {
        TbStatus::TB_SUCCESS => 0,
        _ => {
            if let Ok(python) = super::python::python() {
                // SAFETY: offered functions run with the GIL held (the exchange API's contract).
                let message = unsafe { CStr::from_ptr(super::last_error_ptr()) };
                // SAFETY: as above.
                unsafe { python.set_buffer_error(&message.to_string_lossy()) };
            }
            -1
        }
    }
}

unsafe extern "C" fn offer_managed_from_py(
    py_object: *mut c_void,
    out: *mut *mut TbDLManagedTensorVersioned,
) -> i32 {
    offered("managed_tensor_from_py_object_no_sync", || {
        require_out(out, "out")?;
        // SAFETY: the consumer holds the GIL and passes a live object.
        let handle = unsafe { handle_of(py_object)? };
        let tensor = handle::clone_arc(handle, "tensor")?;
        write_out(out, super::dlpack::managed_versioned(&tensor, 0)?, "out")
    })
}

unsafe extern "C" fn offer_dltensor_from_py(py_object: *mut c_void, out: *mut TbDLTensor) -> i32 {
    offered("dltensor_from_py_object_no_sync", || {
        require_out(out, "out")?;
        // SAFETY: the consumer holds the GIL and passes a live object.
        let handle = unsafe { handle_of(py_object)? };
        let strides_in_elements = |tensor: &Tensor| {
            crate::interop::dlpack::DlTensorFields::describe(tensor)
                .map(|fields| fields.strides.unwrap_or_default().to_vec())
        };
        // The shape and the element strides live as long as the handle, which the object holds.
        let (tensor, strides) = handle::with_element_strides(handle, strides_in_elements)?;
        if tensor.dtype().is_padded_sub_byte() {
            // A bare DLTensor has no flags: its consumer would read the elements packed.
            return Err(Error::not_supported(format!(
                "a bare DLTensor cannot say that {} elements are padded (its consumer would read \
                 them packed); take a versioned managed tensor, which sets \
                 TB_DLPACK_FLAG_IS_SUBBYTE_TYPE_PADDED",
                tensor.dtype()
            )));
        }
        let described = TbDLTensor {
            data: tensor.data() as *mut c_void,
            device: tensor.device().to_raw(),
            ndim: tensor.rank() as i32,
            dtype: tensor.dtype().to_raw(),
            shape: tensor.shape().as_ptr() as *mut i64,
            strides: strides as *mut i64,
            byte_offset: 0,
        };
        write_out(out, described, "out")
    })
}

unsafe extern "C" fn offer_managed_to_py(
    managed: *mut TbDLManagedTensorVersioned,
    out_py_object: *mut *mut c_void,
) -> i32 {
    offered("managed_tensor_to_py_object_no_sync", || {
        require_out(out_py_object, "out_py_object")?;
        let managed = super::require_ptr(managed, "tensor")?;
        let factory = TENSOR_FACTORY.load(std::sync::atomic::Ordering::Acquire);
        if factory == 0 {
            return Err(Error::not_supported("the tensorbridge Python package is not loaded"));
        }
        let python = super::python::python()?;
        let handle = handle::create(import_versioned(managed, crate::layout::Layout::NONE)?)?;
        // SAFETY: the consumer holds the GIL; the factory is a live callable kept by the library.
        let object = unsafe { python.call_with_unsigned(factory as *mut c_void, handle as u64) };
        if object.is_null() {
            // The managed tensor is the new handle's now: releasing it runs its deleter once.
            let _ = handle::release(handle);
            return Err(Error::internal(
                "making a tensorbridge.Tensor failed (see the Python error)",
            ));
        }
        write_out(out_py_object, object, "out_py_object")
    })
}

unsafe extern "C" fn offer_allocator(
    prototype: *mut TbDLTensor,
    out: *mut *mut TbDLManagedTensorVersioned,
    error_ctx: *mut c_void,
    set_error: TbDLPackSetError,
) -> i32 {
    let status = boundary("managed_tensor_allocator", || {
        require_out(out, "out")?;
        let raw = read_struct(prototype as *const TbDLTensor, "prototype")?;
        let shape = super::read_shape(raw.ndim, raw.shape)?;
        let requirements = crate::tensor::Requirements::compute(
            Device::from_raw(raw.device)?,
            DataType::from_raw(raw.dtype)?,
            &shape,
            crate::layout::Layout::NONE,
            0,
        )?;
        let tensor = Tensor::allocate(requirements, None)?;
        write_out(out, super::dlpack::managed_versioned(&tensor, 0)?, "out")
    });
    if status == TbStatus::TB_SUCCESS {
        return 0;
    }
    if let Some(set_error) = set_error {
        let kind = match status {
            TbStatus::TB_ERROR_OUT_OF_MEMORY => c"MemoryError",
            _ => c"ValueError",
        };
        // SAFETY: the consumer's error callback, given its context; the message is the thread's.
        unsafe { set_error(error_ctx, kind.as_ptr(), super::last_error_ptr()) };
    }
    -1
}

unsafe extern "C" fn offer_current_stream(
    _device_type: i32,
    _device_id: i32,
    out_current_stream: *mut *mut c_void,
) -> i32 {
    // tensorbridge has no ambient stream: its default is the legacy default stream (NULL).
    if out_current_stream.is_null() {
        return -1;
    }
    // SAFETY: non-null out-pointer from the consumer.
    unsafe { out_current_stream.write(std::ptr::null_mut()) };
    0
}

/// The table tensorbridge offers, for the life of the process.
struct Offered(TbDLPackExchangeAPI);

// SAFETY: immutable function pointers and a NULL chain.
unsafe impl Sync for Offered {}

static OFFERED: Offered = Offered(TbDLPackExchangeAPI {
    header: TbDLPackExchangeAPIHeader {
        version: TbDLPackVersion {
            major: crate::interop::dlpack::TB_DLPACK_MAJOR_VERSION,
            minor: crate::interop::exchange::TB_DLPACK_EXCHANGE_API_MINOR_VERSION,
        },
        prev_api: std::ptr::null_mut(),
    },
    managed_tensor_allocator: Some(offer_allocator),
    managed_tensor_from_py_object_no_sync: Some(offer_managed_from_py),
    managed_tensor_to_py_object_no_sync: Some(offer_managed_to_py),
    dltensor_from_py_object_no_sync: Some(offer_dltensor_from_py),
    current_work_stream: Some(offer_current_stream),
});

/// tensorbridge's own exchange API table (DLPack 1.3), valid for the life of the process: its
/// functions take `tensorbridge.Tensor` Python objects, so consumers that support the C
/// exchange API (PyTorch's `from_dlpack`, tvm-ffi, C extensions) convert tensorbridge tensors
/// without a Python-level call. The Python package attaches it to `tensorbridge.Tensor` as the
/// capsule `__dlpack_c_exchange_api__` (named "dlpack_exchange_api"). Its allocator allocates
/// tensorbridge tensors (usable on every stream); its current work stream is the legacy default
/// stream (NULL), tensorbridge's default. Functions taking Python objects must be called with
/// the GIL held, in a process where the package is loaded.
///
/// \return the table; never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn tb_dlpack_exchange_api() -> *const TbDLPackExchangeAPI {
    &OFFERED.0
}

/// Registers the Python callable that makes a `tensorbridge.Tensor` from a handle (an int), used
/// by the offered table's `managed_tensor_to_py_object_no_sync`. Called once by the Python
/// package at import, with the GIL held; the library keeps a reference for the process's life.
///
/// \param[in] factory  a `PyObject*` callable: `factory(handle) -> tensorbridge.Tensor`.
/// \retval TB_SUCCESS                 registered.
/// \retval TB_ERROR_INVALID_ARGUMENT  `factory` is NULL.
/// \retval TB_ERROR_NOT_SUPPORTED     not a Python process.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_dlpack_exchange_api_set_tensor_factory(factory: *mut c_void) -> TbStatus {
    boundary("tb_dlpack_exchange_api_set_tensor_factory", || {
        let factory = super::require_ptr(factory, "factory")?;
        let python = super::python::python()?;
        // SAFETY: the caller holds the GIL and passes a live callable, kept forever.
        unsafe { python.keep(factory) };
        TENSOR_FACTORY.store(factory as usize, std::sync::atomic::Ordering::Release);
        Ok(())
    })
}
