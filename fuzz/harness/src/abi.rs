//! The part of tensorbridge's C ABI the fuzz targets call, declared from include/tensorbridge.h
//! (the targets go through the same symbols a C caller links against, not the crate's Rust
//! items). The layouts are checked against the library's own `tb_abi_layout` once per process.

use std::ffi::{c_char, c_void};

pub type Status = i32;
pub const TB_SUCCESS: Status = 0;
pub const TB_ERROR_INVALID_ARGUMENT: Status = 1;
pub const TB_ERROR_NOT_SUPPORTED: Status = 2;
pub const TB_ERROR_CUDA_UNAVAILABLE: Status = 4;
pub const TB_ERROR_CUDA: Status = 5;
pub const TB_ERROR_DEVICE_MISMATCH: Status = 6;
pub const TB_ERROR_READ_ONLY: Status = 7;
pub const TB_ERROR_OVERFLOW: Status = 8;
pub const TB_ERROR_INTERNAL: Status = 9;

pub const TB_MAX_RANK: usize = 15;
pub const TB_DEVICE_CPU: i32 = 1;
pub const TB_DLPACK_FLAG_READ_ONLY: u64 = 1;

/// Opaque handle; only ever used behind a pointer.
#[repr(C)]
pub struct TbTensor {
    _opaque: [u8; 0],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TbDevice {
    pub device_type: i32,
    pub device_id: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TbDataType {
    pub code: u8,
    pub bits: u8,
    pub lanes: u16,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TbLayout {
    pub labels: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TbArrayInterface {
    pub version: i32,
    pub data: *mut c_void,
    pub readonly: bool,
    pub typestr: [u8; 16],
    pub rank: i32,
    pub shape: [i64; TB_MAX_RANK],
    pub strides: [i64; TB_MAX_RANK],
    pub has_strides: bool,
    pub stream: u64,
    pub has_stream: bool,
    pub has_mask: bool,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TbTensorInfo {
    pub data: *mut c_void,
    pub device: TbDevice,
    pub dtype: TbDataType,
    pub rank: i32,
    pub shape: [i64; TB_MAX_RANK],
    pub strides: [i64; TB_MAX_RANK],
    pub layout: TbLayout,
    pub readonly: bool,
    pub contiguous: bool,
    pub element_count: i64,
    pub nbytes: i64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TbDLTensor {
    pub data: *mut c_void,
    pub device: TbDevice,
    pub ndim: i32,
    pub dtype: TbDataType,
    pub shape: *mut i64,
    pub strides: *mut i64,
    pub byte_offset: u64,
}

#[repr(C)]
pub struct TbDLManagedTensor {
    pub dl_tensor: TbDLTensor,
    pub manager_ctx: *mut c_void,
    pub deleter: Option<unsafe extern "C" fn(*mut TbDLManagedTensor)>,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TbDLPackVersion {
    pub major: u32,
    pub minor: u32,
}

#[repr(C)]
pub struct TbDLManagedTensorVersioned {
    pub version: TbDLPackVersion,
    pub manager_ctx: *mut c_void,
    pub deleter: Option<unsafe extern "C" fn(*mut TbDLManagedTensorVersioned)>,
    pub flags: u64,
    pub dl_tensor: TbDLTensor,
}

pub type TbCleanupFn = Option<unsafe extern "C" fn(*mut c_void, *mut c_void)>;

// The library is linked as an rlib dependency (with the fuzzing build's instrumentation); these
// resolve to its `#[no_mangle]` exports.
unsafe extern "C" {
    pub fn tb_abi_layout(
        struct_name: *const c_char,
        field: *const c_char,
        offset: *mut usize,
        size: *mut usize,
    ) -> Status;
    pub fn tb_last_error_message() -> *const c_char;
    pub fn tb_tensor_live_count(count: *mut i64) -> Status;
    pub fn tb_layout_parse(text: *const c_char, out: *mut TbLayout) -> Status;
    pub fn tb_layout_rank(layout: *const TbLayout, rank: *mut i32) -> Status;
    pub fn tb_layout_find(layout: *const TbLayout, label: c_char, index: *mut i32) -> Status;
    pub fn tb_dtype_from_typestr(typestr: *const c_char, out: *mut TbDataType) -> Status;
    pub fn tb_dtype_to_typestr(dtype: TbDataType, out: *mut *const c_char) -> Status;
    pub fn tb_dtype_item_size(dtype: TbDataType, out: *mut i64) -> Status;
    pub fn tb_tensor_wrap(
        data: *mut c_void,
        device: TbDevice,
        dtype: TbDataType,
        rank: i32,
        shape: *const i64,
        strides: *const i64,
        layout: *const c_char,
        readonly: bool,
        cleanup: TbCleanupFn,
        cleanup_context: *mut c_void,
        out: *mut *mut TbTensor,
    ) -> Status;
    pub fn tb_tensor_retain(tensor: *mut TbTensor) -> Status;
    pub fn tb_tensor_release(tensor: *mut TbTensor) -> Status;
    pub fn tb_tensor_info(tensor: *const TbTensor, out: *mut TbTensorInfo) -> Status;
    pub fn tb_tensor_permute(
        tensor: *const TbTensor,
        layout: *const c_char,
        out: *mut *mut TbTensor,
    ) -> Status;
    pub fn tb_tensor_transpose(
        tensor: *const TbTensor,
        rank: i32,
        axes: *const i32,
        out: *mut *mut TbTensor,
    ) -> Status;
    pub fn tb_tensor_slice(
        tensor: *const TbTensor,
        dim: i32,
        start: i64,
        stop: i64,
        step: i64,
        out: *mut *mut TbTensor,
    ) -> Status;
    pub fn tb_tensor_select(
        tensor: *const TbTensor,
        dim: i32,
        index: i64,
        out: *mut *mut TbTensor,
    ) -> Status;
    pub fn tb_tensor_with_layout(
        tensor: *const TbTensor,
        layout: *const c_char,
        out: *mut *mut TbTensor,
    ) -> Status;
    pub fn tb_tensor_from_array_interface(
        desc: *const TbArrayInterface,
        layout: *const c_char,
        keep_alive: TbCleanupFn,
        keep_alive_context: *mut c_void,
        out: *mut *mut TbTensor,
    ) -> Status;
    pub fn tb_tensor_from_cuda_array_interface(
        desc: *const TbArrayInterface,
        layout: *const c_char,
        keep_alive: TbCleanupFn,
        keep_alive_context: *mut c_void,
        out: *mut *mut TbTensor,
    ) -> Status;
    pub fn tb_tensor_to_array_interface(tensor: *const TbTensor, out: *mut TbArrayInterface)
    -> Status;
    pub fn tb_tensor_from_dlpack(
        managed: *mut TbDLManagedTensor,
        layout: *const c_char,
        out: *mut *mut TbTensor,
    ) -> Status;
    pub fn tb_tensor_from_dlpack_versioned(
        managed: *mut TbDLManagedTensorVersioned,
        layout: *const c_char,
        out: *mut *mut TbTensor,
    ) -> Status;
    pub fn tb_tensor_to_dlpack(tensor: *const TbTensor, out: *mut *mut TbDLManagedTensor) -> Status;
    pub fn tb_tensor_to_dlpack_versioned(
        tensor: *const TbTensor,
        out: *mut *mut TbDLManagedTensorVersioned,
    ) -> Status;
    pub fn tb_reformat(src: *const TbTensor, dst: *const TbTensor, stream: *mut c_void) -> Status;
    pub fn tb_copy(src: *const TbTensor, dst: *const TbTensor, stream: *mut c_void) -> Status;
    pub fn tb_convert(
        src: *const TbTensor,
        dst: *const TbTensor,
        scale: *const f32,
        offset: *const f32,
        count: i32,
        stream: *mut c_void,
    ) -> Status;
}

/// The calling thread's last error message.
pub fn last_error() -> String {
    // SAFETY: tb_last_error_message returns a NUL-terminated string valid until the next call.
    unsafe { std::ffi::CStr::from_ptr(tb_last_error_message()) }.to_string_lossy().into_owned()
}

/// Live handles in the process.
pub fn live_count() -> i64 {
    let mut count = -1;
    // SAFETY: `count` is a valid out pointer.
    assert_eq!(unsafe { tb_tensor_live_count(&mut count) }, TB_SUCCESS);
    count
}

/// Panics (a libFuzzer crash) when a call reports a caught panic, which the ABI promises only
/// for bugs.
pub fn no_internal(status: Status, what: &str) -> Status {
    assert_ne!(status, TB_ERROR_INTERNAL, "{what}: TB_ERROR_INTERNAL: {}", last_error());
    assert!((0..=9).contains(&status), "{what}: status {status} is not a TbStatus");
    status
}

/// `tensor`'s info; panics when a live handle cannot be described.
pub fn info(tensor: *const TbTensor) -> TbTensorInfo {
    // SAFETY: all-zero is a valid TbTensorInfo (NULL pointer, zero integers, false bools).
    let mut out: TbTensorInfo = unsafe { std::mem::zeroed() };
    // SAFETY: `out` is a valid out pointer; any handle value is accepted by the ABI.
    let status = unsafe { tb_tensor_info(tensor, &mut out) };
    assert_eq!(status, TB_SUCCESS, "tb_tensor_info on a live handle: {}", last_error());
    out
}

/// Releases a handle the harness holds; panics when the library does not know it.
pub fn release(tensor: *mut TbTensor) {
    // SAFETY: any handle value is accepted by the ABI.
    let status = unsafe { tb_tensor_release(tensor) };
    assert_eq!(status, TB_SUCCESS, "tb_tensor_release of a held handle: {}", last_error());
}

/// Checks once per process that the structs above have the library's layout.
pub fn check_layouts_once() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let sizes: [(&str, usize); 6] = [
            ("TbArrayInterface", size_of::<TbArrayInterface>()),
            ("TbTensorInfo", size_of::<TbTensorInfo>()),
            ("TbDLTensor", size_of::<TbDLTensor>()),
            ("TbDLManagedTensor", size_of::<TbDLManagedTensor>()),
            ("TbDLManagedTensorVersioned", size_of::<TbDLManagedTensorVersioned>()),
            ("TbLayout", size_of::<TbLayout>()),
        ];
        for (name, ours) in sizes {
            let cname = std::ffi::CString::new(name).unwrap();
            let (mut offset, mut size) = (0usize, 0usize);
            // SAFETY: valid C strings and out pointers.
            let status =
                unsafe { tb_abi_layout(cname.as_ptr(), std::ptr::null(), &mut offset, &mut size) };
            assert_eq!(status, TB_SUCCESS, "tb_abi_layout({name}): {}", last_error());
            assert_eq!(size, ours, "sizeof({name}) differs between the harness and the library");
        }
    });
}
