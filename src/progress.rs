//! What a dump or restore is doing, for whoever watches: a progress bar on a
//! terminal, `-v`/`-vv` lines on stderr, the whole log in `--log-file`.
//!
//! The library reports through process-wide counters (a phase, tasks done, bytes
//! moved) and log lines, not through a callback in its options: the page loop
//! deep inside a dump reports with one relaxed atomic add, whether anyone watches
//! or not, and no signature changes on the way down. Only the CLI turns them
//! into output ([`init_log`], [`Bar`]); a library user that does neither sees
//! nothing.

use std::fmt;
use std::fs::File;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

static TASKS_TOTAL: AtomicU64 = AtomicU64::new(0);
static TASKS_DONE: AtomicU64 = AtomicU64::new(0);
static BYTES_TOTAL: AtomicU64 = AtomicU64::new(0);
static BYTES_DONE: AtomicU64 = AtomicU64::new(0);
static PHASE: Mutex<Option<(&'static str, Instant)>> = Mutex::new(None);
static LOG: Mutex<Option<Log>> = Mutex::new(None);
static BAR: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);
/// Set before rckpt forks: the bar's thread ends (a fork must not copy a lock
/// it holds), and none starts again.
static QUIESCE: AtomicBool = AtomicBool::new(false);
static BAR_THREADS: AtomicU64 = AtomicU64::new(0);

/// Ends the bar's thread and waits for it (bounded): rckpt is about to fork.
pub fn quiesce() {
    QUIESCE.store(true, Relaxed);
    let t0 = Instant::now();
    while BAR_THREADS.load(Relaxed) > 0 && t0.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Starts a phase ("dumping", "packing", ...) of `tasks` tasks and `bytes` bytes
/// (0 where not known yet); the counts start again from zero.
pub fn phase(name: &'static str, tasks: u64, bytes: u64) {
    TASKS_TOTAL.store(tasks, Relaxed);
    TASKS_DONE.store(0, Relaxed);
    BYTES_TOTAL.store(bytes, Relaxed);
    BYTES_DONE.store(0, Relaxed);
    *PHASE.lock().unwrap_or_else(|e| e.into_inner()) = Some((name, Instant::now()));
    match (tasks, bytes) {
        (0, 0) => log(2, format_args!("{name}")),
        (t, 0) => log(2, format_args!("{name} {t} task(s)")),
        (0, b) => log(2, format_args!("{name} {}", human_bytes(b))),
        (t, b) => log(2, format_args!("{name} {t} task(s), {}", human_bytes(b))),
    }
}

/// `n` more bytes moved (pages saved or packed).
pub fn bytes(n: u64) {
    BYTES_DONE.fetch_add(n, Relaxed);
}

/// Task `pid` is done (its `pages` bytes of memory saved or restored).
pub fn task_done(pid: i32, pages: u64) {
    TASKS_DONE.fetch_add(1, Relaxed);
    log(2, format_args!("task {pid}: done, {} of pages", human_bytes(pages)));
}

/// A snapshot of the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub phase: &'static str,
    pub since: Instant,
    pub tasks_done: u64,
    pub tasks_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

pub fn counts() -> Option<Counts> {
    let (phase, since) = (*PHASE.lock().unwrap_or_else(|e| e.into_inner()))?;
    Some(Counts {
        phase,
        since,
        tasks_done: TASKS_DONE.load(Relaxed),
        tasks_total: TASKS_TOTAL.load(Relaxed),
        bytes_done: BYTES_DONE.load(Relaxed),
        bytes_total: BYTES_TOTAL.load(Relaxed),
    })
}

impl fmt::Display for Counts {
    /// "dumping: 2/3 tasks, 120.0 MiB, 310.2 MiB/s".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.phase)?;
        let mut sep = ": ";
        if self.tasks_total > 0 {
            write!(f, "{sep}{}/{} tasks", self.tasks_done, self.tasks_total)?;
            sep = ", ";
        }
        if self.bytes_done > 0 || self.bytes_total > 0 {
            write!(f, "{sep}{}", human_bytes(self.bytes_done))?;
            if self.bytes_total > 0 {
                write!(f, " of {}", human_bytes(self.bytes_total))?;
            }
            let secs = self.since.elapsed().as_secs_f64();
            if secs > 0.2 {
                write!(f, ", {}/s", human_bytes((self.bytes_done as f64 / secs) as u64))?;
            }
        }
        Ok(())
    }
}

