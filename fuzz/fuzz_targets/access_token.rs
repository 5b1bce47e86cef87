//! Access-token verification: `SessionManager::get_session` on a raw cookie value
//! or on claims the harness signs; accepted iff independently valid.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_testkit::fuzzing::access_token(data));
