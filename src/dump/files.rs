//! The descriptor table: each open file description once (kcmp tells which fds
//! share one), regular files and directories by path, the harmless character
//! devices, and pipes and terminals from outside the tree as named externals. Any
//! other kind refuses the dump, naming the fd.

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use rckpt_images::fdinfo::{FdEntry, FdTable};
use rckpt_images::files::{FileDesc, FileKind, FileType, FilesImage, PathFile};
use rckpt_images::inventory::{External, ExternalKind};

use super::core::TaskState;
use super::{DumpError, Result};
use crate::proc::{self, fds};
use crate::sys::{Pid, task};

const O_CLOEXEC: u32 = libc::O_CLOEXEC as u32;

/// Every open file description of the tree, once, and each process's fd table.
#[derive(Default)]
pub struct FileTable {
    pub files: Vec<FileDesc>,
    pub externals: Vec<External>,
    /// (link, pid, fd, id) of the descriptions found so far, to find shared ones.
    seen: Vec<(String, Pid, i32, u32)>,
    /// (pipe inode, write end) of every pipe end in the tree.
    pipe_ends: Vec<(u64, bool)>,
}

/// Character devices that hold no state worth saving: reopened by path.
fn plain_chardev(major: u32, minor: u32) -> bool {
    major == 1 && matches!(minor, 3 | 5 | 7 | 8 | 9)
}

fn is_tty(major: u32) -> bool {
    // 4: virtual consoles and serial ports; 5: /dev/tty, console, ptmx; 136-143: pty slaves.
    major == 4 || major == 5 || (136..=143).contains(&major)
}

fn kind_of_link(link: &str) -> &str {
    if link.starts_with("socket:") {
        "a socket"
    } else if link.starts_with("anon_inode:") {
        link.trim_start_matches("anon_inode:")
    } else {
        "an unsupported kind of file"
    }
}

impl FileTable {
    /// Adds `pid`'s descriptors and returns its fd table. Descriptions shared
    /// with a process added before (by fork or dup) get the same id: kcmp tells.
    pub fn add_process(&mut self, pid: Pid) -> Result<FdTable> {
        let infos: Vec<fds::FdInfo> =
            fds::list(pid)?.into_iter().map(|fd| fds::info(pid, fd)).collect::<std::result::Result<_, _>>()?;
        let mut table = FdTable { pid: pid.as_raw(), fds: Vec::new() };
        for info in &infos {
            let fd = info.fd;
            let shared_with = self
                .seen
                .iter()
                .filter(|(l, _, _, _)| *l == info.link)
                .find(|(_, p, other, _)| task::kcmp_file(pid, fd, *p, *other).unwrap_or(false))
                .map(|(_, _, _, id)| *id);
            let id = match shared_with {
                Some(id) => id,
                None => {
                    let id = self.files.len() as u32;
                    let flags = info.flags & !O_CLOEXEC;
                    let kind = classify(pid, info, &mut self.externals, &mut self.pipe_ends)?;
                    self.files.push(FileDesc { id, flags, kind });
                    self.seen.push((info.link.clone(), pid, fd, id));
                    id
                }
            };
            table.fds.push(FdEntry { fd, file: id, cloexec: info.flags & O_CLOEXEC != 0 });
        }
        // A pipe with both ends in the tree is not external; it comes with issue 4.
        for (ino, _) in &self.pipe_ends {
            let r = self.pipe_ends.iter().any(|(i, w)| i == ino && !w);
            let w = self.pipe_ends.iter().any(|(i, w)| i == ino && *w);
            if r && w {
                return Err(DumpError::Unsupported {
                    pid,
                    what: format!("pipe:[{ino}] has both ends inside the tree"),
                });
            }
        }
        Ok(table)
    }

    pub fn image(&self) -> FilesImage {
        FilesImage { files: self.files.clone() }
    }
}

fn classify(
    pid: Pid,
    info: &fds::FdInfo,
    externals: &mut Vec<External>,
    pipe_ends: &mut Vec<(u64, bool)>,
) -> Result<FileKind> {
    let fd = info.fd;
    let link = info.link.as_str();
    if let Some(ino) = link.strip_prefix("pipe:[").and_then(|s| s.strip_suffix(']')).and_then(|s| s.parse::<u64>().ok())
    {
        let write = info.flags & libc::O_ACCMODE as u32 != libc::O_RDONLY as u32;
        pipe_ends.push((ino, write));
        let key = format!("pipe:[{ino}]");
        if !externals.iter().any(|e| e.key == key) {
            externals.push(External { key: key.clone(), kind: ExternalKind::Pipe });
        }
        return Ok(FileKind::External { key });
    }
    if !link.starts_with('/') {
        return Err(DumpError::Unsupported { pid, what: format!("fd {fd} is {} ({link})", kind_of_link(link)) });
    }
    if link.ends_with(" (deleted)") {
        return Err(DumpError::Unsupported { pid, what: format!("fd {fd} is a file that was deleted ({link})") });
    }
    let fd_path = proc::path(pid, &format!("fd/{fd}"));
    let md = std::fs::metadata(&fd_path).map_err(|source| DumpError::Io {
        op: "stat open file",
        path: fd_path.clone(),
        source,
    })?;
    let ft = md.file_type();
    let path_md = std::fs::metadata(link).ok();
    if path_md.as_ref().is_none_or(|p| p.ino() != md.ino() || p.dev() != md.dev()) {
        return Err(DumpError::Unsupported {
            pid,
            what: format!("fd {fd}: {link} is no longer reachable by its path"),
        });
    }
    let ftype = if ft.is_file() {
        FileType::Regular
    } else if ft.is_dir() {
        FileType::Directory
    } else if ft.is_char_device() {
        let (maj, min) = (nix::sys::stat::major(md.rdev()) as u32, nix::sys::stat::minor(md.rdev()) as u32);
        if is_tty(maj) {
            let key = format!("tty[{:x}:{:x}]", md.rdev(), md.dev());
            if !externals.iter().any(|e| e.key == key) {
                externals.push(External { key: key.clone(), kind: ExternalKind::Tty });
            }
            return Ok(FileKind::External { key });
        }
        if !plain_chardev(maj, min) {
            return Err(DumpError::Unsupported {
                pid,
                what: format!("fd {fd} is character device {link} ({maj}:{min})"),
            });
        }
        FileType::CharDevice
    } else if ft.is_fifo() {
        return Err(DumpError::Unsupported { pid, what: format!("fd {fd} is a FIFO ({link})") });
    } else {
        return Err(DumpError::Unsupported { pid, what: format!("fd {fd} is {link}, a kind of file not supported") });
    };
    Ok(FileKind::Path(PathFile {
        path: link.to_string(),
        ftype,
        pos: info.pos,
        size: md.size(),
        mtime_ns: md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128,
        rdev: md.rdev(),
    }))
}

/// Whether the task `id` exists and has not exited (a zombie leader is gone).
pub fn leader_alive(id: i32) -> bool {
    proc::stat(Pid::from_raw(id)).is_ok_and(|s| s.state != 'Z' && s.state != 'X')
}

/// Everything outside the tree that the tree uses: its pipes and terminals, and
/// sessions and process groups whose leaders are outside.
pub fn externals(files: &FileTable, tasks: &[TaskState], all_pids: &[i32]) -> Vec<External> {
    let mut v = files.externals.clone();
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
