//! Established TCP connections (--tcp-established), read in TCP repair mode as
//! CRIU's libsoccr does (Linux 3.5; TCP_REPAIR_WINDOW 4.8). In repair mode the
//! sequence numbers, both queues and the negotiated options can be read (and at
//! restore set) without anything being sent, and a socket closed in repair mode
//! sends neither FIN nor RST.
//!
//! A socket is in repair mode only while it is read, and again from just
//! before the tree is killed: a killed tree then takes it down without a word
//! to its peer, and a tree that runs on (--leave-running, a failed dump, even a
//! killed rckpt) has it back as it was (TCP_REPAIR_OFF_NO_WP sends no window
//! probe; SO_REUSEADDR, which repair mode overrides, is put back). A
//! connection whose peer is outside the tree is first blocked with an nftables
//! rule (unless the tree runs on): the peer's segments then neither change the
//! queues while they are read nor, once the tree is gone, draw a reset. The
//! rule stays until `rckpt restore` has the socket back.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use rckpt_images::files::TcpConn;

use super::refuse;
use crate::dump::Result;
use crate::sys::{Pid, SysError, netfilter, sock};

const TCP_NO_QUEUE: i32 = 0;
const TCP_RECV_QUEUE: i32 = 1;
const TCP_SEND_QUEUE: i32 = 2;
/// Leaves repair mode without the window probe TCP_REPAIR_OFF sends (4.15).
const TCP_REPAIR_OFF_NO_WP: i32 = -1;
const SIOCINQ: libc::Ioctl = 0x541b;
const SIOCOUTQ: libc::Ioctl = 0x5411;
/// Bytes of the send queue not yet sent (3.19).
const SIOCOUTQNSD: libc::Ioctl = 0x894b;
const TCPI_OPT_TIMESTAMPS: u8 = 1;
const TCPI_OPT_SACK: u8 = 2;
const TCPI_OPT_WSCALE: u8 = 4;
const TCP_ESTABLISHED: u8 = 1;

/// The saved connections' sockets (rckpt's duplicates of the tree's) and the
/// connections blocked. Dropped (a failed dump) or `resume`d, it removes the
/// rules.
#[derive(Default)]
pub struct TcpRepair {
    /// Each socket and its SO_REUSEADDR.
    socks: Vec<(OwnedFd, i32)>,
    locked: Vec<netfilter::Conn>,
}

impl TcpRepair {
    /// The tree runs on: the rules go (there are none after --leave-running).
    pub fn resume(mut self) -> Result<()> {
        self.unlock()
    }

    /// The tree is about to be killed: every socket goes back to repair mode,
    /// to close without a word to its peer, and the rules stay until restore.
    /// On failure all is as it was, for a tree that runs on.
    pub fn keep(mut self) -> Result<()> {
        for (i, (f, _)) in self.socks.iter().enumerate() {
            if let Err(e) = sock::setsockopt_int(f.as_fd(), libc::SOL_TCP, libc::TCP_REPAIR, 1) {
                for (f, reuseaddr) in &self.socks[..i] {
                    let _ = leave_repair(f.as_fd(), *reuseaddr);
                }
                return Err(e.into());
            }
        }
        self.socks.clear();
        self.locked.clear();
        Ok(())
    }

    fn unlock(&mut self) -> Result<()> {
        if self.locked.is_empty() {
            return Ok(());
        }
        let r = netfilter::unlock(&self.locked);
        self.locked.clear();
        Ok(r?)
    }
}

impl Drop for TcpRepair {
    fn drop(&mut self) {
        let _ = self.unlock();
    }
}

fn leave_repair(f: BorrowedFd<'_>, reuseaddr: i32) -> crate::sys::Result<()> {
    let _ = sock::setsockopt_int(f, libc::SOL_TCP, libc::TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
    if sock::setsockopt_int(f, libc::SOL_TCP, libc::TCP_REPAIR, TCP_REPAIR_OFF_NO_WP).is_err() {
        sock::setsockopt_int(f, libc::SOL_TCP, libc::TCP_REPAIR, 0)?;
    }
    sock::setsockopt_int(f, libc::SOL_SOCKET, libc::SO_REUSEADDR, reuseaddr)
}

/// Where a connection is, and what the dump may do to it.
pub(super) struct Conn<'a> {
    pub pid: Pid,
    pub fd: i32,
    /// "an established TCP connection (socket:[N], to ADDR)", for messages.
    pub what: &'a str,
    pub addr: &'a [u8],
    pub port: u16,
    pub peer_addr: Vec<u8>,
    pub peer_port: u16,
    /// The peer socket is not one of the tree's.
    pub peer_outside: bool,
    pub leave_running: bool,
}

