//! `cargo bench --bench rckpt`: how fast rckpt dumps and restores, on this machine,
//! next to what the machine itself can do (memcpy, write + fsync, pread into fresh
//! memory), and what a task or a thread costs. See bench/README.md.
//!
//! Runs as root. Every figure is the median of several runs taken in rounds after
//! a warm-up round; each round runs every case once, each memory size's baselines
//! next to its rckpt run (the baselines first in even rounds, rckpt first in odd
//! ones), so baselines and rckpt alternate and drift hits both alike. Time spent
//! waiting for killed processes to disappear is measured apart and never counted.
//!
//! The incremental case pre-dumps a 4 GiB process, lets it rewrite 1% of its
//! pages, dumps it with `--prev-images-dir` (and `-R`), then dumps the same state
//! in full, and compares the two frozen times; it restores the incremental image
//! and has the workload check its memory.
//!
//! Options (after `--`): `--runs N` (default 5), `--runs-4g N` (default 5),
//! `--no-4g` (no 4 GiB memory case; the incremental case at 1 GiB), `--no-incr`,
//! `--no-warmup`, `--settle-ms N` (pause before each memory-heavy step, default
//! 1000), `--quick` (small sizes, one run: a smoke test that does not touch
//! bench/latest.json).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const RCKPT: &str = env!("CARGO_BIN_EXE_rckpt");
const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// The project's target for an incremental dump: frozen at most this fraction of
/// a full dump's frozen time.
const INCR_TARGET: f64 = 0.10;

// ---------------------------------------------------------------------------
// Configuration

struct Config {
    runs: usize,
    runs_4g: usize,
    warmup: bool,
    quick: bool,
    /// Baseline buffer size.
    base_bytes: u64,
    /// Memory cases, MiB.
    mem_sizes: Vec<u64>,
    threads: Vec<u32>,
    /// (processes in all, children of the root; 0 = all children of the root)
    procs: Vec<(u32, u32)>,
    cow_mib: u64,
    cow_children: u32,
    /// The incremental case's memory, MiB (None: left out).
    incr_mib: Option<u64>,
    /// The sparse case: MiB resident, MiB mapped (the resident size is one of
    /// `mem_sizes`, whose dense case it is compared with).
    sparse: (u64, u64),
    settle_ms: u64,
}

impl Config {
    fn from_args() -> Config {
        let mut c = Config {
            runs: 5,
            runs_4g: 5,
            warmup: true,
            quick: false,
            base_bytes: GIB,
            mem_sizes: vec![256, 1024, 4096],
            threads: vec![1, 64, 512],
            procs: vec![(1, 0), (50, 0), (500, 20)],
            cow_mib: 1024,
            cow_children: 8,
            incr_mib: Some(4096),
            sparse: (256, 64 << 10),
            settle_ms: 1000,
        };
        let mut no_4g = false;
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut i = 0;
        let num = |i: usize| -> usize {
            args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or_else(|| {
                eprintln!("bench: {} needs a number", args[i]);
                std::process::exit(64)
            })
        };
        while i < args.len() {
            match args[i].as_str() {
                "--runs" => {
                    c.runs = num(i).max(1);
                    i += 1;
                }
                "--runs-4g" => {
                    c.runs_4g = num(i).max(1);
                    i += 1;
                }
                "--no-4g" => {
                    c.mem_sizes.retain(|&s| s < 4096);
                    no_4g = true;
                }
                "--no-incr" => c.incr_mib = None,
                "--settle-ms" => {
                    c.settle_ms = num(i) as u64;
                    i += 1;
                }
                "--no-warmup" => c.warmup = false,
                "--quick" => c.quick = true,
                "--bench" => {}
                a if a.starts_with('-') => {
                    eprintln!("bench: unknown option {a}");
                    std::process::exit(64)
                }
                _ => {} // a cargo bench filter: ignored
            }
            i += 1;
        }
        if c.quick {
            c.runs = 1;
            c.runs_4g = 1;
            c.warmup = false;
            c.base_bytes = 128 * MIB;
            c.mem_sizes = vec![16, 64];
            c.threads = vec![1, 8, 32];
            c.procs = vec![(1, 0), (10, 0), (40, 5)];
            c.cow_mib = 64;
            c.cow_children = 4;
            c.settle_ms = 200;
            c.incr_mib = c.incr_mib.map(|_| 64);
            c.sparse = (16, 4 << 10);
        } else if no_4g {
            c.incr_mib = c.incr_mib.map(|_| 1024);
        }
        c.runs_4g = c.runs_4g.min(c.runs);
        c
    }
}

// ---------------------------------------------------------------------------
// Small helpers

fn die(msg: &str) -> ! {
    eprintln!("bench: {msg}");
    std::process::exit(1)
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn gibps(bytes: u64, wall_ms: f64) -> f64 {
    bytes as f64 / GIB as f64 / (wall_ms / 1e3)
}

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Removes a file or directory tree, then commits the file system (syncfs): on
/// a file system mounted with `discard`, freeing blocks costs time at the next
/// journal commit, which must not land in the next timed fsync.
fn remove_settled(p: &Path) {
    if p.is_dir() {
        let _ = std::fs::remove_dir_all(p);
    } else {
        let _ = std::fs::remove_file(p);
    }
    if let Ok(d) = File::open(p.parent().unwrap_or(Path::new("/"))) {
        // SAFETY: syncfs on an open fd.
        unsafe { libc::syncfs(d.as_raw_fd()) };
    }
}

/// How long to pause before each memory-heavy timed step (ms): see `settle`.
static SETTLE_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1000);

/// Commits the file system and pauses, so that every memory-heavy timed step
/// (a baseline, a dump, a restore) starts from the same state. On a VM whose
/// freed memory goes back to the host (virtio-balloon free page reporting), memory
/// freed a moment ago is still backed and fast to reuse, memory freed a second
/// ago is not: without the pause, whichever step follows a large free is favoured.
fn settle(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        // SAFETY: syncfs on an open fd.
        unsafe { libc::syncfs(d.as_raw_fd()) };
    }
    std::thread::sleep(Duration::from_millis(SETTLE_MS.load(std::sync::atomic::Ordering::Relaxed)));
}

/// Free page reporting's running total (KiB returned to the host), if the kernel has it.
fn reported_kib() -> Option<u64> {
    std::fs::read_to_string("/sys/module/page_reporting/parameters/reported_kib").ok()?.trim().parse().ok()
}

/// (busy CPU ticks of the whole machine, ticks of this process and its reaped
/// descendants): what the rest of the machine used during the run is the difference.
fn cpu_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let all: u64 = stat
        .lines()
        .next()
        .map(|l| {
            // user nice system idle iowait irq softirq steal ...
            let f: Vec<u64> = l.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
            f.iter().enumerate().filter(|(i, _)| *i != 3 && *i != 4 && *i < 8).map(|(_, v)| v).sum()
        })
        .unwrap_or(0);
    let me = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let ours: u64 = me
        .rsplit(')')
        .next()
        .map(|r| {
            // fields after the comm: state(3) ... utime(14) stime(15) cutime(16) cstime(17)
            r.split_whitespace().skip(11).take(4).filter_map(|x| x.parse::<u64>().ok()).sum()
        })
        .unwrap_or(0);
    (all, ours)
}

/// The 1-minute load average (other work on the machine disturbs the figures).
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().next().unwrap_or("?").to_string()
}

fn meminfo(key: &str) -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key) && l[key.len()..].starts_with(':'))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

fn fmt_bytes(b: u64) -> String {
    if b >= GIB { format!("{:.2} GiB", b as f64 / GIB as f64) } else { format!("{:.1} MiB", b as f64 / MIB as f64) }
}

fn fmt_size_mib(m: u64) -> String {
    if m >= 1024 && m.is_multiple_of(1024) { format!("{} GiB", m / 1024) } else { format!("{m} MiB") }
}

// ---------------------------------------------------------------------------
// Processes: we are a child subreaper and reap every orphan ourselves.

/// Reaps every child that has ended. Only called while no `std::process::Child`
/// of ours is running (those are waited for by pid).
fn reap() {
    loop {
        // SAFETY: waitpid with a valid status pointer.
        let r = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG | libc::__WALL) };
        if r <= 0 {
            return;
        }
    }
}

