//! Namespaces: which ones a task has, entering them, making fresh ones, and
//! the few calls that need raw syscalls.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sched::CloneFlags;

use super::{Pid, Result, SysError};

/// The identity (inode) of each namespace of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NsIds {
    pub pid: u64,
    pub net: u64,
    pub uts: u64,
    pub ipc: u64,
    pub mnt: u64,
    pub user: u64,
    pub cgroup: u64,
}

fn ns_ino(base: &Path, name: &str) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let p = base.join("ns").join(name);
    std::fs::metadata(&p).map(|m| m.ino()).map_err(|e| SysError::Os {
        op: "read a namespace",
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })
}

/// The /proc directory of a live thread of `pid` (its leader may have exited,
/// and an exited leader has no namespaces left).
pub fn live_dir(pid: Pid) -> std::path::PathBuf {
    let own = std::path::PathBuf::from(format!("/proc/{pid}"));
    if own.join("ns/net").exists() {
        return own;
    }
    std::fs::read_dir(own.join("task"))
        .ok()
        .and_then(|d| d.flatten().map(|e| e.path()).find(|p| p.join("ns/net").exists()))
        .unwrap_or(own)
}

/// `pid` None: rckpt itself.
pub fn ids(pid: Option<Pid>) -> Result<NsIds> {
    let base = match pid {
        Some(p) => live_dir(p),
        None => std::path::PathBuf::from("/proc/self"),
    };
    Ok(NsIds {
        pid: ns_ino(&base, "pid")?,
        net: ns_ino(&base, "net")?,
        uts: ns_ino(&base, "uts")?,
        ipc: ns_ino(&base, "ipc")?,
        mnt: ns_ino(&base, "mnt")?,
        user: ns_ino(&base, "user")?,
        cgroup: ns_ino(&base, "cgroup")?,
    })
}

fn open_ns(pid: Pid, name: &str) -> Result<OwnedFd> {
    let p = live_dir(pid).join("ns").join(name);
    std::fs::File::open(&p).map(OwnedFd::from).map_err(|e| SysError::Os {
        op: "open a namespace",
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })
}

/// Enters `pid`'s namespaces of `kinds` (the PID namespace for children only).
pub fn enter(pid: Pid, kinds: &[(&str, CloneFlags)]) -> Result<()> {
    for (name, flag) in kinds {
        let fd = open_ns(pid, name)?;
        nix::sched::setns(fd.as_fd(), *flag).map_err(|errno| SysError::Os { op: "enter a namespace", errno })?;
    }
    Ok(())
}

/// Host and domain name in `pid`'s UTS namespace, read from a thread that
/// enters it (a UTS namespace is per thread).
pub fn uts_names(pid: Pid) -> Result<(String, String)> {
    let fd = open_ns(pid, "uts")?;
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(fd.as_fd(), CloneFlags::CLONE_NEWUTS)
                .map_err(|errno| SysError::Os { op: "enter a UTS namespace", errno })?;
            let u = nix::sys::utsname::uname().map_err(|errno| SysError::Os { op: "uname", errno })?;
            let dom = std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap_or_default();
            Ok((u.nodename().to_string_lossy().into_owned(), dom.trim_end().to_string()))
        })
        .join()
        .expect("the UTS reader does not panic")
    })
}

/// Makes fresh namespaces for rckpt itself (the PID one for its children).
pub fn unshare(flags: CloneFlags) -> Result<()> {
    nix::sched::unshare(flags).map_err(|errno| SysError::Os { op: "make namespaces", errno })
}

pub fn set_names(hostname: &str, domainname: &str) -> Result<()> {
    nix::unistd::sethostname(hostname).map_err(|errno| SysError::Os { op: "set the host name", errno })?;
    std::fs::write("/proc/sys/kernel/domainname", domainname).map_err(|e| SysError::Os {
        op: "set the domain name",
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })
}

/// Brings the loopback interface of the current network namespace up.
pub fn loopback_up() -> Result<()> {
    let s = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|errno| SysError::Os { op: "open a socket", errno })?;
    // SAFETY: a zeroed ifreq is valid; the name is NUL-terminated.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, b) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *b as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the live ifreq.
    unsafe {
        if libc::ioctl(s.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) < 0 {
            return Err(SysError::Os { op: "read the loopback's flags", errno: Errno::last() });
        }
        ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as i16;
        if libc::ioctl(s.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) < 0 {
            return Err(SysError::Os { op: "bring the loopback up", errno: Errno::last() });
        }
    }
    Ok(())
}

/// A private mount namespace with /proc showing the current PID namespace
/// (the caller must be in it, not only its children).
pub fn private_proc() -> Result<()> {
    use nix::mount::{MsFlags, mount};
    unshare(CloneFlags::CLONE_NEWNS)?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .map_err(|errno| SysError::Os { op: "make mounts private", errno })?;
    mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|errno| SysError::Os { op: "mount /proc", errno })
}

/// Forks (rckpt is single-threaded here). The child runs `f` and exits with
/// its code; the parent gets the child's pid.
pub fn fork_run(f: impl FnOnce() -> i32) -> Result<Pid> {
    // SAFETY: rckpt has no other thread at this point, so the child may run
    // ordinary code.
    match unsafe { nix::unistd::fork() }.map_err(|errno| SysError::Os { op: "fork", errno })? {
        nix::unistd::ForkResult::Child => {
            let code = f();
            // SAFETY: ends the child without running the parent's atexit state twice.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => Ok(child),
    }
}

/// A task's pid in each PID namespace it is in, outermost first (NSpid).
pub fn nspids(pid: Pid, tid: Pid) -> Option<Vec<i32>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).ok()?;
    let l = s.lines().find(|l| l.starts_with("NSpid:"))?;
    l["NSpid:".len()..].split_whitespace().map(|x| x.parse().ok()).collect()
}
