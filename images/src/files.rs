//! `files.img`: every open file description of the tree, once, referenced by id from
//! the fd tables (so descriptions shared by dup or fork stay shared).

use serde::{Deserialize, Serialize};

use crate::{ImageError, check};

pub const FILE_NAME: &str = "files.img";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesImage {
    pub files: Vec<FileDesc>,
    /// Pipes (and FIFOs) of the tree, each once, with their unread data.
    pub pipes: Vec<PipeData>,
    /// Contents of memfds, shared anonymous memory and deleted files.
    pub contents: Vec<Content>,
    /// Pseudo-terminal pairs whose master the tree holds.
    pub ptys: Vec<PtyData>,
}

/// A pseudo-terminal pair, made again with a new index (the kernel picks it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PtyData {
    /// Its /dev/pts number when dumped.
    pub index: u32,
    /// The slave's struct termios2, raw.
    pub termios: Vec<u8>,
    /// rows, cols, xpixel, ypixel.
    pub winsize: [u16; 4],
    /// Packet mode on the master (TIOCPKT).
    pub packet: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDesc {
    pub id: u32,
    /// open(2) status flags and access mode (O_CLOEXEC is per fd, in fdinfo).
    pub flags: u32,
    pub kind: FileKind,
    /// Locks held through this description (flock, OFD), or by the task holding
    /// it (POSIX locks, which belong to a process: `owner`).
    pub locks: Vec<Lock>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileKind {
    /// A path on a filesystem, reopened at restore.
    Path(PathFile),
    /// Belongs to the outside world; bound at restore with `--inherit-fd` or
    /// `--shell-job` (key as in the inventory's externals).
    External {
        key: String,
    },
    /// One end of a pipe of the tree (`pipe` indexes `pipes`).
    Pipe {
        pipe: u32,
    },
    /// A FIFO by path; its buffered data is in `pipes[pipe]`.
    Fifo {
        path: String,
        pipe: u32,
    },
    Unix(UnixSocket),
    Inet(InetSocket),
    EventFd {
        count: u64,
        semaphore: bool,
    },
    /// Registrations as the task `owner` made them (tfd is its fd number).
    Epoll {
        owner: i32,
        items: Vec<EpollItem>,
    },
    SignalFd {
        mask: u64,
    },
    TimerFd(TimerFd),
    Inotify {
        watches: Vec<InotifyWatch>,
    },
    /// A memfd (`content` indexes `contents`, of origin Memfd).
    Memfd {
        pos: u64,
        content: u32,
    },
    /// One side of a pty of the tree (`pty` indexes `ptys`).
    Pty {
        pty: u32,
        master: bool,
    },
    /// A regular file unlinked while open: recreated unlinked with its content
    /// (of origin Deleted).
    Deleted {
        pos: u64,
        content: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipeData {
    /// Capacity (F_GETPIPE_SZ).
    pub size: u32,
    pub data: Vec<u8>,
}

/// The bytes of a memfd, of shared anonymous memory or of a deleted file, in
/// `content-N.img`: the bytes of each extent, in order (raw, `data_len` bytes,
/// checked by `crc32c`). Open files and mappings of the same object share one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    pub origin: ContentOrigin,
    /// File size.
    pub size: u64,
    /// Ranges that hold data, in order; the rest reads as zeroes.
    pub extents: Vec<ContentExtent>,
    pub data_len: u64,
    pub crc32c: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContentOrigin {
    Memfd {
        name: String,
        seals: u32,
    },
    /// MAP_SHARED|MAP_ANONYMOUS memory ("/dev/zero (deleted)" in maps).
    SharedAnon,
    /// A regular file unlinked while open, recreated in the same directory.
    Deleted {
        path: String,
        mode: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentExtent {
    pub offset: u64,
    pub len: u64,
}

/// Size of the kernel's struct termios2 on x86_64.
pub const PTY_TERMIOS_LEN: usize = 44;

pub fn content_file_name(index: usize) -> String {
    format!("content-{index}.img")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SockType {
    Stream,
    Dgram,
    SeqPacket,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnixSocket {
    pub stype: SockType,
    /// Raw sun_path it is bound to (abstract names start with a NUL), if any.
    pub name: Option<Vec<u8>>,
    pub listening: bool,
    pub backlog: u32,
    /// File id of the connected peer inside the tree.
    pub peer: Option<u32>,
    /// Raw sun_path of a peer outside the tree it is connected to (datagram).
    pub peer_name: Option<Vec<u8>>,
    /// Its receive queue: one entry per message (a stream is one entry).
    pub queue: Vec<Vec<u8>>,
    /// SO_PEEK_OFF (-1: off).
    pub peek_off: i32,
    /// shutdown(2) state: bit 0 read, bit 1 write.
    pub shutdown: u8,
    pub passcred: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InetSocket {
    pub family: u16,
    /// SOCK_STREAM (TCP) or SOCK_DGRAM (UDP).
    pub stype: SockType,
    /// Local address (IPv4 or IPv6 bytes) and port.
    pub addr: Vec<u8>,
    pub port: u16,
    pub listening: bool,
    pub backlog: u32,
    pub reuseaddr: bool,
    pub reuseport: bool,
    pub v6only: bool,
    /// An established TCP connection (restored with --tcp-established).
    pub tcp: Option<TcpConn>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpConn {
    pub peer_addr: Vec<u8>,
    pub peer_port: u16,
    pub snd_seq: u32,
    pub rcv_seq: u32,
    /// Unacknowledged and unsent data, and data received but not read.
    pub send_queue: Vec<u8>,
    pub unsent: u32,
    pub recv_queue: Vec<u8>,
    pub mss: u32,
    /// Window scaling was negotiated (TCPI_OPT_WSCALE), with these shifts.
    pub wscale: bool,
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
    pub timestamps: bool,
    pub sack: bool,
    /// struct tcp_repair_window: snd_wl1, snd_wnd, max_window, rcv_wnd, rcv_wup.
    pub window: [u32; 5],
    /// TCP_TIMESTAMP, the connection's timestamp clock (with `timestamps`).
    pub ts_val: u32,
    /// SO_SNDBUF and SO_RCVBUF as the kernel reported them.
    pub sndbuf: u32,
    pub rcvbuf: u32,
    /// The dump left an nftables rule (table inet rckpt) dropping the
    /// connection's packets, so its peer outside the tree saw no reset while
    /// it was down; restore removes it.
    pub locked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpollItem {
    pub tfd: i32,
    pub events: u32,
    pub data: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerFd {
    pub clock: i32,
    /// TFD_TIMER_ABSTIME and friends, as set.
    pub settime_flags: u32,
    pub interval_ns: u64,
    /// Time left until it next fires (0: disarmed).
    pub value_ns: u64,
    /// Expirations not read yet.
    pub ticks: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InotifyWatch {
    pub wd: i32,
    pub mask: u32,
    pub path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockKind {
    Flock,
    Posix,
    Ofd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub kind: LockKind,
    pub write: bool,
    /// The process holding a POSIX lock.
    pub owner: i32,
    pub start: u64,
    /// 0: to the end of the file.
    pub len: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathFile {
    pub path: String,
    pub ftype: FileType,
    pub pos: u64,
    pub size: u64,
    pub mtime_ns: i128,
    /// st_rdev of a device node.
    pub rdev: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileType {
    Regular,
    Directory,
    CharDevice,
}

impl FilesImage {
    pub fn validate(&self) -> Result<(), ImageError> {
        check(self.files.len() <= 1 << 20, || "too many open files".into())?;
        check(self.pipes.len() <= 1 << 20 && self.contents.len() <= 1 << 20, || "too many pipes or contents".into())?;
        let nf = self.files.len();
        for p in &self.pipes {
            check(p.size.is_power_of_two() && p.size as usize >= p.data.len() && p.size <= 1 << 30, || {
                format!("pipe of {} bytes holding {}", p.size, p.data.len())
            })?;
        }
        let mut masters = vec![0usize; self.ptys.len()];
        for f in &self.files {
            if let FileKind::Pty { pty, master: true } = f.kind
                && let Some(m) = masters.get_mut(pty as usize)
            {
                *m += 1;
            }
        }
        for (i, p) in self.ptys.iter().enumerate() {
            check(p.termios.len() == PTY_TERMIOS_LEN, || format!("pty {i}: termios of {} bytes", p.termios.len()))?;
        }
        for (i, c) in self.contents.iter().enumerate() {
            check(c.extents.len() <= 1 << 20, || format!("content {i}: too many extents"))?;
            let mut end = 0u64;
            let mut sum = 0u64;
            for e in &c.extents {
                let e_end = e.offset.checked_add(e.len).filter(|x| *x <= c.size && e.offset >= end && e.len > 0);
                end = e_end
                    .ok_or_else(|| ImageError::Invalid(format!("content {i}: extent {e:?} out of order or size")))?;
                sum += e.len;
            }
            check(sum == c.data_len, || format!("content {i}: extents hold {sum} bytes, not {}", c.data_len))?;
            match &c.origin {
                ContentOrigin::Memfd { name, .. } => {
                    check(name.len() < 250 && !name.contains(['\0', '/']), || format!("content {i}: memfd name"))?
                }
                ContentOrigin::Deleted { path, mode } => {
                    crate::check_abs_path(path)?;
                    check(mode & !0o7777 == 0, || format!("content {i}: mode {mode:o}"))?
                }
                ContentOrigin::SharedAnon => {}
            }
        }
        for (i, f) in self.files.iter().enumerate() {
            let id = f.id;
            check(id as usize == i, || format!("file id {id} at index {i}"))?;
            let pipe = |p: u32| check((p as usize) < self.pipes.len(), || format!("file {id}: pipe {p}"));
            let content = |c: u32| check((c as usize) < self.contents.len(), || format!("file {id}: content {c}"));
            match &f.kind {
                FileKind::Path(p) => crate::check_abs_path(&p.path)?,
                FileKind::External { key } => {
                    check(!key.is_empty() && key.len() < 4096, || format!("file {id}: external key"))?
                }
                FileKind::Pipe { pipe: p } => pipe(*p)?,
                FileKind::Fifo { path, pipe: p } => {
                    crate::check_abs_path(path)?;
                    pipe(*p)?
                }
                FileKind::Unix(u) => {
                    if let Some(n) = &u.name {
                        check(!n.is_empty() && n.len() <= 108, || format!("file {id}: socket name"))?;
                    }
                    if let Some(n) = &u.peer_name {
                        check(!n.is_empty() && n.len() <= 108, || format!("file {id}: peer name"))?;
                    }
                    if let Some(p) = u.peer {
                        check((p as usize) < nf && p != id, || format!("file {id}: peer {p}"))?;
                        check(matches!(&self.files[p as usize].kind, FileKind::Unix(q) if q.stype == u.stype), || {
                            format!("file {id}: peer {p} is not a unix socket of its type")
                        })?;
                    }
                    check(!(u.listening && u.peer.is_some()), || format!("file {id}: listening and connected"))?;
                    check(u.queue.len() <= 1 << 16, || format!("file {id}: queue too long"))?;
                }
                FileKind::Inet(s) => {
                    check(matches!(s.family as i32, 2 | 10), || format!("file {id}: family {}", s.family))?;
                    let alen = if s.family == 2 { 4 } else { 16 };
                    check(s.addr.len() == alen, || format!("file {id}: address length"))?;
                    if let Some(t) = &s.tcp {
                        check(t.peer_addr.len() == alen && !s.listening && s.stype == SockType::Stream, || {
                            format!("file {id}: TCP connection")
                        })?;
                        check(t.unsent as usize <= t.send_queue.len(), || format!("file {id}: unsent data"))?;
                        check(t.snd_wscale <= 14 && t.rcv_wscale <= 14, || format!("file {id}: window scale"))?;
                        check(t.peer_port != 0 && t.mss > 0, || format!("file {id}: TCP peer port or MSS"))?;
                    }
                }
                FileKind::EventFd { count, .. } => check(*count < u64::MAX, || format!("file {id}: eventfd count"))?,
                FileKind::Epoll { items, .. } => {
                    check(items.len() <= 1 << 20, || format!("file {id}: too many epoll items"))?;
                    for it in items {
                        check(it.tfd >= 0 && it.tfd < crate::fdinfo::FD_MAX, || {
                            format!("file {id}: epoll fd {}", it.tfd)
                        })?;
                    }
                }
                FileKind::SignalFd { .. } => {}
                FileKind::TimerFd(t) => {
                    check(matches!(t.clock, 0 | 1 | 7 | 8 | 9), || format!("file {id}: timer clock {}", t.clock))?
                }
                FileKind::Inotify { watches } => {
                    check(watches.len() <= 1 << 16, || format!("file {id}: too many watches"))?;
                    let mut prev = 0;
                    for w in watches {
                        check(w.wd > prev, || format!("file {id}: watch {} out of order", w.wd))?;
                        prev = w.wd;
                        crate::check_abs_path(&w.path)?;
                    }
                }
                FileKind::Pty { pty, master } => {
                    check((*pty as usize) < self.ptys.len(), || format!("file {id}: pty {pty}"))?;
                    let masters = masters[*pty as usize];
                    check(masters == 1 || (!master && masters == 0), || {
                        format!("file {id}: pty {pty} has {masters} masters")
                    })?;
                }
                FileKind::Memfd { content: c, .. } => {
                    content(*c)?;
                    check(matches!(self.contents[*c as usize].origin, ContentOrigin::Memfd { .. }), || {
                        format!("file {id}: content {c} is not a memfd's")
                    })?
                }
                FileKind::Deleted { content: c, .. } => {
                    content(*c)?;
                    check(matches!(self.contents[*c as usize].origin, ContentOrigin::Deleted { .. }), || {
                        format!("file {id}: content {c} is not a deleted file's")
                    })?
                }
            }
            for l in &f.locks {
                check(l.start.checked_add(l.len).is_some(), || format!("file {id}: lock range"))?;
                check(l.kind != LockKind::Posix || l.owner > 0, || format!("file {id}: lock owner"))?;
            }
        }
        Ok(())
    }
}