/// "0 B", "4 KiB", "1.5 MiB".
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if v.fract() == 0.0 || v >= 100.0 { format!("{v:.0} {}", UNITS[u]) } else { format!("{v:.1} {}", UNITS[u]) }
}

struct Log {
    /// Lines up to this level go to stderr (0: errors only).
    stderr_level: u8,
    /// Every line up to level 2, with the time since the start.
    file: Option<File>,
    start: Instant,
}

/// Sets where log lines go: stderr up to `verbose` (`-v` is 1, `-vv` 2), and,
/// with `file`, every line to the file.
pub fn init_log(verbose: u8, file: Option<File>) {
    *LOG.lock().unwrap_or_else(|e| e.into_inner()) = Some(Log { stderr_level: verbose, file, start: Instant::now() });
}

/// Logs "rckpt: MSG": level 0 for errors and what is always said, 1 for `-v`
/// (what was done, with timings), 2 for `-vv` (each step).
pub fn log(level: u8, msg: fmt::Arguments<'_>) {
    let mut guard = LOG.lock().unwrap_or_else(|e| e.into_inner());
    let Some(l) = guard.as_mut() else {
        if level == 0 {
            eprintln!("rckpt: {msg}");
        }
        return;
    };
    if let Some(f) = l.file.as_mut() {
        let t = l.start.elapsed().as_secs_f64();
        let _ = writeln!(f, "[{t:10.6}] {}rckpt: {msg}", if level == 0 { "" } else { "  " });
    }
    if level <= l.stderr_level {
        let line = format!("rckpt: {msg}");
        match BAR.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            // Printed above the bar, which is drawn again below it.
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }
}

/// The progress bar of one operation: shown on stderr once it has run for a
/// second, only when stderr is a terminal, and cleared when the operation ends.
pub struct Bar {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How long an operation runs before it shows progress.
const QUIET_FOR: Duration = Duration::from_secs(1);
const TICK: Duration = Duration::from_millis(100);

impl Bar {
    pub fn start() -> Bar {
        let stop = Arc::new(AtomicBool::new(false));
        if !std::io::stderr().is_terminal() || QUIESCE.load(Relaxed) {
            return Bar { stop, thread: None };
        }
        let s = stop.clone();
        BAR_THREADS.fetch_add(1, Relaxed);
        let thread = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                struct Done;
                impl Drop for Done {
                    fn drop(&mut self) {
                        BAR_THREADS.fetch_sub(1, Relaxed);
                    }
                }
                let _done = Done;
                let s = || s.load(Relaxed) || QUIESCE.load(Relaxed);
                let t0 = Instant::now();
                while t0.elapsed() < QUIET_FOR {
                    if s() {
                        return;
                    }
                    std::thread::sleep(TICK);
                }
                let bar = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
                bar.set_style(
                    indicatif::ProgressStyle::with_template("{spinner} {elapsed:>3} {msg}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                );
                *BAR.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
                while !s() {
                    if let Some(c) = counts() {
                        bar.set_message(c.to_string());
                    }
                    bar.tick();
                    std::thread::sleep(TICK);
                }
                BAR.lock().unwrap_or_else(|e| e.into_inner()).take();
                bar.finish_and_clear();
            })
            .ok();
        Bar { stop, thread }
    }

    /// Clears the bar (before the restored tree or the summary writes).
    pub fn finish(mut self) {
        self.end();
    }

    fn end(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(4096), "4 KiB");
        assert_eq!(human_bytes(1536 * 1024), "1.5 MiB");
        assert_eq!(human_bytes(3 << 30), "3 GiB");
    }

    #[test]
    fn counts_read_as_a_line() {
        let c = Counts {
            phase: "dumping",
            since: Instant::now(),
            tasks_done: 1,
            tasks_total: 3,
            bytes_done: 2 << 20,
            bytes_total: 0,
        };
        assert_eq!(c.to_string(), "dumping: 1/3 tasks, 2 MiB");
    }
}
