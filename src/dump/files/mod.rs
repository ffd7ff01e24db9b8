//! The descriptor tables of the tree: every open file description once (kcmp
//! tells which fds share one, across processes too), classified by kind. Kinds
//! that need the whole tree to be known (a pipe or socket is internal only when
//! its other end is in the tree) are decided once every process is listed. Any
//! kind not supported refuses the dump, naming pid, fd and kind.

mod anon;
mod content;
mod locks;
mod pipe;
mod pty;
mod socket;
mod tcp;

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use rckpt_images::fdinfo::{FdEntry, FdTable};
use rckpt_images::files::{FileDesc, FileKind, FileType, FilesImage, PathFile};
use rckpt_images::inventory::{External, ExternalKind};

pub use content::ContentData;
pub use tcp::TcpRepair;

use super::core::TaskState;
use super::{DumpError, Result};
use crate::proc::{self, fds};
use crate::sys::{Pid, pidfd, task};

const O_CLOEXEC: u32 = libc::O_CLOEXEC as u32;

/// Options that change what the dump saves or accepts.
#[derive(Debug, Clone, Copy)]
pub struct FileOptions {
    /// Save established TCP connections (restored with TCP_REPAIR).
    pub tcp_established: bool,
    /// Save file locks; without it a held lock refuses the dump.
    pub file_locks: bool,
    /// Save unix sockets connected outside the tree as externals.
    pub ext_unix_sk: bool,
    /// Largest deleted-but-open file whose content is saved.
    pub ghost_limit: u64,
}

impl Default for FileOptions {
    fn default() -> Self {
        FileOptions { tcp_established: false, file_locks: false, ext_unix_sk: false, ghost_limit: 1 << 20 }
    }
}

/// One open file description, and everyone holding it.
pub(crate) struct Desc {
    /// (task, the thread used for /proc, fd) of each fd pointing at it.
    pub users: Vec<(Pid, Pid, i32)>,
    pub info: fds::FdInfo,
}

impl Desc {
    pub fn first(&self) -> (Pid, Pid, i32) {
        self.users[0]
    }
}

/// Every open file description of the tree and each process's fd table.
#[derive(Default)]
pub struct FileTable {
    descs: Vec<Desc>,
    /// Fd tables, by task: (fd, description index, cloexec).
    tables: Vec<(Pid, Vec<(i32, usize, bool)>)>,
    pidfds: HashMap<i32, OwnedFd>,
    pub opts: FileOptions,
    /// The tree runs on after the dump (TCP connections are not blocked).
    pub leave_running: bool,
    /// Contents saved for mappings, before the descriptions are classified.
    ctx: Ctx,
    /// The saved TCP connections' sockets and the connections blocked.
    tcp: TcpRepair,
}

/// What `finish` makes of the table.
pub struct Saved {
    pub image: FilesImage,
    pub fdtables: Vec<FdTable>,
    pub externals: Vec<External>,
    /// Data of the contents, in `image.contents` order, for content-N.img.
    pub contents: Vec<ContentData>,
    /// /dev/pts number of each pty of the tree -> index in `image.ptys`.
    pub pty_index: HashMap<u32, u32>,
    /// The saved TCP connections' sockets and the nftables rules blocking
    /// some: dropped, the rules go; `keep` before the tree is killed.
    pub tcp: TcpRepair,
}

impl Saved {
    /// The pty of the tree that is task `pid`'s controlling terminal, if any,
    /// and what the task does to set it up again. `tty_nr` and `tpgid` as in
    /// /proc/PID/stat; `sid` and `pgid` the task's.
    pub fn controlling_tty(
        &self,
        pid: Pid,
        ids: (i32, i32),
        tty_nr: i32,
        tpgid: i32,
        live: &[i32],
    ) -> Result<Option<rckpt_images::fdinfo::TaskTty>> {
        let (sid, pgid) = ids;
        // The kernel's encoding: major in bits 8-19, minor in bits 0-7 and 20-31.
        let major = ((tty_nr as u32) >> 8) & 0xfff;
        let minor = ((tty_nr as u32) & 0xff) | (((tty_nr as u32) >> 12) & 0xfff00);
        if major != pty::SLAVE_MAJOR {
            return Ok(None);
        }
        let Some(&p) = self.pty_index.get(&minor) else { return Ok(None) };
        let refuse = |what: String| DumpError::Unsupported { pid, what };
        if !live.contains(&sid) {
            return Err(refuse(format!(
                "its controlling terminal /dev/pts/{minor} is a pty of the tree, but its session leader {sid} is not in the tree"
            )));
        }
        if tpgid > 0 && tpgid != sid && !live.contains(&tpgid) {
            return Err(refuse(format!(
                "the foreground group {tpgid} of its terminal /dev/pts/{minor} has no leader in the tree"
            )));
        }
        let me = pid.as_raw();
        let leader = me == sid;
        let foreground = me == pgid && tpgid == pgid && !leader;
        Ok((leader || foreground).then_some(rckpt_images::fdinfo::TaskTty { pty: p, leader, foreground }))
    }
}

