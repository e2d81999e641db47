#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tb_fuzz_harness::wrap_views::run(data));
