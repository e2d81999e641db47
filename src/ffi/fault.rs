//! The fault-injection switch for C test programs (feature `fault-injection` only): these
//! functions exist in a library built with the feature and nowhere else — not in release builds,
//! not in `include/tensorbridge.h` (cbindgen skips this module). A test declares them itself:
//!
//! ```c
//! TbStatus tb_fault_arm(uint64_t n);
//! TbStatus tb_fault_disarm(const char **fired_site);
//! TbStatus tb_fault_trace(const char **sites, uint64_t capacity, uint64_t *count);
//! ```
//!
//! `cpp_tests/gpu_fault_walk_test.cpp` walks them over a GPU scenario.

use super::status::TbStatus;
use super::{boundary, require_out, write_out};
use crate::error::Error;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char};
use std::sync::{Mutex, OnceLock};

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

/// `site` as a C string that lives as long as the process (the sites are a few literals).
fn interned(site: &'static str) -> *const c_char {
    static SITES: OnceLock<Mutex<HashMap<&'static str, &'static CStr>>> = OnceLock::new();
    let mut sites =
        SITES.get_or_init(Default::default).lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let name = sites
        .entry(site)
        .or_insert_with(|| Box::leak(CString::new(site).unwrap_or_default().into_boxed_c_str()));
    name.as_ptr()
}

/// The acquisitions the calling thread made from its last `tb_fault_arm` to its
/// `tb_fault_disarm` (or until now, while armed), in order: the injected one and any after it
/// included, none made inside a release path. A walk arms with `UINT64_MAX` (never reached) to
/// trace a run without a failure, then checks that run n fails the n-th of them.
///
/// \param[out] sites     receives the first `min(count, capacity)` site names (e.g.
///                       `"cuLaunchKernel"`), valid for the life of the process; may be NULL when
///                       `capacity` is 0.
/// \param[in]  capacity  entries `sites` has room for.
/// \param[out] count     receives the number of acquisitions traced.
/// \retval TB_SUCCESS                 written.
/// \retval TB_ERROR_INVALID_ARGUMENT  `count` is NULL, or `sites` is NULL with a capacity.
#[unsafe(no_mangle)]
pub extern "C" fn tb_fault_trace(
    sites: *mut *const c_char,
    capacity: u64,
    count: *mut u64,
) -> TbStatus {
    boundary("tb_fault_trace", || {
        require_out(count, "count")?;
        if sites.is_null() && capacity > 0 {
            return Err(Error::invalid_argument(format!(
                "sites is NULL but capacity is {capacity}"
            )));
        }
        let trace = crate::fault::trace();
        for (i, site) in
            trace.iter().take(usize::try_from(capacity).unwrap_or(usize::MAX)).enumerate()
        {
            // SAFETY: non-null (checked) and, per the contract, room for `capacity` entries.
            unsafe { sites.add(i).write(interned(site)) };
        }
        write_out(count, trace.len() as u64, "count")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_names_each_acquisition_of_the_armed_period() {
        assert_eq!(tb_fault_arm(u64::MAX), TbStatus::TB_SUCCESS);
        assert!(crate::fault::check("handle").is_ok());
        assert!(crate::fault::driver_call("cuLaunchKernel").is_ok());
        let mut fired = std::ptr::null();
        assert_eq!(tb_fault_disarm(&mut fired), TbStatus::TB_SUCCESS);
        assert!(fired.is_null());

        let mut count = 0u64;
        assert_eq!(tb_fault_trace(std::ptr::null_mut(), 0, &mut count), TbStatus::TB_SUCCESS);
        assert_eq!(count, 2);
        let mut sites = [std::ptr::null(); 1];
        assert_eq!(tb_fault_trace(sites.as_mut_ptr(), 1, &mut count), TbStatus::TB_SUCCESS);
        assert_eq!(count, 2, "the count is the whole trace's");
        // SAFETY: a site name, valid for the process.
        assert_eq!(unsafe { CStr::from_ptr(sites[0]) }, c"handle");
        let mut both = [std::ptr::null(); 2];
        assert_eq!(tb_fault_trace(both.as_mut_ptr(), 2, &mut count), TbStatus::TB_SUCCESS);
        assert_eq!(both[0], sites[0], "one C string per site");
        // SAFETY: as above.
        assert_eq!(unsafe { CStr::from_ptr(both[1]) }, c"cuLaunchKernel");

        let refused = tb_fault_trace(std::ptr::null_mut(), 1, &mut count);
        assert_eq!(refused, TbStatus::TB_ERROR_INVALID_ARGUMENT);
        let refused = tb_fault_trace(sites.as_mut_ptr(), 1, std::ptr::null_mut());
        assert_eq!(refused, TbStatus::TB_ERROR_INVALID_ARGUMENT);
    }
}