/// Character devices that hold no state worth saving: reopened by path.
fn plain_chardev(major: u32, minor: u32) -> bool {
    major == 1 && matches!(minor, 3 | 5 | 7 | 8 | 9)
}

fn is_tty(major: u32) -> bool {
    // 4: virtual consoles and serial ports; 5: /dev/tty, console, ptmx; 136-143: pty slaves.
    major == 4 || major == 5 || (136..=143).contains(&major)
}

pub(crate) fn refuse(pid: Pid, fd: i32, what: impl std::fmt::Display) -> DumpError {
    DumpError::Unsupported { pid, what: format!("fd {fd} is {what}") }
}

impl FileTable {
    pub fn new(opts: FileOptions) -> FileTable {
        FileTable { opts, ..Default::default() }
    }

    /// Lists `pid`'s descriptors (`at` is a live thread of it, for /proc).
    pub fn add_process(&mut self, pid: Pid, at: Pid) -> Result<()> {
        let infos: Vec<fds::FdInfo> =
            fds::list(at)?.into_iter().map(|fd| fds::info(at, fd)).collect::<std::result::Result<_, _>>()?;
        let mut table = Vec::new();
        for info in infos {
            let fd = info.fd;
            let shared = self.descs.iter().position(|d| {
                d.info.link == info.link && task::kcmp_file(at, fd, d.users[0].1, d.users[0].2).unwrap_or(false)
            });
            let idx = match shared {
                Some(i) => {
                    self.descs[i].users.push((pid, at, fd));
                    i
                }
                None => {
                    self.descs.push(Desc { users: vec![(pid, at, fd)], info: info.clone() });
                    self.descs.len() - 1
                }
            };
            table.push((fd, idx, info.flags & O_CLOEXEC != 0));
        }
        self.tables.push((pid, table));
        Ok(())
    }

    /// The content index of shared memory mapped by VMA `v` of `pid`.
    pub fn shared_mapping(&mut self, pid: Pid, at: Pid, v: &crate::proc::maps::Vma) -> Result<u32> {
        content::mapping(&mut self.ctx, pid, at, v)
    }

    /// A duplicate of a tree task's descriptor, taken with pidfd_getfd (the task
    /// is frozen; its own fd table is left as it is).
    pub(crate) fn dup(&mut self, at: Pid, fd: i32) -> Result<OwnedFd> {
        let pfd = match self.pidfds.get(&at.as_raw()) {
            Some(p) => p,
            None => {
                let p = pidfd::open(at)?;
                self.pidfds.entry(at.as_raw()).or_insert(p)
            }
        };
        Ok(pidfd::getfd(pfd, at, fd)?)
    }

    /// Classifies every description, now that the whole tree is listed.
    pub fn finish(mut self) -> Result<Saved> {
        let mut ctx = std::mem::take(&mut self.ctx);
        let pipes = pipe::Pipes::survey(&self.descs);
        let sockets = socket::Survey::new(&self.descs)?;
        let ptys = pty::Ptys::survey(&self.descs);
        let mut files = Vec::with_capacity(self.descs.len());
        for i in 0..self.descs.len() {
            let kind = self.classify(i, &pipes, &sockets, &ptys, &mut ctx)?;
            let d = &self.descs[i];
            let locks = locks::of(d, self.opts.file_locks)?;
            files.push(FileDesc { id: i as u32, flags: d.info.flags & !O_CLOEXEC, kind, locks });
        }
        // Socket peers are file ids, known only now.
        socket::link_peers(&mut files, &self.descs, &sockets);
        let fdtables = self
            .tables
            .iter()
            .map(|(pid, t)| FdTable {
                pid: pid.as_raw(),
                fds: t.iter().map(|&(fd, idx, cloexec)| FdEntry { fd, file: idx as u32, cloexec }).collect(),
                tty: None,
            })
            .collect();
        let (contents, data) = ctx.contents.into_iter().unzip();
        Ok(Saved {
            pty_index: ctx.pty_index,
            image: FilesImage { files, pipes: ctx.pipes, contents, ptys: ctx.ptys },
            fdtables,
            externals: ctx.externals,
            contents: data,
            tcp: std::mem::take(&mut self.tcp),
        })
    }

