//! libgreet's interface, implemented in Rust with the C ABI.
use std::os::raw::c_char;

/// The answer, as a number.
#[no_mangle]
pub extern "C" fn greet_answer() -> i32 {
    42
}

/// A greeting; a static string, never freed.
#[no_mangle]
pub extern "C" fn greet_message() -> *const c_char {
    c"hello from rust-greet".as_ptr()
}
