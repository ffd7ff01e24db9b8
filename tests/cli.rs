//! The front door: `rckpt demo`, `rckpt check`, `rckpt show`, exit codes of bad
//! command lines.

mod common;
use common::*;

#[test]
fn demo_runs_and_the_workload_continues() {
    let (st, out, err) = rckpt(&["demo"], &[]);
    assert!(st.success(), "demo failed: {out}\n{err}");
    assert!(out.contains("continued from tick 5 to 6") && out.contains("matching an uninterrupted run"), "{out}");
}

#[test]
fn check_reports_every_feature_ok_here() {
    let (st, out, _) = rckpt(&["check"], &[]);
    assert!(st.success(), "{out}");
    assert!(out.contains("ok       PAGEMAP_SCAN"), "{out}");
    assert!(!out.contains("missing"), "{out}");
}

#[test]
fn usage_errors_exit_64_and_help_exits_0() {
    let (st, _, err) = rckpt(&["dump", "-t", "notapid", "-D", "/tmp/x"], &[]);
    assert_eq!(st.code(), Some(64), "{err}");
    let (st, _, err) = rckpt(&["restore", "-D", "/tmp/x", "--inherit-fd", "bogus"], &[]);
    assert_eq!(st.code(), Some(64), "{err}");
    assert!(err.contains("fd[N]:KEY"), "{err}");
    let (st, out, _) = rckpt(&["dump", "--help"], &[]);
    assert_eq!(st.code(), Some(0));
    assert!(out.contains("Examples"), "{out}");
}

#[test]
fn dumping_a_missing_task_exits_67() {
    let img = TempDir::new("notask");
    // pid_max here is 32768 or more; a pid beyond every live one.
    let (st, _, err) = rckpt(&["dump", "-t", "4194000", "-D", img.path().to_str().unwrap()], &[]);
    assert_eq!(st.code(), Some(67), "{err}");
    assert!(err.contains("no task 4194000"), "{err}");
}

#[test]
fn show_describes_an_image() {
    let mut w = Workload::spawn("blocking", &["pause", "running"]);
    let img = TempDir::new("show");
    dump_ok(w.pid, img.path(), &["--leave-running"]);
    let (st, out, err) = rckpt(&["show", "-D", img.path().to_str().unwrap()], &[]);
    assert!(st.success(), "{err}");
    assert!(out.contains(&format!("task {} ", w.pid)) && out.contains("external pipe:["), "{out}");
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}
