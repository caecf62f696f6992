#![no_main]
//! Every parser that takes bytes from outside: none may panic, whatever the input.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| edrlink_core::fuzzing::parse_everything(data));
