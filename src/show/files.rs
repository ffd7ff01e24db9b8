//! `rckpt show`, files: what each open file description is, for people, in
//! one line, with its kind and path for programs.

use std::fmt::Write;

use rckpt_images::files::{ContentOrigin, FileDesc, FileKind, FileType, FilesImage, LockKind, SockType};

use super::{Fd, content_path, sig_list, signal_name};
use crate::progress::human_bytes;

fn access(flags: u32) -> &'static str {
    match flags as i32 & libc::O_ACCMODE {
        libc::O_RDONLY => "r",
        libc::O_WRONLY => "w",
        _ => "rw",
    }
}

fn sock_type(t: SockType) -> &'static str {
    match t {
        SockType::Stream => "stream",
        SockType::Dgram => "datagram",
        SockType::SeqPacket => "seqpacket",
    }
}

fn ip(addr: &[u8], port: u16) -> String {
    match addr.len() {
        4 => format!("{}:{port}", std::net::Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3])),
        16 => {
            let b: [u8; 16] = addr.try_into().unwrap_or([0; 16]);
            format!("[{}]:{port}", std::net::Ipv6Addr::from(b))
        }
        _ => format!("?:{port}"),
    }
}

fn clock_name(c: i32) -> String {
    match c {
        libc::CLOCK_REALTIME => "CLOCK_REALTIME".into(),
        libc::CLOCK_MONOTONIC => "CLOCK_MONOTONIC".into(),
        libc::CLOCK_BOOTTIME => "CLOCK_BOOTTIME".into(),
        libc::CLOCK_REALTIME_ALARM => "CLOCK_REALTIME_ALARM".into(),
        libc::CLOCK_BOOTTIME_ALARM => "CLOCK_BOOTTIME_ALARM".into(),
        c => format!("clock {c}"),
    }
}

fn secs(ns: u64) -> String {
    format!("{:.3} s", ns as f64 / 1e9)
}

fn unix_name(n: &Option<Vec<u8>>) -> String {
    match n {
        None => "unnamed".into(),
        Some(n) if n.first() == Some(&0) => format!("@{}", String::from_utf8_lossy(&n[1..]).replace('\0', "@")),
        Some(n) => String::from_utf8_lossy(n).trim_end_matches('\0').to_string(),
    }
}

