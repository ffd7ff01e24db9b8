//! `rckpt run -- CMD`: starts CMD as the init of fresh PID, UTS, IPC and
//! network namespaces (loopback up), ready to be snapshotted: its pids, ports
//! and abstract socket names are its own, so a restore of it (into fresh
//! namespaces again) never collides with the host or with another restore.

use std::ffi::CString;

use nix::sched::CloneFlags;

use crate::sys::{SysError, ns};

/// Runs `cmd` and returns its exit status (128 + signal if killed). rckpt must
/// be single-threaded.
pub fn run(cmd: &[String]) -> Result<u8, SysError> {
    let argv: Vec<CString> = cmd
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(|_| SysError::Os { op: "pass the command", errno: nix::errno::Errno::EINVAL })?;
    ns::unshare(
        CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWNET,
    )?;
    ns::loopback_up()?;
    let child = ns::fork_run(|| {
        // Its own session, and only stdin, stdout and stderr of the outside
        // world: nothing of the tree refers to anything else outside.
        let _ = nix::unistd::setsid();
        crate::sys::close_from(3);
        let e = nix::unistd::execvp(&argv[0], &argv).unwrap_err();
        eprintln!("rckpt: cannot run {}: {e}", cmd[0]);
        127
    })?;
    eprintln!("rckpt: running {} as pid {child} (pid 1 of its namespaces)", cmd[0]);
    loop {
        match nix::sys::wait::waitpid(child, None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => return Ok(code as u8),
            Ok(nix::sys::wait::WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as u8),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => return Err(SysError::Os { op: "wait for the command", errno }),
        }
    }
}
