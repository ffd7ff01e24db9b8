//! The integration-test harness: build the C workloads, spawn them, dump and
//! restore them with the rckpt binary, and read what they report.
//!
//! Every wait has a timeout, every process a test starts is killed and reaped
//! when its guard drops, and only our own pids are ever waited for (cargo runs
//! tests as threads of one process).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

pub const RCKPT: &str = env!("CARGO_BIN_EXE_rckpt");
const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

static BUILD: Mutex<()> = Mutex::new(());

/// Compiles tests/workloads/NAME.c (once, or again when it or the header changed).
pub fn workload_bin(name: &str) -> PathBuf {
    let _g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let src_dir = Path::new(MANIFEST).join("tests/workloads");
    let src = src_dir.join(format!("{name}.c"));
    let header = src_dir.join("rckpt_test.h");
    let out_dir = Path::new(MANIFEST).join("target/workloads");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join(name);
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let newest = mtime(&src).max(mtime(&header));
    if mtime(&out).is_some() && mtime(&out) >= newest {
        return out;
    }
    let tmp = out_dir.join(format!(".{name}.{}", std::process::id()));
    let st = Command::new("cc")
        .args(["-O1", "-g", "-Wall", "-Wno-unused-result", "-o"])
        .arg(&tmp)
        .arg(&src)
        .args(["-lrt", "-lpthread"])
        .status()
        .expect("a C compiler (cc) is needed for the test workloads");
    assert!(st.success(), "compiling {} failed", src.display());
    std::fs::rename(&tmp, &out).unwrap();
    out
}

/// Lines read from a pipe by a thread, so reads can time out.
pub struct Lines {
    rx: Receiver<String>,
    pub seen: Vec<String>,
}

impl Lines {
    pub fn new<R: Read + Send + 'static>(r: R) -> Lines {
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(r).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines { rx, seen: Vec::new() }
    }

    /// Waits for a line starting with `prefix`; returns it.
    pub fn wait_for(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.starts_with(prefix) {
                        return l;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("timed out waiting for {prefix:?}; saw {:?}", self.seen)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("stream ended waiting for {prefix:?}; saw {:?}", self.seen)
                }
            }
        }
    }

    /// Everything until the stream ends (bounded).
    pub fn drain(&mut self, timeout: Duration) -> &[String] {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) => self.seen.push(l),
                Err(_) => return &self.seen,
            }
        }
    }
}

/// A running workload, killed and reaped on drop.
pub struct Workload {
    pub pid: i32,
    child: Option<Child>,
    pub out: Lines,
    /// Inode of the pipe that is its stdout (an external of the image).
    pub stdout_ino: u64,
}

impl Workload {
    pub fn spawn(name: &str, args: &[&str]) -> Workload {
        let mut cmd = Command::new(workload_bin(name));
        cmd.args(args);
        Workload::command(cmd)
    }

    /// Runs any program that prints "READY <pid>" once it is set up.
    pub fn command(mut cmd: Command) -> Workload {
        // Nothing inherited from the test process but stdio (cargo's jobserver
        // pipes would be externals of the image).
        // SAFETY: close_range is async-signal-safe.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::syscall(libc::SYS_close_range, 3, u32::MAX, 0);
                Ok(())
            });
        }
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let stdout_ino =
            std::fs::metadata(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&stdout))).unwrap().ino();
        let mut out = Lines::new(stdout);
        // The process that says READY (a daemon may have forked away from the
        // one started here).
        let ready = out.wait_for("READY", Duration::from_secs(30));
        let pid = ready.trim_start_matches("READY ").trim().parse().unwrap_or(child.id() as i32);
        Workload { pid, child: Some(child), out, stdout_ino }
    }

    /// The pid of the process the harness started (not the READY one).
    pub fn child_pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    /// `--inherit-fd` for its stdout, for a restore whose stdout is the new pipe.
    pub fn inherit_stdout(&self) -> String {
        format!("fd[1]:pipe:[{}]", self.stdout_ino)
    }

    /// Reaps it after a dump killed it.
    pub fn wait_gone(&mut self) -> ExitStatus {
        let mut c = self.child.take().unwrap();
        wait_child(&mut c, Duration::from_secs(10)).expect("dumped workload did not die")
    }

    /// Triggers the check in the original (not restored) process and waits.
    pub fn trigger_and_finish(&mut self) -> (ExitStatus, Vec<String>) {
        signal(self.pid, libc::SIGUSR2);
        let mut c = self.child.take().unwrap();
        let st = wait_child(&mut c, Duration::from_secs(30)).expect("workload did not finish");
        let lines = self.out.drain(Duration::from_secs(2)).to_vec();
        (st, lines)
    }

    pub fn line_value(&self, prefix: &str) -> Option<u64> {
        self.out.seen.iter().find_map(|l| l.strip_prefix(prefix)?.trim().parse().ok())
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) on a pid this test started.
    unsafe { libc::kill(pid, sig) };
}

