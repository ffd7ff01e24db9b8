//! Established TCP connections made again in repair mode, in libsoccr's
//! order: bind to the saved address, set both queues' sequence numbers, connect
//! (which in repair mode sends no SYN and makes the socket established), the
//! negotiated options and timestamp clock, then the receive queue, the part of
//! the send queue the peer was sent, and the windows.
//!
//! Every socket stays in repair mode until all the tree's files are made
//! (`finish`): the two ends of a connection inside the tree then both exist
//! before either sends anything, and a restore that fails before then closes
//! them in repair mode, without a word to any peer. `finish` takes them out
//! (the kernel sends a window probe) and sends the part of the send queue the
//! peer was never sent. Once the tree is released, `unlock` removes the
//! nftables rules the dump left for connections to peers outside the tree.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
use rckpt_images::files::{FileDesc, FileKind, FilesImage, InetSocket, TcpConn};

use super::kinds::{Makers, sys};
use super::socket::sockaddr_in;
use crate::restore::{RestoreError, Result};
use crate::sys::netfilter::{self, NetfilterError};
use crate::sys::{SysError, sock};

const TCP_NO_QUEUE: i32 = 0;
const TCP_RECV_QUEUE: i32 = 1;
const TCP_SEND_QUEUE: i32 = 2;
const TCPOPT_MAXSEG: u32 = 2;
const TCPOPT_WINDOW: u32 = 3;
const TCPOPT_SACK_PERM: u32 = 4;
const TCPOPT_TIMESTAMP: u32 = 8;
/// The range TCP_MAXSEG accepts.
const TCP_MIN_MSS: u32 = 88;
const MAX_TCP_WINDOW: u32 = 32767;

/// A connection made in repair mode, waiting for `finish`.
pub(super) struct Pending {
    fd: OwnedFd,
    id: u32,
    reuseaddr: bool,
    /// The end of the send queue that was never sent.
    unsent: Vec<u8>,
    sndbuf: u32,
}

fn mismatch(id: u32, what: &str, e: impl std::fmt::Display) -> RestoreError {
    RestoreError::Mismatch(format!("file {id}: TCP connection: cannot {what}: {e}"))
}

fn set(f: BorrowedFd<'_>, opt: i32, v: i32) -> crate::sys::Result<()> {
    sock::setsockopt_int(f, libc::SOL_TCP, opt, v)
}

pub(super) fn make(m: &mut Makers<'_>, d: &FileDesc, s: &InetSocket, t: &TcpConn) -> Result<OwnedFd> {
    let id = d.id;
    if t.locked && !netfilter::available() {
        return Err(RestoreError::Mismatch(format!(
            "file {id}: the dump blocked this TCP connection with an nftables rule, and the nft binary (package nftables) that removes it is not installed"
        )));
    }
    let family = if s.family as i32 == libc::AF_INET { AddressFamily::Inet } else { AddressFamily::Inet6 };
    let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).map_err(sys("create a socket"))?;
    let f = fd.as_fd();
    set(f, libc::TCP_REPAIR, 1).map_err(|e| match e.errno() {
        Some(Errno::EPERM) => RestoreError::Privilege("TCP repair mode needs CAP_NET_ADMIN".into()),
        _ => e.into(),
    })?;
    sock::setsockopt_int(f, libc::SOL_SOCKET, libc::SO_REUSEPORT, s.reuseport as i32)?;
    if family == AddressFamily::Inet6 {
        sock::setsockopt_int(f, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, s.v6only as i32)?;
    }
    // Repair mode binds past other sockets on the port (the listener that
    // accepted this connection).
    sock::bind_raw(f, &sockaddr_in(s.family, &s.addr, s.port), false)
        .map_err(|e| mismatch(id, &format!("bind port {} again", s.port), e))?;
    // Each queue starts where its saved bytes start; refilling moves it on.
    let (recv, send) = (&t.recv_queue, &t.send_queue);
    set(f, libc::TCP_REPAIR_QUEUE, TCP_RECV_QUEUE)?;
    set(f, libc::TCP_QUEUE_SEQ, t.rcv_seq.wrapping_sub(recv.len() as u32) as i32)?;
    set(f, libc::TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)?;
    set(f, libc::TCP_QUEUE_SEQ, t.snd_seq.wrapping_sub(send.len() as u32) as i32)?;
    // connect() sizes its segments (mss_cache) with the MSS clamp it has then:
    // the saved one, given as TCP_MAXSEG (capped by the kernel's limit), not
    // the default 536 (TCP_REPAIR_OPTIONS later sets the clamp alone).
    set(f, libc::TCP_MAXSEG, t.mss.clamp(TCP_MIN_MSS, MAX_TCP_WINDOW) as i32)?;
    sock::bind_raw(f, &sockaddr_in(s.family, &t.peer_addr, t.peer_port), true)
        .map_err(|e| mismatch(id, "connect to its peer again", e))?;
    set(f, libc::TCP_MAXSEG, 0)?;
    // Options only before any data is queued (the kernel refuses them later).
    let mut opts: Vec<[u32; 2]> = Vec::new();
    if t.sack {
        opts.push([TCPOPT_SACK_PERM, 0]);
    }
    if t.wscale {
        opts.push([TCPOPT_WINDOW, t.snd_wscale as u32 | (t.rcv_wscale as u32) << 16]);
    }
    if t.timestamps {
        opts.push([TCPOPT_TIMESTAMP, 0]);
    }
    opts.push([TCPOPT_MAXSEG, t.mss]);
    let raw: Vec<u8> = opts.iter().flatten().flat_map(|v| v.to_ne_bytes()).collect();
    sock::setsockopt_raw(f, libc::SOL_TCP, libc::TCP_REPAIR_OPTIONS, &raw)
        .map_err(|e| mismatch(id, "set its negotiated options", e))?;
    if t.timestamps {
        set(f, libc::TCP_TIMESTAMP, t.ts_val as i32)?;
    }
    // In repair mode, a send to the receive queue lands there as received,
    // and one to the send queue counts as sent, not acknowledged.
    set(f, libc::TCP_REPAIR_QUEUE, TCP_RECV_QUEUE)?;
    fill(f, recv, Buf::Recv, t.rcvbuf).map_err(|e| mismatch(id, "refill its receive queue", e))?;
    let sent = send.len() - t.unsent as usize;
    set(f, libc::TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)?;
    fill(f, &send[..sent], Buf::Send, t.sndbuf).map_err(|e| mismatch(id, "refill its send queue", e))?;
    let w: Vec<u8> = t.window.iter().flat_map(|v| v.to_ne_bytes()).collect();
    sock::setsockopt_raw(f, libc::SOL_TCP, libc::TCP_REPAIR_WINDOW, &w)
        .map_err(|e| mismatch(id, "set its windows", e))?;
    set(f, libc::TCP_REPAIR_QUEUE, TCP_NO_QUEUE)?;
    super::kinds::set_flags(&fd, d.flags)?;
    let keep = fd.try_clone().map_err(|e| mismatch(id, "duplicate the socket", e))?;
    m.tcp.push(Pending { fd: keep, id, reuseaddr: s.reuseaddr, unsent: send[sent..].to_vec(), sndbuf: t.sndbuf });
    Ok(fd)
}

