//! DLPack structs (ABI-identical to dlpack.h 1.x, under tb-prefixed names so this header never
//! clashes with a user's dlpack.h) and the import/export functions of the C ABI.

use super::handle::{self, TbTensor};
use super::{
    SendPtr, boundary, read_dims, read_layout_arg, read_shape, require_out, require_ptr, write_out,
};
use crate::device::TbDevice;
use crate::dims::Dims;
use crate::dtype::TbDataType;
use crate::error::{Error, Result};
use crate::ffi::status::TbStatus;
use crate::interop::dlpack::{
    DlTensorFields, ImportFlags, TB_DLPACK_MAJOR_VERSION, TB_DLPACK_MINOR_VERSION,
    check_import_version, export_flags,
};
use crate::layout::Layout;
use crate::storage::ReleaseFn;
use crate::tensor::Tensor;
use std::collections::HashSet;
use std::ffi::{c_char, c_void};
use std::sync::{Mutex, OnceLock};

/// `DLDevice`: identical to `TbDevice` (DLPack device type codes + ordinal).
pub type TbDLDevice = TbDevice;
/// `DLDataType`: identical to `TbDataType` (code, bits, lanes).
pub type TbDLDataType = TbDataType;

/// `DLTensor`: a borrowed view of memory. `strides` count **elements** (not bytes) and may be
/// NULL for a compact row-major tensor on import; tensorbridge always fills them on export.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TbDLTensor {
    /// Opaque data pointer; the first element is at `data + byte_offset`.
    pub data: *mut c_void,
    /// Where the memory lives.
    pub device: TbDLDevice,
    /// Number of dimensions (0 to `TB_MAX_RANK` on import).
    pub ndim: i32,
    /// Element type.
    pub dtype: TbDLDataType,
    /// `ndim` extents; may be NULL only when `ndim` is 0.
    pub shape: *mut i64,
    /// `ndim` strides in elements, or NULL for compact row-major.
    pub strides: *mut i64,
    /// Offset in bytes from `data` to the first element.
    pub byte_offset: u64,
}

/// `DLManagedTensor` (legacy, unversioned): a `DLTensor` plus its owner's deleter.
#[repr(C)]
#[derive(Debug)]
pub struct TbDLManagedTensor {
    /// The tensor.
    pub dl_tensor: TbDLTensor,
    /// The producer's context for `deleter`.
    pub manager_ctx: *mut c_void,
    /// Frees the tensor and its memory; called exactly once by the consumer. May be NULL.
    pub deleter: Option<unsafe extern "C" fn(managed: *mut TbDLManagedTensor)>,
}

/// `DLPackVersion`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TbDLPackVersion {
    /// Major version; a consumer refuses a major version newer than its own.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
}

/// `DLManagedTensorVersioned` (DLPack ≥ 1.0). `version` comes first and is read before anything
/// else, so a consumer can refuse a newer major version without reading past it.
#[repr(C)]
#[derive(Debug)]
pub struct TbDLManagedTensorVersioned {
    /// The DLPack version of this struct.
    pub version: TbDLPackVersion,
    /// The producer's context for `deleter`.
    pub manager_ctx: *mut c_void,
    /// Frees the tensor and its memory; called exactly once by the consumer. May be NULL.
    pub deleter: Option<unsafe extern "C" fn(managed: *mut TbDLManagedTensorVersioned)>,
    /// `TB_DLPACK_FLAG_*` bits.
    pub flags: u64,
    /// The tensor.
    pub dl_tensor: TbDLTensor,
}

/// The fields of a producer's `DLTensor`, in the form tensorbridge holds (packed float4 viewed
/// as `float4_e2m1fn_x2` pairs; see `DlTensorFields::sub_byte_resolved`).
pub(crate) fn read_dl_tensor(raw: &TbDLTensor, flags: ImportFlags) -> Result<DlTensorFields> {
    let shape = read_shape(raw.ndim, raw.shape)?;
    let strides = match raw.strides.is_null() {
        true => None,
        false => Some(read_dims(raw.strides, shape.len(), "dl_tensor.strides")?),
    };
    DlTensorFields {
        data: raw.data as u64,
        device: raw.device,
        dtype: raw.dtype,
        shape,
        strides,
        byte_offset: raw.byte_offset,
        readonly: flags.readonly,
    }
    .sub_byte_resolved(flags.padded)
}

