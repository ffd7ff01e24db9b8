//! Fuzzing of the rckpt image format: the shared harness, the allocation
//! accounting, the mutation engine of the stable driver, the seed corpus
//! generator and the large-input measurements. See README.md.

/// The builders of a valid image, shared with the tests of rckpt-images.
#[path = "../../images/tests/common/mod.rs"]
pub mod common;

pub mod alloc;
pub mod harness;
pub mod mutate;
pub mod seeds;
pub mod stress;

use std::path::Path;

use harness::Target;

/// One libFuzzer input: as it is, then with its frame (or, for a whole image, every
/// frame and the inventory's sizes) repaired, so that damage reaches the decoder.
/// Panics on a harness oracle or when the heap taken exceeds [`alloc::bound`].
pub fn fuzz_one(target: Target, data: &[u8]) {
    check_one(target, data);
    let repaired = match target {
        Target::Image => harness::repair(data),
        Target::Pages => {
            let mut b = data.to_vec();
            harness::fix_pages_crc(&mut b);
            (b != data).then_some(b)
        }
        _ => harness::refit(data),
    };
    if let Some(b) = repaired {
        check_one(target, &b);
    }
}

/// The harness's measured sections (see src/harness.rs).
pub(crate) use alloc::metered;

fn check_one(target: Target, data: &[u8]) {
    alloc::take_metered();
    harness::run(target, data);
    let peak = alloc::take_metered();
    let bound = alloc::bound(data.len());
    assert!(
        peak <= bound,
        "{}: an input of {} bytes took {peak} bytes of heap (bound {bound})",
        target.name(),
        data.len()
    );
}

/// Reads the corpus: fuzz/corpus/<target>/* for every target.
pub fn load_corpus(dir: &Path) -> mutate::Corpus {
    let mut inputs = Vec::new();
    for t in Target::ALL {
        let mut files: Vec<_> = std::fs::read_dir(dir.join(t.name()))
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort();
        let v: Vec<Vec<u8>> = files.iter().filter_map(|p| std::fs::read(p).ok()).collect();
        inputs.push((t, v));
    }
    let dirs = inputs
        .iter()
        .find(|(t, _)| *t == Target::Image)
        .map(|(_, v)| v.iter().map(|b| harness::Dir::parse(b)).collect())
        .unwrap_or_default();
    mutate::Corpus { inputs, dirs }
}
