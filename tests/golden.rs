//! Golden images of each kept format generation (tests/golden/vN/CASE/): every
//! later rckpt reads them (decoding, converting, validating), and a version it
//! does not know is refused by name. Generation 1: every image kind at version
//! 1. Generation 2: mm images at version 2 (VM_NORESERVE kept), the rest at 1.
//! `cargo test --test golden -- --ignored regenerate` writes the current
//! generation's again from the workloads (only while it is the current one).

mod common;
use common::*;
use std::path::{Path, PathBuf};

/// The generation this rckpt writes.
const CURRENT: u32 = 2;

fn golden(version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/v{version}"))
}

fn cases(version: u32) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(golden(version)).unwrap().flatten().map(|e| e.path()).collect();
    v.sort();
    v
}

#[test]
fn every_kept_version_reads_back() {
    let cases: Vec<PathBuf> = (1..=CURRENT).flat_map(cases).collect();
    assert!(cases.len() >= 10, "golden images are missing: {cases:?}");
    for c in cases {
        check_reencodes(&c);
        let (st, out, err) = rckpt(&["show", "--json", "-D", c.to_str().unwrap()], &[]);
        assert!(st.success(), "{}: {err}", c.display());
        assert!(out.contains("\"tasks\""), "{}: {out}", c.display());
    }
}

#[test]
fn a_newer_version_is_refused_by_name() {
    let src = &cases(1)[0];
    let t = TempDir::new("golden-newer");
    std::fs::create_dir_all(t.path()).unwrap();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        std::fs::copy(e.path(), t.path().join(e.file_name())).unwrap();
    }
    // The mm image of the root, as a version 3 this rckpt does not know.
    let mm = std::fs::read_dir(t.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("mm-"))
        .unwrap();
    let mut b = std::fs::read(&mm).unwrap();
    b[10..12].copy_from_slice(&3u16.to_le_bytes());
    let c = crc32c::crc32c(&b[0..28]);
    b[28..32].copy_from_slice(&c.to_le_bytes());
    std::fs::write(&mm, b).unwrap();
    let (st, _, err) = rckpt(&["restore", "-D", t.path().to_str().unwrap()], &[]);
    assert_eq!(st.code(), Some(65), "{err}");
    assert!(err.contains("version 3") && err.contains("[1, 2]"), "{err}");
}

/// Dumps each workload into the current generation's directory (run by hand;
/// commit the result).
#[test]
#[ignore]
fn regenerate() {
    let out = golden(CURRENT);
    let data = TempDir::new("golden-data");
    std::fs::create_dir_all(data.path()).unwrap();
    let d = data.path().to_str().unwrap().to_string();
    let workloads: Vec<(&str, Vec<&str>, Vec<&str>)> = vec![
        ("tree", vec![], vec![]),
        ("zombies", vec![], vec![]),
        ("threads", vec![], vec![]),
        ("ipc", vec![&d], vec![]),
        ("events", vec![&d], vec!["--file-locks"]),
        ("pty", vec![], vec![]),
        ("signals", vec![], vec![]),
    ];
    for (name, args, extra) in workloads {
        let dir = out.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        let mut w = Workload::spawn(name, &args);
        wait_blocked(w.pid);
        let mut ex = extra.clone();
        ex.push("--leave-running");
        dump_ok(w.pid, &dir, &ex);
        trigger_tree(w.pid);
        let _ = w.trigger_and_finish();
    }
}

#[test]
fn a_version_1_mm_image_cannot_carry_what_version_2_added() {
    use rckpt_images::Image;
    use rckpt_images::mm::{MmImage, vmflags};
    let mm = std::fs::read_dir(&cases(1)[0])
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("mm-"))
        .unwrap();
    let mut v = MmImage::decode(&std::fs::read(&mm).unwrap()).unwrap();
    assert!(v.vmas.iter().all(|v| v.flags & vmflags::NORESERVE == 0));
    v.vmas[0].flags |= vmflags::NORESERVE;
    // Framed as version 1 (the header crc fixed up).
    let mut b = v.encode().unwrap();
    b[10..12].copy_from_slice(&1u16.to_le_bytes());
    let c = crc32c::crc32c(&b[0..28]);
    b[28..32].copy_from_slice(&c.to_le_bytes());
    let e = MmImage::decode(&b).unwrap_err().to_string();
    assert!(e.contains("version 1"), "{e}");
    // As version 2 it is valid.
    assert_eq!(MmImage::decode(&v.encode().unwrap()).unwrap(), v);
}