/// What an open file is, for people, with its kind and path.
pub(super) fn fd(num: i32, cloexec: bool, d: &FileDesc, files: &FilesImage) -> Fd {
    let queued = |p: u32| files.pipes.get(p as usize).map_or(0, |p| p.data.len());
    let content = |c: u32| files.contents.get(c as usize);
    let (kind, path, desc): (&'static str, Option<String>, String) = match &d.kind {
        FileKind::Path(p) => {
            let what = match p.ftype {
                FileType::Regular => format!("regular file of {}, at {}", human_bytes(p.size), p.pos),
                FileType::Directory => "directory".into(),
                FileType::CharDevice => {
                    format!(
                        "character device {}:{}",
                        libc::major(p.rdev as libc::dev_t),
                        libc::minor(p.rdev as libc::dev_t)
                    )
                }
            };
            ("path", Some(p.path.clone()), format!("{} ({what})", p.path))
        }
        FileKind::External { key } => {
            ("external", Some(key.clone()), format!("external {key} (bind it at restore with --inherit-fd)"))
        }
        FileKind::Pipe { pipe } => {
            let cap = files.pipes.get(*pipe as usize).map_or(0, |p| p.size as u64);
            (
                "pipe",
                None,
                format!("pipe #{pipe}, {} queued, capacity {}", human_bytes(queued(*pipe) as u64), human_bytes(cap)),
            )
        }
        FileKind::Fifo { path, pipe } => {
            ("fifo", Some(path.clone()), format!("FIFO {path}, {} queued", human_bytes(queued(*pipe) as u64)))
        }
        FileKind::Unix(u) => {
            let state = if u.listening {
                format!("listening (backlog {})", u.backlog)
            } else if let Some(peer) = u.peer {
                format!("connected to file #{peer}")
            } else if let Some(p) = &u.peer_name {
                format!("connected to {} outside the tree", unix_name(&Some(p.clone())))
            } else {
                "unconnected".into()
            };
            let bytes: usize = u.queue.iter().map(|m| m.len()).sum();
            let mut s = format!(
                "unix {} socket {}, {state}, {} queued in {} message(s)",
                sock_type(u.stype),
                unix_name(&u.name),
                human_bytes(bytes as u64),
                u.queue.len()
            );
            if u.shutdown != 0 {
                let _ = write!(s, ", shut down for {}", ["", "reading", "writing", "both"][(u.shutdown & 3) as usize]);
            }
            let path = u.name.as_ref().filter(|n| n.first() != Some(&0)).map(|_| unix_name(&u.name));
            ("unix", path, s)
        }
        FileKind::Inet(i) => {
            let proto = match (i.stype, i.family as i32) {
                (SockType::Stream, libc::AF_INET6) => "tcp6",
                (SockType::Stream, _) => "tcp",
                (_, libc::AF_INET6) => "udp6",
                _ => "udp",
            };
            let local = ip(&i.addr, i.port);
            let s = match &i.tcp {
                Some(t) => format!(
                    "{proto} {local} -> {} established, {} to send, {} received unread",
                    ip(&t.peer_addr, t.peer_port),
                    human_bytes(t.send_queue.len() as u64),
                    human_bytes(t.recv_queue.len() as u64)
                ),
                None if i.listening => format!("{proto} {local} listening (backlog {})", i.backlog),
                None => format!("{proto} {local} bound"),
            };
            ("inet", None, s)
        }
        FileKind::EventFd { count, semaphore } => {
            ("eventfd", None, format!("eventfd, count {count}{}", if *semaphore { ", semaphore" } else { "" }))
        }
        FileKind::Epoll { items, .. } => {
            let fds: Vec<String> = items.iter().map(|i| i.tfd.to_string()).collect();
            ("epoll", None, format!("epoll watching {} fd(s): {}", items.len(), fds.join(" ")))
        }
        FileKind::SignalFd { mask } => {
            let names: Vec<String> = sig_list(*mask).into_iter().map(signal_name).collect();
            ("signalfd", None, format!("signalfd for {}", names.join(" ")))
        }
        FileKind::TimerFd(t) => {
            let s = if t.value_ns == 0 {
                format!("timerfd ({}), disarmed", clock_name(t.clock))
            } else if t.interval_ns > 0 {
                format!(
                    "timerfd ({}), next in {}, every {}",
                    clock_name(t.clock),
                    secs(t.value_ns),
                    secs(t.interval_ns)
                )
            } else {
                format!("timerfd ({}), fires in {}", clock_name(t.clock), secs(t.value_ns))
            };
            ("timerfd", None, format!("{s}, {} expiration(s) unread", t.ticks))
        }
        FileKind::Inotify { watches } => {
            let paths: Vec<&str> = watches.iter().map(|w| w.path.as_str()).collect();
            ("inotify", None, format!("inotify, {} watch(es): {}", watches.len(), paths.join(" ")))
        }
        FileKind::Memfd { pos, content: c } => {
            let path = content_path(files, *c);
            let (size, saved, seals) = content(*c).map_or((0, 0, 0), |c| {
                let seals = match c.origin {
                    ContentOrigin::Memfd { seals, .. } => seals,
                    _ => 0,
                };
                (c.size, c.data_len, seals)
            });
            let desc = format!(
                "{} ({}, {} saved, seals {seals:#x}), at {pos}",
                path.as_deref().unwrap_or("memfd"),
                human_bytes(size),
                human_bytes(saved)
            );
            ("memfd", path, desc)
        }
        FileKind::Pty { pty, master } => {
            let p = files.ptys.get(*pty as usize);
            let desc = format!(
                "pty #{pty} {} (was /dev/pts/{}, {}x{})",
                if *master { "master" } else { "slave" },
                p.map_or(0, |p| p.index),
                p.map_or(0, |p| p.winsize[0]),
                p.map_or(0, |p| p.winsize[1])
            );
            ("pty", None, desc)
        }
        FileKind::Deleted { pos, content: c } => {
            let path = match content(*c).map(|c| &c.origin) {
                Some(ContentOrigin::Deleted { path, .. }) => Some(path.clone()),
                _ => None,
            };
            let (size, saved) = content(*c).map_or((0, 0), |c| (c.size, c.data_len));
            let desc = format!(
                "{} (deleted; {}, {} saved), at {pos}",
                path.as_deref().unwrap_or("?"),
                human_bytes(size),
                human_bytes(saved)
            );
            ("deleted", path, desc)
        }
    };
    let mut desc = desc;
    for l in &d.locks {
        let k = match l.kind {
            LockKind::Flock => "a flock",
            LockKind::Posix => "a POSIX",
            LockKind::Ofd => "an OFD",
        };
        let _ = write!(desc, "; holds {k} {} lock", if l.write { "write" } else { "read" });
    }
    Fd { fd: num, file: d.id, kind, access: access(d.flags), flags: d.flags, cloexec, path, desc, locks: d.locks.len() }
}
