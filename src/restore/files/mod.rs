//! Opening everything the restored task will hold, before it exists: the files of
//! its fd table (as the task's saved fsuid, fsgid and groups, never as root), the
//! files its VMAs map, its executable and working directory, and the externals
//! bound by the user. The trampoline moves them into place.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};

use nix::fcntl::{FcntlArg, fcntl};
use rckpt_images::ImageSet;
use rckpt_images::files::{FileKind, FileType, LockKind, PathFile};
use rckpt_images::mm::{VmaKind, vmflags};

mod kinds;
mod socket;
mod tcp;

pub use tcp::unlock as unlock_tcp;

use super::abi::{BlobEpoll, BlobLock, InstallFd, TTY_OP_FOREGROUND, TTY_OP_SCTTY};
use super::{RestoreError, RestoreOptions, Result};
use crate::sys::creds::FsCreds;

/// Descriptors rckpt holds for the whole tree: the trampoline keeps `keep[i]` at
/// fd_base + i in every task until the task has installed its own table.
#[derive(Default)]
pub struct FdSetup {
    pub keep: Vec<OwnedFd>,
    /// Per task, in the order `open_all` was given.
    pub tasks: Vec<TaskFds>,
    /// Keep index of each open file description already opened, so descriptions
    /// shared by several fds or processes stay shared.
    opened: Vec<(u32, i32)>,
    /// Keep index of each content of shared memory already kept.
    content_keep: HashMap<u32, i32>,
}

/// One task's share of the kept descriptors.
pub struct TaskFds {
    pub pid: i32,
    pub install: Vec<InstallFd>,
    pub pages: i32,
    /// The pre-dump's pages file of this task (-1: none).
    pub prev_pages: i32,
    pub exe: i32,
    pub cwd: i32,
    /// Keep index of each mapped file of the mm image (-1 when not mapped).
    pub mapped: Vec<i32>,
    /// Keep index of each content of shared memory the task maps.
    pub shared: HashMap<u32, i32>,
    /// Epoll registrations the task makes with its own fd numbers.
    pub epoll: Vec<BlobEpoll>,
    /// POSIX locks the task takes again (they belong to a process).
    pub locks: Vec<BlobLock>,
    /// TTY_OP_* on kept fd `tty_keep` (a pty slave of the tree).
    pub tty_op: u32,
    pub tty_keep: i32,
}

impl FdSetup {
    fn push(&mut self, fd: OwnedFd) -> i32 {
        self.keep.push(fd);
        self.keep.len() as i32 - 1
    }

    pub fn task(&self, pid: i32) -> &TaskFds {
        self.tasks.iter().find(|t| t.pid == pid).expect("opened for every live task")
    }
}

fn io(op: &'static str, path: &str) -> impl FnOnce(std::io::Error) -> RestoreError {
    let path = path.into();
    move |source| RestoreError::Io { op, path, source }
}

fn dup(fd: i32, what: &str) -> Result<OwnedFd> {
    let r = fcntl(crate::sys::borrowed(fd), FcntlArg::F_DUPFD_CLOEXEC(3))
        .map_err(|e| RestoreError::Usage(format!("cannot use {what} (fd {fd}): {e}")))?;
    Ok(crate::sys::owned_fd(r))
}

/// Kept flags of a saved description: access mode and status flags.
fn open_flags(flags: u32) -> i32 {
    let keep = libc::O_ACCMODE
        | libc::O_APPEND
        | libc::O_NONBLOCK
        | libc::O_NOATIME
        | libc::O_DSYNC
        | libc::O_SYNC
        | libc::O_DIRECT
        | libc::O_DIRECTORY;
    flags as i32 & keep
}

