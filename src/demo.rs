//! `rckpt demo`: a built-in workload, checkpointed, killed, restored, continuing
//! from where it was. It uses the library as any program embedding rckpt would.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::exit::Exit;
use crate::restore::{InheritFd, RestoreOptions};
use crate::sys::Pid;

const TICKS_BEFORE: usize = 5;
const TICKS_AFTER: usize = 5;

/// The built-in workload: counts, keeps a running checksum of its state in
/// memory, and prints a line four times a second.
/// The workload's state checksum after `ticks` ticks, computed here without it:
/// what an uninterrupted run prints.
fn expected_checksum(ticks: u64) -> u64 {
    let mut state: Vec<u64> = (0..1 << 16).collect();
    let mut sum = 0;
    for tick in 1..=ticks {
        step(&mut state, tick);
        sum = checksum(&state);
    }
    sum
}

fn step(state: &mut [u64], tick: u64) {
    for v in state.iter_mut() {
        *v = v.wrapping_mul(6364136223846793005).wrapping_add(tick);
    }
}

fn checksum(state: &[u64]) -> u64 {
    state.iter().fold(0u64, |a, v| a.rotate_left(5) ^ v)
}

pub fn workload() -> Exit {
    // Its own session, and nothing inherited but stdio: a tree of its own.
    let _ = nix::unistd::setsid();
    crate::sys::close_from(3);
    let mut state: Vec<u64> = (0..1 << 16).collect();
    let mut out = std::io::stdout().lock();
    for tick in 1u64.. {
        step(&mut state, tick);
        let sum = checksum(&state);
        if writeln!(out, "tick {tick:3}  pid {}  state checksum {sum:016x}", std::process::id())
            .and_then(|_| out.flush())
            .is_err()
        {
            return Exit::Ok;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Exit::Ok
}

fn relay(lines: &mut impl Iterator<Item = std::io::Result<String>>, n: usize, tag: &str) -> anyhow::Result<String> {
    let mut last = String::new();
    for _ in 0..n {
        let l = lines.next().context("the workload stopped printing")??;
        println!("  [{tag}] {l}");
        last = l;
    }
    Ok(last)
}

fn tick_of(line: &str) -> u64 {
    line.split_whitespace().nth(1).and_then(|t| t.parse().ok()).unwrap_or(0)
}

fn checksum_of(line: &str) -> u64 {
    line.split_whitespace().last().and_then(|t| u64::from_str_radix(t, 16).ok()).unwrap_or(0)
}

pub fn run() -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the rckpt binary")?;
    let dir = std::env::temp_dir().join(format!("rckpt-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);

    println!("rckpt demo: starting a workload that counts and keeps state in memory");
    let mut child = Command::new(&exe)
        .arg("demo-workload")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = Pid::from_raw(child.id() as i32);
    let stdout = child.stdout.take().unwrap();
    let key = format!("pipe:[{}]", std::fs::metadata(format!("/proc/self/fd/{}", stdout.as_raw_fd()))?.ino());
    let mut lines = BufReader::new(stdout).lines();
    let before = relay(&mut lines, TICKS_BEFORE, "original")?;

    println!("rckpt demo: rckpt dump -t {pid} -D {}", dir.display());
    let report = crate::dump::dump(&crate::dump::DumpOptions {
        pid,
        dir: dir.clone(),
        leave_running: false,
        files: Default::default(),
        prev: None,
    })?;
    // rckpt, as tracer and parent, has already reaped it.
    let _ = child.wait();
    println!(
        "rckpt demo: saved {:.1} MiB of memory in {:.1} ms (the workload was frozen for {:.1} ms), then killed it",
        report.pages_bytes as f64 / (1 << 20) as f64,
        report.total.as_secs_f64() * 1e3,
        report.frozen.as_secs_f64() * 1e3
    );
    drop(lines);

    // Its stdout was a pipe to us: the restored workload gets a new one, bound
    // to the old pipe's name as `--inherit-fd fd[N]:pipe:[...]` would.
    let (r, w): (OwnedFd, OwnedFd) = nix::unistd::pipe()?;
    println!("rckpt demo: rckpt restore -D {} --inherit-fd 'fd[{}]:{key}'", dir.display(), w.as_raw_fd());
    let t0 = Instant::now();
    let opts = RestoreOptions {
        dir: dir.clone(),
        detach: true,
        inherit: vec![InheritFd { fd: w.as_raw_fd(), key }],
        shell_job: false,
    };
    let restored = crate::restore::restore(&opts)?;
    println!("rckpt demo: restored pid {restored} in {:.1} ms", t0.elapsed().as_secs_f64() * 1e3);
    drop(w);
    let mut lines = BufReader::new(std::fs::File::from(r)).lines();
    let first = relay(&mut lines, 1, "restored")?;
    let last = relay(&mut lines, TICKS_AFTER - 1, "restored")?;
    let _ = nix::sys::signal::kill(restored, nix::sys::signal::Signal::SIGTERM);
    let _ = nix::sys::wait::waitpid(restored, None);
    let _ = std::fs::remove_dir_all(&dir);

    if restored != pid || tick_of(&first) != tick_of(&before) + 1 {
        bail!(
            "the restored workload did not continue: last tick {} before, {} after",
            tick_of(&before),
            tick_of(&first)
        );
    }
    if checksum_of(&last) != expected_checksum(tick_of(&last)) {
        bail!("the restored workload's state differs from an uninterrupted run's at tick {}", tick_of(&last));
    }
    println!(
        "rckpt demo: the workload continued from tick {} to {} with the same pid {pid}, its state checksum matching an uninterrupted run",
        tick_of(&before),
        tick_of(&first)
    );
    Ok(())
}
