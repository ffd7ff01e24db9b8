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

fn states(root: i32) -> Vec<char> {
    tree_pids(root)
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
        .filter_map(|s| s.rsplit(')').next()?.split_whitespace().next()?.chars().next())
        .collect()
}

#[test]
fn a_tree_forking_while_dumped_is_dumped_consistently_or_refused_never_left_stopped() {
    let mut w = Workload::spawn("forkstorm", &[]);
    for i in 0..5 {
        let img = TempDir::new("storm");
        let (st, err) = dump(w.pid, img.path(), &["--leave-running"]);
        assert!(st.success() || st.code() == Some(69), "dump {i}: {st:?} {err}");
        std::thread::sleep(Duration::from_millis(30));
        let s = states(w.pid);
        assert!(!s.iter().any(|c| *c == 't' || *c == 'T'), "dump {i} left the tree stopped: {s:?}");
    }
    // And through a restore.
    let mut r = dump_and_restore(&mut w, "storm-kill");
    trigger_tree(r.pid);
    let (st, lines) = r.finish();
    assert_passed(st, &lines);
}

#[test]
fn a_64_process_tree_restores() {
    let mut w = Workload::spawn("fanout", &["7", "8"]);
    assert_eq!(tree_pids(w.pid).len(), 64);
    let mut r = dump_and_restore(&mut w, "fanout");
    assert_eq!(tree_pids(r.pid).len(), 64);
    trigger_tree(r.pid);
    let (st, lines) = r.finish();
    assert_passed(st, &lines);
}

#[test]
fn a_200_thread_process_restores() {
    let mut w = Workload::spawn("threads", &["200"]);
    let mut r = dump_and_restore(&mut w, "threads200");
    assert_eq!(std::fs::read_dir(format!("/proc/{}/task", r.pid)).unwrap().count(), 201);
    let (st, lines) = r.trigger_and_finish();
    assert_passed(st, &lines);
}

#[test]
fn a_pid_in_use_fails_the_restore_naming_it_and_leaves_nothing() {
    let mut w = Workload::spawn("tree", &[]);
    let pids = tree_pids(w.pid);
    let img = TempDir::new("pidtaken");
    dump_ok(w.pid, img.path(), &[]);
    w.wait_gone();
    // Hold the last child's pid once init has reaped it.
    let victim = *pids.last().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{victim}")).exists() {
        assert!(std::time::Instant::now() < deadline, "pid {victim} never freed");
        std::thread::sleep(Duration::from_millis(20));
    }
    let holder = std::process::Command::new(workload_bin("hold_pid"))
        .arg(victim.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut holder = scopeguard(holder);
    let mut out = Lines::new(holder.0.stdout.take().unwrap());
    let l = out.wait_for("", Duration::from_secs(5));
    assert!(l.starts_with("HELD"), "{l}");
    let (st, _, err) =
        rckpt(&["restore", "-D", img.path().to_str().unwrap(), "--inherit-fd", &w.inherit_stdout()], &[]);
    assert!(!st.success());
    assert!(err.contains(&format!("pid {victim}")), "{err}");
    for p in &pids {
        if *p != victim {
            assert!(!alive(*p), "process {p} of the image is left: {err}");
        }
    }
    drop(out);
    holder.0.kill().ok();
    holder.0.wait().ok();
}

struct Guard(std::process::Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
fn scopeguard(c: std::process::Child) -> Guard {
    Guard(c)
}

#[test]
fn a_daemon_whose_session_leader_is_gone_comes_back_in_that_session() {
    let mut w = Workload::spawn("daemon", &[]);
    let launcher = w.line_value("LAUNCHER").unwrap() as i32;
    assert_ne!(launcher, w.pid);
    let img = TempDir::new("daemon");
    dump_ok(w.pid, img.path(), &[]);
    // The launcher was the test's child; the daemon, init's.
    w.wait_gone();
    let mut r = Restore::spawn(img.path(), &["--inherit-fd", &w.inherit_stdout()]);
    assert_eq!(r.pid, w.pid);
    let (st, lines) = r.trigger_and_finish();
    assert_passed(st, &lines);
}

#[test]
fn below_the_root_a_session_whose_leader_is_gone_is_rebuilt() {
    let mut w = Workload::spawn("subreaper", &[]);
    assert_eq!(tree_pids(w.pid).len(), 2);
    let mut r = dump_and_restore(&mut w, "subreaper");
    trigger_tree(r.pid);
    let (st, lines) = r.finish();
    assert_passed(st, &lines);
}
