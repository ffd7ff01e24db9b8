//! Making a description of each kind again: pipes with their data, FIFOs,
//! sockets (pairs with their queues, bound and listening ones), eventfd,
//! signalfd, timerfd, inotify, epoll (its registrations are made by the task),
//! memfds and deleted files with their content, and flock/OFD locks.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, SealFlag, fcntl};
use rckpt_images::files::{Content, ContentOrigin, FileDesc, FileKind, FilesImage, Lock, LockKind};

use super::socket;
use crate::restore::{RestoreError, Result};
use crate::sys::SysError;

pub(super) fn sys(op: &'static str) -> impl FnOnce(Errno) -> RestoreError {
    move |errno| RestoreError::Sys(SysError::Os { op, errno })
}

fn io(op: &'static str, path: &str) -> impl FnOnce(std::io::Error) -> RestoreError {
    let path = path.into();
    move |source| RestoreError::Io { op, path, source }
}

/// A new description of the same file as `fd`, with `flags`.
pub(super) fn reopen(fd: &OwnedFd, flags: u32) -> Result<OwnedFd> {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let acc = flags as i32 & libc::O_ACCMODE;
    let f = OpenOptions::new()
        .read(acc != libc::O_WRONLY)
        .write(acc != libc::O_RDONLY)
        .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(&path)
        .map_err(io("reopen", &path))?;
    Ok(f.into())
}

/// The status flags of a description (O_NONBLOCK, O_APPEND, ...), as saved.
pub(super) fn set_flags(fd: &OwnedFd, flags: u32) -> Result<()> {
    let keep = libc::O_APPEND | libc::O_NONBLOCK | libc::O_ASYNC | libc::O_NOATIME | libc::O_DIRECT;
    fcntl(fd, FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags as i32 & keep))).map_err(sys("set file flags"))?;
    Ok(())
}

/// Everything made so far that later descriptions share.
pub struct Makers<'a> {
    pub image: &'a FilesImage,
    pub dir: &'a Path,
    /// Pipe index -> (read end, write end) not yet handed out.
    pipes: HashMap<u32, (Option<OwnedFd>, Option<OwnedFd>, OwnedFd)>,
    /// FIFO pipe index -> an O_RDWR holder keeping its buffer.
    fifos: HashMap<u32, OwnedFd>,
    /// Socket file id -> its end of a pair made for its peer.
    pub(super) pending: HashMap<u32, OwnedFd>,
    /// Content index -> the file holding it.
    contents: HashMap<u32, OwnedFd>,
    /// Pty index -> its master (until handed out), a master and a slave held.
    ptys: HashMap<u32, (Option<OwnedFd>, OwnedFd, OwnedFd)>,
    /// TCP connections made in repair mode, until `finish`.
    pub(super) tcp: Vec<super::tcp::Pending>,
}

