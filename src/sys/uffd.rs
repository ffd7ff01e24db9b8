//! userfaultfd write-protect in asynchronous mode, as a write tracker: with
//! UFFD_FEATURE_WP_ASYNC the kernel resolves a write to a protected page by
//! itself (no thread waits on the fd), and PAGEMAP_SCAN reports the page
//! PAGE_IS_WRITTEN from then on. The uffd is made inside the task (it binds to
//! the caller's mm); these ioctls work on it from any process holding it.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

use super::{Result, SysError, check};

/// userfaultfd(2) flags: only faults from user mode (no privilege needed).
pub const USER_MODE_ONLY: u64 = 1;
pub const O_CLOEXEC: u64 = libc::O_CLOEXEC as u64;
pub const O_NONBLOCK: u64 = libc::O_NONBLOCK as u64;

const UFFDIO_API: u64 = 0xc018_aa3f;
const UFFDIO_REGISTER: u64 = 0xc020_aa00;
const UFFDIO_WRITEPROTECT: u64 = 0xc018_aa06;
const UFFD_API: u64 = 0xaa;
const FEATURE_WP_UNPOPULATED: u64 = 1 << 13;
const FEATURE_WP_ASYNC: u64 = 1 << 15;
const REGISTER_MODE_WP: u64 = 2;
const WRITEPROTECT_MODE_WP: u64 = 1;

fn ioctl(fd: BorrowedFd<'_>, op: &'static str, req: u64, arg: *mut u64) -> Result<()> {
    // SAFETY: each request reads and writes the struct `arg` points to, which
    // the caller sized for it.
    check(unsafe { libc::syscall(libc::SYS_ioctl, fd.as_raw_fd(), req, arg) })
        .map(|_| ())
        .map_err(|errno| SysError::Os { op, errno })
}

/// The handshake: asynchronous write-protect, unpopulated pages included.
pub fn enable_wp_async(fd: BorrowedFd<'_>) -> Result<()> {
    let mut api = [UFFD_API, FEATURE_WP_ASYNC | FEATURE_WP_UNPOPULATED, 0];
    ioctl(fd, "enable userfaultfd write tracking", UFFDIO_API, api.as_mut_ptr())
}

/// Registers [start, start+len) for write-protect and protects it: from now
/// on a write shows as PAGE_IS_WRITTEN. EINVAL: a VMA that cannot be tracked.
pub fn track(fd: BorrowedFd<'_>, start: u64, len: u64) -> std::result::Result<(), Errno> {
    // struct uffdio_register { range { start, len }, mode, ioctls }
    let mut reg = [start, len, REGISTER_MODE_WP, 0];
    ioctl(fd, "register for write tracking", UFFDIO_REGISTER, reg.as_mut_ptr()).map_err(errno_of)?;
    // struct uffdio_writeprotect { range { start, len }, mode }
    let mut wp = [start, len, WRITEPROTECT_MODE_WP];
    ioctl(fd, "write-protect", UFFDIO_WRITEPROTECT, wp.as_mut_ptr()).map_err(errno_of)
}

fn errno_of(e: SysError) -> Errno {
    match e {
        SysError::Os { errno, .. } => errno,
        _ => Errno::EIO,
    }
}

/// Whether this kernel tracks writes so (for `rckpt check`): a uffd of rckpt's
/// own accepts the asynchronous write-protect handshake.
pub fn supported() -> bool {
    // SAFETY: integers in, a new descriptor out (closed below).
    let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, (USER_MODE_ONLY | O_CLOEXEC) as i64) };
    if fd < 0 {
        return false;
    }
    let fd = super::owned_fd(fd as i32);
    enable_wp_async(std::os::fd::AsFd::as_fd(&fd)).is_ok()
}
