//! Cookie-header parsing: `find_cookie`, `find_cookies` and the `RequestSource`
//! impls agree with a reference and return only bytes of the header.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_testkit::fuzzing::cookie_header(data));