/// The release action of an imported managed tensor: its producer's deleter (if any), once.
pub(crate) fn call_deleter<T: 'static>(
    managed: *mut T,
    deleter: Option<unsafe extern "C" fn(*mut T)>,
) -> ReleaseFn {
    let owned = SendPtr(managed);
    Box::new(move |_: &[crate::storage::Use]| {
        let owned = owned;
        if let Some(deleter) = deleter {
            // SAFETY: the producer's deleter, called once for the tensor it was given with.
            unsafe { deleter(owned.0) }
        }
    })
}

fn import(
    fields: DlTensorFields,
    layout: *const c_char,
    release: ReleaseFn,
    out: *mut *mut TbTensor,
) -> Result<()> {
    let desc = fields.into_desc(read_layout_arg(layout)?)?;
    write_out(out, handle::create_adopted(Tensor::adopt(desc, Some(release))?)?, "out")
}

/// Imports a legacy `DLManagedTensor` without copying. On success the tensor owns `managed`:
/// its `deleter` (if not NULL) runs exactly once, when the last reference to the memory goes. On
/// failure ownership stays with the caller (the deleter is not called) and `*out` is NULL.
/// NULL strides mean compact; `byte_offset` is honoured; CPU, CUDA, CUDA host and CUDA managed
/// devices are accepted; lanes ≠ 1 (but for `float4_e2m1fn_x2`) and unknown dtype codes are
/// refused. `layout` may be NULL. Sub-byte elements are packed here (this struct has no flags):
/// `float4_e2m1fn_x2` (code 17, bits 4, lanes 2; PyTorch's `torch.float4_e2m1fn_x2`) is taken
/// as is; packed float4 of lanes 1 becomes a `float4_e2m1fn_x2` view of the same bytes with the
/// last extent halved (refused where a pair would straddle bytes: an odd last extent, a last
/// stride other than 1, an odd other stride, rank 0); packed float6 is refused.
///
/// \param[in] managed  the producer's managed tensor; not NULL. Owned by the new tensor on success
///                     (its deleter runs once, later); still the caller's on failure.
/// \param[in] layout   NUL-terminated labels, one per dimension, or NULL / `""` for none.
/// \param[out] out     receives the new tensor, holding one reference; set to NULL on failure; not
///                     NULL.
/// \retval TB_SUCCESS                 `*out` holds the new tensor, which owns `managed`.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `managed` or `out`; `ndim` out of range; NULL `shape`
///                                    with `ndim` above 0; a negative extent; NULL data with
///                                    elements; data or strides misaligned for the dtype;
///                                    overlapping elements in a writable tensor (this struct cannot
///                                    say read-only, so zero strides are refused); an unknown
///                                    device type, a negative ordinal or a CPU ordinal other than
///                                    0; a malformed `layout` or one whose label count is not
///                                    `ndim`.
/// \retval TB_ERROR_NOT_SUPPORTED     a device type other than CPU, CUDA, CUDA host and CUDA
///                                    managed; an unsupported dtype (lanes ≠ 1 but for
///                                    float4_e2m1fn_x2, unknown code or bits); packed float6;
///                                    packed float4 that cannot be viewed as pairs.
/// \retval TB_ERROR_OVERFLOW          `byte_offset`, a stride in bytes, the element count or the
///                                    byte span does not fit int64 or the address space.
/// \retval TB_ERROR_OUT_OF_MEMORY     the handle table is full (4 Mi live handles).
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_from_dlpack(
    managed: *mut TbDLManagedTensor,
    layout: *const c_char,
    out: *mut *mut TbTensor,
) -> TbStatus {
    boundary("tb_tensor_from_dlpack", || {
        write_out(out, std::ptr::null_mut(), "out")?;
        let managed = require_ptr(managed, "managed")?;
        // SAFETY: non-null; the C contract says it points to a DLManagedTensor.
        let (dl_tensor, deleter) = unsafe { ((*managed).dl_tensor, (*managed).deleter) };
        let fields = read_dl_tensor(&dl_tensor, ImportFlags::default())?;
        import(fields, layout, call_deleter(managed, deleter), out)
    })
}