fn open_path(p: &PathFile, flags: u32) -> Result<OwnedFd> {
    let fl = open_flags(flags);
    let acc = fl & libc::O_ACCMODE;
    let f = OpenOptions::new()
        .read(acc == libc::O_RDONLY || acc == libc::O_RDWR)
        .write(acc == libc::O_WRONLY || acc == libc::O_RDWR)
        .custom_flags((fl & !libc::O_ACCMODE) | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(&p.path)
        .map_err(io("open", &p.path))?;
    let md = f.metadata().map_err(io("stat", &p.path))?;
    let ok = match p.ftype {
        FileType::Regular => md.is_file(),
        FileType::Directory => md.is_dir(),
        FileType::CharDevice => md.file_type().is_char_device() && md.rdev() == p.rdev,
    };
    if !ok {
        return Err(RestoreError::Mismatch(format!("{} is no longer a {:?}", p.path, p.ftype)));
    }
    if matches!(p.ftype, FileType::Regular | FileType::Directory) && p.pos > 0 {
        nix::unistd::lseek(&f, p.pos as i64, nix::unistd::Whence::SeekSet).map_err(|e| RestoreError::Io {
            op: "seek",
            path: p.path.clone().into(),
            source: std::io::Error::from(e),
        })?;
    }
    Ok(f.into())
}

fn shell_tty() -> Result<i32> {
    (0..3)
        .find(|fd| nix::unistd::isatty(crate::sys::borrowed(*fd)).unwrap_or(false))
        .ok_or_else(|| RestoreError::Usage("--shell-job: rckpt has no terminal on fd 0, 1 or 2".into()))
}

/// Opens everything every live task of the image needs.
pub fn open_all(set: &ImageSet, opts: &RestoreOptions, prev: Option<&super::read::PrevSet>) -> Result<FdSetup> {
    let mut s = FdSetup::default();
    let mut makers = kinds::Makers::new(&set.files, &opts.dir);
    for t in set.pstree.tasks.iter().filter(|t| !t.state.is_zombie()) {
        open_task(&mut s, &mut makers, set, t.pid, opts)?;
        if let Some(p) = prev.filter(|p| p.mms.contains_key(&t.pid)) {
            let path = super::read::pages_path(&p.dir, t.pid);
            let f = super::read::open_nofollow(&path).map_err(io("open", &path.to_string_lossy()))?;
            let k = s.push(f.into());
            s.tasks.last_mut().expect("just opened").prev_pages = k;
        }
    }
    makers.finish()?;
    Ok(s)
}

fn open_task(
    s: &mut FdSetup,
    makers: &mut kinds::Makers<'_>,
    set: &ImageSet,
    pid: i32,
    opts: &RestoreOptions,
) -> Result<()> {
    let core = &set.cores[&pid];
    let mm = &set.mms[&pid];
    let fdt = &set.fdtables[&pid];
    let pages_path = super::read::pages_path(&opts.dir, pid);
    let pages = super::read::open_nofollow(&pages_path).map_err(io("open", &pages_path.to_string_lossy()))?;
    let mut t = TaskFds {
        pid,
        install: Vec::new(),
        pages: s.push(pages.into()),
        prev_pages: -1,
        exe: -1,
        cwd: -1,
        mapped: vec![-1; mm.files.len()],
        shared: HashMap::new(),
        epoll: Vec::new(),
        locks: Vec::new(),
        tty_op: 0,
        tty_keep: -1,
    };
    if let Some(tty) = &fdt.tty {
        let slave = makers.pty_side(tty.pty, false, libc::O_RDWR as u32)?;
        t.tty_keep = s.push(slave);
        t.tty_op = if tty.leader { TTY_OP_SCTTY } else { 0 } | if tty.foreground { TTY_OP_FOREGROUND } else { 0 };
    }

    let c = &core.threads[0].creds;
    let _as_task = FsCreds::switch(c.uid[3], c.gid[3], &c.groups)?;
    for e in &fdt.fds {
        let keep = match s.opened.iter().find(|(id, _)| *id == e.file) {
            Some((_, k)) => *k,
            None => {
                let desc = &set.files.files[e.file as usize];
                let fd = match &desc.kind {
                    FileKind::Path(p) => {
                        let fd = open_path(p, desc.flags)?;
                        kinds::take_locks(&fd, desc)?;
                        fd
                    }
                    FileKind::External { key } => match opts.inherit.iter().find(|i| &i.key == key) {
                        Some(i) => dup(i.fd, &format!("--inherit-fd for {key}"))?,
                        None if opts.shell_job && key.starts_with("tty[") => dup(shell_tty()?, "the terminal")?,
                        None => return Err(RestoreError::Unbound { missing: vec![key.clone()] }),
                    },
                    _ => makers.make(desc)?,
                };
                let k = s.push(fd);
                s.opened.push((e.file, k));
                k
            }
        };
        t.install.push(InstallFd { keep: keep as u32, fd: e.fd, cloexec: e.cloexec as u32, _pad: 0 });
        let desc = &set.files.files[e.file as usize];
        // Per-process state of a description: done once, through the first fd.
        let first = fdt.fds.iter().find(|f| f.file == e.file).map(|f| f.fd) == Some(e.fd);
        if let FileKind::Epoll { owner, items } = &desc.kind
            && *owner == pid
            && first
        {
            for it in items {
                t.epoll.push(BlobEpoll { epfd: e.fd, tfd: it.tfd, events: it.events, _pad: 0, data: it.data });
            }
        }
        for l in desc.locks.iter().filter(|l| l.kind == LockKind::Posix && l.owner == pid && first) {
            t.locks.push(BlobLock { fd: e.fd, write: l.write as u32, start: l.start, len: l.len });
        }
    }
    for (i, f) in mm.files.iter().enumerate() {
        let used: Vec<_> =
            mm.vmas.iter().filter(|v| matches!(v.kind, VmaKind::File { file, .. } if file as usize == i)).collect();
        if used.is_empty() {
            continue;
        }
        let rw = used.iter().any(|v| v.shared && v.flags & vmflags::MAYWRITE != 0);
        let file = OpenOptions::new()
            .read(true)
            .write(rw)
            .custom_flags(libc::O_CLOEXEC)
            .open(&f.path)
            .map_err(io("open mapped file", &f.path))?;
        let size = file.metadata().map_err(io("stat mapped file", &f.path))?.size();
        if size != f.size {
            return Err(RestoreError::Mismatch(format!("mapped file {} changed size", f.path)));
        }
        t.mapped[i] = s.push(file.into());
    }
    for v in &mm.vmas {
        if let VmaKind::Shared { content, .. } = v.kind
            && !t.shared.contains_key(&content)
        {
            let k = match s.content_keep.get(&content) {
                Some(k) => *k,
                None => {
                    let fd = makers.content_fd(content)?.try_clone().map_err(io("duplicate", "shared memory"))?;
                    let k = s.push(fd);
                    s.content_keep.insert(content, k);
                    k
                }
            };
            t.shared.insert(content, k);
        }
    }
    if let Some(e) = mm.exe {
        let f = &mm.files[e as usize];
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&f.path)
            .map_err(io("open executable", &f.path))?;
        t.exe = s.push(file.into());
    }
    let cwd = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(&core.cwd)
        .map_err(io("open working directory", &core.cwd))?;
    t.cwd = s.push(cwd.into());
    s.tasks.push(t);
    Ok(())
}

/// The lowest fd number above every fd rckpt has open and every target fd.
pub fn fd_base(s: &FdSetup) -> Result<i32> {
    let own = std::fs::read_dir("/proc/self/fd")
        .map_err(io("list own fds", "/proc/self/fd"))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .max()
        .unwrap_or(0);
    let target = s.tasks.iter().flat_map(|t| t.install.iter()).map(|i| i.fd).max().unwrap_or(0);
    let kept = s.keep.iter().map(|f| f.as_raw_fd()).max().unwrap_or(0);
    Ok(own.max(target).max(kept) + 1)
}
