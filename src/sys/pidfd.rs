//! pidfds (Linux 5.6): take a descriptor out of another task with pidfd_getfd.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

use super::{Pid, Result, check, task_err};

pub fn open(pid: Pid) -> Result<OwnedFd> {
    // SAFETY: pidfd_open takes two integers and returns a new descriptor.
    let fd =
        check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) }).map_err(task_err("open pidfd", pid))?;
    // SAFETY: the kernel just returned this descriptor to us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// A duplicate of `pid`'s descriptor `fd` in this process (close-on-exec).
pub fn getfd(pidfd: &OwnedFd, pid: Pid, fd: i32) -> Result<OwnedFd> {
    // SAFETY: integers in, a new descriptor out.
    let r = check(unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) })
        .map_err(task_err("take a descriptor", pid))?;
    // SAFETY: as above, a descriptor the kernel created for us.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

pub fn is_alive(pidfd: &OwnedFd) -> bool {
    // SAFETY: signal 0 only checks for existence.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), 0, std::ptr::null::<u8>(), 0) };
    r == 0 || Errno::last() != Errno::ESRCH
}
