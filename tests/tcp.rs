//! TCP: a listening server serves new connections after restore; with
//! --tcp-established, established connections (both ends in the tree, or the
//! peer outside it: this test) carry every queued byte and new data both ways
//! after restore, and after a --leave-running dump; without it, the dump is
//! refused and the tree runs on.

mod common;
use common::*;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn pattern(stream: u32, from: usize, n: usize) -> Vec<u8> {
    (from..from + n).map(|i| (stream as usize * 31 + i * 7 + (i >> 9)) as u8).collect()
}

/// The nft binary, where rckpt looks for it (PATH, then the sbin directories).
fn nft() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join("nft"))
        .find(|p| Command::new(p).arg("--version").output().is_ok_and(|o| o.status.success()))
}

fn nft_available() -> bool {
    nft().is_some()
}

/// Whether rckpt's nftables set for IPv4 (or IPv6) connections holds one with
/// `port`.
fn blocked(family: &str, port: u16) -> bool {
    nft_conns(family).split(|c: char| c.is_whitespace() || c == ',').any(|t| t == port.to_string())
}

/// The elements of rckpt's nftables set for IPv4 (or IPv6) connections.
fn nft_conns(family: &str) -> String {
    Command::new(nft().expect("nft"))
        .args(["list", "set", "inet", "rckpt", if family == "6" { "conn6" } else { "conn4" }])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn restore_of(w: &mut Workload, img: &TempDir) -> Restore {
    w.wait_gone();
    let r = Restore::spawn(img.path(), &["--inherit-fd", &w.inherit_stdout()]);
    assert_eq!(r.pid, w.pid, "restored with another pid");
    r
}

fn ask(addr: &str, line: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(line.as_bytes()).unwrap();
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer).unwrap();
    answer
}

#[test]
fn a_listening_server_accepts_and_answers_after_restore() {
    let mut w = Workload::spawn("tcp_server", &[]);
    let port4 = w.line_value("PORT4 ").expect("PORT4");
    let port6 = w.line_value("PORT6 ").expect("PORT6");
    wait_blocked(w.pid);
    let img = TempDir::new("tcp-server");
    dump_ok(w.pid, img.path(), &[]);
    let mut r = restore_of(&mut w, &img);
    assert_eq!(ask(&format!("127.0.0.1:{port4}"), "hello over IPv4\n"), "echo: hello over IPv4\n");
    assert_eq!(ask(&format!("[::1]:{port6}"), "hello over IPv6\n"), "echo: hello over IPv6\n");
    let (st, lines) = r.finish();
    assert_passed(st, &lines);
}

fn pair_cycle(family: &str) {
    let mut w = Workload::spawn("tcp_pair", &[family]);
    let img = TempDir::new(&format!("tcp-pair{family}"));
    dump_ok(w.pid, img.path(), &["--tcp-established"]);
    let mut r = restore_of(&mut w, &img);
    trigger_tree(r.pid);
    let (st, lines) = r.finish();
    assert_passed(st, &lines);
}

#[test]
fn an_established_loopback_connection_carries_its_queues_and_new_data_after_restore() {
    pair_cycle("4");
}

#[test]
fn an_established_ipv6_loopback_connection_carries_its_queues_and_new_data_after_restore() {
    pair_cycle("6");
}

#[test]
fn an_established_connection_works_on_after_a_leave_running_dump() {
    let mut w = Workload::spawn("tcp_pair", &["4"]);
    let img = TempDir::new("tcp-pair-lr");
    dump_ok(w.pid, img.path(), &["--tcp-established", "--leave-running"]);
    trigger_tree(w.pid);
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}

#[test]
fn an_established_connection_is_refused_without_tcp_established() {
    let mut w = Workload::spawn("tcp_pair", &["4"]);
    let img = TempDir::new("tcp-pair-refused");
    let (st, err) = dump(w.pid, img.path(), &[]);
    assert_eq!(st.code(), Some(69), "{err}");
    let named = format!("task {}: fd ", w.pid);
    assert!(
        err.contains(&named) && err.contains("established TCP connection") && err.contains("--tcp-established"),
        "want {named:?} and --tcp-established in: {err}"
    );
    // Refused before anything was touched: the connection works on.
    trigger_tree(w.pid);
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}

/// The test's end of a connection from tcp_client: accepted, and the 2000
/// bytes the client waits for before it says READY (sent from a thread, as
/// spawning waits for READY).
fn client_with_peer(family: &str) -> (Workload, TcpStream) {
    let listener = TcpListener::bind(if family == "6" { "[::1]:0" } else { "127.0.0.1:0" }).unwrap();
    let port = listener.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(&pattern(2, 0, 2000)).unwrap();
        s
    });
    let w = Workload::spawn("tcp_client", &[&port.to_string(), family]);
    let mut s = t.join().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut c1 = vec![0u8; 1000];
    s.read_exact(&mut c1).unwrap();
    assert_eq!(c1, pattern(1, 0, 1000));
    (w, s)
}

/// After the trigger: the client has read the 5000 bytes; it writes 4000, and
/// gets the last 100.
fn finish_exchange(s: &mut TcpStream) {
    let mut c2 = vec![0u8; 4000];
    s.read_exact(&mut c2).expect("the client's bytes after the trigger");
    assert_eq!(c2, pattern(1, 1000, 4000));
    s.write_all(&pattern(3, 0, 100)).unwrap();
}

