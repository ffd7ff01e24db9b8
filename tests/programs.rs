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

/// One RESP command over a fresh connection; the reply's first line and bulk.
fn redis(port: u16, args: &[&str]) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req += &format!("${}\r\n{a}\r\n", a.len());
    }
    (&s).write_all(req.as_bytes()).unwrap();
    let mut r = BufReader::new(&s);
    let mut head = String::new();
    r.read_line(&mut head).unwrap();
    let head = head.trim_end().to_string();
    match head.strip_prefix('$').and_then(|n| n.parse::<i64>().ok()) {
        Some(n) if n >= 0 => {
            let mut body = vec![0u8; n as usize + 2];
            r.read_exact(&mut body).unwrap();
            String::from_utf8_lossy(&body[..n as usize]).into_owned()
        }
        _ => head,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_listening(port: u16) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn redis_answers_the_same_keys_after_restore() {
    let port = free_port();
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        &format!(
            "echo READY $$; exec setsid redis-server --port {port} --bind 127.0.0.1 --save '' --appendonly no \
             --daemonize no --protected-mode no --loglevel warning"
        ),
    ]);
    let mut w = Workload::command(cmd);
    wait_listening(port);
    for i in 0..500 {
        assert_eq!(redis(port, &["SET", &format!("key:{i}"), &format!("value-{}", i * 7919)]), "+OK");
    }
    assert_eq!(redis(port, &["INCRBY", "counter", "41"]), ":41");
    let big = "x".repeat(1 << 20);
    assert_eq!(redis(port, &["SET", "big", &big]), "+OK");
    // Its clients are gone (their sockets closed) before it is dumped.
    std::thread::sleep(Duration::from_millis(200));

    let img = TempDir::new("redis");
    dump_ok(w.pid, img.path(), &[]);
    w.wait_gone();
    let _r = Restore::spawn(img.path(), &["--inherit-fd", &w.inherit_stdout()]);
    for i in (0..500).step_by(7) {
        assert_eq!(redis(port, &["GET", &format!("key:{i}")]), format!("value-{}", i * 7919), "key:{i}");
    }
    assert_eq!(redis(port, &["DBSIZE"]), ":502");
    assert_eq!(redis(port, &["INCR", "counter"]), ":42");
    assert_eq!(redis(port, &["STRLEN", "big"]), format!(":{}", 1 << 20));
    assert_eq!(redis(port, &["SET", "after", "restore"]), "+OK");
    assert_eq!(redis(port, &["GET", "after"]), "restore");
}

/// The pool workload's job, computed here.
fn pool_job(mut x: u64) -> u64 {
    for _ in 0..20000 {
        x = x.wrapping_add(0x9e3779b97f4a7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d049bb133111eb);
        x ^= x >> 31;
    }
    x
}

#[test]
fn a_thread_pool_finishes_every_job_right() {
    let mut w = Workload::spawn("threadpool", &["300", "5000"]);
    assert_eq!(std::fs::read_dir(format!("/proc/{}/task", w.pid)).unwrap().count(), 9);
    w.out.wait_for("RESULT 20 ", Duration::from_secs(30));
    let img = TempDir::new("pool");
    dump_ok(w.pid, img.path(), &[]);
    w.wait_gone();
    let before = steps(&w.out.drain(Duration::from_millis(200)).to_vec(), "RESULT ");
    let mut r = Restore::spawn(img.path(), &["--inherit-fd", &w.inherit_stdout()]);
    let (st, lines) = r.finish();
    assert!(st.success(), "{st:?}");
    let after = steps(&lines, "RESULT ");
    assert_eq!(after.first().map(|s| s.0), before.last().map(|s| s.0 + 1), "{lines:?}");
    let all: Vec<_> = before.iter().chain(after.iter()).collect();
    assert_eq!(all.len(), 300);
    for (n, l) in all {
        assert_eq!(l, &format!("RESULT {n} {:016x}", pool_job(*n)));
    }
}

// ---- The same programs inside `rckpt run` namespaces, each restored twice at once.

/// Starts `cmd` with `rckpt run`: the workload's pid is its init's on the host.
fn run_in_namespaces(cmd: &[&str]) -> Workload {
    let mut c = Command::new(RCKPT);
    c.arg("run").arg("--").args(cmd);
    let mut w = Workload::command(c);
    assert_eq!(w.pid, 1, "the program is not the init of its namespace");
    let run = w.child_pid();
    let kids = std::fs::read_to_string(format!("/proc/{run}/task/{run}/children")).unwrap();
    w.pid = kids.split_whitespace().next().unwrap().parse().unwrap();
    w
}

/// Runs `f` in a thread inside the network namespace of `pid`.
fn in_netns<T: Send>(pid: i32, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
            nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
        .join()
        .unwrap()
    })
}

fn nspid(pid: i32) -> Vec<i32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let l = s.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    l[6..].split_whitespace().map(|x| x.parse().unwrap()).collect()
}

