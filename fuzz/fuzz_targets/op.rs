//! Fuzz target `op`: see `pitboss_fuzz_harness::op` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pitboss_fuzz_harness::op::check(data));
