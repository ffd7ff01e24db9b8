//! libFuzzer target: the header page of a pages file, as it is and with its
//! checksum recomputed.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rckpt_fuzz::harness::Target;

#[global_allocator]
static ALLOC: rckpt_fuzz::alloc::Counting = rckpt_fuzz::alloc::Counting;

fuzz_target!(|data: &[u8]| rckpt_fuzz::fuzz_one(Target::Pages, data));