impl<'a> Makers<'a> {
    pub fn new(image: &'a FilesImage, dir: &'a Path) -> Makers<'a> {
        Makers {
            image,
            dir,
            pipes: HashMap::new(),
            fifos: HashMap::new(),
            pending: HashMap::new(),
            contents: HashMap::new(),
            ptys: HashMap::new(),
            tcp: Vec::new(),
        }
    }

    /// Once every description is made: what waited for the others (TCP
    /// connections leave repair mode when both ends of a local one exist).
    pub fn finish(&mut self) -> Result<()> {
        super::tcp::finish(std::mem::take(&mut self.tcp))
    }

    /// A description of one of the tree's own kinds (not Path, not External).
    pub fn make(&mut self, d: &FileDesc) -> Result<OwnedFd> {
        let fd = match &d.kind {
            FileKind::Pipe { pipe } => self.pipe_end(*pipe, d.flags)?,
            FileKind::Fifo { path, pipe } => self.fifo_end(path, *pipe, d.flags)?,
            FileKind::Unix(_) => socket::unix(self, d)?,
            FileKind::Inet(s) => socket::inet(self, d, s)?,
            FileKind::EventFd { count, semaphore } => {
                let mut flags = libc::EFD_CLOEXEC;
                if *semaphore {
                    flags |= libc::EFD_SEMAPHORE;
                }
                // The count is 64-bit; eventfd(2) takes 32: write it instead.
                let fd = crate::sys::files::eventfd(0, flags)?;
                if *count > 0 {
                    std::fs::File::from(fd.try_clone().map_err(io("duplicate", "eventfd"))?)
                        .write_all(&count.to_ne_bytes())
                        .map_err(io("set an eventfd count", "eventfd"))?;
                }
                fd
            }
            FileKind::SignalFd { mask } => crate::sys::files::signalfd(*mask)?,
            FileKind::TimerFd(t) => crate::sys::files::timerfd(t.clock, t.interval_ns, t.value_ns, t.ticks)?,
            FileKind::Inotify { watches } => {
                let fd = crate::sys::files::inotify()?;
                for w in watches {
                    crate::sys::files::inotify_watch_at(&fd, w.wd, &w.path, w.mask)
                        .map_err(|e| RestoreError::Mismatch(format!("inotify watch {} on {}: {e}", w.wd, w.path)))?;
                }
                // The placeholders' IN_IGNORED events; the saved queue is not
                // kept (reading it would consume it).
                let mut sink = std::fs::File::from(fd.try_clone().map_err(io("duplicate", "inotify"))?);
                let mut buf = [0u8; 4096];
                while matches!(sink.read(&mut buf), Ok(n) if n > 0) {}
                fd
            }
            FileKind::Epoll { .. } => crate::sys::files::epoll()?,
            FileKind::Pty { pty, master } => self.pty_side(*pty, *master, d.flags)?,
            FileKind::Memfd { pos, content } | FileKind::Deleted { pos, content } => {
                let fd = reopen(self.content_fd(*content)?, d.flags)?;
                seek(&fd, *pos)?;
                fd
            }
            FileKind::Path(_) | FileKind::External { .. } => unreachable!("opened by the caller"),
        };
        if !matches!(d.kind, FileKind::Unix(_) | FileKind::Inet(_)) {
            set_flags(&fd, d.flags)?;
        }
        take_locks(&fd, d)?;
        Ok(fd)
    }

    fn pipe_end(&mut self, pipe: u32, flags: u32) -> Result<OwnedFd> {
        let write = flags as i32 & libc::O_ACCMODE != libc::O_RDONLY;
        if !self.pipes.contains_key(&pipe) {
            let p = &self.image.pipes[pipe as usize];
            let (r, w): (OwnedFd, OwnedFd) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(sys("create a pipe"))?;
            fcntl(&w, FcntlArg::F_SETPIPE_SZ(p.size as i32)).map_err(sys("size a pipe"))?;
            fill_pipe(&w, &p.data)?;
            let hold = reopen(&r, libc::O_RDWR as u32)?;
            self.pipes.insert(pipe, (Some(r), Some(w), hold));
        }
        let e = self.pipes.get_mut(&pipe).unwrap();
        let fresh = if write { e.1.take() } else { e.0.take() };
        match fresh {
            Some(fd) => Ok(fd),
            // Another description of the same end.
            None => reopen(&e.2, flags),
        }
    }

    fn fifo_end(&mut self, path: &str, pipe: u32, flags: u32) -> Result<OwnedFd> {
        if !self.fifos.contains_key(&pipe) {
            // O_RDWR never blocks on a FIFO and keeps its buffer alive while the
            // other ends are opened and the data written.
            let hold: OwnedFd = OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
                .open(path)
                .map_err(io("open FIFO", path))?
                .into();
            let p = &self.image.pipes[pipe as usize];
            fcntl(&hold, FcntlArg::F_SETPIPE_SZ(p.size as i32)).map_err(sys("size a FIFO"))?;
            fill_pipe(&hold, &p.data)?;
            self.fifos.insert(pipe, hold);
        }
        let acc = flags as i32 & libc::O_ACCMODE;
        let f = OpenOptions::new()
            .read(acc != libc::O_WRONLY)
            .write(acc != libc::O_RDONLY)
            .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOFOLLOW)
            .open(path)
            .map_err(io("open FIFO", path))?;
        Ok(f.into())
    }

    /// A side of pty `p`, the pair made the first time with the saved settings
    /// (the slave held meanwhile, so that they stay).
    pub fn pty_side(&mut self, p: u32, master: bool, flags: u32) -> Result<OwnedFd> {
        use crate::sys::pty;
        if !self.ptys.contains_key(&p) {
            let data = &self.image.ptys[p as usize];
            let m = pty::open_pair()?;
            let s = pty::peer(m.as_fd(), libc::O_RDWR)?;
            pty::set_termios(s.as_fd(), &data.termios)?;
            pty::set_winsize(s.as_fd(), data.winsize)?;
            if data.packet {
                pty::set_packet_mode(m.as_fd(), true)?;
            }
            let hold = m.try_clone().map_err(io("duplicate", "pty master"))?;
            self.ptys.insert(p, (Some(m), hold, s));
        }
        let e = self.ptys.get_mut(&p).expect("made above");
        if master {
            return e.0.take().ok_or_else(|| RestoreError::Invalid(format!("pty {p}: a second master")));
        }
        Ok(pty::peer(e.1.as_fd(), flags as i32)?)
    }

    /// The object holding content `c`, made and filled the first time: a memfd
    /// (sealed as saved), shared anonymous memory, or an unlinked file.
    pub fn content_fd(&mut self, c: u32) -> Result<&OwnedFd> {
        if !self.contents.contains_key(&c) {
            let meta: &Content = &self.image.contents[c as usize];
            let fd = match &meta.origin {
                ContentOrigin::Memfd { name, .. } => crate::sys::files::memfd(name)?,
                ContentOrigin::SharedAnon => crate::sys::files::shared_anon(meta.size)?,
                ContentOrigin::Deleted { path, mode } => unlinked_file(path, *mode)?,
            };
            self.fill(&fd, c)?;
            if let ContentOrigin::Memfd { seals, .. } = meta.origin
                && seals != 0
            {
                fcntl(&fd, FcntlArg::F_ADD_SEALS(SealFlag::from_bits_truncate(seals as i32)))
                    .map_err(sys("seal a memfd"))?;
            }
            self.contents.insert(c, fd);
        }
        Ok(&self.contents[&c])
    }

    /// Writes content `c` (from content-N.img, checked by its crc32c) into `fd`.
    fn fill(&self, fd: &OwnedFd, c: u32) -> Result<()> {
        let meta: &Content = &self.image.contents[c as usize];
        let name = rckpt_images::files::content_file_name(c as usize);
        let path = self.dir.join(&name);
        let mut f = crate::restore::read::open_nofollow(&path).map_err(io("open", &name))?;
        let mut data = Vec::with_capacity(meta.data_len as usize);
        Read::by_ref(&mut f).take(meta.data_len).read_to_end(&mut data).map_err(io("read", &name))?;
        if data.len() as u64 != meta.data_len || crc32c::crc32c(&data) != meta.crc32c {
            return Err(RestoreError::Image {
                file: name,
                source: rckpt_images::ImageError::Invalid("content checksum mismatch".into()),
            });
        }
        let file = std::fs::File::from(fd.try_clone().map_err(io("duplicate", &name))?);
        if !matches!(meta.origin, ContentOrigin::SharedAnon) {
            file.set_len(meta.size).map_err(io("size content", &name))?;
        }
        let mut at = 0usize;
        for e in &meta.extents {
            file.write_all_at(&data[at..at + e.len as usize], e.offset).map_err(io("write content", &name))?;
            at += e.len as usize;
        }
        Ok(())
    }
}

