//! Incremental checkpoints: a pre-dump arms write tracking and saves memory
//! while the tree runs; the dump that builds on it saves only what was written
//! since; restore reads through both; the tree keeps no trace of the tracking.

mod common;
use common::*;
use std::time::Duration;

fn pages_bytes(dir: &std::path::Path, pid: i32) -> u64 {
    std::fs::metadata(dir.join(format!("pages-{pid}.img"))).unwrap().len()
}

fn pre_dump(pid: i32, dir: &std::path::Path) {
    let (st, _, err) = rckpt(&["pre-dump", "-t", &pid.to_string(), "-D", dir.to_str().unwrap()], &[]);
    assert!(st.success(), "pre-dump failed: {err}");
}

#[test]
fn a_dump_on_a_pre_dump_saves_what_changed_and_restores_everything() {
    // Also, between the two: pages dropped (they come back as zeroes, not as the
    // pre-dump's copy), a region moved onto the place of another (mremap), a
    // region mapped since; the workload checks each after the restore.
    let mut w = Workload::spawn("incremental", &["64", "reshape"]);
    let pre = TempDir::new("pre");
    pre_dump(w.pid, pre.path());
    assert!(pre.file("tracker.sock").exists(), "no holder of the trackers");
    // The tree holds no new descriptor: the trackers live in the holder.
    let fds = std::fs::read_dir(format!("/proc/{}/fd", w.pid)).unwrap().count();
    assert_eq!(fds, 3, "the pre-dump left descriptors in the task");
    signal(w.pid, libc::SIGUSR1);
    w.out.wait_for("WROTE 1", Duration::from_secs(10));
    let img = TempDir::new("incr");
    dump_ok(w.pid, img.path(), &["--prev-images-dir", pre.path().to_str().unwrap()]);
    w.wait_gone();
    let (full, now) = (pages_bytes(pre.path(), w.pid), pages_bytes(img.path(), w.pid));
    assert!(full >= 64 << 20, "the pre-dump saved {full} bytes");
    assert!(now < full / 20, "the dump saved {now} bytes of {full}: not only what changed");
    assert!(!pre.file("tracker.sock").exists(), "the trackers were not released");
    let mut r = Restore::spawn(img.path(), &["--inherit-fd", &w.inherit_stdout()]);
    let (st, lines) = r.trigger_and_finish();
    assert_passed(st, &lines);
}

#[test]
fn after_an_incremental_leave_running_dump_the_tree_keeps_no_trace() {
    let mut w = Workload::spawn("incremental", &["16"]);
    let maps_before = maps(w.pid);
    let pre = TempDir::new("pre-lr");
    pre_dump(w.pid, pre.path());
    signal(w.pid, libc::SIGUSR1);
    w.out.wait_for("WROTE 1", Duration::from_secs(10));
    let img = TempDir::new("incr-lr");
    dump_ok(w.pid, img.path(), &["-R", "--prev-images-dir", pre.path().to_str().unwrap()]);
    // No userfaultfd anywhere in the task, no registration left on its VMAs
    // (smaps shows "uf"/"ui" flags for registered ones), the same mappings.
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{}/fd", w.pid))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_link(e.path()).unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(fds.iter().all(|l| !l.contains("userfaultfd")), "{fds:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(format!("/proc/{}/smaps", w.pid)).unwrap().contains(" uw") {
        assert!(std::time::Instant::now() < deadline, "a VMA is still registered for write-protect");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(maps(w.pid), maps_before);
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}

#[test]
fn without_its_tracker_a_dump_on_a_pre_dump_saves_everything() {
    let mut w = Workload::spawn("incremental", &["16"]);
    let pre = TempDir::new("pre-gone");
    pre_dump(w.pid, pre.path());
    // The holder goes (as if killed): nothing is tracked any more.
    let holder = {
        use std::io::{BufRead, BufReader, Write};
        let s = std::os::unix::net::UnixStream::connect(pre.file("tracker.sock")).unwrap();
        (&s).write_all(b"release\n").unwrap();
        let mut l = String::new();
        BufReader::new(&s).read_line(&mut l).unwrap();
        l
    };
    assert!(holder.starts_with("released"), "{holder}");
    signal(w.pid, libc::SIGUSR1);
    w.out.wait_for("WROTE 1", Duration::from_secs(10));
    let img = TempDir::new("incr-gone");
    dump_ok(w.pid, img.path(), &["--prev-images-dir", pre.path().to_str().unwrap()]);
    w.wait_gone();
    assert!(pages_bytes(img.path(), w.pid) >= 16 << 20, "pages were taken from a pre-dump nobody tracked");
    let mut r = Restore::spawn(img.path(), &["--inherit-fd", &w.inherit_stdout()]);
    let (st, lines) = r.trigger_and_finish();
    assert_passed(st, &lines);
}

#[test]
fn a_pre_dump_alone_or_missing_is_refused_before_anything_exists() {
    let mut w = Workload::spawn("incremental", &["8"]);
    let pre = TempDir::new("pre-alone");
    pre_dump(w.pid, pre.path());
    let (st, _, err) = rckpt(&["restore", "-D", pre.path().to_str().unwrap()], &[]);
    assert_eq!(st.code(), Some(65), "{err}");
    assert!(err.contains("pre-dump"), "{err}");
    let img = TempDir::new("incr-missing");
    dump_ok(w.pid, img.path(), &["--prev-images-dir", pre.path().to_str().unwrap()]);
    w.wait_gone();
    std::fs::remove_dir_all(pre.path()).unwrap();
    let (st, _, err) =
        rckpt(&["restore", "-D", img.path().to_str().unwrap(), "--inherit-fd", &w.inherit_stdout()], &[]);
    assert_eq!(st.code(), Some(65), "{err}");
    assert!(err.contains("pre-dump") && err.contains("missing"), "{err}");
    assert!(!alive(w.pid));
}