fn exists(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Polls (reaping) until none of `pids` exists; returns how long it took.
fn wait_gone(pids: &[i32], timeout: Duration) -> Result<Duration, String> {
    let t0 = Instant::now();
    loop {
        reap();
        if !pids.iter().any(|&p| exists(p)) {
            return Ok(t0.elapsed());
        }
        if t0.elapsed() > timeout {
            let left: Vec<i32> = pids.iter().copied().filter(|&p| exists(p)).collect();
            return Err(format!("pids {left:?} still exist after {timeout:?}"));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn kill(pid: i32, sig: i32) {
    // SAFETY: kill(2) on a pid (or group) this benchmark started.
    unsafe { libc::kill(pid, sig) };
}

/// Every process of the tree rooted at `root`, root first (from /proc children).
fn tree_pids(root: i32) -> Vec<i32> {
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

fn thread_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.count()).unwrap_or(0)
}

/// Sum of Pss over the tree's processes (smaps_rollup), bytes.
fn tree_pss(root: i32) -> u64 {
    tree_pids(root)
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")).ok())
        .filter_map(|s| s.lines().find(|l| l.starts_with("Pss:"))?.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum::<u64>()
        * 1024
}

/// Kills a whole tree (its process group and every member we can see) and waits
/// until every pid is gone. Returns the waiting time.
fn kill_tree(root: i32) -> Result<Duration, String> {
    let pids = tree_pids(root);
    let t0 = Instant::now();
    kill(-root, libc::SIGKILL);
    for &p in &pids {
        kill(p, libc::SIGKILL);
    }
    wait_gone(&pids, Duration::from_secs(60))?;
    Ok(t0.elapsed())
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        die("pipe2 failed");
    }
    // SAFETY: both fds are new and ours.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn fd_ino(fd: &OwnedFd) -> u64 {
    std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd())).map(|m| m.ino()).unwrap_or(0)
}

/// Reads one line from `fd`, waiting at most `timeout`.
fn read_line(fd: &OwnedFd, timeout: Duration) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    let mut line = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("timed out; read {:?}", String::from_utf8_lossy(&line)));
        }
        let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(i32::MAX as u128) as i32) };
        if r < 0 {
            continue;
        }
        if r == 0 {
            continue;
        }
        let mut b = [0u8; 1];
        // SAFETY: reading one byte into a local buffer.
        let n = unsafe { libc::read(fd.as_raw_fd(), b.as_mut_ptr().cast(), 1) };
        if n <= 0 {
            return Err(format!("stream ended; read {:?}", String::from_utf8_lossy(&line)));
        }
        if b[0] == b'\n' {
            return Ok(String::from_utf8_lossy(&line).into_owned());
        }
        line.push(b[0]);
    }
}

/// A workload tree we started: its root, and the read end of its stdout.
struct Workload {
    pid: i32,
    stdout: OwnedFd,
    stdout_ino: u64,
}

impl Workload {
    fn spawn(bin: &Path, args: &[String]) -> Result<Workload, String> {
        let (r, w) = pipe();
        let stdout_ino = fd_ino(&r);
        let child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(w))
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
        let pid = child.id() as i32;
        // Not waited for through `child`: it is reaped by `reap()` like every orphan.
        drop(child);
        match read_line(&r, Duration::from_secs(120)) {
            Ok(l) if l.starts_with("READY") => Ok(Workload { pid, stdout: r, stdout_ino }),
            Ok(l) => {
                let _ = kill_tree(pid);
                Err(format!("workload said {l:?}"))
            }
            Err(e) => {
                let _ = kill_tree(pid);
                Err(format!("workload never got READY: {e}"))
            }
        }
    }
}

/// What a finished tool process left: exit status, stderr, wall time from spawn to
/// exit, and its peak resident set size.
struct Ran {
    ok: bool,
    stderr: String,
    wall: Duration,
    /// `ru_maxrss` from wait4, bytes: the largest resident set the process had
    /// (or a child it waited for). See `run_timed` for why it is forked, not spawned.
    maxrss: u64,
}

/// The largest resident size this harness had when it forked a tool (bytes): a
/// tool's `ru_maxrss` can never read below it (see `run_timed`).
static MAXRSS_FLOOR: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn self_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// Runs a command to completion with a watchdog. Its stdout goes to `stdout` (or
/// /dev/null).
///
/// The child is forked (a no-op `pre_exec` keeps std from using posix_spawn):
/// posix_spawn shares this process's memory until the exec (CLONE_VM), and the
/// kernel carries the peak RSS of the memory given up at exec into the child's
/// `ru_maxrss`: every tool would be charged this harness's own peak (the 4 GiB
/// baseline buffers). A forked child starts from this harness's current RSS (a few
/// MiB, recorded in `MAXRSS_FLOOR`), then exec gives it rckpt's own memory.
fn run_timed(mut cmd: Command, stdout: Option<OwnedFd>, timeout: Duration) -> Result<Ran, String> {
    use std::os::unix::process::CommandExt;
    cmd.stdin(Stdio::null()).stderr(Stdio::piped());
    match stdout {
        Some(fd) => cmd.stdout(Stdio::from(fd)),
        None => cmd.stdout(Stdio::null()),
    };
    // SAFETY: the closure does nothing (it only makes std fork instead of posix_spawn).
    unsafe { cmd.pre_exec(|| Ok(())) };
    MAXRSS_FLOOR.fetch_max(self_rss(), std::sync::atomic::Ordering::Relaxed);
    let t0 = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("spawn {:?}: {e}", cmd.get_program()))?;
    drop(cmd); // our copy of the stdout fd
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(timeout) {
            kill(pid, libc::SIGKILL);
            true
        } else {
            false
        }
    });
    // Reaped here, by pid, with its rusage (`child` is then dropped unwaited,
    // which std allows).
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value to be overwritten.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4 on our own child with valid pointers.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(format!("wait4: {e}"));
        }
    }
    let wall = t0.elapsed();
    drop(child);
    let _ = tx.send(());
    let timed_out = watchdog.join().unwrap_or(false);
    let stderr = reader.join().unwrap_or_default();
    if timed_out {
        return Err(format!("timed out after {timeout:?}: {stderr}"));
    }
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    Ok(Ran { ok, stderr, wall, maxrss: ru.ru_maxrss.max(0) as u64 * 1024 })
}

// ---------------------------------------------------------------------------
// The tools: rckpt, and CRIU when a working one is on PATH.

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Tool {
    Rckpt,
    Criu,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Rckpt => "rckpt",
            Tool::Criu => "criu",
        }
    }
}

struct DumpOut {
    wall: Duration,
    /// The tool's own figure for how long the tree was stopped, ms.
    frozen_ms: Option<f64>,
    /// The tool's own total, ms.
    total_ms: Option<f64>,
    image_bytes: u64,
    /// Peak RSS of the dumping process, bytes.
    maxrss: u64,
}

fn number_after(s: &str, key: &str) -> Option<f64> {
    let i = s.find(key)? + key.len();
    let rest = s[i..].trim_start();
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

fn first_error_line(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    lines
        .iter()
        .rev()
        .find(|l| l.contains("Error") || l.contains("rckpt:"))
        .or(lines.last())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "(no message)".into())
}

fn dump(tool: Tool, pid: i32, dir: &Path) -> Result<DumpOut, String> {
    dump_with(tool, pid, dir, &[])
}

/// `dump`, with more options for rckpt (`-R`, `--prev-images-dir DIR`).
fn dump_with(tool: Tool, pid: i32, dir: &Path, more: &[&std::ffi::OsStr]) -> Result<DumpOut, String> {
    let mut cmd;
    match tool {
        Tool::Rckpt => {
            cmd = Command::new(RCKPT);
            cmd.args(["dump", "-v", "-t", &pid.to_string(), "-D"]).arg(dir).args(more);
        }
        Tool::Criu => {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
            cmd = Command::new("criu");
            cmd.args(["dump", "-t", &pid.to_string(), "--display-stats", "-v1", "-D"]).arg(dir);
        }
    }
    // criu --display-stats prints its figures on stdout: kept in a file next to
    // the image directory (not in it: the image size is measured).
    let stats = dir.with_extension("stats");
    let out = match tool {
        Tool::Criu => Some(OwnedFd::from(File::create(&stats).map_err(|e| format!("{}: {e}", stats.display()))?)),
        Tool::Rckpt => None,
    };
    let Ran { ok, stderr, wall, maxrss } = run_timed(cmd, out, Duration::from_secs(600))?;
    let stdout = std::fs::read_to_string(&stats).unwrap_or_default();
    let _ = std::fs::remove_file(&stats);
    if !ok {
        return Err(format!("{} dump failed: {}", tool.name(), first_error_line(&stderr)));
    }
    let (frozen_ms, total_ms) = match tool {
        Tool::Rckpt => (number_after(&stderr, "frozen "), number_after(&stderr, "total ")),
        // criu --display-stats: "Frozen time: N us"
        Tool::Criu => (number_after(&stdout, "Frozen time:").map(|us| us / 1e3), None),
    };
    Ok(DumpOut { wall, frozen_ms, total_ms, image_bytes: dir_bytes(dir), maxrss })
}

struct Restored {
    wall: Duration,
    pid: i32,
    /// Peak RSS of the restoring process, bytes.
    maxrss: u64,
    /// Read end of the restored root's stdout, kept open while it lives.
    stdout: OwnedFd,
}

fn restore(tool: Tool, dir: &Path, w_pid: i32, stdout_ino: u64) -> Result<Restored, String> {
    let (r, w) = pipe();
    let inherit = format!("fd[1]:pipe:[{stdout_ino}]");
    let mut cmd;
    match tool {
        Tool::Rckpt => {
            cmd = Command::new(RCKPT);
            cmd.args(["restore", "-d", "-v", "--inherit-fd", &inherit, "-D"]).arg(dir);
        }
        Tool::Criu => {
            cmd = Command::new("criu");
            cmd.args(["restore", "-d", "-v1", "--inherit-fd", &inherit, "-D"]).arg(dir);
        }
    }
    let Ran { ok, stderr, wall, maxrss } = run_timed(cmd, Some(w), Duration::from_secs(600))?;
    if !ok {
        return Err(format!("{} restore failed: {}", tool.name(), first_error_line(&stderr)));
    }
    let pid = match tool {
        Tool::Rckpt => number_after(&stderr, "rckpt: restored ").map(|p| p as i32).unwrap_or(w_pid),
        Tool::Criu => w_pid,
    };
    if !exists(pid) {
        return Err(format!("{} restore returned but pid {pid} does not exist: {stderr}", tool.name()));
    }
    Ok(Restored { wall, pid, maxrss, stdout: r })
}

