//! libFuzzer target: a core image file, decoded and validated on its own and within
//! a whole image, as it is and with its frame refitted to its body.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rckpt_fuzz::harness::Target;

#[global_allocator]
static ALLOC: rckpt_fuzz::alloc::Counting = rckpt_fuzz::alloc::Counting;

fuzz_target!(|data: &[u8]| rckpt_fuzz::fuzz_one(Target::Core, data));