/// Imports a `DLManagedTensorVersioned` without copying, with the ownership rules of
/// `tb_tensor_from_dlpack`. A major version above `TB_DLPACK_MAJOR_VERSION` is refused
/// (`TB_ERROR_NOT_SUPPORTED`) after reading only `version`. The `TB_DLPACK_FLAG_READ_ONLY` flag
/// makes a read-only tensor. With `TB_DLPACK_FLAG_IS_SUBBYTE_TYPE_PADDED`, float6/float4 of
/// lanes 1 are taken padded, one element per byte. Without it they are packed, as for
/// `tb_tensor_from_dlpack`: packed float4 becomes a `float4_e2m1fn_x2` view (last extent halved)
/// or is refused, packed float6 is refused. `float4_e2m1fn_x2` (lanes 2, PyTorch's form) is
/// taken without the flag and refused with it (a pair fills its byte; the flag would describe a
/// layout DLPack does not define).
///
/// \param[in] managed  the producer's managed tensor; not NULL. Owned by the new tensor on success
///                     (its deleter runs once, later); still the caller's on failure.
/// \param[in] layout   NUL-terminated labels, one per dimension, or NULL / `""` for none.
/// \param[out] out     receives the new tensor, holding one reference; set to NULL on failure; not
///                     NULL.
/// \retval TB_SUCCESS                 `*out` holds the new tensor, which owns `managed`.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `managed` or `out`; a 0.x `version`; `ndim` out of
///                                    range; NULL `shape` with `ndim` above 0; a negative extent;
///                                    NULL data with elements; data or strides misaligned for the
///                                    dtype; overlapping elements in a writable tensor (one without
///                                    `TB_DLPACK_FLAG_READ_ONLY`); an unknown device type, a
///                                    negative ordinal or a CPU ordinal other than 0; a malformed
///                                    `layout` or one whose label count is not `ndim`.
/// \retval TB_ERROR_NOT_SUPPORTED     a major version above `TB_DLPACK_MAJOR_VERSION`; packed
///                                    float6, or packed float4 that cannot be viewed as pairs (no
///                                    padded flag); float4_e2m1fn_x2 with the padded flag; a
///                                    device type other than CPU, CUDA, CUDA host and CUDA
///                                    managed; an unsupported dtype (lanes ≠ 1 but for
///                                    float4_e2m1fn_x2, unknown code or bits).
/// \retval TB_ERROR_OVERFLOW          `byte_offset`, a stride in bytes, the element count or the
///                                    byte span does not fit int64 or the address space.
/// \retval TB_ERROR_OUT_OF_MEMORY     the handle table is full (4 Mi live handles).
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_from_dlpack_versioned(
    managed: *mut TbDLManagedTensorVersioned,
    layout: *const c_char,
    out: *mut *mut TbTensor,
) -> TbStatus {
    boundary("tb_tensor_from_dlpack_versioned", || {
        write_out(out, std::ptr::null_mut(), "out")?;
        let managed = require_ptr(managed, "managed")?;
        // The version is judged before anything else is read, the layout argument included.
        // SAFETY: non-null; every DLPack version starts with DLPackVersion.
        let version = unsafe { (*managed).version };
        check_import_version(version.major, version.minor)?;
        let tensor = import_versioned(managed, read_layout_arg(layout)?)?;
        write_out(out, handle::create_adopted(tensor)?, "out")
    })
}

/// A tensor owning `managed` (not NULL): its deleter runs once when the last reference goes; on
/// failure the deleter is not called and `managed` stays the caller's.
pub(crate) fn import_versioned(
    managed: *mut TbDLManagedTensorVersioned,
    layout: Layout,
) -> Result<Tensor> {
    // SAFETY: non-null (caller); every DLPack version starts with DLPackVersion, so reading it
    // is valid whatever the producer's version.
    let version = unsafe { (*managed).version };
    check_import_version(version.major, version.minor)?;
    // SAFETY: a 1.x struct, whose layout TbDLManagedTensorVersioned matches.
    let (flags, dl_tensor, deleter) =
        unsafe { ((*managed).flags, (*managed).dl_tensor, (*managed).deleter) };
    let fields = read_dl_tensor(&dl_tensor, ImportFlags::of(flags))?;
    Tensor::adopt(fields.into_desc(layout)?, Some(call_deleter(managed, deleter)))
}

