#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tb_fuzz_harness::dtype_typestr::run(data));
