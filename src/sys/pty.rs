//! Pseudo-terminals: the pair, its slave reached from the master (TIOCGPTPEER,
//! no path lookup), and the settings rckpt saves and sets again.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use super::{Result, SysError, check, owned_fd};

const TCGETS2: u64 = 0x802c_542a;
const TCSETS2: u64 = 0x402c_542b;
const TIOCGWINSZ: u64 = 0x5413;
const TIOCSWINSZ: u64 = 0x5414;
const TIOCGPKT: u64 = 0x8004_5438;
const TIOCPKT: u64 = 0x5420;
const TIOCSPTLCK: u64 = 0x4004_5431;
const TIOCGPTPEER: u64 = 0x5441;
const FIONREAD: u64 = 0x541b;

/// Size of struct termios2 (images::files::PTY_TERMIOS_LEN).
pub const TERMIOS2_LEN: usize = 44;

fn ioctl(fd: BorrowedFd<'_>, op: &'static str, req: u64, arg: u64) -> Result<i64> {
    // SAFETY: each request here takes an integer or a pointer to a live local
    // buffer of the size the request names.
    check(unsafe { libc::syscall(libc::SYS_ioctl, fd.as_raw_fd(), req, arg) })
        .map_err(|errno| SysError::Os { op, errno })
}

/// A new pair: its master, unlocked.
pub fn open_pair() -> Result<OwnedFd> {
    let path = c"/dev/ptmx";
    // SAFETY: a NUL-terminated path and flags.
    let fd = check(unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) } as i64)
        .map_err(|errno| SysError::Os { op: "open /dev/ptmx", errno })?;
    let master = owned_fd(fd as i32);
    let zero: i32 = 0;
    ioctl(std::os::fd::AsFd::as_fd(&master), "unlock a pty", TIOCSPTLCK, &raw const zero as u64)?;
    Ok(master)
}

/// A new description of the slave of `master`, with `flags` (never becoming a
/// controlling terminal by being opened).
pub fn peer(master: BorrowedFd<'_>, flags: i32) -> Result<OwnedFd> {
    let fl = (flags & (libc::O_ACCMODE | libc::O_NONBLOCK)) | libc::O_NOCTTY | libc::O_CLOEXEC;
    let fd = ioctl(master, "open a pty's slave", TIOCGPTPEER, fl as u64)?;
    Ok(owned_fd(fd as i32))
}

pub fn termios(fd: BorrowedFd<'_>) -> Result<Vec<u8>> {
    let mut t = vec![0u8; TERMIOS2_LEN];
    ioctl(fd, "read terminal settings", TCGETS2, t.as_mut_ptr() as u64)?;
    Ok(t)
}

pub fn set_termios(fd: BorrowedFd<'_>, t: &[u8]) -> Result<()> {
    assert_eq!(t.len(), TERMIOS2_LEN, "validated");
    ioctl(fd, "set terminal settings", TCSETS2, t.as_ptr() as u64)?;
    Ok(())
}

pub fn winsize(fd: BorrowedFd<'_>) -> Result<[u16; 4]> {
    let mut w = [0u16; 4];
    ioctl(fd, "read a terminal's size", TIOCGWINSZ, w.as_mut_ptr() as u64)?;
    Ok(w)
}

pub fn set_winsize(fd: BorrowedFd<'_>, w: [u16; 4]) -> Result<()> {
    ioctl(fd, "set a terminal's size", TIOCSWINSZ, w.as_ptr() as u64)?;
    Ok(())
}

pub fn packet_mode(master: BorrowedFd<'_>) -> Result<bool> {
    let mut v: i32 = 0;
    ioctl(master, "read a pty's packet mode", TIOCGPKT, &raw mut v as u64)?;
    Ok(v != 0)
}

pub fn set_packet_mode(master: BorrowedFd<'_>, on: bool) -> Result<()> {
    let v: i32 = on as i32;
    ioctl(master, "set a pty's packet mode", TIOCPKT, &raw const v as u64)?;
    Ok(())
}

/// Bytes waiting to be read on this side.
pub fn pending(fd: BorrowedFd<'_>) -> Result<i32> {
    let mut v: i32 = 0;
    ioctl(fd, "count a terminal's unread bytes", FIONREAD, &raw mut v as u64)?;
    Ok(v)
}
