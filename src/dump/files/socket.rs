//! Sockets. Unix sockets: type, name, listening, peer (by inode, from
//! sock_diag), shutdown state and every queued message, read with MSG_PEEK from
//! a duplicate after setting SO_PEEK_OFF (the task's own SO_PEEK_OFF is put back).
//! A pair whose both ends are in the tree comes back as a pair. TCP and UDP:
//! bound and listening sockets with their address and options; an established
//! TCP connection needs --tcp-established (then tcp.rs saves it).

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};

use rckpt_images::files::{FileDesc, FileKind, InetSocket, SockType, UnixSocket};
use rckpt_images::inventory::ExternalKind;

use super::{Ctx, Desc, FileTable, refuse, tcp};
use crate::dump::Result;
use crate::sys::sock;
use crate::sys::sockdiag::{self, InetDiag, UnixDiag};

const TCP_ESTABLISHED: u8 = 1;
const TCP_LISTEN: u8 = 10;

/// What sock_diag knows, by socket inode.
pub struct Survey {
    unix: HashMap<u32, UnixDiag>,
    inet: HashMap<u32, (u16, SockType, InetDiag)>,
    /// Socket inode -> description index, for the tree's own sockets.
    by_ino: HashMap<u32, usize>,
}

fn ino_of(d: &Desc) -> Option<u32> {
    d.info.link.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

impl Survey {
    pub fn new(descs: &[Desc]) -> Result<Survey> {
        let by_ino: HashMap<u32, usize> = descs.iter().enumerate().filter_map(|(i, d)| Some((ino_of(d)?, i))).collect();
        if by_ino.is_empty() {
            return Ok(Survey { unix: HashMap::new(), inet: HashMap::new(), by_ino });
        }
        let mut inet = HashMap::new();
        for (family, proto, stype) in [
            (libc::AF_INET, libc::IPPROTO_TCP, SockType::Stream),
            (libc::AF_INET6, libc::IPPROTO_TCP, SockType::Stream),
            (libc::AF_INET, libc::IPPROTO_UDP, SockType::Dgram),
            (libc::AF_INET6, libc::IPPROTO_UDP, SockType::Dgram),
        ] {
            for (ino, d) in sockdiag::inet_sockets(family as u8, proto as u8)? {
                inet.insert(ino, (family as u16, stype, d));
            }
        }
        Ok(Survey { unix: sockdiag::unix_sockets()?, inet, by_ino })
    }
}

fn stype_of(t: u8) -> Option<SockType> {
    match t as i32 {
        libc::SOCK_STREAM => Some(SockType::Stream),
        libc::SOCK_DGRAM => Some(SockType::Dgram),
        libc::SOCK_SEQPACKET => Some(SockType::SeqPacket),
        _ => None,
    }
}

pub fn classify(table: &mut FileTable, i: usize, s: &Survey, ctx: &mut Ctx) -> Result<FileKind> {
    let (pid, at, fd) = table.descs[i].first();
    let ino = ino_of(&table.descs[i]).expect("a socket");
    if let Some(u) = s.unix.get(&ino) {
        return unix(table, i, u, s, ctx);
    }
    if let Some((family, stype, d)) = s.inet.get(&ino) {
        let dup = table.dup(at, fd)?;
        return inet(table, i, *family, *stype, d, dup, s);
    }
    let dup = table.dup(at, fd)?;
    let family = sock::name(dup.as_fd(), false)
        .ok()
        .and_then(|n| n.get(0..2).map(|b| u16::from_ne_bytes([b[0], b[1]])))
        .unwrap_or(0);
    let what = match family as i32 {
        libc::AF_NETLINK => "a netlink socket".to_string(),
        libc::AF_PACKET => "a packet socket".to_string(),
        libc::AF_INET | libc::AF_INET6 => "a raw or other IP socket".to_string(),
        f => format!("a socket of family {f}"),
    };
    Err(refuse(pid, fd, format_args!("{what} (socket:[{ino}])")))
}

fn unix(table: &mut FileTable, i: usize, u: &UnixDiag, s: &Survey, ctx: &mut Ctx) -> Result<FileKind> {
    let (pid, at, fd) = table.descs[i].first();
    let ino = u.ino;
    let stype = stype_of(u.stype).ok_or_else(|| refuse(pid, fd, format_args!("a unix socket of type {}", u.stype)))?;
    let in_flight =
        table.descs[i].info.extra.iter().find(|(k, _)| k == "scm_fds").map(|(_, v)| v.trim() != "0").unwrap_or(false);
    if in_flight {
        return Err(refuse(
            pid,
            fd,
            format_args!("a unix socket with descriptors in flight (SCM_RIGHTS) (socket:[{ino}])"),
        ));
    }
    let listening = u.state == TCP_LISTEN;
    if listening && !u.icons.is_empty() {
        return Err(refuse(
            pid,
            fd,
            format_args!(
                "a listening unix socket with {} connections waiting to be accepted (socket:[{ino}])",
                u.icons.len()
            ),
        ));
    }
    let mut peer_name = None;
    if u.peer != 0 && !s.by_ino.contains_key(&u.peer) {
        let peer = s.unix.get(&u.peer);
        match (stype, peer.and_then(|p| p.name.clone())) {
            (SockType::Dgram, Some(n)) => peer_name = Some(n),
            _ if !table.opts.ext_unix_sk => {
                return Err(refuse(
                    pid,
                    fd,
                    format_args!(
                        "a unix socket connected to a peer outside the tree (socket:[{ino}]); dump with --ext-unix-sk to bind it at restore with --inherit-fd"
                    ),
                ));
            }
            _ => {
                // A connection to a socket outside the tree: bound at restore to
                // one of rckpt's own (--inherit-fd).
                let key = format!("socket:[{ino}]");
                ctx.external(&key, ExternalKind::Pipe);
                return Ok(FileKind::External { key });
            }
        }
    }
    let dup = table.dup(at, fd)?;
    let f = dup.as_fd();
    let passcred = sock::getsockopt_int(f, libc::SOL_SOCKET, libc::SO_PASSCRED).unwrap_or(0) != 0;
    let queue = if listening {
        Vec::new()
    } else {
        read_queue(&dup, stype, u.rqueue)
            .map_err(|e| refuse(pid, fd, format_args!("a unix socket whose queue cannot be read ({e})")))?
    };
    let peek_off = sock::getsockopt_int(f, libc::SOL_SOCKET, libc::SO_PEEK_OFF).unwrap_or(-1);
    let shutdown = u.shutdown;
    Ok(FileKind::Unix(UnixSocket {
        stype,
        name: u.name.clone().filter(|n| !n.is_empty()),
        listening,
        backlog: if listening { u.wqueue } else { 0 },
        peer: None,
        peer_name,
        queue,
        peek_off,
        shutdown,
        passcred,
    }))
}

/// Every queued message, peeked from the front with SO_PEEK_OFF advancing, the
/// socket's own SO_PEEK_OFF put back afterwards.
fn read_queue(dup: &OwnedFd, stype: SockType, rqueue: u32) -> crate::sys::Result<Vec<Vec<u8>>> {
    let f = dup.as_fd();
    let saved = sock::getsockopt_int(f, libc::SOL_SOCKET, libc::SO_PEEK_OFF)?;
    sock::setsockopt_int(f, libc::SOL_SOCKET, libc::SO_PEEK_OFF, 0)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; (rqueue as usize).clamp(64 * 1024, 16 << 20)];
    let r = (|| {
        loop {
            let Some(n) = sock::peek(f, &mut buf)? else { break };
            if n > buf.len() {
                buf.resize(n, 0);
                // Peek again from the same message: step SO_PEEK_OFF back.
                let off = sock::getsockopt_int(f, libc::SOL_SOCKET, libc::SO_PEEK_OFF)?;
                sock::setsockopt_int(f, libc::SOL_SOCKET, libc::SO_PEEK_OFF, off - n as i32)?;
                continue;
            }
            if n == 0 && stype == SockType::Stream {
                break;
            }
            out.push(buf[..n].to_vec());
            if out.len() > 1 << 16 {
                return Err(crate::sys::SysError::Os { op: "read a socket queue", errno: nix::errno::Errno::E2BIG });
            }
        }
        Ok(())
    })();
    sock::setsockopt_int(f, libc::SOL_SOCKET, libc::SO_PEEK_OFF, saved)?;
    r?;
    if stype == SockType::Stream && out.len() > 1 {
        // A stream has no boundaries: one chunk.
        out = vec![out.concat()];
    }
    Ok(out)
}

