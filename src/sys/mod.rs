//! The only home of raw system calls and `unsafe` (outside the blobs).
//!
//! Every change made to another process is owned by a guard here: a seized task is
//! detached on drop, a local blob mapping unmapped, a blocked signal mask restored.

pub mod addr;
pub mod blobmap;
pub mod clone;
pub mod cpu;
pub mod creds;
pub mod files;
pub mod handle;
pub mod mem;
pub mod netfilter;
pub mod ns;
pub mod pagemap;
pub mod pidfd;
pub mod pod;
pub mod ptrace;
pub mod pty;
pub mod remote;
pub mod signal;
pub mod sock;
pub mod sockdiag;
pub mod task;
pub mod uffd;
pub mod wait;

pub use addr::RemoteAddr;
pub use nix::unistd::Pid;

use nix::errno::Errno;

#[derive(Debug, thiserror::Error)]
pub enum SysError {
    #[error("tracee {0} died")]
    TraceeDied(Pid),
    #[error("failed to {op} (task {pid}): {errno}")]
    Task { op: &'static str, pid: Pid, errno: Errno },
    #[error("failed to {op}: {errno}")]
    Os { op: &'static str, errno: Errno },
    #[error("timed out after {secs:.1}s waiting for {what} of task {pid}")]
    Timeout { what: &'static str, pid: Pid, secs: f64 },
    #[error("task {pid}: unexpected stop while waiting for {what}: {stop}")]
    UnexpectedStop { pid: Pid, what: &'static str, stop: String },
}

impl SysError {
    pub fn errno(&self) -> Option<Errno> {
        match self {
            SysError::Task { errno, .. } | SysError::Os { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, SysError>;

/// Maps an errno from an operation on task `pid`: ESRCH means the task is gone.
pub(crate) fn task_err(op: &'static str, pid: Pid) -> impl FnOnce(Errno) -> SysError {
    move |errno| {
        if errno == Errno::ESRCH { SysError::TraceeDied(pid) } else { SysError::Task { op, pid, errno } }
    }
}

pub(crate) fn os_err(op: &'static str) -> impl FnOnce(Errno) -> SysError {
    move |errno| SysError::Os { op, errno }
}

/// Raw `syscall(2)` returning the kernel's value or errno.
pub(crate) fn check(ret: libc::c_long) -> std::result::Result<libc::c_long, Errno> {
    if ret < 0 { Err(Errno::last()) } else { Ok(ret) }
}

pub const PAGE_SIZE: u64 = 4096;

pub fn page_align_up(v: u64) -> u64 {
    (v + PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

/// Takes ownership of a descriptor the kernel just returned to us.
pub fn owned_fd(fd: std::os::fd::RawFd) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: callers pass a descriptor fresh from a successful syscall, owned by
    // nobody else.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}

/// Whether `fd` becomes readable within `timeout_ms` (EINTR counts as not yet).
pub fn poll_readable(fd: std::os::fd::RawFd, timeout_ms: i32) -> std::result::Result<bool, Errno> {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd for the duration of the call.
    let r = unsafe { libc::poll(&mut p, 1, timeout_ms) };
    if r < 0 {
        let e = Errno::last();
        return if e == Errno::EINTR { Ok(false) } else { Err(e) };
    }
    Ok(r > 0)
}

/// Waits (`timeout_ms` -1: without end) until one of `fds` is readable;
/// returns, for each, whether it is (all false on EINTR or timeout).
pub fn poll_readable_many(fds: &[std::os::fd::RawFd], timeout_ms: i32) -> std::result::Result<Vec<bool>, Errno> {
    let mut p: Vec<libc::pollfd> =
        fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    // SAFETY: `p` is a valid array of pollfds for the duration of the call.
    let r = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) };
    if r < 0 {
        let e = Errno::last();
        return if e == Errno::EINTR { Ok(vec![false; fds.len()]) } else { Err(e) };
    }
    Ok(p.iter().map(|p| p.revents != 0).collect())
}

/// Whether this process has descriptor `fd` open.
pub fn fd_is_open(fd: std::os::fd::RawFd) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Borrows a descriptor this process holds open for the whole call (stdio, or an
/// fd the user passed with --inherit-fd and that rckpt never closes).
pub fn borrowed(fd: std::os::fd::RawFd) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: callers only pass descriptors that stay open while the borrow is used.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

/// Closes every descriptor from `first` up (close_range, Linux 5.9).
pub fn close_from(first: u32) {
    // SAFETY: closing descriptors invalidates no memory; the caller owns them.
    unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0) };
}

/// Starts writing back [off, off+len) of a file without waiting for it
/// (sync_file_range SYNC_FILE_RANGE_WRITE); a later fsync has less to do.
pub fn start_writeback(fd: std::os::fd::BorrowedFd<'_>, off: u64, len: u64) {
    // SAFETY: integers only; a failure just leaves the work to fsync.
    unsafe {
        libc::sync_file_range(std::os::fd::AsRawFd::as_raw_fd(&fd), off as i64, len as i64, libc::SYNC_FILE_RANGE_WRITE)
    };
}

/// Points stdin, stdout and stderr at /dev/null (a daemon's).
pub fn stdio_to_null() {
    if let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard descriptors, which this process owns.
            unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), fd) };
        }
    }
}