/// Saves the connection of `dup` (the task's own socket, taken with
/// pidfd_getfd), which `repair` keeps for the end of the dump.
pub(super) fn save(repair: &mut TcpRepair, c: &Conn<'_>, dup: OwnedFd) -> Result<TcpConn> {
    let (pid, fd, what) = (c.pid, c.fd, c.what);
    let locked = c.peer_outside && !c.leave_running;
    if locked && !netfilter::available() {
        return Err(refuse(
            pid,
            fd,
            format_args!(
                "{what}, whose peer is outside the tree: rckpt blocks such a connection with an nftables rule until restore, and the nft binary (package nftables) is not installed; install it, or dump with --leave-running"
            ),
        ));
    }
    let f = dup.as_fd();
    // Read before repair mode overrides it.
    let reuseaddr = sock::getsockopt_int(f, libc::SOL_SOCKET, libc::SO_REUSEADDR)?;
    sock::setsockopt_int(f, libc::SOL_TCP, libc::TCP_REPAIR, 1).map_err(|e| match e.errno() {
        Some(Errno::EPERM) => crate::dump::DumpError::Privilege {
            pid,
            cap: "CAP_NET_ADMIN",
            why: format!("fd {fd} is {what}, and TCP repair mode needs CAP_NET_ADMIN"),
        },
        _ => refuse(pid, fd, format_args!("{what}: it cannot be put in TCP repair mode ({e})")),
    })?;
    // Blocked before it is read, so the peer changes nothing after; out of
    // repair mode again whatever happens.
    let read = lock(repair, c, locked).and_then(|()| read_conn(f, c, locked));
    let left = leave_repair(f, reuseaddr);
    let conn = read?;
    left?;
    repair.socks.push((dup, reuseaddr));
    Ok(conn)
}

fn lock(repair: &mut TcpRepair, c: &Conn<'_>, locked: bool) -> Result<()> {
    if !locked {
        return Ok(());
    }
    let conn = netfilter::Conn {
        local: c.addr.to_vec(),
        local_port: c.port,
        peer: c.peer_addr.clone(),
        peer_port: c.peer_port,
    };
    netfilter::lock(&conn).map_err(|e| {
        let what = c.what;
        refuse(
            c.pid,
            c.fd,
            format_args!("{what}, whose peer is outside the tree: it cannot be blocked until restore ({e})"),
        )
    })?;
    repair.locked.push(conn);
    Ok(())
}

/// Everything of the connection, read in repair mode.
fn read_conn(f: BorrowedFd<'_>, c: &Conn<'_>, locked: bool) -> Result<TcpConn> {
    let (pid, fd, what) = (c.pid, c.fd, c.what);
    let mut info = [0u8; 8];
    sock::getsockopt_raw(f, libc::SOL_TCP, libc::TCP_INFO, &mut info)?;
    if info[0] != TCP_ESTABLISHED {
        return Err(refuse(pid, fd, format_args!("{what}: it left the established state (now {})", info[0])));
    }
    let q = stable_queues(f)
        .map_err(|e| refuse(pid, fd, format_args!("{what}: its queues cannot be read in repair mode ({e})")))?;
    let options = info[5];
    let timestamps = options & TCPI_OPT_TIMESTAMPS != 0;
    let wscale = options & TCPI_OPT_WSCALE != 0;
    Ok(TcpConn {
        peer_addr: c.peer_addr.clone(),
        peer_port: c.peer_port,
        snd_seq: q.snd_seq,
        rcv_seq: q.rcv_seq,
        send_queue: q.send,
        unsent: q.unsent,
        recv_queue: q.recv,
        // In repair mode: the MSS clamp (the peer's MSS), which restore sets.
        mss: sock::getsockopt_int(f, libc::SOL_TCP, libc::TCP_MAXSEG)? as u32,
        wscale,
        // struct tcp_info: snd_wscale in the low nibble of byte 6, rcv_wscale high.
        snd_wscale: if wscale { info[6] & 0xf } else { 0 },
        rcv_wscale: if wscale { info[6] >> 4 } else { 0 },
        timestamps,
        sack: options & TCPI_OPT_SACK != 0,
        window: q.window,
        ts_val: if timestamps { sock::getsockopt_int(f, libc::SOL_TCP, libc::TCP_TIMESTAMP)? as u32 } else { 0 },
        sndbuf: sock::getsockopt_int(f, libc::SOL_SOCKET, libc::SO_SNDBUF)? as u32,
        rcvbuf: sock::getsockopt_int(f, libc::SOL_SOCKET, libc::SO_RCVBUF)? as u32,
        locked,
    })
}