fn inet(
    table: &mut FileTable,
    i: usize,
    family: u16,
    stype: SockType,
    d: &InetDiag,
    dup: OwnedFd,
    s: &Survey,
) -> Result<FileKind> {
    let (pid, _, fd) = table.descs[i].first();
    let f = dup.as_fd();
    let name = sock::name(f, false)
        .map_err(|e| refuse(pid, fd, format_args!("a socket whose address cannot be read ({e})")))?;
    let (addr, port) =
        split_addr(family, &name).ok_or_else(|| refuse(pid, fd, "a socket with an address rckpt cannot read"))?;
    let listening = stype == SockType::Stream && d.state == TCP_LISTEN;
    let established = stype == SockType::Stream && d.state == TCP_ESTABLISHED;
    if established && !table.opts.tcp_established {
        let peer = sock::name(f, true).unwrap_or_default();
        return Err(refuse(
            pid,
            fd,
            format_args!(
                "an established TCP connection (socket:[{}], to {}): dump with --tcp-established",
                d.ino,
                show_addr(&peer)
            ),
        ));
    }
    if stype == SockType::Stream && !established && d.state != TCP_LISTEN && d.state != 7 {
        return Err(refuse(pid, fd, format_args!("a TCP socket in state {} (socket:[{}])", d.state, d.ino)));
    }
    if stype == SockType::Dgram && d.state == TCP_ESTABLISHED {
        return Err(refuse(pid, fd, format_args!("a connected UDP socket (socket:[{}])", d.ino)));
    }
    let opt = |level, o| sock::getsockopt_int(f, level, o).unwrap_or(0) != 0;
    // Read before repair mode (which overrides SO_REUSEADDR).
    let mut out = InetSocket {
        family,
        stype,
        addr,
        port,
        listening,
        backlog: if listening { d.wqueue } else { 0 },
        reuseaddr: opt(libc::SOL_SOCKET, libc::SO_REUSEADDR),
        reuseport: opt(libc::SOL_SOCKET, libc::SO_REUSEPORT),
        v6only: family as i32 == libc::AF_INET6 && opt(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY),
        tcp: None,
    };
    if established {
        let peer = sock::name(f, true)
            .map_err(|e| refuse(pid, fd, format_args!("a TCP socket whose peer address cannot be read ({e})")))?;
        let what = format!("an established TCP connection (socket:[{}], to {})", d.ino, show_addr(&peer));
        let (peer_addr, peer_port) =
            split_addr(family, &peer).ok_or_else(|| refuse(pid, fd, format_args!("{what} of unknown address")))?;
        let conn = tcp::Conn {
            pid,
            fd,
            what: &what,
            addr: &out.addr,
            port: out.port,
            peer_addr,
            peer_port,
            peer_outside: !peer_in_tree(s, family, d),
            leave_running: table.leave_running,
        };
        out.tcp = Some(tcp::save(&mut table.tcp, &conn, dup)?);
    }
    Ok(FileKind::Inet(out))
}

