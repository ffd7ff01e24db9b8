//! Socket calls on descriptors rckpt holds (its own, or a tree task's taken with
//! pidfd_getfd) that nix does not cover.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

use super::{Result, SysError};

fn err(op: &'static str) -> impl FnOnce(Errno) -> SysError {
    move |errno| SysError::Os { op, errno }
}

pub fn getsockopt_int(fd: BorrowedFd<'_>, level: i32, opt: i32) -> Result<i32> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: v and len are valid out-pointers of the sizes given.
    let r = unsafe { libc::getsockopt(fd.as_raw_fd(), level, opt, (&raw mut v).cast(), &mut len) };
    if r < 0 {
        return Err(err("read a socket option")(Errno::last()));
    }
    Ok(v)
}

pub fn setsockopt_int(fd: BorrowedFd<'_>, level: i32, opt: i32, v: i32) -> Result<()> {
    // SAFETY: v is a live int of the size given.
    let r = unsafe {
        libc::setsockopt(fd.as_raw_fd(), level, opt, (&raw const v).cast(), std::mem::size_of::<libc::c_int>() as u32)
    };
    if r < 0 {
        return Err(err("set a socket option")(Errno::last()));
    }
    Ok(())
}

/// getsockopt of a struct option into `buf`; returns the length the kernel wrote.
pub fn getsockopt_raw(fd: BorrowedFd<'_>, level: i32, opt: i32, buf: &mut [u8]) -> Result<usize> {
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: buf and len describe a live buffer.
    let r = unsafe { libc::getsockopt(fd.as_raw_fd(), level, opt, buf.as_mut_ptr().cast(), &mut len) };
    if r < 0 {
        return Err(err("read a socket option")(Errno::last()));
    }
    Ok(len as usize)
}

pub fn setsockopt_raw(fd: BorrowedFd<'_>, level: i32, opt: i32, buf: &[u8]) -> Result<()> {
    // SAFETY: buf describes a live buffer of its length.
    let r = unsafe { libc::setsockopt(fd.as_raw_fd(), level, opt, buf.as_ptr().cast(), buf.len() as u32) };
    if r < 0 {
        return Err(err("set a socket option")(Errno::last()));
    }
    Ok(())
}

/// The raw address (sockaddr bytes) of the socket itself or of its peer.
pub fn name(fd: BorrowedFd<'_>, peer: bool) -> Result<Vec<u8>> {
    let mut buf = [0u8; 128];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: buf and len describe a live buffer of sockaddr_storage size.
    let r = unsafe {
        if peer {
            libc::getpeername(fd.as_raw_fd(), buf.as_mut_ptr().cast(), &mut len)
        } else {
            libc::getsockname(fd.as_raw_fd(), buf.as_mut_ptr().cast(), &mut len)
        }
    };
    if r < 0 {
        return Err(err("read a socket address")(Errno::last()));
    }
    Ok(buf[..(len as usize).min(buf.len())].to_vec())
}

/// Binds or connects to a raw sockaddr.
pub fn bind_raw(fd: BorrowedFd<'_>, addr: &[u8], connect: bool) -> Result<()> {
    // SAFETY: addr is a complete sockaddr of its length.
    let r = unsafe {
        if connect {
            libc::connect(fd.as_raw_fd(), addr.as_ptr().cast(), addr.len() as u32)
        } else {
            libc::bind(fd.as_raw_fd(), addr.as_ptr().cast(), addr.len() as u32)
        }
    };
    if r < 0 {
        return Err(err(if connect { "connect a socket" } else { "bind a socket" })(Errno::last()));
    }
    Ok(())
}

/// recv with MSG_PEEK|MSG_DONTWAIT (and MSG_TRUNC to learn a datagram's real
/// length): Ok(None) when the queue is empty.
pub fn peek(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<Option<usize>> {
    // SAFETY: buf describes a live buffer.
    let r = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT | libc::MSG_TRUNC,
        )
    };
    if r < 0 {
        let e = Errno::last();
        return if e == Errno::EAGAIN { Ok(None) } else { Err(err("peek at a socket queue")(e)) };
    }
    Ok(Some(r as usize))
}

/// An ioctl returning an int through its argument (SIOCINQ, SIOCOUTQ, SIOCOUTQNSD).
pub fn ioctl_int(fd: BorrowedFd<'_>, req: libc::c_ulong) -> Result<i32> {
    let mut v: libc::c_int = 0;
    // SAFETY: these requests write one int through the pointer, which is live.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req, &mut v) };
    if r < 0 {
        return Err(err("read a socket queue length")(Errno::last()));
    }
    Ok(v)
}

/// recv with MSG_PEEK|MSG_DONTWAIT into `buf` of a stream socket: the bytes
/// copied (0 when nothing is queued). No MSG_TRUNC: on TCP it discards instead
/// of copying.
pub fn peek_stream(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize> {
    // SAFETY: buf describes a live buffer.
    let r =
        unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_PEEK | libc::MSG_DONTWAIT) };
    if r < 0 {
        let e = Errno::last();
        return if e == Errno::EAGAIN { Ok(0) } else { Err(err("peek at a socket queue")(e)) };
    }
    Ok(r as usize)
}

/// send with MSG_DONTWAIT|MSG_NOSIGNAL: the bytes taken, or the errno.
pub fn send_nowait(fd: BorrowedFd<'_>, buf: &[u8]) -> std::result::Result<usize, Errno> {
    // SAFETY: buf describes a live buffer.
    let r =
        unsafe { libc::send(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if r < 0 { Err(Errno::last()) } else { Ok(r as usize) }
}
