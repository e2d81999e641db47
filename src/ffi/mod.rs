//! The `extern "C"` layer. Every exported function runs its body through `boundary`, which
//! catches panics, turns errors into a `TbStatus` and records the message for
//! `tb_last_error_message()`. Argument helpers here check NULL pointers and convert C arrays and
//! strings once, so the functions in the submodules only validate, convert and forward.
//!
//! Exported functions take raw pointers yet are not `unsafe fn`: C callers cannot see Rust's
//! `unsafe`, and each function's doc comment (the header) states what its pointers must be.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

pub mod abi;
pub mod alloc;
pub mod cai;
pub mod dlpack;
pub mod dtype;
pub mod exchange;
/// cbindgen:ignore
#[cfg(feature = "fault-injection")]
pub mod fault;
#[cfg(all(test, feature = "fault-injection"))]
mod fault_walk;
pub mod frame;
pub mod handle;
pub mod ipc;
pub mod layout;
pub mod ops;
pub(crate) mod python;
pub mod status;
pub mod tensor;

use crate::dims::Dims;
use crate::error::{Error, Result};
use crate::ffi::status::TbStatus;
use crate::layout::Layout;
use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// A raw pointer that may be moved to another thread: for C-owned objects whose release the C
/// side allowed to run on any thread (cleanup contexts, DLPack managed tensors).
#[derive(Clone, Copy)]
pub(crate) struct SendPtr<T>(pub *mut T);

// SAFETY: used only for pointers the C contract lets any thread hand back to their owner.
unsafe impl<T> Send for SendPtr<T> {}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// What `tb_last_error_message()` gives when this thread's message slot is gone (a call from a
/// thread-local destructor that runs after tensorbridge's) or busy: a static string, never NULL.
static UNAVAILABLE: &CStr = c"tensorbridge: error message unavailable during thread exit";

/// Records `message` as this thread's last error message. Never panics: after the thread's
/// thread-local storage is destroyed (a C++ `thread_local` destructor calling tensorbridge), the
/// message is dropped and `last_error_ptr` gives the static `UNAVAILABLE` text.
pub(crate) fn set_last_error(message: &str) {
    let text = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    let _ = LAST_ERROR.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            *slot = text;
        }
    });
}

/// Pointer to this thread's last error message (valid until the thread's next failing call).
/// Never NULL and never panics (see `set_last_error`).
pub(crate) fn last_error_ptr() -> *const c_char {
    LAST_ERROR
        .try_with(|slot| slot.try_borrow().map(|text| text.as_ptr()).ok())
        .ok()
        .flatten()
        .unwrap_or(UNAVAILABLE.as_ptr())
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic payload")
}

/// Runs an exported function's body: no panic crosses the boundary (it becomes
/// `TB_ERROR_INTERNAL`), and a failure's message is prefixed with the function's name.
pub(crate) fn boundary(function: &str, body: impl FnOnce() -> Result<()>) -> TbStatus {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => TbStatus::TB_SUCCESS,
        Ok(Err(error)) => {
            set_last_error(&format!("{function}: {}", error.message));
            status::status_of(error.kind)
        }
        Err(payload) => {
            set_last_error(&format!(
                "{function}: internal error (caught panic: {}); please report this",
                panic_text(payload.as_ref())
            ));
            TbStatus::TB_ERROR_INTERNAL
        }
    }
}

/// The one message for a NULL pointer that may not be NULL.
fn null_argument(name: &str) -> Error {
    Error::invalid_argument(format!("{name} is NULL"))
}

/// Fails when an output pointer is NULL; call before doing work whose result would be lost.
pub(crate) fn require_out<T>(out: *mut T, name: &str) -> Result<()> {
    if out.is_null() {
        return Err(null_argument(name));
    }
    Ok(())
}

/// Reads a C struct passed by pointer, which may not be NULL.
pub(crate) fn read_struct<T: Copy>(ptr: *const T, name: &str) -> Result<T> {
    if ptr.is_null() {
        return Err(null_argument(name));
    }
    // SAFETY: non-null; the C contract says ptr points to a readable T.
    Ok(unsafe { ptr.read() })
}

/// A pointer argument that may not be NULL, passed through unchanged.
pub(crate) fn require_ptr<T>(ptr: *mut T, name: &str) -> Result<*mut T> {
    if ptr.is_null() {
        return Err(null_argument(name));
    }
    Ok(ptr)
}

/// Writes `value` through an output pointer already checked by `require_out`.
pub(crate) fn write_out<T>(out: *mut T, value: T, name: &str) -> Result<()> {
    require_out(out, name)?;
    // SAFETY: non-null; the C contract says out points to writable storage for one T.
    unsafe { out.write(value) };
    Ok(())
}

/// Borrows `len` elements of a C array, valid for the call; NULL is allowed only when `len` is 0.
#[inline]
fn borrow_array<'a, T>(ptr: *const T, len: usize, name: &str) -> Result<&'a [T]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Error::invalid_argument(format!(
            "{name} is NULL but {len} entries are needed"
        )));
    }
    // SAFETY: non-null; the C contract says ptr points to at least len readable elements, which
    // the caller does not change during the call.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Reads `len` elements from a C array; NULL is allowed only when `len` is 0.
