//! Fuzz target `frame`: see `pitboss_fuzz_harness::frame` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pitboss_fuzz_harness::frame::check(data));
