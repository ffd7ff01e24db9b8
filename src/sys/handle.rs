//! File handles (name_to_handle_at's output, as inotify's fdinfo shows them) back
//! to paths: open_by_handle_at on a mount of the same device (needs
//! CAP_DAC_READ_SEARCH), then the path of the opened file.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;

use super::{Result, SysError};

fn mount_of(dev: u64) -> Option<String> {
    let (maj, min) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(2)? == &format!("{maj}:{min}")).then(|| f.get(4).map(|s| s.to_string()))?
    })
}

/// The path of the file with handle (`kind`, `bytes`) on device `dev`.
pub fn path_of(dev: u64, kind: i32, bytes: &[u8]) -> Result<String> {
    let mnt = mount_of(dev).ok_or(SysError::Os { op: "find the mount of a file handle", errno: Errno::ENODEV })?;
    let mfd: OwnedFd = std::fs::File::open(&mnt)
        .map_err(|e| SysError::Os {
            op: "open a mount",
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?
        .into();
    let mut h = Vec::with_capacity(8 + bytes.len());
    h.extend_from_slice(&(bytes.len() as u32).to_ne_bytes());
    h.extend_from_slice(&kind.to_ne_bytes());
    h.extend_from_slice(bytes);
    // SAFETY: h is a complete struct file_handle (header and handle bytes).
    let fd = unsafe {
        libc::syscall(libc::SYS_open_by_handle_at, mfd.as_raw_fd(), h.as_ptr(), libc::O_PATH | libc::O_CLOEXEC)
    };
    if fd < 0 {
        return Err(SysError::Os { op: "open a file handle", errno: Errno::last() });
    }
    let fd = super::owned_fd(fd as i32);
    let p = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(|e| SysError::Os {
        op: "read a path",
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })?;
    Ok(p.to_string_lossy().into_owned())
}
