//! Creating the anonymous-inode files rckpt restores, and locks on descriptions.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;

use super::{Result, SysError, check, owned_fd};

fn made(op: &'static str, r: libc::c_long) -> Result<OwnedFd> {
    let fd = check(r).map_err(|errno| SysError::Os { op, errno })?;
    Ok(owned_fd(fd as i32))
}

pub fn eventfd(init: u32, flags: i32) -> Result<OwnedFd> {
    // SAFETY: integers in, a new descriptor out.
    made("create an eventfd", unsafe { libc::syscall(libc::SYS_eventfd2, init, flags) })
}

pub fn signalfd(mask: u64) -> Result<OwnedFd> {
    // SAFETY: the mask is a live kernel sigset (8 bytes) for the call.
    made("create a signalfd", unsafe { libc::syscall(libc::SYS_signalfd4, -1, &raw const mask, 8, libc::SFD_CLOEXEC) })
}

/// A timerfd of `clock` firing in `value_ns`, then every `interval_ns`.
/// A timerfd armed to fire in `value_ns`, then every `interval_ns`, with `ticks`
/// expirations not read yet (TFD_IOC_SET_TICKS).
pub fn timerfd(clock: i32, interval_ns: u64, value_ns: u64, ticks: u64) -> Result<OwnedFd> {
    // SAFETY: integers in, a new descriptor out.
    let fd = made("create a timerfd", unsafe { libc::syscall(libc::SYS_timerfd_create, clock, libc::TFD_CLOEXEC) })?;
    let ts = |ns: u64| libc::timespec { tv_sec: (ns / 1_000_000_000) as i64, tv_nsec: (ns % 1_000_000_000) as i64 };
    // A periodic timer read at the instant it fired shows no time left: it is
    // armed all the same, and fires at once.
    let value_ns = if value_ns == 0 && interval_ns != 0 { 1 } else { value_ns };
    let spec = libc::itimerspec { it_interval: ts(interval_ns), it_value: ts(value_ns) };
    if value_ns != 0 {
        // SAFETY: spec is a live itimerspec; no old value is asked for.
        check(unsafe { libc::syscall(libc::SYS_timerfd_settime, fd.as_raw_fd(), 0, &raw const spec, 0) })
            .map_err(|errno| SysError::Os { op: "arm a timerfd", errno })?;
    }
    if ticks != 0 {
        // _IOW('T', 0, u64)
        const TFD_IOC_SET_TICKS: u64 = 0x4008_5400;
        // SAFETY: the ioctl reads one u64 from a live local.
        check(unsafe { libc::ioctl(fd.as_raw_fd(), TFD_IOC_SET_TICKS as _, &raw const ticks) } as i64)
            .map_err(|errno| SysError::Os { op: "set a timerfd's expirations", errno })?;
    }
    Ok(fd)
}

pub fn inotify() -> Result<OwnedFd> {
    // SAFETY: integers in, a new descriptor out.
    made("create an inotify", unsafe { libc::syscall(libc::SYS_inotify_init1, libc::IN_CLOEXEC | libc::IN_NONBLOCK) })
}

/// Adds a watch that gets watch descriptor `wd`: inotify hands them out in
/// increasing order (idr_alloc_cyclic), so a placeholder watch is added and
/// removed until the next one is `wd`.
pub fn inotify_watch_at(fd: &OwnedFd, wd: i32, path: &str, mask: u32) -> std::result::Result<(), String> {
    let c = CString::new(path).map_err(|e| e.to_string())?;
    let root = c"/";
    loop {
        // SAFETY: a NUL-terminated path and integers.
        let next = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), root.as_ptr(), libc::IN_ATTRIB) };
        if next < 0 {
            return Err(Errno::last().to_string());
        }
        // SAFETY: removes the placeholder just added.
        unsafe { libc::inotify_rm_watch(fd.as_raw_fd(), next) };
        if next + 1 >= wd {
            break;
        }
    }
    // SAFETY: a NUL-terminated path and integers.
    let got = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), mask) };
    if got < 0 {
        return Err(Errno::last().to_string());
    }
    if got != wd {
        return Err(format!("got watch {got}"));
    }
    Ok(())
}

pub fn epoll() -> Result<OwnedFd> {
    // SAFETY: integers in, a new descriptor out.
    made("create an epoll", unsafe { libc::syscall(libc::SYS_epoll_create1, libc::EPOLL_CLOEXEC) })
}

pub fn memfd(name: &str) -> Result<OwnedFd> {
    let c = CString::new(name).map_err(|_| SysError::Os { op: "name a memfd", errno: Errno::EINVAL })?;
    // SAFETY: a NUL-terminated name and integers.
    made("create a memfd", unsafe {
        libc::syscall(libc::SYS_memfd_create, c.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
    })
}

/// Shared anonymous memory of `size` bytes, as a file: mapped by fd, it is the
/// same kind of object ("/dev/zero (deleted)") as MAP_SHARED|MAP_ANONYMOUS
/// memory. Opening /proc/self/map_files needs CAP_CHECKPOINT_RESTORE (Linux
/// 5.9) or CAP_SYS_ADMIN.
pub fn shared_anon(size: u64) -> Result<OwnedFd> {
    use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous, munmap};
    let len = std::num::NonZeroUsize::new(size as usize)
        .ok_or(SysError::Os { op: "map shared memory of size 0", errno: Errno::EINVAL })?;
    // SAFETY: a fresh mapping nobody else knows of, unmapped before returning.
    let p = unsafe { mmap_anonymous(None, len, ProtFlags::PROT_READ | ProtFlags::PROT_WRITE, MapFlags::MAP_SHARED) }
        .map_err(|errno| SysError::Os { op: "map shared memory", errno })?;
    let start = p.as_ptr() as usize;
    let path = format!("/proc/self/map_files/{:x}-{:x}", start, start + len.get());
    let f = std::fs::OpenOptions::new().read(true).write(true).open(&path);
    // SAFETY: unmaps only the mapping made above.
    let _ = unsafe { munmap(p, len.get()) };
    f.map(OwnedFd::from).map_err(|e| SysError::Os {
        op: "open shared memory through /proc/self/map_files",
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })
}

/// An open-file-description lock (F_OFD_SETLK) on [start, start+len).
pub fn ofd_lock(fd: BorrowedFd<'_>, write: bool, start: u64, len: u64) -> std::result::Result<(), Errno> {
    // SAFETY: a zeroed flock is valid; the fields set are plain integers.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = if write { libc::F_WRLCK } else { libc::F_RDLCK } as i16;
    fl.l_whence = libc::SEEK_SET as i16;
    fl.l_start = start as i64;
    fl.l_len = len as i64;
    // SAFETY: fl is a live struct flock.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &mut fl) };
    if r < 0 { Err(Errno::last()) } else { Ok(()) }
}