pub(crate) fn read_array<T: Copy>(ptr: *const T, len: usize, name: &str) -> Result<Vec<T>> {
    borrow_array(ptr, len, name).map(<[T]>::to_vec)
}

/// Reads `len` extents or strides from a C array (as `read_array`), without a heap allocation
/// for any valid rank.
#[inline]
pub(crate) fn read_dims(ptr: *const i64, len: usize, name: &str) -> Result<Dims> {
    borrow_array(ptr, len, name).map(Dims::from)
}

/// Reads an optional NUL-terminated UTF-8 string (NULL gives `None`).
pub(crate) fn read_str<'a>(ptr: *const c_char, name: &str) -> Result<Option<&'a str>> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: non-null; the C contract says ptr is a NUL-terminated string.
    let text = unsafe { CStr::from_ptr(ptr) };
    text.to_str()
        .map(Some)
        .map_err(|_| Error::invalid_argument(format!("{name} is not valid UTF-8")))
}

/// Reads a NUL-terminated UTF-8 string that may not be NULL.
pub(crate) fn read_required_str<'a>(ptr: *const c_char, name: &str) -> Result<&'a str> {
    read_str(ptr, name)?.ok_or_else(|| null_argument(name))
}

/// Reads an optional layout string (NULL or `""` give no layout).
pub(crate) fn read_layout_arg(layout: *const c_char) -> Result<Layout> {
    read_str(layout, "layout")?.map_or(Ok(Layout::NONE), Layout::parse)
}

/// Reads `rank` extents (`shape` may be NULL when `rank` is 0).
#[inline]
pub(crate) fn read_shape(rank: i32, shape: *const i64) -> Result<Dims> {
    read_dims(shape, read_rank(rank)?, "shape")
}

/// Checks a C rank argument: 0 ≤ rank ≤ `TB_MAX_RANK`.
pub(crate) fn read_rank(rank: i32) -> Result<usize> {
    let max = crate::layout::TB_MAX_RANK;
    if usize::try_from(rank).map_or(true, |r| r > max) {
        return Err(Error::invalid_argument(format!("rank {rank} is out of range 0..={max}")));
    }
    Ok(rank as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_error() -> String {
        // SAFETY: last_error_ptr always points to a valid NUL-terminated string.
        unsafe { CStr::from_ptr(last_error_ptr()) }.to_string_lossy().into_owned()
    }

    #[test]
    fn a_panic_becomes_internal_error_with_message() {
        let status = boundary("tb_test", || panic!("boom {}", 42));
        assert_eq!(status, TbStatus::TB_ERROR_INTERNAL);
        assert!(last_error().contains("tb_test: internal error (caught panic: boom 42)"));
        let status = boundary("tb_test", || std::panic::panic_any(7u8));
        assert_eq!(status, TbStatus::TB_ERROR_INTERNAL);
        assert!(last_error().contains("unknown panic payload"));
    }

    #[test]
    fn errors_keep_their_status_and_name_the_function() {
        let status = boundary("tb_x", || Err(Error::overflow("too big")));
        assert_eq!(status, TbStatus::TB_ERROR_OVERFLOW);
        assert_eq!(last_error(), "tb_x: too big");
    }

    /// Regression: the message slot was touched outside `catch_unwind`, so a failing call from a
    /// thread-local destructor that runs after the slot's (the thread is exiting) panicked in an
    /// `extern "C"` function, which aborts the process.
    #[test]
    fn failing_calls_during_thread_exit_do_not_panic() {
        use std::sync::Mutex;
        static SEEN: Mutex<Option<(TbStatus, String)>> = Mutex::new(None);
        struct CallsOnExit;
        impl Drop for CallsOnExit {
            fn drop(&mut self) {
                let bogus = 0x7777_0000_0000_0001usize as *mut handle::TbTensor;
                let status = tensor::tb_tensor_release(bogus);
                // SAFETY: tb_last_error_message never returns NULL.
                let message = unsafe { CStr::from_ptr(status::tb_last_error_message()) };
                let seen = (status, message.to_string_lossy().into_owned());
                *SEEN.lock().unwrap_or_else(|p| p.into_inner()) = Some(seen);
            }
        }
        thread_local! {
            static ON_EXIT: RefCell<Option<CallsOnExit>> = const { RefCell::new(None) };
        }
        std::thread::spawn(|| {
            // Registered before the message slot, so destroyed after it.
            ON_EXIT.with(|slot| *slot.borrow_mut() = Some(CallsOnExit));
            boundary("tb_test", || Err(Error::internal("creates the message slot")));
        })
        .join()
        .unwrap();
        let seen = SEEN.lock().unwrap().take().expect("the destructor ran");
        assert_eq!(seen.0, TbStatus::TB_ERROR_INVALID_ARGUMENT);
        assert_eq!(seen.1, UNAVAILABLE.to_str().unwrap());
    }

    #[test]
    fn messages_are_per_thread() {
        boundary("tb_main", || Err(Error::internal("main thread")));
        std::thread::spawn(|| {
            boundary("tb_other", || Err(Error::internal("other thread")));
            assert_eq!(last_error(), "tb_other: other thread");
        })
        .join()
        .unwrap();
        assert_eq!(last_error(), "tb_main: main thread");
    }
}
