//! The few CPython API functions the exchange API tensorbridge offers needs, found at run time in
//! the process (`dlsym`): the library never links against Python, and outside a Python process
//! these lookups simply fail. Every caller holds the GIL (the exchange API's contract).

use crate::error::{Error, Result};
use std::ffi::{CStr, c_char, c_void};
use std::sync::OnceLock;

/// The CPython functions used, resolved once.
pub(crate) struct Python {
    get_attr_string: unsafe extern "C" fn(*mut c_void, *const c_char) -> *mut c_void,
    long_as_unsigned_long_long: unsafe extern "C" fn(*mut c_void) -> u64,
    long_from_unsigned_long_long: unsafe extern "C" fn(u64) -> *mut c_void,
    call_one_arg: unsafe extern "C" fn(*mut c_void, *mut c_void) -> *mut c_void,
    dec_ref: unsafe extern "C" fn(*mut c_void),
    inc_ref: unsafe extern "C" fn(*mut c_void),
    err_occurred: unsafe extern "C" fn() -> *mut c_void,
    err_set_string: unsafe extern "C" fn(*mut c_void, *const c_char),
    buffer_error: *mut c_void,
}

// SAFETY: function addresses and the address of a static exception type, used with the GIL held.
unsafe impl Send for Python {}
// SAFETY: as above.
unsafe impl Sync for Python {}

fn symbol(name: &CStr) -> Option<*mut c_void> {
    // SAFETY: dlsym with RTLD_DEFAULT looks a name up in the loaded objects; name is a C string.
    let found = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!found.is_null()).then_some(found)
}

/// The function `name`, as the function-pointer type `F` the caller names.
///
/// # Safety
/// `F` is the C signature of the symbol `name`.
unsafe fn function<F: Copy>(name: &CStr) -> Option<F> {
    let address = symbol(name)?;
    assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*mut c_void>());
    // SAFETY: F is a function pointer of the symbol's signature (contract), of pointer size.
    Some(unsafe { std::mem::transmute_copy::<*mut c_void, F>(&address) })
}

fn resolve() -> Option<Python> {
    // SAFETY: each type below is the signature of the CPython function of that name;
    // PyExc_BufferError is a `PyObject*` variable.
    unsafe {
        Some(Python {
            get_attr_string: function(c"PyObject_GetAttrString")?,
            long_as_unsigned_long_long: function(c"PyLong_AsUnsignedLongLong")?,
            long_from_unsigned_long_long: function(c"PyLong_FromUnsignedLongLong")?,
            call_one_arg: function(c"PyObject_CallOneArg")?,
            dec_ref: function(c"Py_DecRef")?,
            inc_ref: function(c"Py_IncRef")?,
            err_occurred: function(c"PyErr_Occurred")?,
            err_set_string: function(c"PyErr_SetString")?,
            buffer_error: *(symbol(c"PyExc_BufferError")? as *const *mut c_void),
        })
    }
}

/// The CPython API of this process, when it is a Python process.
pub(crate) fn python() -> Result<&'static Python> {
    static PYTHON: OnceLock<Option<Python>> = OnceLock::new();
    PYTHON.get_or_init(resolve).as_ref().ok_or_else(|| {
        Error::not_supported("the CPython API is not loaded in this process (not a Python process)")
    })
}

impl Python {
    /// The unsigned integer attribute `name` of `object` (a `PyObject*`).
    ///
    /// # Safety
    /// The GIL is held and `object` is a live `PyObject*`.
    pub(crate) unsafe fn unsigned_attribute(
        &self,
        object: *mut c_void,
        name: &CStr,
    ) -> Option<u64> {
        // SAFETY: GIL held, live object (contract); the result is a new reference or NULL.
        let value = unsafe { (self.get_attr_string)(object, name.as_ptr()) };
        if value.is_null() {
            return None;
        }
        // SAFETY: value is a live object; it is released once.
        let number = unsafe { (self.long_as_unsigned_long_long)(value) };
        // SAFETY: as above.
        unsafe { (self.dec_ref)(value) };
        // SAFETY: GIL held.
        (unsafe { (self.err_occurred)() }).is_null().then_some(number)
    }

    /// `factory(number)`: a new reference, or NULL with a Python exception set.
    ///
    /// # Safety
    /// The GIL is held and `factory` is a live callable.
    pub(crate) unsafe fn call_with_unsigned(
        &self,
        factory: *mut c_void,
        number: u64,
    ) -> *mut c_void {
        // SAFETY: GIL held (contract).
        let argument = unsafe { (self.long_from_unsigned_long_long)(number) };
        if argument.is_null() {
            return std::ptr::null_mut();
        }
        // SAFETY: live callable and argument; the argument is released once.
        let result = unsafe { (self.call_one_arg)(factory, argument) };
        // SAFETY: as above.
        unsafe { (self.dec_ref)(argument) };
        result
    }

    /// Keeps `object` alive (a new strong reference that is never released).
    ///
    /// # Safety
    /// The GIL is held and `object` is live.
    pub(crate) unsafe fn keep(&self, object: *mut c_void) {
        // SAFETY: contract.
        unsafe { (self.inc_ref)(object) }
    }

    /// Sets a Python `BufferError` with `message`, as the exchange API asks of a failed call.
    ///
    /// # Safety
    /// The GIL is held.
    pub(crate) unsafe fn set_buffer_error(&self, message: &str) {
        let text = std::ffi::CString::new(message.replace('\0', " ")).unwrap_or_default();
        // SAFETY: GIL held; BufferError is a live exception type.
        unsafe { (self.err_set_string)(self.buffer_error, text.as_ptr()) }
    }
}
