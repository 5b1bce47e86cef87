//! Refresh-token opening: `open_refresh_token` and `refresh_session`; opened
//! tokens are authentic and round-trip.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_testkit::fuzzing::refresh_token(data));
