//! sock_diag netlink (NETLINK_SOCK_DIAG): what the kernel knows of every unix and
//! inet socket of the network namespace, by inode: type, state, name, peer,
//! queue lengths. getsockopt cannot tell a unix socket's peer.

use std::collections::HashMap;
use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, SockFlag, SockProtocol, SockType, socket};

use super::{Result, SysError};

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const UDIAG_SHOW_NAME: u32 = 0x1;
const UDIAG_SHOW_PEER: u32 = 0x4;
const UDIAG_SHOW_ICONS: u32 = 0x8;
const UDIAG_SHOW_RQLEN: u32 = 0x10;
const UNIX_DIAG_NAME: u16 = 0;
const UNIX_DIAG_PEER: u16 = 2;
const UNIX_DIAG_ICONS: u16 = 3;
const UNIX_DIAG_RQLEN: u16 = 4;
const UNIX_DIAG_SHUTDOWN: u16 = 6;

#[derive(Debug, Clone, Default)]
pub struct UnixDiag {
    pub ino: u32,
    /// SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_SEQPACKET 5.
    pub stype: u8,
    /// TCP_ESTABLISHED 1, TCP_CLOSE 7, TCP_LISTEN 10.
    pub state: u8,
    pub name: Option<Vec<u8>>,
    pub peer: u32,
    /// For a listening socket: connections waiting to be accepted (their inodes).
    pub icons: Vec<u32>,
    pub rqueue: u32,
    pub wqueue: u32,
    /// shutdown(2) state: bit 0 receive, bit 1 send.
    pub shutdown: u8,
}

#[derive(Debug, Clone, Default)]
pub struct InetDiag {
    pub ino: u32,
    pub state: u8,
    /// Local and remote address (IPv4 in the first 4 bytes) and port.
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub rqueue: u32,
    /// For a listening socket: the backlog it was given.
    pub wqueue: u32,
}

fn netlink() -> Result<std::os::fd::OwnedFd> {
    socket(AddressFamily::Netlink, SockType::Datagram, SockFlag::SOCK_CLOEXEC, SockProtocol::NetlinkSockDiag)
        .map_err(|errno| SysError::Os { op: "open a sock_diag socket", errno })
}

/// Sends one dump request and calls `each` with every reply message body.
fn dump(req: &[u8], mut each: impl FnMut(&[u8])) -> Result<()> {
    let fd = netlink()?;
    let mut msg = Vec::with_capacity(16 + req.len());
    msg.extend_from_slice(&((16 + req.len()) as u32).to_ne_bytes());
    msg.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(req);
    nix::sys::socket::send(fd.as_raw_fd(), &msg, nix::sys::socket::MsgFlags::empty())
        .map_err(|errno| SysError::Os { op: "query sock_diag", errno })?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = nix::sys::socket::recv(fd.as_raw_fd(), &mut buf, nix::sys::socket::MsgFlags::empty())
            .map_err(|errno| SysError::Os { op: "read sock_diag", errno })?;
        let mut at = 0;
        while at + 16 <= n {
            let len = u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
            let kind = u16::from_ne_bytes(buf[at + 4..at + 6].try_into().unwrap());
            if len < 16 || at + len > n {
                return Err(SysError::Os { op: "parse sock_diag", errno: Errno::EPROTO });
            }
            match kind {
                NLMSG_DONE => return Ok(()),
                NLMSG_ERROR => {
                    let e = i32::from_ne_bytes(buf[at + 16..at + 20].try_into().unwrap());
                    return Err(SysError::Os { op: "query sock_diag", errno: Errno::from_raw(-e) });
                }
                _ => each(&buf[at + 16..at + len]),
            }
            at += (len + 3) & !3;
        }
    }
}

/// Every attribute (type, payload) after `skip` bytes of `body`.
fn attrs(body: &[u8], skip: usize) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut at = skip;
    while at + 4 <= body.len() {
        let len = u16::from_ne_bytes(body[at..at + 2].try_into().unwrap()) as usize;
        let kind = u16::from_ne_bytes(body[at + 2..at + 4].try_into().unwrap());
        if len < 4 || at + len > body.len() {
            break;
        }
        out.push((kind, &body[at + 4..at + len]));
        at += (len + 3) & !3;
    }
    out
}

/// Every unix socket of rckpt's network namespace, by inode.
pub fn unix_sockets() -> Result<HashMap<u32, UnixDiag>> {
    let mut req = Vec::new();
    req.push(libc::AF_UNIX as u8);
    req.push(0);
    req.extend_from_slice(&0u16.to_ne_bytes());
    req.extend_from_slice(&u32::MAX.to_ne_bytes()); // every state
    req.extend_from_slice(&0u32.to_ne_bytes()); // any inode
    req.extend_from_slice(&(UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_ICONS | UDIAG_SHOW_RQLEN).to_ne_bytes());
    req.extend_from_slice(&[0xff; 8]); // no cookie
    let mut out = HashMap::new();
    dump(&req, |body| {
        if body.len() < 16 {
            return;
        }
        let mut d = UnixDiag {
            stype: body[1],
            state: body[2],
            ino: u32::from_ne_bytes(body[4..8].try_into().unwrap()),
            ..Default::default()
        };
        for (kind, p) in attrs(body, 16) {
            match kind {
                UNIX_DIAG_NAME => d.name = Some(p.to_vec()),
                UNIX_DIAG_PEER if p.len() >= 4 => d.peer = u32::from_ne_bytes(p[0..4].try_into().unwrap()),
                UNIX_DIAG_ICONS => {
                    d.icons = p.chunks_exact(4).map(|c| u32::from_ne_bytes(c.try_into().unwrap())).collect()
                }
                UNIX_DIAG_SHUTDOWN if !p.is_empty() => d.shutdown = p[0],
                UNIX_DIAG_RQLEN if p.len() >= 8 => {
                    d.rqueue = u32::from_ne_bytes(p[0..4].try_into().unwrap());
                    d.wqueue = u32::from_ne_bytes(p[4..8].try_into().unwrap());
                }
                _ => {}
            }
        }
        out.insert(d.ino, d);
    })?;
    Ok(out)
}

/// Every TCP or UDP socket of `family` (AF_INET, AF_INET6), by inode.
pub fn inet_sockets(family: u8, protocol: u8) -> Result<HashMap<u32, InetDiag>> {
    // struct inet_diag_req_v2: family, protocol, ext, pad, states, then a
    // struct inet_diag_sockid (48 bytes) left zero.
    let mut req = vec![family, protocol, 0, 0];
    req.extend_from_slice(&u32::MAX.to_ne_bytes());
    req.extend_from_slice(&[0u8; 48]);
    let mut out = HashMap::new();
    dump(&req, |body| {
        // struct inet_diag_msg: family, state, timer, retrans, id (48), expires,
        // rqueue, wqueue, uid, inode.
        if body.len() < 72 {
            return;
        }
        let u = |i: usize| u32::from_ne_bytes(body[i..i + 4].try_into().unwrap());
        // struct inet_diag_sockid: sport, dport (big-endian), src, dst (16 bytes each).
        let d = InetDiag {
            state: body[1],
            sport: u16::from_be_bytes([body[4], body[5]]),
            dport: u16::from_be_bytes([body[6], body[7]]),
            src: body[8..24].try_into().unwrap(),
            dst: body[24..40].try_into().unwrap(),
            rqueue: u(56),
            wqueue: u(60),
            ino: u(68),
        };
        out.insert(d.ino, d);
    })?;
    Ok(out)
}