/// What an exported managed tensor owns: a reference to the source tensor (keeping its memory
/// alive) and the shape/strides arrays its `DLTensor` points into.
struct ExportContext {
    _tensor: Tensor,
    shape: Dims,
    strides: Dims,
}

/// Addresses of exported managed tensors whose deleter has not run yet: a second call of a
/// deleter (a consumer bug) is then ignored instead of freeing twice (see `QUARANTINE` for why
/// the address cannot have been reused by then).
fn exported() -> std::sync::MutexGuard<'static, HashSet<usize>> {
    static LIVE: OnceLock<Mutex<HashSet<usize>>> = OnceLock::new();
    LIVE.get_or_init(Default::default).lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn export_context(tensor: &Tensor) -> Result<(Box<ExportContext>, TbDLTensor)> {
    let fields = DlTensorFields::describe(tensor)?;
    let mut context = Box::new(ExportContext {
        _tensor: tensor.clone(),
        shape: fields.shape,
        strides: fields.strides.unwrap_or_default(),
    });
    let dl_tensor = TbDLTensor {
        data: fields.data as *mut c_void,
        device: fields.device,
        ndim: context.shape.len() as i32,
        dtype: fields.dtype,
        shape: context.shape.as_mut_ptr(),
        strides: context.strides.as_mut_ptr(),
        byte_offset: fields.byte_offset,
    };
    Ok((context, dl_tensor))
}

/// Runs a deleter body once per exported address, never unwinding into C.
fn delete_once(address: usize, body: impl FnOnce()) {
    if !exported().remove(&address) {
        return;
    }
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
}

/// The managed-tensor structs tensorbridge exports, both holding a boxed ExportContext.
trait Exported {
    fn manager_ctx(&self) -> *mut c_void;
}

impl Exported for TbDLManagedTensor {
    fn manager_ctx(&self) -> *mut c_void {
        self.manager_ctx
    }
}

impl Exported for TbDLManagedTensorVersioned {
    fn manager_ctx(&self) -> *mut c_void {
        self.manager_ctx
    }
}

/// Deleted managed-tensor structs whose memory is not given back yet (oldest first), with the
/// function that frees each: an address is reused by the allocator only after this many later
/// deletions, so a consumer's repeated deleter call finds its address gone from `exported()` and
/// is ignored, instead of freeing a newer export that landed at the same address.
const QUARANTINE: usize = 4096;

type Quarantined = (usize, unsafe fn(usize));

fn quarantine() -> std::sync::MutexGuard<'static, std::collections::VecDeque<Quarantined>> {
    static HELD: Mutex<std::collections::VecDeque<Quarantined>> =
        Mutex::new(std::collections::VecDeque::new());
    HELD.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Frees a managed-tensor struct of type `T` at `address`.
///
/// # Safety
/// `address` came from `Box::into_raw` of a `T` whose deleter has run; it is freed once.
unsafe fn free_struct<T>(address: usize) {
    // SAFETY: contract.
    drop(unsafe { Box::from_raw(address as *mut T) });
}

/// The deleter of every export: frees the context (releasing the tensor) at once, and the struct
/// after the quarantine, once.
unsafe extern "C" fn delete_export<T: Exported>(managed: *mut T) {
    delete_once(managed as usize, || {
        // SAFETY: managed came from Box::into_raw in tb_tensor_to_dlpack[_versioned] and is live
        // (delete_once); manager_ctx came from Box::into_raw of an ExportContext, freed once.
        drop(unsafe { Box::from_raw((*managed).manager_ctx() as *mut ExportContext) });
        let expired = {
            let mut held = quarantine();
            held.push_back((managed as usize, free_struct::<T>));
            if held.len() > QUARANTINE { held.pop_front() } else { None }
        };
        if let Some((address, free)) = expired {
            // SAFETY: a quarantined struct, deleted long ago, freed once.
            unsafe { free(address) };
        }
    });
}

