//! A task on a terminal: its tty fds are externals, bound at restore to rckpt's
//! own terminal with --shell-job (-j).

mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::Duration;

fn pty() -> (OwnedFd, OwnedFd) {
    let p = nix::pty::openpty(None, None).unwrap();
    (p.master, p.slave)
}

fn read_until(master: &OwnedFd, want: &str) -> Vec<String> {
    let f = std::fs::File::from(master.try_clone().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let stop = want.to_string();
    std::thread::spawn(move || {
        for l in BufReader::new(f).lines() {
            let Ok(l) = l else { break };
            let done = l.starts_with(&stop);
            if tx.send(l).is_err() || done {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while let Ok(l) = rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
        let l = l.trim_end_matches('\r').to_string();
        let done = l.starts_with(want);
        seen.push(l);
        if done {
            return seen;
        }
    }
    panic!("no {want:?} on the terminal; saw {seen:?}");
}

#[test]
fn a_task_on_a_terminal_is_restored_onto_rckpts_terminal_with_shell_job() {
    let (m1, s1) = pty();
    let bin = workload_bin("ttyecho");
    let mut child = Command::new(&bin)
        .stdin(Stdio::from(s1.try_clone().unwrap()))
        .stdout(Stdio::from(s1.try_clone().unwrap()))
        .stderr(Stdio::from(s1))
        .spawn()
        .unwrap();
    let seen = read_until(&m1, "READY");
    let pid: i32 = seen.last().unwrap().trim_start_matches("READY ").trim().parse().unwrap();
    let img = TempDir::new("tty");
    let (st, err) = dump(pid, img.path(), &[]);
    assert!(st.success(), "{err}");
    assert!(err.contains("external tty["), "{err}");
    let _ = child.wait();

    // Without -j the terminal is unbound: refused, naming it.
    let (st, _, err) = rckpt(&["restore", "-D", img.path().to_str().unwrap()], &[]);
    assert_eq!(st.code(), Some(69), "{err}");
    assert!(err.contains("tty[") && err.contains("--shell-job"), "{err}");

    // With -j on another terminal, the task writes there.
    let (m2, s2) = pty();
    let mut r = Command::new(RCKPT)
        .args(["restore", "-v", "-j", "-D", img.path().to_str().unwrap()])
        .stdin(Stdio::from(s2.try_clone().unwrap()))
        .stdout(Stdio::from(s2.try_clone().unwrap()))
        .stderr(Stdio::from(s2))
        .spawn()
        .unwrap();
    read_until(&m2, "rckpt: restored");
    signal(pid, libc::SIGUSR2);
    read_until(&m2, "PROMPT");
    // It reads its new terminal too.
    std::fs::File::from(m2.try_clone().unwrap()).write_all(b"hello from the test\n").unwrap();
    let seen = read_until(&m2, "PASSED");
    assert!(seen.iter().any(|l| l == "ECHO hello from the test"), "{seen:?}");
    assert!(seen.iter().all(|l| !l.starts_with("FAIL")), "{seen:?}");
    let st = wait_child(&mut r, Duration::from_secs(10)).unwrap();
    assert!(st.success(), "{st:?}");
    let _ = m1.as_raw_fd();
}

#[test]
fn a_pty_made_inside_the_tree_comes_back_with_its_settings_session_and_foreground_group() {
    let mut w = Workload::spawn("pty", &[]);
    assert_eq!(tree_pids(w.pid).len(), 3);
    let img = TempDir::new("pty");
    dump_ok(w.pid, img.path(), &[]);
    w.wait_gone();
    let mut r = Restore::spawn(img.path(), &["--inherit-fd", &w.inherit_stdout()]);
    assert_eq!(r.pid, w.pid);
    trigger_tree(r.pid);
    let (st, lines) = r.finish();
    assert_passed(st, &lines);
    assert_eq!(lines.iter().filter(|l| l.starts_with("PASSED")).count(), 3, "{lines:?}");
}

#[test]
fn a_pty_made_inside_the_tree_survives_leave_running() {
    let mut w = Workload::spawn("pty", &[]);
    let img = TempDir::new("pty-lr");
    dump_ok(w.pid, img.path(), &["--leave-running"]);
    trigger_tree(w.pid);
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}
