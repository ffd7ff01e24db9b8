//! Damaged images: every corruption is refused with a message naming the file and
//! the problem, and no process of the image is left (none is even created when
//! the metadata is bad).

mod common;
use common::*;
use std::path::Path;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn restore_fails(dir: &Path, pid: i32, key: &str, code: i32, needles: &[&str]) {
    let (st, _, err) = rckpt(&["restore", "-D", dir.to_str().unwrap(), "--inherit-fd", key], &[]);
    assert_eq!(st.code(), Some(code), "expected exit {code}: {err}");
    for n in needles {
        assert!(err.contains(n), "message lacks {n:?}: {err}");
    }
    assert!(!alive(pid), "a process of the image is left: {err}");
}

/// Rewrites a framed file's version (header crc fixed up, so only the version is wrong).
fn set_version(path: &Path, version: u16) {
    let mut b = std::fs::read(path).unwrap();
    b[10..12].copy_from_slice(&version.to_le_bytes());
    let c = crc32c::crc32c(&b[0..28]);
    b[28..32].copy_from_slice(&c.to_le_bytes());
    std::fs::write(path, b).unwrap();
}

#[test]
fn damaged_images_are_refused_before_any_process_exists() {
    let mut w = Workload::spawn("blocking", &["pause", "restored"]);
    let good = TempDir::new("bad-src");
    dump_ok(w.pid, good.path(), &[]);
    w.wait_gone();
    let pid = w.pid;
    let key = w.inherit_stdout();
    let metadata = [
        "inventory.img".to_string(),
        "pstree.img".into(),
        "files.img".into(),
        format!("core-{pid}.img"),
        format!("mm-{pid}.img"),
        format!("fdinfo-{pid}.img"),
    ];
    for name in &metadata {
        // A flipped byte in the body.
        let t = TempDir::new("bad");
        copy_dir(good.path(), t.path());
        let p = t.file(name);
        let mut b = std::fs::read(&p).unwrap();
        let at = 32 + (b.len() - 32) / 2;
        b[at] ^= 0x5a;
        std::fs::write(&p, &b).unwrap();
        restore_fails(t.path(), pid, &key, 65, &[name, "checksum"]);

        // A truncated file.
        let t = TempDir::new("bad");
        copy_dir(good.path(), t.path());
        let p = t.file(name);
        let b = std::fs::read(&p).unwrap();
        std::fs::write(&p, &b[..b.len() - 7]).unwrap();
        let what = if name == "inventory.img" { "truncated" } else { "bytes where the inventory lists" };
        restore_fails(t.path(), pid, &key, 65, &[name, what]);

        // A version this rckpt does not know.
        let t = TempDir::new("bad");
        copy_dir(good.path(), t.path());
        set_version(&t.file(name), 99);
        restore_fails(t.path(), pid, &key, 65, &[name, "version 99 is not supported"]);

        // A missing file.
        let t = TempDir::new("bad");
        copy_dir(good.path(), t.path());
        std::fs::remove_file(t.file(name)).unwrap();
        if name == "inventory.img" {
            restore_fails(t.path(), pid, &key, 66, &["incomplete checkpoint"]);
        } else {
            restore_fails(t.path(), pid, &key, 65, &[name, "missing"]);
        }
    }

    // The pages file: truncated is caught before anything runs...
    let pages = format!("pages-{pid}.img");
    let t = TempDir::new("bad");
    copy_dir(good.path(), t.path());
    let b = std::fs::read(t.file(&pages)).unwrap();
    std::fs::write(t.file(&pages), &b[..b.len() - 4096]).unwrap();
    restore_fails(t.path(), pid, &key, 65, &[&pages, "bytes where the inventory lists"]);
    // ...and a flipped bit in page data by the extent's checksum, after the pages
    // are read into place and before the task runs any of its own code.
    let t = TempDir::new("bad");
    copy_dir(good.path(), t.path());
    let mut b = std::fs::read(t.file(&pages)).unwrap();
    let at = b.len() - 100;
    b[at] ^= 1;
    std::fs::write(t.file(&pages), &b).unwrap();
    restore_fails(t.path(), pid, &key, 65, &[&pages, "checksum"]);

    // No image at all.
    restore_fails(Path::new("/nonexistent/rckpt-image"), pid, &key, 66, &["no image"]);

    // The good image still restores.
    let mut r = Restore::spawn(good.path(), &["--inherit-fd", &key]);
    let (st, lines) = r.trigger_and_finish();
    assert_passed(st, &lines);
}

