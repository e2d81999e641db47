//! Fault injection for tests: with the cargo feature `fault-injection` (never enabled in release
//! builds), the n-th fallible acquisition a thread makes after `arm(n)` fails — an allocation (any
//! kind of memory, built-in or installed allocator) or a handle — so a test can walk n over a whole
//! scenario and check that every failure surfaces as a status with a message, leaks nothing and
//! runs no cleanup twice. Driver calls are not injected here (a failure must be injected before
//! the call, inside `cuda/`, to be faithful). Without the feature `check` compiles to nothing.

use crate::error::Result;

#[cfg(feature = "fault-injection")]
mod armed {
    use crate::error::{Error, Result};
    use std::cell::Cell;

    thread_local! {
        /// Acquisitions left before the injected failure (`None`: disarmed).
        static LEFT: Cell<Option<u64>> = const { Cell::new(None) };
        /// Whether the armed failure has been injected.
        static FIRED: Cell<bool> = const { Cell::new(false) };
    }

    /// Makes this thread's `n`-th acquisition from now on (0 = the next) fail, once.
    #[cfg(test)]
    pub(crate) fn arm(n: u64) {
        LEFT.with(|left| left.set(Some(n)));
        FIRED.with(|fired| fired.set(false));
    }

    /// Disarms; returns whether the failure was injected.
    #[cfg(test)]
    pub(crate) fn disarm() -> bool {
        LEFT.with(|left| left.set(None));
        FIRED.with(|fired| fired.replace(false))
    }

    pub(crate) fn check(site: &str) -> Result<()> {
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
        if !fire {
            return Ok(());
        }
        FIRED.with(|fired| fired.set(true));
        Err(Error::out_of_memory(format!("{site}: injected failure (fault-injection test build)")))
    }
}

#[cfg(all(test, feature = "fault-injection"))]
pub(crate) use armed::{arm, disarm};

/// Fails when a test armed this acquisition (`site` names it in the message); `Ok` otherwise,
/// and always without the `fault-injection` feature.
#[inline(always)]
pub(crate) fn check(site: &str) -> Result<()> {
    #[cfg(feature = "fault-injection")]
    return armed::check(site);
    #[cfg(not(feature = "fault-injection"))]
    {
        let _ = site;
        Ok(())
    }
}
