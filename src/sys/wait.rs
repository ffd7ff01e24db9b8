//! Bounded waits for one pid. Never waitpid(-1): in a test binary that would reap
//! another test's children.

use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::{Pid, Result, SysError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitStatus {
    Exited(i32),
    Signaled {
        signal: i32,
        core: bool,
    },
    /// The raw stop status (status >> 8: signal, and event << 8).
    Stopped(i32),
}

fn decode(status: i32) -> WaitStatus {
    if libc::WIFEXITED(status) {
        WaitStatus::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        WaitStatus::Signaled { signal: libc::WTERMSIG(status), core: libc::WCOREDUMP(status) }
    } else {
        WaitStatus::Stopped(status >> 8)
    }
}

/// One non-blocking waitpid(pid, __WALL).
pub fn try_wait_pid(pid: Pid) -> Result<Option<WaitStatus>> {
    let mut status = 0;
    // SAFETY: `status` is a valid out-pointer for the duration of the call.
    let r = unsafe { libc::waitpid(pid.as_raw(), &mut status, libc::__WALL | libc::WNOHANG) };
    match r {
        0 => Ok(None),
        r if r == pid.as_raw() => Ok(Some(decode(status))),
        _ => {
            let e = Errno::last();
            if e == Errno::ECHILD {
                Err(SysError::TraceeDied(pid))
            } else {
                Err(SysError::Task { op: "wait", pid, errno: e })
            }
        }
    }
}

/// Waits for a state change of `pid` until `deadline`.
///
/// Ptrace stops raise no event a pidfd can poll, so this polls with a short,
/// growing sleep: the first checks are immediate, later ones at most 1 ms apart.
pub fn wait_pid(pid: Pid, deadline: Instant, what: &'static str) -> Result<WaitStatus> {
    let start = Instant::now();
    let mut spins = 0u32;
    let mut nap = Duration::from_micros(20);
    loop {
        if let Some(s) = try_wait_pid(pid)? {
            return Ok(s);
        }
        if Instant::now() >= deadline {
            return Err(SysError::Timeout { what, pid, secs: start.elapsed().as_secs_f64() });
        }
        if spins < 64 {
            spins += 1;
            std::thread::yield_now();
        } else {
            std::thread::sleep(nap);
            nap = (nap * 2).min(Duration::from_millis(1));
        }
    }
}
