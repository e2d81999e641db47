#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tb_fuzz_harness::layout_parse::run(data));