#[test]
fn a_damaged_long_extent_is_caught_in_place_before_anything_runs() {
    use rckpt_images::Image;
    use rckpt_images::mm::MmImage;
    // 64 MiB of random memory: an extent rckpt checks from its own thread while
    // the task reads the rest (short ones the task checks itself, as above).
    let mut w = Workload::spawn("memory", &[]);
    let good = TempDir::new("long-src");
    dump_ok(w.pid, good.path(), &[]);
    w.wait_gone();
    let pid = w.pid;
    let key = w.inherit_stdout();
    let pages = format!("pages-{pid}.img");
    let mm = MmImage::decode(&std::fs::read(good.file(&format!("mm-{pid}.img"))).unwrap()).unwrap();
    let long = mm
        .extents
        .iter()
        .filter(|e| e.len() >= rckpt::restore::mm::CHECKED_BY_RCKPT_FROM)
        .max_by_key(|e| e.len())
        .expect("the workload has a long extent");
    // Its first byte (checked while the task still reads), one in the middle and
    // its last byte (checked once it has read everything).
    for at in [0, long.len() / 2 + 12345, long.len() - 1] {
        let t = TempDir::new("long-bad");
        copy_dir(good.path(), t.path());
        let mut b = std::fs::read(t.file(&pages)).unwrap();
        b[(long.offset + at) as usize] ^= 0x10;
        std::fs::write(t.file(&pages), &b).unwrap();
        restore_fails(t.path(), pid, &key, 65, &[&pages, "checksum", &format!("{:#x}", long.start)]);
        // The damaged image dir is as it was.
        assert_eq!(std::fs::read(t.file(&pages)).unwrap(), b);
    }
    let mut r = Restore::spawn(good.path(), &["--inherit-fd", &key]);
    let (st, lines) = r.trigger_and_finish();
    assert_passed(st, &lines);
}

#[test]
fn an_unbound_external_is_named() {
    let mut w = Workload::spawn("blocking", &["pause", "restored"]);
    let img = TempDir::new("unbound");
    dump_ok(w.pid, img.path(), &[]);
    w.wait_gone();
    let key = format!("pipe:[{}]", w.stdout_ino);
    let (st, _, err) = rckpt(&["restore", "-D", img.path().to_str().unwrap()], &[]);
    assert_eq!(st.code(), Some(69), "{err}");
    assert!(
        err.contains(&key) && err.contains(&format!("task {} fd 1", w.pid)) && err.contains("--inherit-fd"),
        "{err}"
    );
    assert!(!alive(w.pid));
}

#[test]
fn an_image_from_a_cpu_with_more_features_is_refused_naming_them() {
    use rckpt_images::Image;
    use rckpt_images::inventory::Inventory;
    let mut w = Workload::spawn("blocking", &["pause", "restored"]);
    let img = TempDir::new("cpu");
    dump_ok(w.pid, img.path(), &[]);
    w.wait_gone();
    let here = rckpt::arch::cpu::this_cpu();
    // A feature this CPU lacks (any of these: none has them all).
    let lacking = ["avx512fp16", "amx-tile", "avx512bf16", "avx512vbmi2", "sse4a", "avx512f", "avx2"]
        .into_iter()
        .find(|f| !here.flags.iter().any(|h| h == f))
        .expect("this CPU has every feature the test could ask for");
    let p = img.file("inventory.img");
    let mut inv = Inventory::decode(&std::fs::read(&p).unwrap()).unwrap();
    assert_eq!(inv.cpu, here, "the dump records this CPU");
    inv.cpu.flags.push(lacking.to_string());
    std::fs::write(&p, inv.encode().unwrap()).unwrap();
    let (st, _, err) =
        rckpt(&["restore", "-D", img.path().to_str().unwrap(), "--inherit-fd", &w.inherit_stdout()], &[]);
    assert_eq!(st.code(), Some(78), "{err}");
    assert!(err.contains(lacking) && err.contains("lacks"), "{err}");
    assert!(!alive(w.pid));
}

#[test]
fn a_changed_library_refuses_the_restore_naming_it() {
    let lib = TempDir::new("lib");
    std::fs::create_dir_all(lib.path()).unwrap();
    let copy = lib.file("libm-copy.so");
    std::fs::copy("/lib/x86_64-linux-gnu/libm.so.6", &copy).unwrap();
    let mut w = Workload::spawn("dlopen", &[copy.to_str().unwrap()]);
    let img = TempDir::new("lib-img");
    dump_ok(w.pid, img.path(), &[]);
    w.wait_gone();
    // The same library, same size, another build: its build-id changes.
    let id = rckpt::elf::build_id(&copy).unwrap().expect("libm has a build-id");
    let mut bytes = std::fs::read(&copy).unwrap();
    let at = bytes.windows(id.len()).position(|w| w == id.as_slice()).unwrap();
    bytes[at] ^= 0xff;
    std::fs::write(&copy, &bytes).unwrap();
    let (st, _, err) =
        rckpt(&["restore", "-D", img.path().to_str().unwrap(), "--inherit-fd", &w.inherit_stdout()], &[]);
    assert_eq!(st.code(), Some(78), "{err}");
    assert!(err.contains(copy.to_str().unwrap()) && err.contains("build-id"), "{err}");
    assert!(!alive(w.pid));
}
