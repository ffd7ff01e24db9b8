//! Freezing: PTRACE_SEIZE and PTRACE_INTERRUPT, so the task stops without a signal
//! it could see, and a job-control stop is noticed (and restored as such).

use std::time::Duration;

use nix::errno::Errno;

use super::{DumpError, Result};
use crate::proc;
use crate::sys::ptrace::{Stop, Tracee, opts};
use crate::sys::{Pid, SysError};

const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Frozen {
    pub tracee: Tracee,
    /// The stop signal when the task was in a job-control stop.
    pub stop_signal: Option<i32>,
}

pub fn freeze(pid: Pid) -> Result<Frozen> {
    let stat = proc::stat(pid).map_err(|_| DumpError::NoTask(pid))?;
    if stat.state == 'Z' || stat.state == 'X' {
        return Err(DumpError::Refused {
            pid,
            why: "it is a zombie".into(),
        });
    }
    let mut tracee = Tracee::seize(pid, opts::TRACESYSGOOD).map_err(|e| match e {
        SysError::Task {
            errno: Errno::EPERM,
            ..
        } => DumpError::Refused {
            pid,
            why: "it is traced by another process (another rckpt, a debugger) or not ours to trace"
                .into(),
        },
        SysError::TraceeDied(_) => DumpError::NoTask(pid),
        e => e.into(),
    })?;
    let stop = tracee.interrupt_and_wait(FREEZE_TIMEOUT)?;
    let stop_signal = match stop {
        Stop::GroupStop(s) => Some(s),
        _ => None,
    };
    let threads = proc::threads(pid)?;
    if threads.len() > 1 {
        return Err(DumpError::Unsupported {
            pid,
            what: format!(
                "it has {} threads (multi-threaded tasks come with process trees)",
                threads.len()
            ),
        });
    }
    let children = proc::children(pid)?;
    if !children.is_empty() {
        let list: Vec<String> = children.iter().map(|c| c.to_string()).collect();
        return Err(DumpError::Unsupported {
            pid,
            what: format!("it has child processes ({})", list.join(", ")),
        });
    }
    Ok(Frozen {
        tracee,
        stop_signal,
    })
}
