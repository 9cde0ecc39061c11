#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ctix_fuzz::targets::values(data));
