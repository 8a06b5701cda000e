//! Fuzz target `clock`: see `pitboss_fuzz_harness::clock` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pitboss_fuzz_harness::clock::check(data));
