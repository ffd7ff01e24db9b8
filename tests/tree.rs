//! Whole process trees: sessions, groups, a grandchild, zombies, threads, an
//! exited leader, restored with their ids in saved order.

mod common;
use common::*;
use std::time::Duration;

fn dump_and_restore(w: &mut Workload, tag: &str) -> Restore {
    let img = TempDir::new(tag);
    dump_ok(w.pid, img.path(), &[]);
    w.wait_gone();
    // Children of the dumped root are reparented to init, which reaps lazily.
    let r = Restore::spawn(img.path(), &["--inherit-fd", &w.inherit_stdout()]);
    assert_eq!(r.pid, w.pid);
    std::mem::forget(img);
    r
}

#[test]
fn a_tree_in_two_sessions_and_three_groups_keeps_its_ids() {
    let mut w = Workload::spawn("tree", &[]);
    let before = tree_pids(w.pid);
    assert_eq!(before.len(), 5, "{before:?}");
    let mut r = dump_and_restore(&mut w, "tree");
    let after = tree_pids(r.pid);
    let (mut a, mut b) = (before.clone(), after.clone());
    a.sort();
    b.sort();
    assert_eq!(a, b, "the restored tree has other pids");
    trigger_tree(r.pid);
    let (st, lines) = r.finish();
    assert_passed(st, &lines);
}

#[test]
fn a_tree_survives_leave_running() {
    let mut w = Workload::spawn("tree", &[]);
    let img = TempDir::new("tree-lr");
    dump_ok(w.pid, img.path(), &["--leave-running"]);
    trigger_tree(w.pid);
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
    let _ = Duration::from_secs(0);
}

#[test]
fn zombies_keep_their_exit_status_until_reaped() {
    let mut w = Workload::spawn("zombies", &[]);
    let mut r = dump_and_restore(&mut w, "zombies");
    let (st, lines) = r.trigger_and_finish();
    assert_passed(st, &lines);
}

#[test]
fn eight_threads_keep_their_tls_tids_names_and_masks() {
    let mut w = Workload::spawn("threads", &["8"]);
    let mut r = dump_and_restore(&mut w, "threads");
    let (st, lines) = r.trigger_and_finish();
    assert_passed(st, &lines);
}

#[test]
fn threads_survive_leave_running() {
    let mut w = Workload::spawn("threads", &["8"]);
    let img = TempDir::new("threads-lr");
    dump_ok(w.pid, img.path(), &["--leave-running"]);
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}

#[test]
fn a_group_whose_leader_exited_runs_on() {
    let mut w = Workload::spawn("leaderless", &[]);
    std::thread::sleep(Duration::from_millis(50));
    let mut r = dump_and_restore(&mut w, "leaderless");
    let (st, lines) = r.trigger_and_finish();
    assert_passed(st, &lines);
}

#[test]
fn a_forked_tree_comes_back_at_its_real_footprint() {
    const GIB: u64 = 1 << 30;
    let mut w = Workload::spawn("cowfork", &["1024", "8"]);
    assert_eq!(tree_pids(w.pid).len(), 9);
    let before = tree_pss(w.pid);
    let img = TempDir::new("cowfork");
    dump_ok(w.pid, img.path(), &[]);
    w.wait_gone();
    let image: u64 = std::fs::read_dir(img.path()).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    let mut r = Restore::spawn(img.path(), &["--inherit-fd", &w.inherit_stdout()]);
    let after = tree_pss(r.pid);
    eprintln!("pss before {} MiB, after {} MiB, image {} MiB", before >> 20, after >> 20, image >> 20);
    // The 1 GiB is saved once, in the parent, and shared again after restore.
    assert!(image < GIB + GIB / 10, "the image holds {} MiB", image >> 20);
    assert!(after < GIB + GIB / 4, "the restored tree uses {} MiB", after >> 20);
    trigger_tree(r.pid);
    let (st, lines) = r.finish();
    assert_passed(st, &lines);
}
