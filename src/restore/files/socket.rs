//! Sockets made again: a pair for two connected unix sockets of the tree, each
//! end's receive queue refilled by sending through the other, message by
//! message; bound and listening sockets by name or address; shutdown state and
//! options. Established TCP connections: tcp.rs.

use std::os::fd::{AsFd, OwnedFd};

use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType as NixType, socket, socketpair};
use rckpt_images::files::{FileDesc, FileKind, InetSocket, SockType, UnixSocket};

use super::kinds::{Makers, sys};
use crate::restore::{RestoreError, Result};
use crate::sys::sock;

fn nix_type(t: SockType) -> NixType {
    match t {
        SockType::Stream => NixType::Stream,
        SockType::Dgram => NixType::Datagram,
        SockType::SeqPacket => NixType::SeqPacket,
    }
}

fn sockaddr_un(name: &[u8]) -> Vec<u8> {
    let mut a = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
    a.extend_from_slice(name);
    if name.first() != Some(&0) && name.last() != Some(&0) {
        a.push(0);
    }
    a
}

/// Sends `queue` (messages for the peer's receive queue) through `from`.
fn refill(from: &OwnedFd, queue: &[Vec<u8>]) -> Result<()> {
    for m in queue {
        let mut done = 0;
        while done < m.len() || (m.is_empty() && done == 0) {
            let n = nix::sys::socket::send(
                std::os::fd::AsRawFd::as_raw_fd(from),
                &m[done..],
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
            )
            .map_err(sys("refill a socket queue"))?;
            done += n;
            if m.is_empty() {
                break;
            }
        }
    }
    Ok(())
}

/// Options and state that are the socket's own, after it is made.
fn finish_unix(fd: &OwnedFd, u: &UnixSocket, flags: u32) -> Result<()> {
    let f = fd.as_fd();
    if u.passcred {
        sock::setsockopt_int(f, libc::SOL_SOCKET, libc::SO_PASSCRED, 1)?;
    }
    if u.peek_off >= 0 {
        sock::setsockopt_int(f, libc::SOL_SOCKET, libc::SO_PEEK_OFF, u.peek_off)?;
    }
    let how = match u.shutdown & 3 {
        1 => Some(nix::sys::socket::Shutdown::Read),
        2 => Some(nix::sys::socket::Shutdown::Write),
        3 => Some(nix::sys::socket::Shutdown::Both),
        _ => None,
    };
    if let Some(h) = how {
        nix::sys::socket::shutdown(std::os::fd::AsRawFd::as_raw_fd(fd), h).map_err(sys("shut a socket down"))?;
    }
    super::kinds::set_flags(fd, flags)
}