pub fn wait_child(c: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = c.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() >= deadline {
            let _ = c.kill();
            let _ = c.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs rckpt to completion (bounded) and returns (status, stdout, stderr).
pub fn rckpt(args: &[&str], env: &[(&str, &str)]) -> (ExitStatus, String, String) {
    let mut cmd = Command::new(RCKPT);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let mut e = String::new();
    let _ = err.read_to_string(&mut e);
    let st = wait_child(&mut child, Duration::from_secs(120)).expect("rckpt timed out");
    (st, t.join().unwrap(), e)
}

pub fn dump(pid: i32, dir: &Path, extra: &[&str]) -> (ExitStatus, String) {
    let pid = pid.to_string();
    let mut args = vec!["dump", "-v", "-t", &pid, "-D", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (st, _, err) = rckpt(&args, &[]);
    (st, err)
}

pub fn dump_ok(pid: i32, dir: &Path, extra: &[&str]) {
    let (st, err) = dump(pid, dir, extra);
    assert!(st.success(), "dump of {pid} failed: {st:?}\n{err}");
    check_reencodes(dir);
}

/// Every metadata file of an image decodes and re-encodes to exactly its
/// bytes (one image, one byte sequence), and the whole image reads back.
pub fn check_reencodes(dir: &Path) {
    use rckpt_images::{Image, Kind, core, fdinfo, files, inventory, mm, pstree};
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let bytes = std::fs::read(e.path()).unwrap();
        // An image of an older version is converted: what it re-encodes to (the
        // current version) must decode to the same value.
        fn again<T: Image + PartialEq + std::fmt::Debug>(name: &str, bytes: &[u8]) {
            let v = T::decode(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            let enc = v.encode().unwrap_or_else(|e| panic!("{name}: {e}"));
            let version = u16::from_le_bytes([bytes[10], bytes[11]]);
            if version == T::KIND.current_version() {
                assert_eq!(enc, bytes, "{name} does not re-encode to its bytes");
            } else {
                assert_eq!(T::decode(&enc).unwrap(), v, "{name} (version {version}) does not convert losslessly");
            }
        }
        match rckpt::restore::read::kind_of(&name) {
            Some(Kind::Inventory) => again::<inventory::Inventory>(&name, &bytes),
            Some(Kind::PsTree) => again::<pstree::PsTree>(&name, &bytes),
            Some(Kind::Core) => again::<core::TaskCore>(&name, &bytes),
            Some(Kind::Mm) => again::<mm::MmImage>(&name, &bytes),
            Some(Kind::Files) => again::<files::FilesImage>(&name, &bytes),
            Some(Kind::FdInfo) => again::<fdinfo::FdTable>(&name, &bytes),
            _ => continue,
        }
    }
    if let Err(e) = rckpt::restore::read::read(dir) {
        panic!("the image in {} does not read back: {e}", dir.display());
    }
}

/// A foreground `rckpt restore` whose stdout carries the restored workload's.
pub struct Restore {
    child: Option<Child>,
    /// Inode of rckpt's stdout pipe, which the restored task writes to.
    pub stdout_ino: u64,
    pub out: Lines,
    pub err: Lines,
    pub pid: i32,
}

impl Restore {
    /// Starts the restore and waits until the task is released.
    pub fn spawn(dir: &Path, extra: &[&str]) -> Restore {
        let r = Restore::start(dir, extra);
        r.released()
    }

    pub fn start(dir: &Path, extra: &[&str]) -> Restore {
        let mut cmd = Command::new(RCKPT);
        cmd.args(["restore", "-v", "-D", dir.to_str().unwrap()]).args(extra);
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let stdout_ino =
            std::fs::metadata(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&stdout))).unwrap().ino();
        let out = Lines::new(stdout);
        let err = Lines::new(child.stderr.take().unwrap());
        Restore { child: Some(child), stdout_ino, out, err, pid: 0 }
    }

    fn released(mut self) -> Restore {
        let l = self.err.wait_for("rckpt: restored ", Duration::from_secs(60));
        self.pid = l.trim_start_matches("rckpt: restored ").trim().parse().unwrap();
        self
    }

    /// Sends the trigger and waits for rckpt (and so the workload) to finish.
    pub fn trigger_and_finish(&mut self) -> (ExitStatus, Vec<String>) {
        signal(self.pid, libc::SIGUSR2);
        self.finish()
    }

    pub fn finish(&mut self) -> (ExitStatus, Vec<String>) {
        let mut c = self.child.take().unwrap();
        let st = wait_child(&mut c, Duration::from_secs(60)).expect("restored workload did not finish");
        let lines = self.out.drain(Duration::from_secs(2)).to_vec();
        (st, lines)
    }

    /// `--inherit-fd` for a restore of a dump of this restored task.
    pub fn inherit_stdout(&self) -> String {
        format!("fd[1]:pipe:[{}]", self.stdout_ino)
    }

    pub fn stderr(&mut self) -> String {
        self.err.drain(Duration::from_millis(200)).join("\n")
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if self.pid > 0 {
                signal(self.pid, libc::SIGKILL);
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Asserts a workload's report: exit 0, a PASSED line, no FAIL line.
pub fn assert_passed(st: ExitStatus, lines: &[String]) {
    let fails: Vec<&String> = lines.iter().filter(|l| l.starts_with("FAIL")).collect();
    assert!(fails.is_empty(), "workload checks failed: {fails:#?}\nall output: {lines:#?}");
    assert!(lines.iter().any(|l| l.starts_with("PASSED")), "no PASSED line: {lines:#?}");
    assert!(st.success(), "workload exited with {st:?}: {lines:#?}");
}

/// A fresh image directory under target/ (removed on drop).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = Path::new(MANIFEST).join("target/test-images").join(format!("{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Dump (killing), reap, restore with stdout bound, trigger, and return the report.
pub fn cycle(w: &mut Workload, img: &TempDir) -> (ExitStatus, Vec<String>) {
    dump_ok(w.pid, img.path(), &[]);
    w.wait_gone();
    let mut r = Restore::spawn(img.path(), &["--inherit-fd", &w.inherit_stdout()]);
    assert_eq!(r.pid, w.pid, "restored with another pid");
    r.trigger_and_finish()
}

/// /proc/PID/maps as text.
pub fn maps(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap()
}

/// Whether the process exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s.rsplit(')').next().and_then(|r| r.split_whitespace().next()).unwrap_or("X");
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

/// Every process of the tree rooted at `root` (from /proc children), root first.
pub fn tree_pids(root: i32) -> Vec<i32> {
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        i += 1;
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) {
            for t in tasks.flatten() {
                let kids = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
                out.extend(kids.split_whitespace().filter_map(|k| k.parse::<i32>().ok()));
            }
        }
    }
    out
}

/// Sends the trigger to every process of the tree.
pub fn trigger_tree(root: i32) {
    for p in tree_pids(root) {
        signal(p, libc::SIGUSR2);
    }
}

/// Sum of the proportional set sizes of the tree's processes, in bytes: shared
/// pages count once in total.
pub fn tree_pss(root: i32) -> u64 {
    tree_pids(root)
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")).ok())
        .filter_map(|s| s.lines().find(|l| l.starts_with("Pss:"))?.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum::<u64>()
        * 1024
}

/// Waits until the task sleeps inside a system call (a workload that prints
/// READY and then blocks: a signal sent before it blocks would be lost).
pub fn wait_blocked(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
        if s.split_whitespace().next().and_then(|n| n.parse::<i64>().ok()).is_some_and(|n| n >= 0) {
            return;
        }
        assert!(Instant::now() < deadline, "task {pid} did not block in a system call: {s:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}
