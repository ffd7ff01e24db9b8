//! libFuzzer target: a whole image directory (an archive, see harness::Dir), read
//! as the reader does and validated with `ImageSet::validate`, as it is and with
//! every frame and the inventory's sizes repaired.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rckpt_fuzz::harness::Target;

#[global_allocator]
static ALLOC: rckpt_fuzz::alloc::Counting = rckpt_fuzz::alloc::Counting;

fuzz_target!(|data: &[u8]| rckpt_fuzz::fuzz_one(Target::Image, data));