/// Binds to a path name, removing a stale socket file left by the dumped tree.
fn bind_name(fd: &OwnedFd, name: &[u8]) -> Result<()> {
    if name.first() != Some(&0) {
        let path = String::from_utf8_lossy(name.split(|b| *b == 0).next().unwrap_or(name)).into_owned();
        if let Ok(md) = std::fs::symlink_metadata(&path) {
            use std::os::unix::fs::FileTypeExt;
            // Only a socket file nobody listens on any more (a live datagram or
            // seqpacket socket refuses a stream connect with EPROTOTYPE: kept).
            let stale = || {
                std::os::unix::net::UnixStream::connect(&path)
                    .is_err_and(|e| e.raw_os_error() == Some(libc::ECONNREFUSED))
            };
            if md.file_type().is_socket() && stale() {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    sock::bind_raw(fd.as_fd(), &sockaddr_un(name), false).map_err(|e| {
        RestoreError::Mismatch(format!("cannot bind a unix socket to {:?} again: {e}", String::from_utf8_lossy(name)))
    })
}

pub fn unix(m: &mut Makers<'_>, d: &FileDesc) -> Result<OwnedFd> {
    let FileKind::Unix(u) = &d.kind else { unreachable!() };
    if let Some(fd) = m.pending.remove(&d.id) {
        return Ok(fd);
    }
    let t = nix_type(u.stype);
    let fd: OwnedFd = match u.peer {
        Some(peer) => {
            let (a, b) = socketpair(AddressFamily::Unix, t, None, SockFlag::SOCK_CLOEXEC)
                .map_err(sys("create a socket pair"))?;
            let FileKind::Unix(pu) = &m.image.files[peer as usize].kind else { unreachable!("validated") };
            // Each end's queue is what the other end sent.
            refill(&b, &u.queue)?;
            refill(&a, &pu.queue)?;
            for (fd, s) in [(&a, u), (&b, pu)] {
                if let Some(n) = &s.name {
                    // An accepted connection shares its listener's name, which is
                    // bound already: the name is lost then.
                    let _ = sock::bind_raw(fd.as_fd(), &sockaddr_un(n), false);
                }
            }
            finish_unix(&b, pu, m.image.files[peer as usize].flags)?;
            m.pending.insert(peer, b);
            a
        }
        None => {
            let fd =
                socket(AddressFamily::Unix, t, SockFlag::SOCK_CLOEXEC, None).map_err(sys("create a unix socket"))?;
            if let Some(n) = &u.name {
                bind_name(&fd, n)?;
            }
            if u.listening {
                nix::sys::socket::listen(
                    &fd,
                    nix::sys::socket::Backlog::new(u.backlog.min(65535) as i32)
                        .unwrap_or(nix::sys::socket::Backlog::MAXCONN),
                )
                .map_err(sys("listen on a unix socket"))?;
            }
            if let Some(p) = &u.peer_name {
                sock::bind_raw(fd.as_fd(), &sockaddr_un(p), true).map_err(|e| {
                    RestoreError::Mismatch(format!(
                        "cannot connect a unix socket to {:?} again: {e}",
                        String::from_utf8_lossy(p)
                    ))
                })?;
            }
            if !u.queue.is_empty() {
                // Messages that came from anywhere: sent again to its name.
                let Some(n) = &u.name else {
                    return Err(RestoreError::Invalid(format!(
                        "file {}: an unnamed, unconnected socket with a queue",
                        d.id
                    )));
                };
                let tmp = socket(AddressFamily::Unix, t, SockFlag::SOCK_CLOEXEC, None)
                    .map_err(sys("create a unix socket"))?;
                sock::bind_raw(tmp.as_fd(), &sockaddr_un(n), true)?;
                refill(&tmp, &u.queue)?;
            }
            fd
        }
    };
    finish_unix(&fd, u, d.flags)?;
    Ok(fd)
}

/// A raw sockaddr_in or sockaddr_in6.
pub(super) fn sockaddr_in(family: u16, addr: &[u8], port: u16) -> Vec<u8> {
    let mut a = family.to_ne_bytes().to_vec();
    a.extend_from_slice(&port.to_be_bytes());
    if family as i32 == libc::AF_INET {
        a.extend_from_slice(addr);
        a.extend_from_slice(&[0; 8]);
    } else {
        a.extend_from_slice(&[0; 4]);
        a.extend_from_slice(addr);
        a.extend_from_slice(&[0; 4]);
    }
    a
}

pub fn inet(m: &mut Makers<'_>, d: &FileDesc, s: &InetSocket) -> Result<OwnedFd> {
    if let Some(t) = &s.tcp {
        return super::tcp::make(m, d, s, t);
    }
    let family = if s.family as i32 == libc::AF_INET { AddressFamily::Inet } else { AddressFamily::Inet6 };
    let fd = socket(family, nix_type(s.stype), SockFlag::SOCK_CLOEXEC, None).map_err(sys("create a socket"))?;
    let f = fd.as_fd();
    sock::setsockopt_int(f, libc::SOL_SOCKET, libc::SO_REUSEADDR, s.reuseaddr as i32)?;
    sock::setsockopt_int(f, libc::SOL_SOCKET, libc::SO_REUSEPORT, s.reuseport as i32)?;
    if family == AddressFamily::Inet6 {
        sock::setsockopt_int(f, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, s.v6only as i32)?;
    }
    let mut forced_reuse = false;
    if s.port != 0 {
        let a = sockaddr_in(s.family, &s.addr, s.port);
        let mut r = sock::bind_raw(f, &a, false);
        // A connection accepted from this listener, made first (its fd came
        // first), holds the port already: it came after the listener in the
        // dumped tree, so bind and listen are let past it (both sockets with
        // SO_REUSEADDR) and the saved setting is put back.
        let repaired_on_port = || {
            m.image.files.iter().any(|o| matches!(&o.kind, FileKind::Inet(o) if o.tcp.is_some() && o.port == s.port))
        };
        if r.as_ref().is_err_and(|e| e.errno() == Some(nix::errno::Errno::EADDRINUSE))
            && !s.reuseaddr
            && repaired_on_port()
        {
            sock::setsockopt_int(f, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
            forced_reuse = true;
            r = sock::bind_raw(f, &a, false);
        }
        r.map_err(|e| RestoreError::Mismatch(format!("file {}: cannot bind port {} again: {e}", d.id, s.port)))?;
    }
    if s.listening {
        nix::sys::socket::listen(
            &fd,
            nix::sys::socket::Backlog::new(s.backlog.clamp(1, 65535) as i32)
                .unwrap_or(nix::sys::socket::Backlog::MAXCONN),
        )
        .map_err(sys("listen"))?;
    }
    if forced_reuse {
        sock::setsockopt_int(f, libc::SOL_SOCKET, libc::SO_REUSEADDR, 0)?;
    }
    super::kinds::set_flags(&fd, d.flags)?;
    Ok(fd)
}
