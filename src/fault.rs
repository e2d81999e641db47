//! Fault injection for tests: with the cargo feature `fault-injection` (never enabled in release
//! builds), the n-th fallible acquisition a thread makes after `arm(n)` fails — an allocation (any
//! kind of memory, built-in or installed allocator), a handle, or a CUDA driver call that
//! tensorbridge makes (`cuda/`: context push, stream and event operations, copies, pool and
//! pinned allocations, module loads, launches, pointer queries) — so a test can walk n over a
//! whole scenario and check that every failure surfaces as a status with a message, leaks nothing
//! and runs no cleanup twice.
//!
//! A driver call is failed before it is made, as the driver would fail it: nothing is acquired, and
//! the error has the kind a real failure of that call gets (`Cuda`, or `OutOfMemory` for driver
//! allocations). Release paths (a storage's release action, giving back markers and staging
//! memory) run with injection suspended (`suspend`): their failures cannot be reported to anyone,
//! and the code ignores them by design (a failing free leaks), so injecting there would only
//! report that design. Without the feature every function here compiles to nothing.
//!
//! A walk must also know which acquisition each n lands on: some are made only on first use in the
//! process (a kernel module's load, an event creation before the spare events exist), so later
//! runs make fewer, and a walk that only advances n skips whatever the shorter runs moved past.
//! `trace` lists the sites a thread acquired while armed, in order, for a walk to check that the
//! n-th one of a run with every cache filled is the one it failed.

use crate::error::Result;

#[cfg(feature = "fault-injection")]
mod armed {
    use crate::error::Error;
    use std::cell::{Cell, RefCell};

    thread_local! {
        /// Acquisitions left before the injected failure (`None`: disarmed, or already injected).
        static LEFT: Cell<Option<u64>> = const { Cell::new(None) };
        /// Between `arm` and `disarm`: acquisitions are traced.
        static ARMED: Cell<bool> = const { Cell::new(false) };
        /// The sites of the acquisitions counted since the last `arm`, in order (the injected one
        /// and those after it included), kept after `disarm` until the next `arm`.
        static TRACE: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) };
        /// The site of the injected failure, once injected.
        static FIRED: Cell<Option<&'static str>> = const { Cell::new(None) };
        /// Depth of `suspend` scopes: acquisitions inside are neither counted nor failed.
        static SUSPENDED: Cell<u32> = const { Cell::new(0) };
    }

    /// Makes this thread's `n`-th acquisition from now on (0 = the next) fail, once.
    pub(crate) fn arm(n: u64) {
        LEFT.with(|left| left.set(Some(n)));
        FIRED.with(|fired| fired.set(None));
        ARMED.with(|armed| armed.set(true));
        TRACE.with(|trace| trace.borrow_mut().clear());
    }

    /// Disarms; returns the site of the injected failure, if one was injected.
    pub(crate) fn disarm() -> Option<&'static str> {
        LEFT.with(|left| left.set(None));
        ARMED.with(|armed| armed.set(false));
        FIRED.with(|fired| fired.take())
    }

    /// The sites of the acquisitions this thread made from its last `arm` to its `disarm` (or
    /// until now), in order. An acquisition that a process-wide cache satisfies on later runs (a
    /// module load, an event creation) is absent from those runs' traces.
    pub(crate) fn trace() -> Vec<&'static str> {
        TRACE.with(|trace| trace.borrow().clone())
    }

    /// Whether this acquisition is the armed one (counting it otherwise).
    pub(crate) fn fires(site: &'static str) -> bool {
        if SUSPENDED.with(Cell::get) > 0 {
            return false;
        }
        if ARMED.with(Cell::get) {
            TRACE.with(|trace| trace.borrow_mut().push(site));
        }
        let fire = LEFT.with(|left| match left.get() {
            Some(0) => {
                left.set(None);
                true
            }
            Some(n) => {
                left.set(Some(n - 1));
                false
            }
            None => false,
        });
        if fire {
            FIRED.with(|fired| fired.set(Some(site)));
        }
        fire
    }

    pub(crate) fn failure(message: String, out_of_memory: bool) -> Error {
        match out_of_memory {
            true => Error::out_of_memory(message),
            false => Error::cuda(message),
        }
    }

    /// Injection suspended on this thread while it lives.
    pub(crate) struct Suspended(());

    impl Suspended {
        pub(crate) fn new() -> Suspended {
            SUSPENDED.with(|depth| depth.set(depth.get() + 1));
            Suspended(())
        }
    }

    impl Drop for Suspended {
        fn drop(&mut self) {
            SUSPENDED.with(|depth| depth.set(depth.get() - 1));
        }
    }
}

#[cfg(feature = "fault-injection")]
pub(crate) use armed::{arm, disarm, trace};