/// Dumps `w` (an init of `rckpt run`) and restores the image twice at once:
/// the lines it printed before, and each restore's status and lines.
fn dump_and_restore_twice(
    mut w: Workload,
    tag: &str,
    prefix: &str,
) -> (Vec<(u64, String)>, Vec<(u64, String)>, Vec<(u64, String)>) {
    let img = TempDir::new(tag);
    dump_ok(w.pid, img.path(), &[]);
    w.wait_gone();
    let before = steps(&w.out.drain(Duration::from_millis(200)).to_vec(), prefix);
    // The image's pids are taken on the host (pid 1 always is): only fresh
    // namespaces let it come back, twice.
    assert!(std::path::Path::new("/proc/1").exists());
    let mut a = Restore::spawn(img.path(), &["--inherit-fd", &w.inherit_stdout()]);
    let mut b = Restore::spawn(img.path(), &["--inherit-fd", &w.inherit_stdout()]);
    assert_ne!(a.pid, b.pid);
    for r in [&a, &b] {
        assert_eq!(nspid(r.pid).last(), Some(&1), "restored {} is not the init of its namespace", r.pid);
    }
    let (sa, la) = a.finish();
    let (sb, lb) = b.finish();
    assert!(sa.success() && sb.success(), "{sa:?} {sb:?}\n{la:?}\n{lb:?}");
    (before, steps(&la, prefix), steps(&lb, prefix))
}

fn check_continues(reference: &[(u64, String)], before: &[(u64, String)], after: &[(u64, String)], total: u64) {
    let last = before.last().unwrap().0;
    assert_eq!(after.first().map(|s| s.0), Some(last + 1), "it did not continue from {last}: {after:?}");
    for (n, l) in before.iter().chain(after.iter()) {
        assert_eq!(&reference[*n as usize - 1].1, l, "step {n} differs from an uninterrupted run");
    }
    assert_eq!(after.last().map(|s| s.0), Some(total));
}

#[test]
fn in_namespaces_python_continues_twice_at_once() {
    let py = "/usr/bin/python3";
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/programs/compute.py");
    let out = Command::new(py).args([script, "60", "0"]).output().unwrap();
    let reference = steps(&String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect::<Vec<_>>(), "STEP ");
    let mut w = run_in_namespaces(&[py, script, "60", "0.02"]);
    w.out.wait_for("STEP 10 ", Duration::from_secs(30));
    let (before, a, b) = dump_and_restore_twice(w, "ns-python", "STEP ");
    check_continues(&reference, &before, &a, 60);
    check_continues(&reference, &before, &b, 60);
}

#[test]
fn in_namespaces_bash_continues_twice_at_once() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/programs/loop.sh");
    let out = Command::new("bash").args([script, "40", "0"]).output().unwrap();
    let reference =
        steps(&String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect::<Vec<_>>(), "ROUND ");
    let mut w = run_in_namespaces(&["bash", script, "40", "0.05"]);
    w.out.wait_for("ROUND 5 ", Duration::from_secs(30));
    let (before, a, b) = dump_and_restore_twice(w, "ns-bash", "ROUND ");
    check_continues(&reference, &before, &a, 40);
    check_continues(&reference, &before, &b, 40);
}

#[test]
fn in_namespaces_a_thread_pool_finishes_twice_at_once() {
    let bin = workload_bin("threadpool");
    let mut w = run_in_namespaces(&[bin.to_str().unwrap(), "300", "5000"]);
    w.out.wait_for("RESULT 20 ", Duration::from_secs(30));
    let (before, a, b) = dump_and_restore_twice(w, "ns-pool", "RESULT ");
    for after in [a, b] {
        assert_eq!(after.first().map(|s| s.0), before.last().map(|s| s.0 + 1));
        let all: Vec<_> = before.iter().chain(after.iter()).collect();
        assert_eq!(all.len(), 300);
        for (n, l) in all {
            assert_eq!(l, &format!("RESULT {n} {:016x}", pool_job(*n)));
        }
    }
}

#[test]
fn in_namespaces_redis_answers_twice_at_once_on_the_same_port() {
    // The same port in every namespace (and maybe on the host too).
    let port = 6379;
    let mut w = run_in_namespaces(&[
        "sh",
        "-c",
        "echo READY $$; exec redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
         --protected-mode no --loglevel warning",
    ]);
    let init = w.pid;
    in_netns(init, || {
        wait_listening(port);
        for i in 0..200 {
            assert_eq!(redis(port, &["SET", &format!("key:{i}"), &format!("v{}", i * 31)]), "+OK");
        }
        assert_eq!(redis(port, &["INCRBY", "counter", "41"]), ":41");
    });
    std::thread::sleep(Duration::from_millis(200));
    let img = TempDir::new("ns-redis");
    dump_ok(w.pid, img.path(), &[]);
    w.wait_gone();
    let restores: Vec<Restore> =
        (0..2).map(|_| Restore::spawn(img.path(), &["--inherit-fd", &w.inherit_stdout()])).collect();
    for r in &restores {
        assert_eq!(nspid(r.pid).last(), Some(&1));
        in_netns(r.pid, || {
            wait_listening(port);
            for i in (0..200).step_by(9) {
                assert_eq!(redis(port, &["GET", &format!("key:{i}")]), format!("v{}", i * 31));
            }
            assert_eq!(redis(port, &["DBSIZE"]), ":201");
            // Each restore goes on by itself.
            assert_eq!(redis(port, &["INCR", "counter"]), ":42");
        });
    }
}
