#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tb_fuzz_harness::array_interface::run(data));
