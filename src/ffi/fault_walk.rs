//! The fault-injection walk (feature `fault-injection`, run by `scripts/test.sh`): a host-side
//! scenario through the C ABI — wrap, views, DLPack export and import, array-interface export and
//! import, allocation, reformat, convert into a new tensor, clone, release — is run again and again
//! with the n-th acquisition failing, n = 0, 1, 2 … until a run completes without one. Every
//! injected failure must come back as a status with a message naming it; afterwards no handle is
//! left and the wrapped memory's cleanup has run exactly once.

use super::cai::{TbArrayInterface, tb_tensor_from_array_interface, tb_tensor_to_array_interface};
use super::dlpack::{
    TbDLManagedTensorVersioned, tb_tensor_from_dlpack_versioned, tb_tensor_to_dlpack_versioned,
};
use super::handle::{self, TbTensor};
use super::ops::{tb_convert_new, tb_reformat};
use super::status::TbStatus;
use super::tensor::{tb_tensor_alloc, tb_tensor_permute, tb_tensor_release, tb_tensor_wrap};
use crate::device::TbDevice;
use crate::dtype::DataType;
use std::ffi::{CStr, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};

static CLEANUPS: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn count_cleanup(_context: *mut c_void, _data: *mut c_void) {
    CLEANUPS.fetch_add(1, Ordering::SeqCst);
}

fn message() -> String {
    // SAFETY: the thread's last message, a valid C string.
    unsafe { CStr::from_ptr(super::last_error_ptr()) }.to_string_lossy().into_owned()
}

/// The scenario; stops at the first failure, returning it, and releases what it made.
fn scenario(pixels: &mut [u8]) -> Result<(), (TbStatus, String)> {
    let cpu = TbDevice { device_type: 1, device_id: 0 };
    let mut made: Vec<*mut TbTensor> = Vec::new();
    let result = (|| {
        let step = |status: TbStatus| match status {
            TbStatus::TB_SUCCESS => Ok(()),
            failed => Err((failed, message())),
        };
        let shape = [4i64, 6, 3];
        let mut image = std::ptr::null_mut();
        step(tb_tensor_wrap(
            pixels.as_mut_ptr() as *mut c_void,
            cpu,
            DataType::U8.to_raw(),
            3,
            shape.as_ptr(),
            std::ptr::null(),
            c"HWC".as_ptr(),
            false,
            Some(count_cleanup),
            std::ptr::null_mut(),
            &mut image,
        ))?;
        made.push(image);
        let mut planar_view = std::ptr::null_mut();
        step(tb_tensor_permute(image, c"CHW".as_ptr(), &mut planar_view))?;
        made.push(planar_view);
        let mut managed: *mut TbDLManagedTensorVersioned = std::ptr::null_mut();
        step(tb_tensor_to_dlpack_versioned(image, &mut managed))?;
        let mut imported = std::ptr::null_mut();
        let status = tb_tensor_from_dlpack_versioned(managed, c"HWC".as_ptr(), &mut imported);
        if status != TbStatus::TB_SUCCESS {
            // A refused import leaves the managed tensor ours: give it back once.
            // SAFETY: the export made above; its deleter has not run.
            unsafe { ((*managed).deleter.unwrap())(managed) };
            return step(status);
        }
        made.push(imported);
        // SAFETY: all-zero is a valid descriptor to be filled.
        let mut described: TbArrayInterface = unsafe { std::mem::zeroed() };
        step(tb_tensor_to_array_interface(imported, &mut described))?;
        let mut reimported = std::ptr::null_mut();
        step(tb_tensor_from_array_interface(
            &described,
            c"HWC".as_ptr(),
            None,
            std::ptr::null_mut(),
            &mut reimported,
        ))?;
        made.push(reimported);
        let planar_shape = [3i64, 4, 6];
        let mut planar = std::ptr::null_mut();
        step(tb_tensor_alloc(
            cpu,
            DataType::U8.to_raw(),
            3,
            planar_shape.as_ptr(),
            c"CHW".as_ptr(),
            0,
            &mut planar,
        ))?;
        made.push(planar);
        step(tb_reformat(reimported, planar, std::ptr::null_mut()))?;
        let mut normalized = std::ptr::null_mut();
        let (scale, offset) = ([0.5f32], [1.0f32]);
        step(tb_convert_new(
            imported,
            c"CHW".as_ptr(),
            DataType::F32.to_raw(),
            scale.as_ptr(),
            offset.as_ptr(),
            1,
            std::ptr::null_mut(),
            &mut normalized,
        ))?;
        made.push(normalized);
        let mut copy = std::ptr::null_mut();
        step(super::ops::tb_tensor_clone(planar_view, std::ptr::null_mut(), &mut copy))?;
        made.push(copy);
        Ok(())
    })();
    for tensor in made.into_iter().rev() {
        assert_eq!(
            tb_tensor_release(tensor),
            TbStatus::TB_SUCCESS,
            "release failed: {}",
            message()
        );
    }
    result
}

#[test]
fn every_injected_failure_is_a_clear_status_and_leaks_nothing() {
    let baseline = handle::live_count();
    let mut pixels = vec![7u8; 4 * 6 * 3];
    let mut injected = 0;
    for n in 0.. {
        CLEANUPS.store(0, Ordering::SeqCst);
        crate::fault::arm(n);
        let outcome = scenario(&mut pixels);
        let fired = crate::fault::disarm().is_some();
        match (fired, outcome) {
            (false, Ok(())) => break,
            (true, Err((status, text))) => {
                assert_ne!(status, TbStatus::TB_ERROR_INTERNAL, "n = {n}: {text}");
                assert!(text.contains("injected failure"), "n = {n}: the message hides it: {text}");
                injected += 1;
            }
            (true, Ok(())) => panic!("n = {n}: an injected failure was swallowed"),
            (false, Err((status, text))) => {
                panic!("n = {n}: failed without injection: {status:?} {text}")
            }
        }
        assert_eq!(handle::live_count(), baseline, "n = {n}: handles leaked");
        // The wrap's handle is the first acquisition: when it fails, the memory stays the caller's
        // (no cleanup); otherwise the cleanup runs exactly once, with the last release.
        let cleanups = CLEANUPS.load(Ordering::SeqCst);
        assert_eq!(cleanups, usize::from(n > 0), "n = {n}: the cleanup ran {cleanups} times");
        assert!(n < 200, "the scenario never completed");
    }
    assert!(injected >= 10, "only {injected} failure points were walked");
    println!("fault injection: {injected} failure points walked, each a clear status, no leak");
}