fn fill_pipe(w: &OwnedFd, data: &[u8]) -> Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    let mut f = std::fs::File::from(w.try_clone().map_err(io("duplicate", "pipe"))?);
    f.write_all(data).map_err(io("fill a pipe", "pipe"))
}

fn seek(fd: &OwnedFd, pos: u64) -> Result<()> {
    nix::unistd::lseek(fd, pos as i64, nix::unistd::Whence::SeekSet).map_err(sys("seek"))?;
    Ok(())
}

/// A file in the directory the deleted one was in, already unlinked.
fn unlinked_file(path: &str, mode: u32) -> Result<OwnedFd> {
    let dir = Path::new(path).parent().filter(|d| d.is_dir()).unwrap_or(Path::new("/tmp"));
    match OpenOptions::new().read(true).write(true).custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC).mode(mode).open(dir)
    {
        Ok(f) => Ok(f.into()),
        Err(_) => {
            let tmp = dir.join(format!(".rckpt-deleted-{}-{}", std::process::id(), rand_suffix()));
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(mode)
                .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
                .open(&tmp)
                .map_err(io("create", &tmp.to_string_lossy()))?;
            std::fs::remove_file(&tmp).map_err(io("unlink", &tmp.to_string_lossy()))?;
            Ok(f.into())
        }
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// Takes the flock and OFD locks of a description again (POSIX locks belong to
/// a process: its task takes them).
pub(super) fn take_locks(fd: &OwnedFd, d: &FileDesc) -> Result<()> {
    for l in d.locks.iter().filter(|l| l.kind != LockKind::Posix) {
        lock(fd, l).map_err(|e| {
            RestoreError::Mismatch(format!("file {}: cannot take its {:?} lock again: {e}", d.id, l.kind))
        })?;
    }
    Ok(())
}

/// Takes a flock or OFD lock on a description again.
fn lock(fd: &OwnedFd, l: &Lock) -> std::result::Result<(), Errno> {
    match l.kind {
        LockKind::Flock => {
            let op = if l.write {
                nix::fcntl::FlockArg::LockExclusiveNonblock
            } else {
                nix::fcntl::FlockArg::LockSharedNonblock
            };
            #[allow(deprecated)]
            nix::fcntl::flock(fd.as_raw_fd(), op)
        }
        LockKind::Ofd => crate::sys::files::ofd_lock(fd.as_fd(), l.write, l.start, l.len),
        LockKind::Posix => Ok(()),
    }
}