/// Exports `tensor` as a legacy `DLManagedTensor` sharing its memory. The managed tensor holds
/// a reference that keeps the memory alive until its `deleter` runs; the consumer calls
/// `deleter` exactly once (a repeated call is ignored). Strides are always present, in elements;
/// a byte stride that is not a multiple of the item size fails with `TB_ERROR_NOT_SUPPORTED`.
/// The legacy struct has no read-only flag, so a consumer would take a read-only tensor as
/// writable: a read-only tensor is refused (`TB_ERROR_READ_ONLY`, as NumPy does); export it with
/// `tb_tensor_to_dlpack_versioned`, which sets `TB_DLPACK_FLAG_READ_ONLY`. `float4_e2m1fn_x2`
/// exports as PyTorch does (code 17, bits 4, lanes 2); padded float6/float4 (lanes 1) cannot be
/// marked padded here and are refused. Stream order: call
/// `tb_tensor_sync(tensor, consumer_stream)` first when the consumer works on a stream of its own.
///
/// \param[in] tensor  a live tensor handle; the export holds its own reference.
/// \param[out] out    receives the `DLManagedTensor`; the consumer calls its deleter once; not
///                    NULL; unchanged on failure.
/// \retval TB_SUCCESS                 `*out` written.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `out`, or a NULL or released `tensor`.
/// \retval TB_ERROR_NOT_SUPPORTED     a byte stride DLPack cannot express (not whole elements); a
///                                    sub-byte dtype (the legacy struct cannot mark it padded: use
///                                    `tb_tensor_to_dlpack_versioned`).
/// \retval TB_ERROR_READ_ONLY         `tensor` is read-only (use `tb_tensor_to_dlpack_versioned`).
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_to_dlpack(
    tensor: *const TbTensor,
    out: *mut *mut TbDLManagedTensor,
) -> TbStatus {
    boundary("tb_tensor_to_dlpack", || {
        require_out(out, "out")?;
        let held = handle::clone_arc(tensor, "tensor")?;
        if held.is_readonly() {
            return Err(Error::read_only(
                "tensor is read-only and a legacy DLManagedTensor cannot say so (its consumer \
                 would write to it); export it with tb_tensor_to_dlpack_versioned, which sets \
                 TB_DLPACK_FLAG_READ_ONLY",
            ));
        }
        if held.dtype().is_padded_sub_byte() {
            return Err(Error::not_supported(format!(
                "a legacy DLManagedTensor cannot say that {} elements are padded (its consumer \
                 would read them packed); export with tb_tensor_to_dlpack_versioned, which sets \
                 TB_DLPACK_FLAG_IS_SUBBYTE_TYPE_PADDED",
                held.dtype()
            )));
        }
        let (context, dl_tensor) = export_context(&held)?;
        let managed = Box::into_raw(Box::new(TbDLManagedTensor {
            dl_tensor,
            manager_ctx: Box::into_raw(context) as *mut c_void,
            deleter: Some(delete_export::<TbDLManagedTensor>),
        }));
        exported().insert(managed as usize);
        write_out(out, managed, "out")
    })
}

/// Exports `tensor` as a `DLManagedTensorVersioned` (version `TB_DLPACK_MAJOR_VERSION`.
/// `TB_DLPACK_MINOR_VERSION`) sharing its memory, with `TB_DLPACK_FLAG_READ_ONLY` set for
/// read-only tensors and `TB_DLPACK_FLAG_IS_SUBBYTE_TYPE_PADDED` for float6/float4 (lanes 1, one
/// per byte); `float4_e2m1fn_x2` (lanes 2) goes without it, as PyTorch exports it. Ownership,
/// strides and streams as for `tb_tensor_to_dlpack`.
/// `TB_DLPACK_FLAG_IS_COPIED` is not set: this export never copies (see
/// `tb_tensor_to_dlpack_versioned_with_flags`).
///
/// \param[in] tensor  a live tensor handle; the export holds its own reference.
/// \param[out] out    receives the `DLManagedTensorVersioned`; the consumer calls its deleter once;
///                    not NULL; unchanged on failure.
/// \retval TB_SUCCESS                 `*out` written.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `out`, or a NULL or released `tensor`.
/// \retval TB_ERROR_NOT_SUPPORTED     a byte stride DLPack cannot express (not whole elements).
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_to_dlpack_versioned(
    tensor: *const TbTensor,
    out: *mut *mut TbDLManagedTensorVersioned,
) -> TbStatus {
    boundary("tb_tensor_to_dlpack_versioned", || export_versioned(tensor, 0, out))
}

