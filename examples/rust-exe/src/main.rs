use std::ffi::CStr;
use std::os::raw::c_char;

extern "C" {
    fn greet_answer() -> i32;
    fn greet_message() -> *const c_char;
}

fn main() {
    // SAFETY: libgreet returns a static NUL-terminated string and a plain int.
    let (message, answer) = unsafe { (CStr::from_ptr(greet_message()), greet_answer()) };
    println!("{} {}", message.to_string_lossy(), answer);
}