fn criu_status() -> Result<(), String> {
    let found =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join("criu").is_file())).unwrap_or(false);
    if !found {
        return Err("no criu on PATH".into());
    }
    match Command::new("criu").arg("check").stdin(Stdio::null()).output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!("`criu check` failed: {}", first_error_line(&String::from_utf8_lossy(&o.stderr)))),
        Err(e) => Err(format!("criu does not run: {e}")),
    }
}

// ---------------------------------------------------------------------------
// Baselines

/// An anonymous private mapping, unmapped on drop.
struct Mem {
    p: *mut u8,
    len: usize,
}

impl Mem {
    /// Fresh, untouched.
    fn new(len: u64) -> Mem {
        let len = len as usize;
        // SAFETY: a new anonymous mapping.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            die("mmap failed");
        }
        Mem { p: p.cast(), len }
    }

    fn slice(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is ours, len bytes, readable and writable.
        unsafe { std::slice::from_raw_parts_mut(self.p, self.len) }
    }

    /// Fills it with xorshift64 output, as the workloads do.
    fn fill(&mut self, seed: u64) {
        let mut x = seed | 1;
        // SAFETY: the mapping is page-aligned and len is a multiple of 8.
        let w = unsafe { std::slice::from_raw_parts_mut(self.p.cast::<u64>(), self.len / 8) };
        for v in w.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *v = x;
        }
    }
}

impl Drop for Mem {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping.
        unsafe { libc::munmap(self.p.cast(), self.len) };
    }
}

fn bench_memcpy(bytes: u64) -> f64 {
    let mut src = Mem::new(bytes);
    let mut dst = Mem::new(bytes);
    src.fill(0x1234);
    dst.slice().fill(1);
    let t0 = Instant::now();
    // SAFETY: two distinct mappings of `bytes` bytes each.
    unsafe { std::ptr::copy_nonoverlapping(src.p, dst.p, src.len) };
    let t = t0.elapsed();
    let last = dst.len - 1;
    std::hint::black_box(dst.slice()[last]);
    gibps(bytes, ms(t))
}

/// The baselines' write() and pread() size, as a copying tool would use: on this
/// VM one enormous write() is often several times slower than the same bytes in
/// 1 MiB calls (its page cache comes from memory the host has taken back).
const IO_CHUNK: usize = 1 << 20;

/// write() of a freshly filled buffer into a new file in `dir`, 1 MiB per call,
/// then fsync.
fn bench_write_fsync(bytes: u64, file: &Path, seed: u64) -> Result<f64, String> {
    remove_settled(file);
    let mut buf = Mem::new(bytes);
    buf.fill(seed);
    settle(file.parent().unwrap_or(Path::new("/")));
    let t0 = Instant::now();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .map_err(|e| format!("create {}: {e}", file.display()))?;
    let mut off = 0usize;
    while off < buf.len {
        let n = (buf.len - off).min(IO_CHUNK);
        // SAFETY: writing from our own mapping.
        let r = unsafe { libc::write(f.as_raw_fd(), buf.p.add(off).cast(), n) };
        if r <= 0 {
            return Err(format!("write: {}", std::io::Error::last_os_error()));
        }
        off += r as usize;
    }
    f.sync_all().map_err(|e| format!("fsync: {e}"))?;
    drop(f);
    Ok(gibps(bytes, ms(t0.elapsed())))
}

/// pread of the whole file, 1 MiB per call, into a new, untouched anonymous mapping.
fn bench_pread(bytes: u64, file: &Path) -> Result<f64, String> {
    let f = File::open(file).map_err(|e| format!("open {}: {e}", file.display()))?;
    settle(file.parent().unwrap_or(Path::new("/")));
    let t0 = Instant::now();
    let buf = Mem::new(bytes);
    let mut off = 0usize;
    while off < buf.len {
        let n = (buf.len - off).min(IO_CHUNK);
        // SAFETY: reading into our own mapping.
        let r = unsafe { libc::pread(f.as_raw_fd(), buf.p.add(off).cast(), n, off as i64) };
        if r <= 0 {
            return Err(format!("pread: {}", std::io::Error::last_os_error()));
        }
        off += r as usize;
    }
    let t = t0.elapsed();
    drop(buf);
    Ok(gibps(bytes, ms(t)))
}

// ---------------------------------------------------------------------------
// Results

/// Samples of one case: metric name -> values (one per recorded run).
#[derive(Default)]
struct Case {
    samples: BTreeMap<&'static str, Vec<f64>>,
    failure: Option<String>,
    runs: usize,
}

impl Case {
    fn add(&mut self, k: &'static str, v: f64) {
        self.samples.entry(k).or_default().push(v);
    }
    fn med(&self, k: &str) -> f64 {
        self.samples.get(k).map(|v| median(v)).unwrap_or(f64::NAN)
    }
}

struct Bench {
    cfg: Config,
    work: PathBuf,
    bins: BTreeMap<&'static str, PathBuf>,
    tools: Vec<Tool>,
    /// (tool, case key) -> samples
    cases: BTreeMap<(Tool, String), Case>,
    /// Every wait for killed pids to disappear, ms: (kind, ms)
    pid_waits: Vec<(&'static str, f64)>,
    seq: u64,
}

impl Bench {
    fn case(&mut self, tool: Tool, key: &str) -> &mut Case {
        self.cases.entry((tool, key.to_string())).or_default()
    }

    fn failed(&self, tool: Tool, key: &str) -> bool {
        self.cases.get(&(tool, key.to_string())).is_some_and(|c| c.failure.is_some())
    }

