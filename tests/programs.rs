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