/// Removes the rule for a connection if the test fails before the restore
/// does (both directions, each added first so the delete cannot fail).
struct Unblock(std::net::SocketAddr, std::net::SocketAddr);

impl Drop for Unblock {
    fn drop(&mut self) {
        let Some(nft) = nft() else { return };
        let (set, a, b) = match (self.0.ip(), self.1.ip()) {
            (std::net::IpAddr::V6(a), std::net::IpAddr::V6(b)) => ("conn6", a.to_string(), b.to_string()),
            (a, b) => ("conn4", a.to_string(), b.to_string()),
        };
        let (pa, pb) = (self.0.port(), self.1.port());
        let mut script = String::new();
        for e in [format!("{a} . {pa} . {b} . {pb}"), format!("{b} . {pb} . {a} . {pa}")] {
            script += &format!("add element inet rckpt {set} {{ {e} }}\ndelete element inet rckpt {set} {{ {e} }}\n");
        }
        let Ok(mut c) = Command::new(nft).args(["-f", "-"]).stdin(std::process::Stdio::piped()).spawn() else { return };
        let _ = c.stdin.take().unwrap().write_all(script.as_bytes());
        let _ = c.wait();
    }
}

fn outside_peer_cycle(family: &str) {
    let (mut w, mut s) = client_with_peer(family);
    let img = TempDir::new(&format!("tcp-client{family}"));
    if !nft_available() {
        let (st, err) = dump(w.pid, img.path(), &["--tcp-established"]);
        assert_eq!(st.code(), Some(69), "{err}");
        assert!(err.contains("nftables"), "{err}");
        eprintln!("nft is not installed: only the refusal was checked");
        return;
    }
    let local = s.peer_addr().unwrap().port();
    let _unblock = Unblock(s.local_addr().unwrap(), s.peer_addr().unwrap());
    dump_ok(w.pid, img.path(), &["--tcp-established"]);
    w.wait_gone();
    // The tree is gone; the rule drops the connection's packets both ways.
    assert!(blocked(family, local), "no rule for port {local}: {}", nft_conns(family));
    s.write_all(&pattern(2, 2000, 3000)).expect("the connection was reset");
    s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            // A SIGCHLD from another test's child cuts a timed read short.
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => panic!("the peer saw something while the tree was down: {other:?}"),
        }
    }
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();

    let mut r = Restore::spawn(img.path(), &["--inherit-fd", &w.inherit_stdout()]);
    assert_eq!(r.pid, w.pid);
    assert!(!blocked(family, local), "the rule stayed after restore: {}", nft_conns(family));
    trigger_tree(r.pid);
    finish_exchange(&mut s);
    let (st, lines) = r.finish();
    assert_passed(st, &lines);
}

#[test]
fn a_connection_to_a_peer_outside_the_tree_sees_no_reset_and_works_after_restore() {
    outside_peer_cycle("4");
}

#[test]
fn an_ipv6_connection_to_a_peer_outside_the_tree_sees_no_reset_and_works_after_restore() {
    outside_peer_cycle("6");
}

#[test]
fn a_connection_to_a_peer_outside_the_tree_works_on_after_a_leave_running_dump() {
    let (mut w, mut s) = client_with_peer("4");
    let img = TempDir::new("tcp-client-lr");
    dump_ok(w.pid, img.path(), &["--tcp-established", "--leave-running"]);
    s.write_all(&pattern(2, 2000, 3000)).unwrap();
    trigger_tree(w.pid);
    finish_exchange(&mut s);
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}

/// Dumps that fail after the connections were read, and one whose rckpt is
/// killed: the connections work on, with every byte.
#[test]
fn failed_dumps_leave_established_connections_working() {
    let mut w = Workload::spawn("tcp_pair", &["4"]);
    let pid = w.pid.to_string();
    for point in ["dump.collect", "dump.pages", "dump.before-inventory", "dump.infected:kill"] {
        let img = TempDir::new("tcp-pair-fault");
        let args = ["dump", "-t", &pid, "-D", img.path().to_str().unwrap(), "--tcp-established"];
        let (st, _, err) = rckpt(&args, &[("RCKPT_FAULT", point)]);
        assert!(!st.success(), "{point}: the dump did not fail: {err}");
        assert!(!img.file("inventory.img").exists(), "{point}: an inventory was written");
    }
    // After the killed rckpt, the parasite returns the tasks by itself.
    std::thread::sleep(Duration::from_millis(200));
    trigger_tree(w.pid);
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}

#[test]
fn a_failed_dump_removes_the_rule_it_added() {
    if !nft_available() {
        eprintln!("nft is not installed: nothing to check");
        return;
    }
    let (mut w, mut s) = client_with_peer("4");
    let local = s.peer_addr().unwrap().port();
    let pid = w.pid.to_string();
    for point in ["dump.collect", "dump.before-inventory"] {
        let img = TempDir::new("tcp-client-fault");
        let args = ["dump", "-t", &pid, "-D", img.path().to_str().unwrap(), "--tcp-established"];
        let (st, _, err) = rckpt(&args, &[("RCKPT_FAULT", point)]);
        assert!(!st.success(), "{point}: the dump did not fail: {err}");
        assert!(!blocked("4", local), "{point}: the rule stayed: {}", nft_conns("4"));
    }
    s.write_all(&pattern(2, 2000, 3000)).unwrap();
    trigger_tree(w.pid);
    finish_exchange(&mut s);
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}