/// The address bytes and port of a raw sockaddr_in or sockaddr_in6.
fn split_addr(family: u16, name: &[u8]) -> Option<(Vec<u8>, u16)> {
    let port = u16::from_be_bytes([*name.get(2)?, *name.get(3)?]);
    match family as i32 {
        libc::AF_INET if name.len() >= 8 => Some((name[4..8].to_vec(), port)),
        libc::AF_INET6 if name.len() >= 24 => Some((name[8..24].to_vec(), port)),
        _ => None,
    }
}

/// An address as IPv6 bytes (IPv4 mapped), to match sockets across families.
fn as_v6(family: u16, a: &[u8; 16]) -> [u8; 16] {
    if family as i32 != libc::AF_INET {
        return *a;
    }
    let mut m = [0u8; 16];
    m[10] = 0xff;
    m[11] = 0xff;
    m[12..].copy_from_slice(&a[..4]);
    m
}

/// Whether the other end of the established connection `d` is a socket of the
/// tree (sock_diag lists both ends of a local connection).
fn peer_in_tree(s: &Survey, family: u16, d: &InetDiag) -> bool {
    let (src, dst) = (as_v6(family, &d.src), as_v6(family, &d.dst));
    s.inet.values().any(|(f2, t2, p)| {
        *t2 == SockType::Stream
            && p.state == TCP_ESTABLISHED
            && p.sport == d.dport
            && p.dport == d.sport
            && as_v6(*f2, &p.src) == dst
            && as_v6(*f2, &p.dst) == src
            && s.by_ino.contains_key(&p.ino)
    })
}

fn show_addr(raw: &[u8]) -> String {
    match raw.get(0..2).map(|b| u16::from_ne_bytes([b[0], b[1]]) as i32) {
        Some(libc::AF_INET) if raw.len() >= 8 => {
            format!("{}.{}.{}.{}:{}", raw[4], raw[5], raw[6], raw[7], u16::from_be_bytes([raw[2], raw[3]]))
        }
        Some(libc::AF_INET6) if raw.len() >= 24 => {
            let a: [u8; 16] = raw[8..24].try_into().unwrap();
            format!("[{}]:{}", std::net::Ipv6Addr::from(a), u16::from_be_bytes([raw[2], raw[3]]))
        }
        _ => "?".into(),
    }
}

/// Fills in the peers of unix sockets connected inside the tree, by file id.
pub fn link_peers(files: &mut [FileDesc], descs: &[Desc], s: &Survey) {
    for i in 0..files.len() {
        let Some(ino) = ino_of(&descs[i]) else { continue };
        let Some(u) = s.unix.get(&ino) else { continue };
        let Some(&peer) = s.by_ino.get(&u.peer) else { continue };
        if let FileKind::Unix(sock) = &mut files[i].kind {
            sock.peer = Some(peer as u32);
        }
    }
}
