//! Real programs, dumped in the middle of their work and restored, each checked
//! from outside: its output or its answers must be what an uninterrupted run
//! gives.

mod common;
use common::*;
use std::process::Command;
use std::time::Duration;

/// Lines "PREFIX n ..." of `lines`, by n.
fn steps(lines: &[String], prefix: &str) -> Vec<(u64, String)> {
    lines
        .iter()
        .filter_map(|l| {
            let rest = l.strip_prefix(prefix)?;
            let n = rest.split_whitespace().next()?.parse().ok()?;
            Some((n, l.clone()))
        })
        .collect()
}

#[test]
fn a_python_interpreter_continues_its_computation() {
    let py = "/usr/bin/python3";
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/programs/compute.py");
    // The reference: an uninterrupted run.
    let out = Command::new(py).args([script, "60", "0"]).output().unwrap();
    let reference: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect();
    let reference = steps(&reference, "STEP ");
    assert_eq!(reference.len(), 60);

    let mut cmd = Command::new(py);
    cmd.args([script, "60", "0.02"]);
    let mut w = Workload::command(cmd);
    w.out.wait_for("STEP 10 ", Duration::from_secs(30));
    let img = TempDir::new("python");
    dump_ok(w.pid, img.path(), &[]);
    w.wait_gone();
    let before = steps(&w.out.drain(Duration::from_millis(200)).to_vec(), "STEP ");
    let last = before.last().unwrap().0;
    let mut r = Restore::spawn(img.path(), &["--inherit-fd", &w.inherit_stdout()]);
    let (st, lines) = r.finish();
    assert!(st.success(), "{st:?}");
    let after = steps(&lines, "STEP ");
    assert_eq!(after.first().map(|s| s.0), Some(last + 1), "it did not continue from step {last}: {lines:?}");
    for (n, l) in before.iter().chain(after.iter()) {
        assert_eq!(&reference[*n as usize - 1].1, l, "step {n} differs from an uninterrupted run");
    }
    assert_eq!(after.last().map(|s| s.0), Some(60));
    assert!(lines.iter().any(|l| l == "DONE"));
}

#[test]
fn a_bash_script_continues_its_loop_of_subshell_pipelines() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/programs/loop.sh");
    let out = Command::new("bash").args([script, "40", "0"]).output().unwrap();
    let reference: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect();
    let reference = steps(&reference, "ROUND ");
    assert_eq!(reference.len(), 40);

    let mut cmd = Command::new("setsid");
    cmd.args(["bash", script, "40", "0.05"]);
    let mut w = Workload::command(cmd);
    w.out.wait_for("ROUND 5 ", Duration::from_secs(30));
    let img = TempDir::new("bash");
    dump_ok(w.pid, img.path(), &[]);
    w.wait_gone();
    let before = steps(&w.out.drain(Duration::from_millis(200)).to_vec(), "ROUND ");
    let last = before.last().unwrap().0;
    let mut r = Restore::spawn(img.path(), &["--inherit-fd", &w.inherit_stdout()]);
    let (st, lines) = r.finish();
    assert!(st.success(), "{st:?}: {lines:?}");
    let after = steps(&lines, "ROUND ");
    assert_eq!(after.first().map(|s| s.0), Some(last + 1), "it did not continue from round {last}: {lines:?}");
    for (n, l) in before.iter().chain(after.iter()) {
        assert_eq!(&reference[*n as usize - 1].1, l, "round {n} differs from an uninterrupted run");
    }
    assert!(lines.iter().any(|l| l == "DONE"));
}