/// Takes every connection out of repair mode, now that both ends of each
/// connection inside the tree exist, and queues the data never sent.
pub(super) fn finish(pending: Vec<Pending>) -> Result<()> {
    for p in pending {
        let f = p.fd.as_fd();
        // TCP_REPAIR_OFF sends a window probe: the peer learns our window now.
        set(f, libc::TCP_REPAIR, 0)?;
        // Leaving repair mode clears SO_REUSEADDR.
        sock::setsockopt_int(f, libc::SOL_SOCKET, libc::SO_REUSEADDR, p.reuseaddr as i32)?;
        fill(f, &p.unsent, Buf::Send, p.sndbuf).map_err(|e| mismatch(p.id, "queue its unsent data", e))?;
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Buf {
    Send,
    Recv,
}

/// Sends all of `data` without blocking (to the queue TCP_REPAIR_QUEUE names,
/// in repair mode). A full buffer (EAGAIN; ENOMEM for the receive queue) is
/// raised towards the saved size and beyond with SO_*BUFFORCE, as the data did
/// fit in the dumped socket; smaller pieces also help the receive queue, whose
/// repair-mode send allocates one buffer per call.
fn fill(f: BorrowedFd<'_>, data: &[u8], buf: Buf, saved: u32) -> crate::sys::Result<()> {
    let (get, force) = match buf {
        Buf::Send => (libc::SO_SNDBUF, libc::SO_SNDBUFFORCE),
        Buf::Recv => (libc::SO_RCVBUF, libc::SO_RCVBUFFORCE),
    };
    let mut done = 0;
    let mut chunk = 256 << 10;
    let mut raised = 0;
    while done < data.len() {
        let n = chunk.min(data.len() - done);
        match sock::send_nowait(f, &data[done..done + n]) {
            Ok(k) if k > 0 => done += k,
            Ok(_) | Err(Errno::EAGAIN | Errno::ENOMEM) if raised < 24 => {
                raised += 1;
                chunk = (chunk / 2).max(4096);
                let cur = sock::getsockopt_int(f, libc::SOL_SOCKET, get)? as u64;
                let want = (cur * 2).max(saved as u64).min(1 << 30);
                // The kernel doubles the value given.
                sock::setsockopt_int(f, libc::SOL_SOCKET, force, (want / 2) as i32)?;
            }
            Ok(_) => return Err(SysError::Os { op: "fill a TCP queue", errno: Errno::ENOBUFS }),
            Err(errno) => return Err(SysError::Os { op: "fill a TCP queue", errno }),
        }
    }
    Ok(())
}

/// Removes the nftables rules the dump left for the image's connections to
/// peers outside the tree: called once the restored tree runs.
pub fn unlock(image: &FilesImage) -> std::result::Result<(), NetfilterError> {
    let conns: Vec<netfilter::Conn> = image
        .files
        .iter()
        .filter_map(|f| match &f.kind {
            FileKind::Inet(s) => s.tcp.as_ref().filter(|t| t.locked).map(|t| netfilter::Conn {
                local: s.addr.clone(),
                local_port: s.port,
                peer: t.peer_addr.clone(),
                peer_port: t.peer_port,
            }),
            _ => None,
        })
        .collect();
    netfilter::unlock(&conns)
}