/// As `tb_tensor_to_dlpack_versioned`, adding `flags` to the export's flags. Only
/// `TB_DLPACK_FLAG_IS_COPIED` may be given: a caller that copied the data for this export (as
/// `__dlpack__(copy=True)` does) tells the consumer that it owns the memory alone.
///
/// \param[in] tensor  the tensor to export.
/// \param[in] flags   0 or `TB_DLPACK_FLAG_IS_COPIED`.
/// \param[out] out    receives the managed tensor; the consumer calls its deleter once.
/// \retval TB_SUCCESS                 `*out` written.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL or stale `tensor`, NULL `out`, or another flag.
/// \retval TB_ERROR_NOT_SUPPORTED     a byte stride DLPack cannot express (not whole elements).
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_to_dlpack_versioned_with_flags(
    tensor: *const TbTensor,
    flags: u64,
    out: *mut *mut TbDLManagedTensorVersioned,
) -> TbStatus {
    boundary("tb_tensor_to_dlpack_versioned_with_flags", || export_versioned(tensor, flags, out))
}

fn export_versioned(
    tensor: *const TbTensor,
    requested: u64,
    out: *mut *mut TbDLManagedTensorVersioned,
) -> Result<()> {
    require_out(out, "out")?;
    let held = handle::clone_arc(tensor, "tensor")?;
    write_out(out, managed_versioned(&held, requested)?, "out")
}

/// A new versioned managed tensor sharing `source`'s memory (keeping it alive until the deleter
/// runs), with the flags of `export_flags`.
pub(crate) fn managed_versioned(
    source: &Tensor,
    requested: u64,
) -> Result<*mut TbDLManagedTensorVersioned> {
    let flags = export_flags(source, requested)?;
    let (context, dl_tensor) = export_context(source)?;
    let managed = Box::into_raw(Box::new(TbDLManagedTensorVersioned {
        version: TbDLPackVersion { major: TB_DLPACK_MAJOR_VERSION, minor: TB_DLPACK_MINOR_VERSION },
        manager_ctx: Box::into_raw(context) as *mut c_void,
        deleter: Some(delete_export::<TbDLManagedTensorVersioned>),
        flags,
        dl_tensor,
    }));
    exported().insert(managed as usize);
    Ok(managed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a repeated deleter call freed a later export that had landed at the address
    /// of the first (the allocator reused it at once).
    #[test]
    fn a_repeated_deleter_call_cannot_free_a_later_export() {
        let mut data = [0u8; 16];
        let shape = [16i64];
        let mut wrapped: *mut TbTensor = std::ptr::null_mut();
        let status = super::super::tensor::tb_tensor_wrap(
            data.as_mut_ptr() as *mut c_void,
            TbDevice { device_type: 1, device_id: 0 },
            crate::dtype::DataType::U8.to_raw(),
            1,
            shape.as_ptr(),
            std::ptr::null(),
            std::ptr::null(),
            false,
            None,
            std::ptr::null_mut(),
            &mut wrapped,
        );
        assert_eq!(status, TbStatus::TB_SUCCESS);
        let mut first: *mut TbDLManagedTensorVersioned = std::ptr::null_mut();
        assert_eq!(tb_tensor_to_dlpack_versioned(wrapped, &mut first), TbStatus::TB_SUCCESS);
        // SAFETY: a live export made above.
        let deleter = unsafe { (*first).deleter }.unwrap();
        // SAFETY: the export's own deleter, called once as the contract says.
        unsafe { deleter(first) };
        let mut later: *mut TbDLManagedTensorVersioned = std::ptr::null_mut();
        assert_eq!(tb_tensor_to_dlpack_versioned(wrapped, &mut later), TbStatus::TB_SUCCESS);
        assert_ne!(first, later, "the deleted struct's address was reused at once");
        // The consumer's bug: the first deleter again. It must not touch `later`.
        // SAFETY: the first struct is quarantined, not freed: the call is ignored.
        unsafe { deleter(first) };
        assert!(exported().contains(&(later as usize)), "the later export was deleted");
        // SAFETY: the later export's deleter, once.
        unsafe { deleter(later) };
        assert_eq!(super::super::tensor::tb_tensor_release(wrapped), TbStatus::TB_SUCCESS);
    }
}
