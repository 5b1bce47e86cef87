//! The anti-CSRF check of `get_session`: passes iff the header equals the claim.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_testkit::fuzzing::anti_csrf(data));
