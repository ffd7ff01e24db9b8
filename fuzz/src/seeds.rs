//! The seed corpus: real encoded images, from the builders of
//! images/tests/common and from image directories written by `rckpt dump`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rckpt_images::Kind;

use crate::common;
use crate::harness::{self, Dir, Target, kind_of};

/// Per-task files of one kind taken from one image (the tasks of a tree look alike).
const PER_IMAGE: usize = 3;

/// Writes corpus/<target>/<origin>-<file> for every file of every image, and
/// corpus/image/<origin>.dir for every whole image. `from` are image directories
/// (`rckpt dump -D DIR`); the builders' image is always included as "common".
/// Returns the number of files written.
pub fn generate(out: &Path, from: &[PathBuf]) -> Result<usize, String> {
    let mut images = vec![("common".to_string(), Dir::from_set(&common::valid_set()))];
    for p in from {
        let dir = Dir::load(p).map_err(|e| format!("{}: {e}", p.display()))?;
        if let Err(e) = harness::read_dir(&dir) {
            // An image of another format version (or a broken one) is no seed.
            eprintln!("skipping {}: not a valid image: {e}", p.display());
            continue;
        }
        let origin = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "dump".into());
        images.push((origin, dir));
    }
    let mut written = 0;
    let mut seen: BTreeSet<(Target, Vec<u8>)> = BTreeSet::new();
    for (origin, dir) in &images {
        let path = out.join("image").join(format!("{origin}.dir"));
        write(&path, &dir.to_bytes())?;
        written += 1;
        let mut per_kind = std::collections::BTreeMap::<Kind, usize>::new();
        for (name, f) in &dir.files {
            let Some(kind) = kind_of(name) else { continue };
            let target = Target::ALL.into_iter().find(|t| t.kind() == Some(kind)).unwrap();
            let n = per_kind.entry(kind).or_default();
            if *n >= PER_IMAGE || !seen.insert((target, f.data.clone())) {
                continue;
            }
            *n += 1;
            write(&out.join(target.name()).join(format!("{origin}-{name}")), &f.data)?;
            written += 1;
        }
    }
    Ok(written)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::create_dir_all(path.parent().unwrap()).map_err(|e| e.to_string())?;
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}