struct Queues {
    /// write_seq: the sequence number after the last byte of the send queue.
    snd_seq: u32,
    /// rcv_nxt: the sequence number after the last byte received.
    rcv_seq: u32,
    send: Vec<u8>,
    unsent: u32,
    recv: Vec<u8>,
    window: [u32; 5],
}

/// (SIOCOUTQ, SIOCOUTQNSD, SIOCINQ, write_seq, rcv_nxt): what must not change
/// while the queues are read.
fn marks(f: BorrowedFd<'_>) -> crate::sys::Result<[u32; 5]> {
    Ok([
        sock::ioctl_int(f, SIOCOUTQ)? as u32,
        sock::ioctl_int(f, SIOCOUTQNSD)? as u32,
        sock::ioctl_int(f, SIOCINQ)? as u32,
        queue_seq(f, TCP_SEND_QUEUE)?,
        queue_seq(f, TCP_RECV_QUEUE)?,
    ])
}

fn queue_seq(f: BorrowedFd<'_>, queue: i32) -> crate::sys::Result<u32> {
    sock::setsockopt_int(f, libc::SOL_TCP, libc::TCP_REPAIR_QUEUE, queue)?;
    Ok(sock::getsockopt_int(f, libc::SOL_TCP, libc::TCP_QUEUE_SEQ)? as u32)
}

/// Both queues and the window, read until two readings agree: the tree is
/// frozen, but an ACK or a segment from the peer may still land in between.
fn stable_queues(f: BorrowedFd<'_>) -> crate::sys::Result<Queues> {
    for _ in 0..50 {
        let before = marks(f)?;
        let [outq, unsent, inq, snd_seq, rcv_seq] = before;
        // In repair mode a MSG_PEEK recv reads the queue TCP_REPAIR_QUEUE
        // selects: the send queue from its first unacknowledged byte.
        sock::setsockopt_int(f, libc::SOL_TCP, libc::TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)?;
        let send = peek_exactly(f, outq as usize)?;
        sock::setsockopt_int(f, libc::SOL_TCP, libc::TCP_REPAIR_QUEUE, TCP_RECV_QUEUE)?;
        let recv = peek_recv(f, inq as usize)?;
        let mut w = [0u8; 20];
        sock::getsockopt_raw(f, libc::SOL_TCP, libc::TCP_REPAIR_WINDOW, &mut w)?;
        let window = std::array::from_fn(|i| u32::from_ne_bytes(w[i * 4..i * 4 + 4].try_into().unwrap()));
        sock::setsockopt_int(f, libc::SOL_TCP, libc::TCP_REPAIR_QUEUE, TCP_NO_QUEUE)?;
        if let (Some(send), Some(recv)) = (send, recv)
            && marks(f)? == before
        {
            return Ok(Queues { snd_seq, rcv_seq, send, unsent, recv, window });
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Err(SysError::Os { op: "read a TCP connection that keeps changing", errno: Errno::EAGAIN })
}

/// Exactly `len` bytes peeked (one more is asked for, to see there are no
/// more); None when the queue holds another amount.
fn peek_exactly(f: BorrowedFd<'_>, len: usize) -> crate::sys::Result<Option<Vec<u8>>> {
    if len == 0 {
        return Ok(Some(Vec::new()));
    }
    let mut buf = vec![0u8; len + 1];
    let n = sock::peek_stream(f, &mut buf)?;
    if n != len {
        return Ok(None);
    }
    buf.truncate(len);
    Ok(Some(buf))
}

/// The receive queue, from its first unread byte: a TCP SO_PEEK_OFF (6.10)
/// would move the start and be moved by the peek, so it is set to 0 meanwhile
/// and put back.
fn peek_recv(f: BorrowedFd<'_>, len: usize) -> crate::sys::Result<Option<Vec<u8>>> {
    let peek_off = sock::getsockopt_int(f, libc::SOL_SOCKET, libc::SO_PEEK_OFF).unwrap_or(-1);
    if peek_off >= 0 {
        sock::setsockopt_int(f, libc::SOL_SOCKET, libc::SO_PEEK_OFF, 0)?;
    }
    let r = peek_exactly(f, len);
    if peek_off >= 0 {
        sock::setsockopt_int(f, libc::SOL_SOCKET, libc::SO_PEEK_OFF, peek_off)?;
    }
    r
}