    fn classify(
        &mut self,
        i: usize,
        pipes: &pipe::Pipes,
        sockets: &socket::Survey,
        ptys: &pty::Ptys,
        ctx: &mut Ctx,
    ) -> Result<FileKind> {
        let (pid, at, fd) = self.descs[i].first();
        let link = self.descs[i].info.link.clone();
        if link.starts_with("pipe:[") {
            return pipe::classify(self, i, pipes, ctx);
        }
        if link.starts_with("socket:[") {
            return socket::classify(self, i, sockets, ctx);
        }
        if let Some(what) = link.strip_prefix("anon_inode:") {
            return anon::classify(self, i, what.trim_matches(|c| c == '[' || c == ']'));
        }
        if link.starts_with("/memfd:") {
            return content::memfd(self, i, ctx);
        }
        if !link.starts_with('/') {
            return Err(refuse(pid, fd, format_args!("an unsupported kind of file ({link})")));
        }
        let fd_path = proc::path(at, &format!("fd/{fd}"));
        let md = std::fs::metadata(&fd_path).map_err(|source| DumpError::Io {
            op: "stat open file",
            path: fd_path.clone(),
            source,
        })?;
        let ft = md.file_type();
        if link.ends_with(" (deleted)") {
            if ft.is_file() {
                return content::deleted(self, i, &md, ctx);
            }
            return Err(refuse(pid, fd, format_args!("a deleted file that is not a regular file ({link})")));
        }
        let path_md = std::fs::metadata(&link).ok();
        if path_md.as_ref().is_none_or(|p| p.ino() != md.ino() || p.dev() != md.dev()) {
            return Err(refuse(pid, fd, format_args!("{link}, no longer reachable by its path")));
        }
        let ftype = if ft.is_file() {
            FileType::Regular
        } else if ft.is_dir() {
            FileType::Directory
        } else if ft.is_char_device() {
            let (maj, min) = (nix::sys::stat::major(md.rdev()) as u32, nix::sys::stat::minor(md.rdev()) as u32);
            if let Some(kind) = pty::classify(self, i, maj, min, ptys, ctx)? {
                return Ok(kind);
            }
            if is_tty(maj) {
                let key = format!("tty[{:x}:{:x}]", md.rdev(), md.dev());
                ctx.external(&key, ExternalKind::Tty);
                return Ok(FileKind::External { key });
            }
            if !plain_chardev(maj, min) {
                return Err(refuse(pid, fd, format_args!("character device {link} ({maj}:{min})")));
            }
            FileType::CharDevice
        } else if ft.is_fifo() {
            return pipe::fifo(self, i, &link, pipes, ctx);
        } else {
            return Err(refuse(pid, fd, format_args!("{link}, a kind of file not supported")));
        };
        Ok(FileKind::Path(PathFile {
            path: link,
            ftype,
            pos: self.descs[i].info.pos,
            size: md.size(),
            mtime_ns: md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128,
            rdev: md.rdev(),
        }))
    }
}

/// What classification accumulates besides the descriptions.
#[derive(Default)]
pub(crate) struct Ctx {
    pub externals: Vec<External>,
    pub pipes: Vec<rckpt_images::files::PipeData>,
    /// Pipe inode -> index in `pipes`.
    pub pipe_index: HashMap<u64, u32>,
    pub contents: Vec<(rckpt_images::files::Content, ContentData)>,
    pub ptys: Vec<rckpt_images::files::PtyData>,
    /// Index of a pty (its /dev/pts number) -> index in `ptys`.
    pub pty_index: HashMap<u32, u32>,
    /// (dev, ino) of a file whose content is saved -> index in `contents`.
    pub content_index: HashMap<(u64, u64), u32>,
}

impl Ctx {
    pub fn external(&mut self, key: &str, kind: ExternalKind) {
        if !self.externals.iter().any(|e| e.key == key) {
            self.externals.push(External { key: key.to_string(), kind });
        }
    }
}

/// Whether the task `id` exists and has not exited (a zombie leader is gone).
pub fn leader_alive(id: i32) -> bool {
    proc::stat(Pid::from_raw(id)).is_ok_and(|s| s.state != 'Z' && s.state != 'X')
}

/// Everything outside the tree that the tree uses: its pipes, sockets and
/// terminals, and sessions and process groups whose leaders are outside.
pub fn externals(mut v: Vec<External>, tasks: &[TaskState], all_pids: &[i32]) -> Vec<External> {
    // Only ids whose leader lives outside the tree: a gone leader is rebuilt at
    // restore by a helper task instead.
    let outside = |id: i32| !all_pids.contains(&id) && leader_alive(id);
    for t in tasks {
        if outside(t.sid) {
            let key = format!("session:[{}]", t.sid);
            if !v.iter().any(|e| e.key == key) {
                v.push(External { key, kind: ExternalKind::Session });
            }
        }
        if outside(t.pgid) {
            let key = format!("pgrp:[{}]", t.pgid);
            if !v.iter().any(|e| e.key == key) {
                v.push(External { key, kind: ExternalKind::ProcessGroup });
            }
        }
    }
    v
}
