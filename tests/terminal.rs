//! A task on a terminal: its tty fds are externals, bound at restore to rckpt's
//! own terminal with --shell-job (-j).

mod common;
use common::*;
use std::io::{BufRead, BufReader};
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
    let bin = workload_bin("blocking");
    let mut child = Command::new(&bin)
        .args(["pause", "restored"])
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
    let seen = read_until(&m2, "PASSED");
    assert!(seen.iter().all(|l| !l.starts_with("FAIL")), "{seen:?}");
    let st = wait_child(&mut r, Duration::from_secs(10)).unwrap();
    assert!(st.success(), "{st:?}");
    let _ = m1.as_raw_fd();
}
