//! The fault-injection switch for C test programs (feature `fault-injection` only): these two
//! functions exist in a library built with the feature and nowhere else — not in release builds,
//! not in `include/tensorbridge.h` (cbindgen skips this module). A test declares them itself:
//!
//! ```c
//! TbStatus tb_fault_arm(uint64_t n);
//! TbStatus tb_fault_disarm(const char **fired_site);
//! ```
//!
//! `cpp_tests/gpu_fault_walk_test.cpp` walks them over a GPU scenario.

use super::status::TbStatus;
use super::{boundary, write_out};
use std::cell::RefCell;
use std::ffi::{CString, c_char};

thread_local! {
    /// The site `tb_fault_disarm` reported last, kept for the pointer it gave out.
    static FIRED_SITE: RefCell<CString> = RefCell::new(CString::default());
}

/// Makes the calling thread's `n`-th acquisition from now on (0 = the next) fail once: an
/// allocation, a handle or a CUDA driver call (src/fault.rs lists them). Replaces an earlier arm.
///
/// \retval TB_SUCCESS  armed.
#[unsafe(no_mangle)]
pub extern "C" fn tb_fault_arm(n: u64) -> TbStatus {
    boundary("tb_fault_arm", || {
        crate::fault::arm(n);
        Ok(())
    })
}

/// Disarms the calling thread's switch and tells whether the armed failure was injected.
///
/// \param[out] fired_site  the injected site's name (e.g. `"cuLaunchKernel"`), valid until the
///                         thread's next `tb_fault_disarm`; NULL when nothing was injected.
/// \retval TB_SUCCESS                 disarmed.
/// \retval TB_ERROR_INVALID_ARGUMENT  `fired_site` is NULL (the switch is disarmed anyway).
#[unsafe(no_mangle)]
pub extern "C" fn tb_fault_disarm(fired_site: *mut *const c_char) -> TbStatus {
    boundary("tb_fault_disarm", || {
        let site = crate::fault::disarm();
        let pointer = match site {
            None => std::ptr::null(),
            Some(site) => FIRED_SITE.with(|slot| {
                let mut slot = slot.borrow_mut();
                *slot = CString::new(site).unwrap_or_default();
                slot.as_ptr()
            }),
        };
        write_out(fired_site, pointer, "fired_site")
    })
}