    fn img_dir(&mut self, tag: &str) -> PathBuf {
        self.seq += 1;
        let d = self.work.join(format!("img-{tag}-{}", self.seq));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn wait_pids(&mut self, kind: &'static str, pids: &[i32]) -> Result<(), String> {
        let t = wait_gone(pids, Duration::from_secs(60))?;
        self.pid_waits.push((kind, ms(t)));
        Ok(())
    }

    fn kill_restored(&mut self, root: i32) -> Result<(), String> {
        let t = kill_tree(root)?;
        self.pid_waits.push(("restored", ms(t)));
        Ok(())
    }

    /// One dump + restore cycle of a workload. `record` false for the warm-up.
    /// `check` sees the restored root and returns extra samples or an error.
    #[allow(clippy::too_many_arguments)]
    fn cycle(
        &mut self,
        tool: Tool,
        key: &str,
        bin: &'static str,
        args: &[String],
        record: bool,
        extra: &dyn Fn(&Restored) -> Vec<(&'static str, f64)>,
        before: &dyn Fn(&Workload) -> Vec<(&'static str, f64)>,
    ) {
        if self.failed(tool, key) {
            return;
        }
        let r = self.cycle_inner(tool, key, bin, args, extra, before);
        match r {
            Ok(samples) => {
                if record {
                    let c = self.case(tool, key);
                    c.runs += 1;
                    for (k, v) in samples {
                        c.add(k, v);
                    }
                }
            }
            Err(e) => {
                eprintln!("    {} {key}: FAILED: {e}", tool.name());
                self.case(tool, key).failure = Some(e);
            }
        }
    }

    fn cycle_inner(
        &mut self,
        tool: Tool,
        key: &str,
        bin: &'static str,
        args: &[String],
        extra: &dyn Fn(&Restored) -> Vec<(&'static str, f64)>,
        before: &dyn Fn(&Workload) -> Vec<(&'static str, f64)>,
    ) -> Result<Vec<(&'static str, f64)>, String> {
        let binpath = self.bins[bin].clone();
        let w = Workload::spawn(&binpath, args)?;
        let pids = tree_pids(w.pid);
        let threads = thread_count(w.pid);
        let mut samples = before(&w);
        let dir = self.img_dir(&format!("{}-{key}", tool.name()).replace(' ', "_"));
        let heavy = key.starts_with("mem ") || key == "cowtree" || key == "sparse";
        if heavy {
            settle(&self.work);
        }
        let d = match dump(tool, w.pid, &dir) {
            Ok(d) => d,
            Err(e) => {
                let _ = kill_tree(w.pid);
                reap();
                remove_settled(&dir);
                return Err(e);
            }
        };
        // The dump killed the tree: wait for it (apart).
        if let Err(e) = self.wait_pids("dumped", &pids) {
            let _ = kill_tree(w.pid);
            remove_settled(&dir);
            return Err(format!("after the dump: {e}"));
        }
        drop(w.stdout);
        if heavy {
            settle(&self.work);
        }
        let res = restore(tool, &dir, w.pid, w.stdout_ino);
        // The small images of the fixed-cost cases (up to 2,000 files each) stay
        // until the run ends (the work directory goes then). On ext4 without a
        // journal (this VM's root), creating a file scans past every inode deleted
        // in the last 60-300 s (fs/ext4/ialloc.c, recently_deleted): removing each
        // round's files made the next 500-process dump up to 0.6 s slower, a cost
        // of this harness's loop, not of a dump.
        if heavy {
            remove_settled(&dir);
        }
        let r = match res {
            Ok(r) => r,
            Err(e) => {
                // A failed restore should leave nothing; make sure.
                if exists(w.pid) {
                    let _ = kill_tree(w.pid);
                }
                return Err(e);
            }
        };
        let mut problem = None;
        if r.pid != w.pid {
            problem = Some(format!("restored as pid {}, was {}", r.pid, w.pid));
        }
        let after = tree_pids(r.pid);
        if problem.is_none() && after.len() != pids.len() {
            problem = Some(format!("restored tree has {} processes, the dumped one {}", after.len(), pids.len()));
        }
        if problem.is_none() && thread_count(r.pid) != threads {
            problem = Some(format!("restored root has {} threads, the dumped one {threads}", thread_count(r.pid)));
        }
        let more = if problem.is_none() { extra(&r) } else { vec![] };
        self.kill_restored(r.pid)?;
        if let Some(p) = problem {
            return Err(p);
        }
        samples.extend(more);
        samples.push(("dump_wall_ms", ms(d.wall)));
        if let Some(f) = d.frozen_ms {
            samples.push(("dump_frozen_ms", f));
        }
        if let Some(t) = d.total_ms {
            samples.push(("dump_total_ms", t));
        }
        samples.push(("image_bytes", d.image_bytes as f64));
        samples.push(("dump_maxrss_bytes", d.maxrss as f64));
        samples.push(("restore_wall_ms", ms(r.wall)));
        samples.push(("restore_maxrss_bytes", r.maxrss as f64));
        Ok(samples)
    }

    /// The incremental case, once: `rckpt pre-dump` of the `incr` workload, a 1%
    /// rewrite, `rckpt dump -R --prev-images-dir`, a full `rckpt dump` of the same
    /// state (which kills it), then a restore of the incremental image, whose
    /// memory the workload checks. `record` false for the warm-up.
    fn incr_cycle(&mut self, mib: u64, record: bool) {
        let key = format!("incr {mib}");
        if self.failed(Tool::Rckpt, &key) {
            return;
        }
        let pre = self.img_dir("rckpt-incr-pre");
        let inc = self.img_dir("rckpt-incr-dump");
        let full = self.img_dir("rckpt-incr-full");
        // Pids to kill if it fails: the workload, the trackers' holder, the restored
        // tree (each taken off the list once gone, so that no reused pid is hit).
        let mut left: Vec<i32> = Vec::new();
        let r = self.incr_inner(mib, &pre, &inc, &full, &mut left);
        for &p in &left {
            if exists(p) {
                let _ = kill_tree(p);
            }
        }
        reap();
        for d in [&pre, &inc, &full] {
            remove_settled(d);
        }
        match r {
            Ok(samples) => {
                if record {
                    let c = self.case(Tool::Rckpt, &key);
                    c.runs += 1;
                    for (k, v) in samples {
                        c.add(k, v);
                    }
                }
            }
            Err(e) => {
                eprintln!("    rckpt {key}: FAILED: {e}");
                self.case(Tool::Rckpt, &key).failure = Some(e);
            }
        }
    }

    fn incr_inner(
        &mut self,
        mib: u64,
        pre: &Path,
        inc: &Path,
        full: &Path,
        left: &mut Vec<i32>,
    ) -> Result<Vec<(&'static str, f64)>, String> {
        let mut samples = Vec::new();
        let bin = self.bins["incr"].clone();
        let w = Workload::spawn(&bin, &[mib.to_string()])?;
        let pid = w.pid;
        left.push(pid);

        // Pre-dump: the tree is frozen only to arm the trackers; memory is copied while it runs.
        settle(&self.work);
        let mut cmd = Command::new(RCKPT);
        cmd.args(["pre-dump", "-v", "-t", &pid.to_string(), "-D"]).arg(pre);
        let p = run_timed(cmd, None, Duration::from_secs(600))?;
        if let Some(h) = number_after(&p.stderr, "writes tracked by pid ") {
            left.push(h as i32);
        }
        if !p.ok {
            return Err(format!("rckpt pre-dump failed: {}", first_error_line(&p.stderr)));
        }
        let holder = number_after(&p.stderr, "writes tracked by pid ")
            .map(|h| h as i32)
            .ok_or_else(|| format!("rckpt pre-dump -v did not name the trackers' holder: {}", p.stderr.trim()))?;
        samples.push(("predump_wall_ms", ms(p.wall)));
        if let Some(f) = number_after(&p.stderr, "frozen ") {
            samples.push(("predump_frozen_ms", f));
        }
        if let Some(t) = number_after(&p.stderr, "total ") {
            samples.push(("predump_total_ms", t));
        }
        samples.push(("predump_image_bytes", dir_bytes(pre) as f64));
        samples.push(("predump_maxrss_bytes", p.maxrss as f64));

        // The workload rewrites every 100th page.
        kill(pid, libc::SIGUSR1);
        let said = read_line(&w.stdout, Duration::from_secs(120)).map_err(|e| format!("after SIGUSR1: {e}"))?;
        let written = said
            .strip_prefix("WROTE ")
            .and_then(|r| r.split_whitespace().nth(1)?.parse::<u64>().ok())
            .ok_or_else(|| format!("after SIGUSR1 the workload said {said:?}"))?;
        samples.push(("written_bytes", (written * 4096) as f64));

        // The incremental dump, leaving the tree running.
        settle(&self.work);
        let d = dump_with(Tool::Rckpt, pid, inc, &["-R".as_ref(), "--prev-images-dir".as_ref(), pre.as_os_str()])?;
        // It released the trackers: the holder goes (not timed).
        wait_gone(&[holder], Duration::from_secs(30))
            .map_err(|e| format!("the trackers' holder did not go after the incremental dump: {e}"))?;
        left.retain(|&p| p != holder);
        if !exists(pid) {
            return Err("the workload is gone after dump -R".into());
        }

        // A full dump of the same state (it kills the tree).
        settle(&self.work);
        let f = dump(Tool::Rckpt, pid, full)?;
        self.wait_pids("dumped", &[pid]).map_err(|e| format!("after the full dump: {e}"))?;
        left.clear();
        remove_settled(full);
        drop(w.stdout);

        // Restore of the incremental image (reads the pre-dump's too).
        settle(&self.work);
        let r = match restore(Tool::Rckpt, inc, pid, w.stdout_ino) {
            Ok(r) => r,
            Err(e) => {
                // A failed restore should leave nothing; make sure (only our workload).
                if std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "incr") {
                    let _ = kill_tree(pid);
                }
                return Err(e);
            }
        };
        left.push(r.pid);
        if r.pid != pid {
            return Err(format!("restored as pid {}, was {pid}", r.pid));
        }
        kill(r.pid, libc::SIGUSR2);
        let check = read_line(&r.stdout, Duration::from_secs(600))
            .map_err(|e| format!("the restored workload did not answer SIGUSR2: {e}"))?;
        self.kill_restored(r.pid)?;
        left.clear();
        if !check.starts_with("OK ") {
            return Err(format!("restored from the incremental image, the workload says {check:?}"));
        }

        samples.push(("dump_wall_ms", ms(d.wall)));
        if let Some(x) = d.frozen_ms {
            samples.push(("dump_frozen_ms", x));
        }
        if let Some(x) = d.total_ms {
            samples.push(("dump_total_ms", x));
        }
        samples.push(("image_bytes", d.image_bytes as f64));
        samples.push(("dump_maxrss_bytes", d.maxrss as f64));
        samples.push(("full_dump_wall_ms", ms(f.wall)));
        if let Some(x) = f.frozen_ms {
            samples.push(("full_dump_frozen_ms", x));
        }
        if let Some(x) = f.total_ms {
            samples.push(("full_dump_total_ms", x));
        }
        samples.push(("full_image_bytes", f.image_bytes as f64));
        samples.push(("full_dump_maxrss_bytes", f.maxrss as f64));
        if let (Some(a), Some(b)) = (d.frozen_ms, f.frozen_ms) {
            samples.push(("frozen_ratio", a / b));
        }
        samples.push(("restore_wall_ms", ms(r.wall)));
        samples.push(("restore_maxrss_bytes", r.maxrss as f64));
        Ok(samples)
    }
}

// ---------------------------------------------------------------------------
// JSON (no serde_json among the dependencies)

enum J {
    B(bool),
    N(f64),
    S(String),
    A(Vec<J>),
    O(Vec<(String, J)>),
    Null,
}

impl J {
    fn obj(v: Vec<(&str, J)>) -> J {
        J::O(v.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }
    fn num(x: f64) -> J {
        if x.is_finite() { J::N(x) } else { J::Null }
    }
    fn write(&self, out: &mut String, ind: usize) {
        let pad = "  ".repeat(ind + 1);
        match self {
            J::N(x) => {
                if x.fract() == 0.0 && x.abs() < 1e15 {
                    let _ = write!(out, "{}", *x as i64);
                } else {
                    let _ = write!(out, "{:.4}", x);
                }
            }
            J::S(s) => {
                out.push('"');
                for c in s.chars() {
                    match c {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        c if (c as u32) < 0x20 => {
                            let _ = write!(out, "\\u{:04x}", c as u32);
                        }
                        c => out.push(c),
                    }
                }
                out.push('"');
            }
            J::Null => out.push_str("null"),
            J::B(b) => out.push_str(if *b { "true" } else { "false" }),
            J::A(v) => {
                if v.iter().all(|x| matches!(x, J::N(_) | J::Null)) {
                    out.push('[');
                    for (i, x) in v.iter().enumerate() {
                        if i > 0 {
                            out.push_str(", ");
                        }
                        x.write(out, ind);
                    }
                    out.push(']');
                    return;
                }
                out.push_str("[\n");
                for (i, x) in v.iter().enumerate() {
                    out.push_str(&pad);
                    x.write(out, ind + 1);
                    out.push_str(if i + 1 < v.len() { ",\n" } else { "\n" });
                }
                out.push_str(&"  ".repeat(ind));
                out.push(']');
            }
            J::O(v) => {
                out.push_str("{\n");
                for (i, (k, x)) in v.iter().enumerate() {
                    out.push_str(&pad);
                    J::S(k.clone()).write(out, ind + 1);
                    out.push_str(": ");
                    x.write(out, ind + 1);
                    out.push_str(if i + 1 < v.len() { ",\n" } else { "\n" });
                }
                out.push_str(&"  ".repeat(ind));
                out.push('}');
            }
        }
    }
}

fn stat_json(v: &[f64]) -> J {
    J::obj(vec![
        ("median", J::num(median(v))),
        ("min", J::num(v.iter().copied().fold(f64::NAN, f64::min))),
        ("max", J::num(v.iter().copied().fold(f64::NAN, f64::max))),
        ("samples", J::A(v.iter().map(|&x| J::num(x)).collect())),
    ])
}

// ---------------------------------------------------------------------------

fn build_workloads() -> BTreeMap<&'static str, PathBuf> {
    let src = Path::new(MANIFEST).join("bench/workloads");
    let out = Path::new(MANIFEST).join("target/bench-workloads");
    std::fs::create_dir_all(&out).unwrap_or_else(|e| die(&format!("mkdir {}: {e}", out.display())));
    let mut bins = BTreeMap::new();
    for name in ["mem", "threads", "tree", "cowtree", "incr"] {
        let bin = out.join(name);
        let tmp = out.join(format!(".{name}.{}", std::process::id()));
        let st = Command::new("cc")
            .args(["-O2", "-Wall", "-o"])
            .arg(&tmp)
            .arg(src.join(format!("{name}.c")))
            .arg("-lpthread")
            .status()
            .unwrap_or_else(|e| die(&format!("a C compiler (cc) is needed for the workloads: {e}")));
        if !st.success() {
            die(&format!("compiling bench/workloads/{name}.c failed"));
        }
        std::fs::rename(&tmp, &bin).unwrap_or_else(|e| die(&format!("rename: {e}")));
        bins.insert(name, bin);
    }
    bins
}

fn fs_of(p: &Path) -> String {
    let p = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let mut best: Option<(usize, String)> = None;
    for l in mounts.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 3 {
            continue;
        }
        if p.starts_with(f[1]) && best.as_ref().is_none_or(|(n, _)| f[1].len() > *n) {
            best = Some((f[1].len(), format!("{} on {} ({})", f[2], f[0], f[1])));
        }
    }
    best.map(|b| b.1).unwrap_or_default()
}

fn main() {
    let cfg = Config::from_args();
    let load0 = loadavg();
    let ticks0 = cpu_ticks();
    SETTLE_MS.store(cfg.settle_ms, std::sync::atomic::Ordering::Relaxed);
    let reported0 = reported_kib();
    let t_start = Instant::now();
    // SAFETY: plain getters and prctl with integer arguments.
    if unsafe { libc::geteuid() } != 0 {
        die("run the benchmark as root (rckpt dumps and restores need it)");
    }
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        die("PR_SET_CHILD_SUBREAPER failed");
    }
    if !Path::new(RCKPT).is_file() {
        die(&format!("{RCKPT} is missing (cargo bench builds it)"));
    }
    let work = Path::new(MANIFEST).join("target/bench/work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap_or_else(|e| die(&format!("mkdir {}: {e}", work.display())));
    let bins = build_workloads();

    let criu = criu_status();
    let mut tools = vec![Tool::Rckpt];
    if criu.is_ok() {
        tools.push(Tool::Criu);
    }

    let date = sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let kernel = sh("uname", &["-r"]);
    let nproc = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem_total = meminfo("MemTotal");
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    let thp = thp.split_whitespace().find(|w| w.starts_with('[')).unwrap_or("?").trim_matches(['[', ']']).to_string();
    let fs = fs_of(&work);
    let rckpt_version = sh(RCKPT, &["--version"]);
    let git = sh("git", &["-C", MANIFEST, "rev-parse", "--short", "HEAD"]);
    let dirty = !sh("git", &["-C", MANIFEST, "status", "--porcelain", "--", "src", "images", "build.rs"]).is_empty();

    eprintln!("rckpt benchmark: {rckpt_version} {git}{}, {RCKPT}", if dirty { " (src modified)" } else { "" });
    eprintln!(
        "machine: {date}, kernel {kernel}, {nproc} CPUs ({cpu}), {} RAM, THP {thp}, images on {fs}",
        fmt_bytes(mem_total)
    );
    match &criu {
        Ok(()) => eprintln!("criu: available, measured alongside"),
        Err(e) => eprintln!("criu: not available ({e})"),
    }

    let mut b = Bench { cfg, work: work.clone(), bins, tools, cases: BTreeMap::new(), pid_waits: Vec::new(), seq: 0 };
    let base_file = work.join("baseline.dat");
    // "memcpy", "write_fsync MIB", "pread MIB" -> GiB/s per recorded run
    let mut base: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut base_fail: Option<String> = None;
    let rounds = b.cfg.runs + usize::from(b.cfg.warmup);
    let mut skipped_4g: Option<String> = None;
    let mut skipped_incr: Option<String> = None;
    let base_mib = b.cfg.base_bytes / MIB;
    let mut sizes = b.cfg.mem_sizes.clone();
    sizes.push(base_mib);
    sizes.sort();
    sizes.dedup();

    for round in 0..rounds {
        let record = !(b.cfg.warmup && round == 0);
        let run_no = if b.cfg.warmup { round } else { round + 1 };
        eprintln!(
            "round {}/{}{} ({:.0} s so far)",
            round + 1,
            rounds,
            if record { "" } else { " (warm-up, not recorded)" },
            t_start.elapsed().as_secs_f64()
        );

        let m = bench_memcpy(b.cfg.base_bytes);
        if record {
            base.entry("memcpy".into()).or_default().push(m);
        }
        eprintln!("  memcpy {}: {m:.2} GiB/s", fmt_size_mib(base_mib));

        // Memory: the baselines of each size and the dump and restore of that size.
        for &mib in &sizes {
            if mib >= 4096 {
                // Fewer runs for 4 GiB if asked; never in the warm-up.
                if !record || run_no > b.cfg.runs_4g {
                    continue;
                }
                let need = 3 * mib * MIB;
                let avail = meminfo("MemAvailable");
                if avail < need {
                    skipped_4g = Some(format!(
                        "skipped: {} available, {} needed (workload, image in the page cache, restored copy)",
                        fmt_bytes(avail),
                        fmt_bytes(need)
                    ));
                    continue;
                }
            }
            // Baselines and rckpt's runs take turns going first: on this kind of VM a
            // step's speed depends on what ran just before it (see `settle`).
            let tools_first = round % 2 == 1;
            if tools_first {
                mem_cycles(&mut b, mib, record);
            }
            let bytes = mib * MIB;
            let wf = bench_write_fsync(bytes, &base_file, 0x5eed + round as u64);
            let pr = wf.as_ref().map_err(|e| e.clone()).and_then(|_| bench_pread(bytes, &base_file));
            remove_settled(&base_file);
            match (wf, pr) {
                (Ok(w), Ok(p)) => {
                    if record {
                        base.entry(format!("write_fsync {mib}")).or_default().push(w);
                        base.entry(format!("pread {mib}")).or_default().push(p);
                    }
                    eprintln!("  {}: write+fsync {w:.2} GiB/s, pread {p:.2} GiB/s", fmt_size_mib(mib));
                }
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("  baselines: FAILED: {e}");
                    base_fail = Some(e);
                }
            }
            if !tools_first {
                mem_cycles(&mut b, mib, record);
            }
        }

        // Incremental: pre-dump, 1% rewritten, dump --prev-images-dir, full dump, restore.
        // At 4 GiB, like the memory case: no warm-up, `--runs-4g` runs.
        if let Some(mib) = b.cfg.incr_mib
            && (mib < 4096 || (record && run_no <= b.cfg.runs_4g))
        {
            let need = 3 * mib * MIB;
            let avail = meminfo("MemAvailable");
            if avail < need {
                skipped_incr = Some(format!(
                    "skipped: {} available, {} needed (workload, pre-dump and full images in the page cache)",
                    fmt_bytes(avail),
                    fmt_bytes(need)
                ));
            } else {
                let t = Instant::now();
                b.incr_cycle(mib, record);
                eprintln!("  rckpt incr {}: {:.1} s", fmt_size_mib(mib), t.elapsed().as_secs_f64());
            }
        }

        for tool in b.tools.clone() {
            let t = Instant::now();
            // Fixed costs: threads.
            for &n in &b.cfg.threads.clone() {
                let key = format!("threads {n}");
                b.cycle(tool, &key, "threads", &[n.to_string()], record, &|_| vec![], &|_| vec![]);
            }
            // Fixed costs: processes.
            for &(n, k) in &b.cfg.procs.clone() {
                let key = format!("procs {n}");
                b.cycle(tool, &key, "tree", &[n.to_string(), k.to_string()], record, &|_| vec![], &|_| vec![]);
            }
            eprintln!("  {} threads and processes: {:.1} s", tool.name(), t.elapsed().as_secs_f64());
            // The forked tree sharing memory.
            let t = Instant::now();
            let args = [b.cfg.cow_mib.to_string(), b.cfg.cow_children.to_string()];
            b.cycle(
                tool,
                "cowtree",
                "cowtree",
                &args,
                record,
                &|r| vec![("pss_after_bytes", tree_pss(r.pid) as f64)],
                &|w| vec![("pss_before_bytes", tree_pss(w.pid) as f64)],
            );
            eprintln!("  {} forked tree: {:.1} s", tool.name(), t.elapsed().as_secs_f64());
        }
    }
    let total = t_start.elapsed();
    let _ = std::fs::remove_dir_all(&work);
    let reported = reported0.zip(reported_kib()).map(|(a, b)| b.saturating_sub(a) * 1024);
    let load = format!("{load0}, at the end {}", loadavg());
    let ticks1 = cpu_ticks();
    // SAFETY: sysconf with a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let other = (ticks1.0 - ticks0.0).saturating_sub(ticks1.1 - ticks0.1) as f64 / hz / t_start.elapsed().as_secs_f64();

    report(
        &b,
        &base,
        base_fail,
        skipped_4g,
        skipped_incr,
        &criu,
        total,
        Meta { date, kernel, nproc, mem_total, cpu, thp, fs, rckpt_version, git, dirty, reported, load, other },
    );
}

/// Dump and restore of the memory workload of `mib` MiB, with each tool.
fn mem_cycles(b: &mut Bench, mib: u64, record: bool) {
    if !b.cfg.mem_sizes.contains(&mib) {
        return;
    }
    for tool in b.tools.clone() {
        let key = format!("mem {mib}");
        let t = Instant::now();
        b.cycle(tool, &key, "mem", &[mib.to_string()], record, &|_| vec![], &|_| vec![]);
        eprintln!("  {} {}: {:.1} s", tool.name(), key, t.elapsed().as_secs_f64());
        // The same resident memory spread over a far larger mapping: the cost
        // must follow what is resident, not the address space.
        if mib == b.cfg.sparse.0 {
            let key = "sparse";
            let t = Instant::now();
            let args = [mib.to_string(), b.cfg.sparse.1.to_string()];
            b.cycle(tool, key, "mem", &args, record, &|_| vec![], &|_| vec![]);
            eprintln!("  {} {}: {:.1} s", tool.name(), key, t.elapsed().as_secs_f64());
        }
    }
}

struct Meta {
    date: String,
    kernel: String,
    nproc: usize,
    mem_total: u64,
    cpu: String,
    thp: String,
    fs: String,
    rckpt_version: String,
    git: String,
    dirty: bool,
    /// Bytes the guest returned to the host (free page reporting) during the run.
    reported: Option<u64>,
    /// Load averages at the start and the end.
    load: String,
    /// CPUs' worth of time used by other processes during the run.
    other: f64,
}

fn f1(x: f64) -> String {
    if x.is_finite() { format!("{x:.1}") } else { "-".into() }
}

fn f3(x: f64) -> String {
    if x.is_finite() { format!("{x:.3}") } else { "-".into() }
}

fn f2(x: f64) -> String {
    if x.is_finite() { format!("{x:.2}") } else { "-".into() }
}

/// A text table: a header row and rows, columns right-aligned except the first.
fn table(out: &mut String, head: &[&str], rows: &[Vec<String>]) {
    let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::from("  ");
        for (i, c) in cells.iter().enumerate() {
            if i == 0 {
                let _ = write!(s, "{:<w$}", c, w = w[0]);
            } else {
                let _ = write!(s, "  {:>w$}", c, w = w[i]);
            }
        }
        s.trim_end().to_string() + "\n"
    };
    out.push_str(&line(head.to_vec()));
    out.push_str(&line(w.iter().map(|&n| "-".repeat(n)).collect::<Vec<_>>().iter().map(|s| s.as_str()).collect()));
    for r in rows {
        out.push_str(&line(r.iter().map(|s| s.as_str()).collect()));
    }
}

fn report(
    b: &Bench,
    base: &BTreeMap<String, Vec<f64>>,
    base_fail: Option<String>,
    skipped_4g: Option<String>,
    skipped_incr: Option<String>,
    criu: &Result<(), String>,
    total: Duration,
    meta: Meta,
) {
    let cfg = &b.cfg;
    let b_floor = MAXRSS_FLOOR.load(std::sync::atomic::Ordering::Relaxed);
    let bm = |k: &str| base.get(k).map(|v| median(v)).unwrap_or(f64::NAN);
    let base_mib = cfg.base_bytes / MIB;
    let wfs = |mib: u64| bm(&format!("write_fsync {mib}"));
    let pread = |mib: u64| bm(&format!("pread {mib}"));
    let mut o = String::new();
    let _ = writeln!(
        o,
        "rckpt benchmark, {}: kernel {}, {} CPUs ({}), {} RAM, THP {}, images on {}",
        meta.date,
        meta.kernel,
        meta.nproc,
        meta.cpu,
        fmt_bytes(meta.mem_total),
        meta.thp,
        meta.fs
    );
    let _ = writeln!(
        o,
        "{}{}{}; medians of {} runs{}{}; baselines and rckpt alternate (each goes first in turn); total {:.0} s\n\
         load average {}; other processes used {:.2} CPUs on average during the run",
        meta.rckpt_version,
        if meta.git.is_empty() { String::new() } else { format!(" at {}", meta.git) },
        if meta.dirty { " (src modified)" } else { "" },
        cfg.runs,
        if cfg.runs_4g < cfg.runs && (cfg.mem_sizes.contains(&4096) || cfg.incr_mib == Some(4096)) {
            format!(" ({} for 4 GiB)", cfg.runs_4g)
        } else {
            String::new()
        },
        if cfg.warmup { " after a warm-up round (4 GiB cases: no warm-up)" } else { ", no warm-up" },
        total.as_secs_f64(),
        meta.load,
        meta.other
    );
    let _ = writeln!(
        o,
        "each memory-heavy timed step starts after syncfs and a {} ms pause{}",
        cfg.settle_ms,
        match meta.reported {
            Some(r) => format!(
                "; free page reporting is on: {} of freed memory went back to the host during the run,\n\
                 so newly allocated memory often costs a host fault (in rckpt's steps and the baselines alike)",
                fmt_bytes(r)
            ),
            None => String::new(),
        }
    );
    let _ = writeln!(
        o,
        "the images of the fixed-cost cases are removed when the run ends, not between rounds (on ext4 without a\n\
         journal, each new file's inode search scans past inodes deleted in the last minutes)"
    );
    if cfg.quick {
        let _ = writeln!(o, "QUICK MODE: small sizes, one run, a smoke test only");
    }

    let _ = writeln!(
        o,
        "\nBaselines, GiB/s: memcpy; write() of a freshly filled buffer to a new file in the image directory + fsync;\n\
         pread() of that file (in the page cache) into fresh, untouched anonymous memory"
    );
    let mut sizes = cfg.mem_sizes.clone();
    sizes.push(base_mib);
    sizes.sort();
    sizes.dedup();
    let mut rows = Vec::new();
    for &mib in &sizes {
        let n = base.get(&format!("write_fsync {mib}")).map(|v| v.len()).unwrap_or(0);
        if n == 0 {
            continue;
        }
        let mc = if mib == base_mib { f2(bm("memcpy")) } else { "-".into() };
        rows.push(vec![fmt_size_mib(mib), mc, f2(wfs(mib)), f2(pread(mib)), n.to_string()]);
    }
    table(&mut o, &["buffer", "memcpy", "write+fsync", "pread into fresh memory", "runs"], &rows);
    if let Some(e) = &base_fail {
        let _ = writeln!(o, "  baseline FAILED: {e}");
    }

    let mut failures: Vec<String> = Vec::new();
    for ((tool, key), c) in &b.cases {
        if let Some(f) = &c.failure {
            failures.push(format!("{} {key}: {f}", tool.name()));
        }
    }

    for &tool in &b.tools {
        let get = |k: &str| b.cases.get(&(tool, k.to_string()));
        let tn = tool.name();
        let _ = writeln!(
            o,
            "\nMemory: one process with random anonymous memory; {tn} dump (kills it) and restore -d\n\
             (GiB/s of the workload's memory; ratios to the same-size baselines above)"
        );
        let mut rows = Vec::new();
        for &mib in &cfg.mem_sizes {
            let key = format!("mem {mib}");
            let size = fmt_size_mib(mib);
            let Some(c) = get(&key) else {
                if mib >= 4096
                    && let Some(s) = &skipped_4g
                {
                    rows.push(vec![size, s.clone()]);
                }
                continue;
            };
            if c.runs == 0 {
                rows.push(vec![size, "FAILED (see below)".into()]);
                continue;
            }
            let bytes = mib * MIB;
            let dw = c.med("dump_wall_ms");
            let rw = c.med("restore_wall_ms");
            let dg = gibps(bytes, dw);
            let rg = gibps(bytes, rw);
            rows.push(vec![
                size,
                f1(dw),
                f1(c.med("dump_frozen_ms")),
                f2(dg),
                f2(dg / wfs(mib)),
                f1(rw),
                f2(rg),
                f2(rg / pread(mib)),
                c.runs.to_string(),
            ]);
        }
        table(
            &mut o,
            &[
                "size",
                "dump ms",
                "frozen ms",
                "dump GiB/s",
                "vs write+fsync",
                "restore ms",
                "restore GiB/s",
                "vs pread",
                "runs",
            ],
            &rows,
        );
        let (smib, smapped) = cfg.sparse;
        if let (Some(s), Some(d)) = (get("sparse"), get(&format!("mem {smib}")))
            && s.runs > 0
            && d.runs > 0
        {
            let _ = writeln!(
                o,
                "  {} resident in one {} mapping (2 MiB pieces spread over it): dump {} ms ({}x the dense {}),\n  \
                 restore {} ms ({}x), image {} (dense: {})",
                fmt_size_mib(smib),
                fmt_size_mib(smapped),
                f1(s.med("dump_wall_ms")),
                f2(s.med("dump_wall_ms") / d.med("dump_wall_ms")),
                fmt_size_mib(smib),
                f1(s.med("restore_wall_ms")),
                f2(s.med("restore_wall_ms") / d.med("restore_wall_ms")),
                fmt_bytes(s.med("image_bytes") as u64),
                fmt_bytes(d.med("image_bytes") as u64),
            );
        }

        let _ = writeln!(
            o,
            "\nFixed cost: {tn} dump and restore of small tasks (ms; per task = total / n; marginal = (t(n) - t(1)) / (n - 1))"
        );
        let mut rows = Vec::new();
        let groups: Vec<(&str, Vec<(u32, String)>)> = vec![
            ("thread", cfg.threads.iter().map(|&n| (n, format!("threads {n}"))).collect()),
            ("process", cfg.procs.iter().map(|&(n, _)| (n, format!("procs {n}"))).collect()),
        ];
        for (unit, list) in &groups {
            let one = list.iter().find(|(n, _)| *n == 1).and_then(|(_, k)| get(k)).filter(|c| c.runs > 0);
            for (n, key) in list {
                let label = match *unit {
                    "thread" => format!("1 process, {n} thread{}", if *n == 1 { "" } else { "s" }),
                    _ => {
                        let shape = cfg
                            .procs
                            .iter()
                            .find(|(m, _)| m == n)
                            .map(|&(_, k)| {
                                if *n == 1 {
                                    String::new()
                                } else if k == 0 {
                                    format!(" (root + {} children)", n - 1)
                                } else {
                                    format!(" (root + {k} children + {} grandchildren)", n - 1 - k)
                                }
                            })
                            .unwrap_or_default();
                        format!("{n} process{}{shape}", if *n == 1 { "" } else { "es" })
                    }
                };
                let Some(c) = get(key).filter(|c| c.runs > 0) else {
                    rows.push(vec![label, "FAILED (see below)".into()]);
                    continue;
                };
                let (d, f, r) = (c.med("dump_wall_ms"), c.med("dump_frozen_ms"), c.med("restore_wall_ms"));
                let nn = *n as f64;
                let marg = |k: &str, t: f64| -> String {
                    match one {
                        Some(o1) if *n > 1 => f2((t - o1.med(k)) / (nn - 1.0)),
                        _ => "-".into(),
                    }
                };
                rows.push(vec![
                    label,
                    f1(d),
                    f1(f),
                    f1(r),
                    f2(d / nn),
                    f2(r / nn),
                    marg("dump_wall_ms", d),
                    marg("restore_wall_ms", r),
                    c.runs.to_string(),
                ]);
            }
        }
        table(
            &mut o,
            &[
                "workload",
                "dump",
                "frozen",
                "restore",
                "dump/task",
                "restore/task",
                "dump marginal",
                "restore marginal",
                "runs",
            ],
            &rows,
        );

        let _ = writeln!(
            o,
            "\nForked tree: a parent with {} of random memory and {} children that only read it ({tn})",
            fmt_size_mib(cfg.cow_mib),
            cfg.cow_children
        );
        match get("cowtree").filter(|c| c.runs > 0) {
            Some(c) => {
                let dw = c.med("dump_wall_ms");
                let rows = vec![
                    vec!["dump wall".into(), format!("{} ms", f1(dw))],
                    vec!["dump frozen".into(), format!("{} ms", f1(c.med("dump_frozen_ms")))],
                    vec!["image size".into(), fmt_bytes(c.med("image_bytes") as u64)],
                    vec!["Pss of the tree before dump".into(), fmt_bytes(c.med("pss_before_bytes") as u64)],
                    vec!["Pss of the restored tree".into(), fmt_bytes(c.med("pss_after_bytes") as u64)],
                    vec!["restore wall".into(), format!("{} ms", f1(c.med("restore_wall_ms")))],
                    vec!["runs".into(), c.runs.to_string()],
                ];
                table(&mut o, &["", "median"], &rows);
            }
            None => {
                let _ = writeln!(o, "  FAILED (see below)");
            }
        }

        // Peak memory of the tool's own process.
        let _ = writeln!(
            o,
            "\nPeak RSS of the {tn} process (ru_maxrss from wait4, MiB; never below this harness's own {} at the fork)",
            f1(b_floor as f64 / MIB as f64)
        );
        let mut keys: Vec<String> = cfg.mem_sizes.iter().map(|m| format!("mem {m}")).collect();
        keys.extend(cfg.threads.iter().map(|n| format!("threads {n}")));
        keys.extend(cfg.procs.iter().map(|(n, _)| format!("procs {n}")));
        keys.push("sparse".into());
        keys.push("cowtree".into());
        let mut rows = Vec::new();
        for k in keys {
            if let Some(c) = get(&k).filter(|c| c.runs > 0) {
                let mb = |m: &str| f1(c.med(m) / MIB as f64);
                rows.push(vec![k, mb("dump_maxrss_bytes"), mb("restore_maxrss_bytes")]);
            }
        }
        table(&mut o, &["case", "dump", "restore"], &rows);
    }

    // Incremental (rckpt only).
    if let Some(mib) = cfg.incr_mib {
        let key = format!("incr {mib}");
        let c = b.cases.get(&(Tool::Rckpt, key));
        let written = c.map(|c| c.med("written_bytes")).filter(|x| x.is_finite()).map(|x| fmt_bytes(x as u64));
        let _ = writeln!(
            o,
            "\nIncremental (rckpt): one process with {} of random memory; pre-dump; the process rewrites every 100th page\n\
             ({}); dump -R --prev-images-dir; a full dump of the same state; restore of the incremental image (which reads\n\
             the pre-dump's too), the workload checking every page after it",
            fmt_size_mib(mib),
            written.unwrap_or_else(|| "1%".into())
        );
        match c {
            Some(c) if c.runs > 0 => {
                let mb = |m: &str| format!("{} MiB", f1(c.med(m) / MIB as f64));
                let img = |m: &str| fmt_bytes(c.med(m) as u64);
                let rows = vec![
                    vec![
                        "pre-dump".into(),
                        f1(c.med("predump_wall_ms")),
                        f1(c.med("predump_frozen_ms")),
                        f1(c.med("predump_total_ms")),
                        img("predump_image_bytes"),
                        mb("predump_maxrss_bytes"),
                    ],
                    vec![
                        "incremental dump (-R)".into(),
                        f1(c.med("dump_wall_ms")),
                        f1(c.med("dump_frozen_ms")),
                        f1(c.med("dump_total_ms")),
                        img("image_bytes"),
                        mb("dump_maxrss_bytes"),
                    ],
                    vec![
                        "full dump".into(),
                        f1(c.med("full_dump_wall_ms")),
                        f1(c.med("full_dump_frozen_ms")),
                        f1(c.med("full_dump_total_ms")),
                        img("full_image_bytes"),
                        mb("full_dump_maxrss_bytes"),
                    ],
                    vec![
                        "restore of the incremental image".into(),
                        f1(c.med("restore_wall_ms")),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        mb("restore_maxrss_bytes"),
                    ],
                ];
                table(&mut o, &["step", "wall ms", "frozen ms", "rckpt total ms", "image", "peak RSS"], &rows);
                let ratio = c.med("dump_frozen_ms") / c.med("full_dump_frozen_ms");
                let _ = writeln!(
                    o,
                    "  frozen, incremental / full: {} ({}%; median of the per-run ratios {}); target at most 0.10: {}\n  \
                     restored memory identical (checked by the workload) in all {} runs",
                    f3(ratio),
                    f1(ratio * 100.0),
                    f3(c.med("frozen_ratio")),
                    if ratio <= INCR_TARGET { "met" } else { "NOT MET" },
                    c.runs
                );
            }
            Some(_) => {
                let _ = writeln!(o, "  FAILED (see below)");
            }
            None => {
                let _ = writeln!(o, "  {}", skipped_incr.as_deref().unwrap_or("not run"));
            }
        }
    }

    // Pid waits, apart.
    let waits = |kind: &str| -> Vec<f64> { b.pid_waits.iter().filter(|(k, _)| *k == kind).map(|x| x.1).collect() };
    let (wd, wr) = (waits("dumped"), waits("restored"));
    let all: f64 = b.pid_waits.iter().map(|x| x.1).sum();
    let _ = writeln!(
        o,
        "\nWaiting for killed pids to disappear (never counted above; this harness is a child subreaper and reaps them):"
    );
    let _ = writeln!(
        o,
        "  {} waits, {:.2} s in all; after a dump median {} ms (max {}), after killing a restored tree median {} ms (max {})",
        b.pid_waits.len(),
        all / 1e3,
        f2(median(&wd)),
        f2(wd.iter().copied().fold(f64::NAN, f64::max)),
        f2(median(&wr)),
        f2(wr.iter().copied().fold(f64::NAN, f64::max))
    );

    // CRIU ratios.
    match criu {
        Ok(()) => {
            let _ = writeln!(o, "\nrckpt / CRIU (median time ratio, < 1: rckpt faster)");
            let mut rows = Vec::new();
            let keys: Vec<String> = b.cases.keys().filter(|(t, _)| *t == Tool::Rckpt).map(|(_, k)| k.clone()).collect();
            for k in keys {
                let r = &b.cases[&(Tool::Rckpt, k.clone())];
                let Some(c) = b.cases.get(&(Tool::Criu, k.clone())) else { continue };
                rows.push(vec![
                    k.clone(),
                    f2(r.med("dump_wall_ms") / c.med("dump_wall_ms")),
                    f2(r.med("dump_frozen_ms") / c.med("dump_frozen_ms")),
                    f2(r.med("restore_wall_ms") / c.med("restore_wall_ms")),
                ]);
            }
            table(&mut o, &["case", "dump", "frozen", "restore"], &rows);
        }
        Err(e) => {
            let _ = writeln!(o, "\ncriu: not available ({e})");
        }
    }

    if failures.is_empty() && base_fail.is_none() {
        let _ = writeln!(o, "\nfailures: none");
    } else {
        let _ = writeln!(o, "\nfailures:");
        for f in &failures {
            let _ = writeln!(o, "  {f}");
        }
    }
    print!("\n{o}");

    // JSON.
    let case_json = |tool: Tool, key: &str, c: &Case| -> J {
        let mut v: Vec<(String, J)> = vec![
            ("tool".into(), J::S(tool.name().into())),
            ("case".into(), J::S(key.into())),
            ("runs".into(), J::num(c.runs as f64)),
            ("failure".into(), c.failure.clone().map(J::S).unwrap_or(J::Null)),
        ];
        if let Some(mib) = key.strip_prefix("mem ").and_then(|s| s.parse::<u64>().ok()) {
            let bytes = mib * MIB;
            v.push(("memory_bytes".into(), J::num(bytes as f64)));
            v.push(("dump_gibps".into(), J::num(gibps(bytes, c.med("dump_wall_ms")))));
            v.push(("restore_gibps".into(), J::num(gibps(bytes, c.med("restore_wall_ms")))));
            let (dg, rg) = (gibps(bytes, c.med("dump_wall_ms")), gibps(bytes, c.med("restore_wall_ms")));
            v.push(("dump_vs_write_fsync".into(), J::num(dg / wfs(mib))));
            v.push(("restore_vs_pread_fresh".into(), J::num(rg / pread(mib))));
            v.push((format!("dump_vs_write_fsync_{base_mib}mib"), J::num(dg / wfs(base_mib))));
            v.push((format!("restore_vs_pread_fresh_{base_mib}mib"), J::num(rg / pread(base_mib))));
        }
        if let Some(mib) = key.strip_prefix("incr ").and_then(|s| s.parse::<u64>().ok()) {
            v.push(("memory_bytes".into(), J::num((mib * MIB) as f64)));
            v.push(("incr_vs_full_frozen".into(), J::num(c.med("dump_frozen_ms") / c.med("full_dump_frozen_ms"))));
            v.push(("incr_target".into(), J::num(INCR_TARGET)));
        }
        for (k, s) in &c.samples {
            v.push((k.to_string(), stat_json(s)));
        }
        J::O(v)
    };
    let cases: Vec<J> = b.cases.iter().map(|((t, k), c)| case_json(*t, k, c)).collect();
    let j = J::obj(vec![
        ("date", J::S(meta.date)),
        (
            "machine",
            J::obj(vec![
                ("kernel", J::S(meta.kernel)),
                ("nproc", J::num(meta.nproc as f64)),
                ("mem_total_bytes", J::num(meta.mem_total as f64)),
                ("cpu", J::S(meta.cpu)),
                ("thp", J::S(meta.thp)),
                ("image_fs", J::S(meta.fs)),
            ]),
        ),
        ("rckpt", J::S(meta.rckpt_version)),
        ("git", J::S(meta.git)),
        ("src_modified", J::B(meta.dirty)),
        ("quick", J::B(cfg.quick)),
        ("runs", J::num(cfg.runs as f64)),
        ("runs_4g", J::num(cfg.runs_4g as f64)),
        ("warmup_rounds", J::num(if cfg.warmup { 1.0 } else { 0.0 })),
        ("total_seconds", J::num(total.as_secs_f64())),
        ("settle_ms", J::num(cfg.settle_ms as f64)),
        ("loadavg", J::S(meta.load.clone())),
        ("other_cpu_used", J::num(meta.other)),
        ("page_reporting_bytes", meta.reported.map(|r| J::num(r as f64)).unwrap_or(J::Null)),
        (
            "baselines",
            J::obj(vec![
                ("memcpy_bytes", J::num(cfg.base_bytes as f64)),
                ("memcpy_gibps", stat_json(base.get("memcpy").map(|v| v.as_slice()).unwrap_or(&[]))),
                (
                    "io",
                    J::A(
                        sizes
                            .iter()
                            .filter(|&&mib| base.contains_key(&format!("write_fsync {mib}")))
                            .map(|&mib| {
                                let get = |k: String| stat_json(base.get(&k).map(|v| v.as_slice()).unwrap_or(&[]));
                                J::obj(vec![
                                    ("bytes", J::num((mib * MIB) as f64)),
                                    ("write_fsync_gibps", get(format!("write_fsync {mib}"))),
                                    ("pread_fresh_gibps", get(format!("pread {mib}"))),
                                ])
                            })
                            .collect(),
                    ),
                ),
                ("failure", base_fail.map(J::S).unwrap_or(J::Null)),
            ]),
        ),
        ("cases", J::A(cases)),
        ("skipped_4g", skipped_4g.map(J::S).unwrap_or(J::Null)),
        ("skipped_incr", skipped_incr.map(J::S).unwrap_or(J::Null)),
        ("maxrss_floor_bytes", J::num(b_floor as f64)),
        (
            "pid_waits",
            J::obj(vec![
                ("count", J::num(b.pid_waits.len() as f64)),
                ("total_ms", J::num(all)),
                ("after_dump_ms", stat_json(&wd)),
                ("after_kill_restored_ms", stat_json(&wr)),
            ]),
        ),
        (
            "criu",
            match criu {
                Ok(()) => J::obj(vec![("available", J::B(true))]),
                Err(e) => J::obj(vec![("available", J::B(false)), ("reason", J::S(e.clone()))]),
            },
        ),
        ("failures", J::A(failures.into_iter().map(J::S).collect())),
        ("table", J::S(o.clone())),
    ]);
    let mut s = String::new();
    j.write(&mut s, 0);
    s.push('\n');
    let out = Path::new(MANIFEST).join("target/bench/rckpt.json");
    let _ = std::fs::create_dir_all(out.parent().unwrap());
    if let Err(e) = std::fs::write(&out, &s) {
        eprintln!("bench: writing {}: {e}", out.display());
    } else {
        eprintln!("wrote {}", out.display());
    }
    if !cfg.quick {
        let latest = Path::new(MANIFEST).join("bench/latest.json");
        match std::fs::write(&latest, &s) {
            Ok(()) => eprintln!("wrote {}", latest.display()),
            Err(e) => eprintln!("bench: writing {}: {e}", latest.display()),
        }
    }
}
