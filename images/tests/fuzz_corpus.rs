//! Replays the fuzz corpus (fuzz/corpus/<target>/) and the saved reproducers
//! (fuzz/crashes/) through the fuzz harness, fuzz/src/harness.rs, included here
//! by path: no input may panic, and the seeds, real images, should be accepted.
//! The fuzzing itself lives in fuzz/ (see fuzz/README.md).

mod common;
#[path = "../../fuzz/src/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};

use harness::{Depth, Target};

/// The harness measures the heap of its `metered` sections in the fuzz crate;
/// here they just run.
fn metered<R>(f: impl FnOnce() -> R) -> R {
    f()
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn the_seed_corpus_is_accepted_without_a_panic() {
    let mut seeds = 0;
    let mut stale = Vec::new();
    for t in Target::ALL {
        for p in files_in(&harness::corpus_dir().join(t.name())) {
            let bytes = std::fs::read(&p).unwrap();
            seeds += 1;
            let depth = harness::run(t, &bytes);
            if depth != Depth::Valid {
                stale.push(format!("{} ({depth:?})", p.display()));
            }
        }
    }
    assert!(seeds > 0, "no seeds under {}", harness::corpus_dir().display());
    // A seed written by an older format is refused, not a bug: it only calls for
    // `--gen-corpus` (fuzz/README.md).
    if !stale.is_empty() {
        eprintln!(
            "{} of {seeds} seeds are not accepted (regenerate the corpus):\n  {}",
            stale.len(),
            stale.join("\n  ")
        );
    }
}

#[test]
fn the_saved_reproducers_do_not_panic() {
    let dir = harness::corpus_dir().join("../crashes");
    for p in files_in(&dir) {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        // Reproducers of slow checks take seconds in a debug build: replayed by
        // the fuzz driver (--replay), not here.
        if !name.ends_with(".bin") || name.contains("-hang-") {
            continue;
        }
        let target = Target::from_name(name.split('-').next().unwrap()).expect("a target name");
        harness::run(target, &std::fs::read(&p).unwrap());
    }
}

#[test]
fn an_archive_round_trips_and_reads_as_the_builders_image() {
    let set = common::valid_set();
    let dir = harness::Dir::from_set(&set);
    let bytes = dir.to_bytes();
    assert_eq!(harness::Dir::parse(&bytes), dir);
    let back = harness::read_dir(&dir).expect("the builders' image reads back");
    assert_eq!(back.inventory, set.inventory);
    assert_eq!(harness::run(Target::Image, &bytes), Depth::Valid);
    // Damage behind a repaired frame reaches the decoder.
    let mut damaged = dir.clone();
    let f = damaged.files.get_mut("pstree.img").unwrap();
    f.data.push(0);
    f.len += 1;
    let repaired = harness::repair(&damaged.to_bytes()).expect("a repair");
    assert_eq!(harness::run(Target::Image, &repaired), Depth::Decode);
}