/// Fails when a test armed this allocation or handle (`site` names it in the message); `Ok`
/// otherwise, and always without the `fault-injection` feature.
#[inline(always)]
pub(crate) fn check(site: &'static str) -> Result<()> {
    #[cfg(feature = "fault-injection")]
    if armed::fires(site) {
        let message = format!("{site}: injected failure (fault-injection test build)");
        return Err(armed::failure(message, true));
    }
    let _ = site;
    Ok(())
}

/// Called just before the CUDA driver call `call`: fails when a test armed it, with the kind and
/// message shape of a real failure of that call (`"<call> failed: …"`, `ErrorKind::Cuda`); `Ok`
/// otherwise, and always without the `fault-injection` feature.
#[inline(always)]
pub(crate) fn driver_call(call: &'static str) -> Result<()> {
    #[cfg(feature = "fault-injection")]
    if armed::fires(call) {
        let message = format!("{call} failed: injected failure (fault-injection test build)");
        return Err(armed::failure(message, false));
    }
    let _ = call;
    Ok(())
}

/// Called just before the CUDA driver allocation `call`: fails when a test armed it, as the
/// driver's out-of-memory would (`ErrorKind::OutOfMemory`); `Ok` otherwise.
#[inline(always)]
pub(crate) fn driver_allocation(call: &'static str) -> Result<()> {
    #[cfg(feature = "fault-injection")]
    if armed::fires(call) {
        let message = format!(
            "{call}: CUDA_ERROR_OUT_OF_MEMORY: injected failure (fault-injection test build)"
        );
        return Err(armed::failure(message, true));
    }
    let _ = call;
    Ok(())
}

/// Suspends injection on the calling thread until the returned guard is dropped: for release
/// paths, whose failures are ignored by design. A zero-sized no-op without the feature.
#[inline(always)]
#[must_use = "injection is suspended only while the guard lives"]
pub(crate) fn suspend() -> Suspended {
    #[cfg(feature = "fault-injection")]
    return Suspended(armed::Suspended::new());
    #[cfg(not(feature = "fault-injection"))]
    Suspended(())
}

/// Guard of `suspend`.
pub(crate) struct Suspended(
    #[cfg(feature = "fault-injection")] armed::Suspended,
    #[cfg(not(feature = "fault-injection"))] (),
);

#[cfg(all(test, feature = "fault-injection"))]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn the_armed_acquisition_fails_once_with_its_kind_and_site() {
        arm(2);
        assert!(check("handle").is_ok());
        assert!(driver_call("cuStreamWaitEvent").is_ok());
        let error = driver_call("cuLaunchKernel").unwrap_err();
        assert_eq!(error.kind, ErrorKind::Cuda);
        assert!(error.message.starts_with("cuLaunchKernel failed: injected failure"), "{error:?}");
        assert!(driver_call("cuLaunchKernel").is_ok(), "fails once");
        assert_eq!(disarm(), Some("cuLaunchKernel"));
        assert_eq!(disarm(), None);

        arm(0);
        let error = driver_allocation("cuMemAllocFromPoolAsync").unwrap_err();
        assert_eq!(error.kind, ErrorKind::OutOfMemory);
        assert!(error.message.contains("cuMemAllocFromPoolAsync"), "{error:?}");
        assert_eq!(disarm(), Some("cuMemAllocFromPoolAsync"));
    }

    #[test]
    fn the_trace_lists_the_counted_acquisitions_in_order() {
        arm(1);
        assert!(check("handle").is_ok());
        assert!(driver_call("cuLaunchKernel").is_err());
        {
            let _release = suspend();
            assert!(driver_call("cuEventRecord").is_ok());
        }
        assert!(driver_call("cuStreamSynchronize").is_ok(), "fails once");
        assert_eq!(disarm(), Some("cuLaunchKernel"));
        assert!(check("allocation").is_ok());
        assert_eq!(trace(), ["handle", "cuLaunchKernel", "cuStreamSynchronize"], "armed only");

        arm(u64::MAX);
        assert!(trace().is_empty(), "arming starts a new trace");
        assert!(driver_call("cuMemcpyAsync").is_ok());
        assert_eq!(disarm(), None);
        assert_eq!(trace(), ["cuMemcpyAsync"]);
    }

    #[test]
    fn suspended_acquisitions_are_neither_counted_nor_failed() {
        arm(1);
        {
            let _outer = suspend();
            let _inner = suspend();
            for _ in 0..3 {
                assert!(driver_call("cuCtxPushCurrent").is_ok());
            }
        }
        assert!(check("allocation").is_ok());
        assert!(check("handle").is_err(), "the count resumes after the guards");
        assert_eq!(disarm(), Some("handle"));
    }
}
