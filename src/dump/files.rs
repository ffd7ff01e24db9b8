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

pub struct FdPlan {
    pub fds: Vec<FdEntry>,
    pub files: Vec<FileDesc>,
    pub externals: Vec<External>,
}

const O_CLOEXEC: u32 = libc::O_CLOEXEC as u32;

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

pub fn collect(pid: Pid) -> Result<FdPlan> {
    let mut plan = FdPlan {
        fds: Vec::new(),
        files: Vec::new(),
        externals: Vec::new(),
    };
    let infos: Vec<fds::FdInfo> = fds::list(pid)?
        .into_iter()
        .map(|fd| fds::info(pid, fd))
        .collect::<std::result::Result<_, _>>()?;
    // (link, fd, file id) of the descriptions found so far, to find shared ones.
    let mut seen: Vec<(String, i32, u32)> = Vec::new();
    let mut pipe_ends: Vec<(u64, bool)> = Vec::new();
    for info in &infos {
        let fd = info.fd;
        let shared_with = seen
            .iter()
            .filter(|(l, _, _)| *l == info.link)
            .find(|(_, other, _)| task::kcmp_file(pid, fd, pid, *other).unwrap_or(false))
            .map(|(_, _, id)| *id);
        let id = match shared_with {
            Some(id) => id,
            None => {
                let id = plan.files.len() as u32;
                let flags = info.flags & !O_CLOEXEC;
                let kind = classify(pid, info, &mut plan.externals, &mut pipe_ends)?;
                plan.files.push(FileDesc { id, flags, kind });
                seen.push((info.link.clone(), fd, id));
                id
            }
        };
        plan.fds.push(FdEntry {
            fd,
            file: id,
            cloexec: info.flags & O_CLOEXEC != 0,
        });
    }
    // A pipe with both ends in the tree is not external; it comes with issue 4.
    for (ino, _) in &pipe_ends {
        let r = pipe_ends.iter().any(|(i, w)| i == ino && !w);
        let w = pipe_ends.iter().any(|(i, w)| i == ino && *w);
        if r && w {
            return Err(DumpError::Unsupported {
                pid,
                what: format!("pipe:[{ino}] has both ends inside the tree"),
            });
        }
    }
    Ok(plan)
}

fn classify(
    pid: Pid,
    info: &fds::FdInfo,
    externals: &mut Vec<External>,
    pipe_ends: &mut Vec<(u64, bool)>,
) -> Result<FileKind> {
    let fd = info.fd;
    let link = info.link.as_str();
    if let Some(ino) = link
        .strip_prefix("pipe:[")
        .and_then(|s| s.strip_suffix(']'))
        .and_then(|s| s.parse::<u64>().ok())
    {
        let write = info.flags & libc::O_ACCMODE as u32 != libc::O_RDONLY as u32;
        pipe_ends.push((ino, write));
        let key = format!("pipe:[{ino}]");
        if !externals.iter().any(|e| e.key == key) {
            externals.push(External {
                key: key.clone(),
                kind: ExternalKind::Pipe,
            });
        }
        return Ok(FileKind::External { key });
    }
    if !link.starts_with('/') {
        return Err(DumpError::Unsupported {
            pid,
            what: format!("fd {fd} is {} ({link})", kind_of_link(link)),
        });
    }
    if link.ends_with(" (deleted)") {
        return Err(DumpError::Unsupported {
            pid,
            what: format!("fd {fd} is a file that was deleted ({link})"),
        });
    }
    let fd_path = proc::path(pid, &format!("fd/{fd}"));
    let md = std::fs::metadata(&fd_path).map_err(|source| DumpError::Io {
        op: "stat open file",
        path: fd_path.clone(),
        source,
    })?;
    let ft = md.file_type();
    let path_md = std::fs::metadata(link).ok();
    if path_md
        .as_ref()
        .is_none_or(|p| p.ino() != md.ino() || p.dev() != md.dev())
    {
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
        let (maj, min) = (
            nix::sys::stat::major(md.rdev()) as u32,
            nix::sys::stat::minor(md.rdev()) as u32,
        );
        if is_tty(maj) {
            let key = format!("tty[{:x}:{:x}]", md.rdev(), md.dev());
            if !externals.iter().any(|e| e.key == key) {
                externals.push(External {
                    key: key.clone(),
                    kind: ExternalKind::Tty,
                });
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
        return Err(DumpError::Unsupported {
            pid,
            what: format!("fd {fd} is a FIFO ({link})"),
        });
    } else {
        return Err(DumpError::Unsupported {
            pid,
            what: format!("fd {fd} is {link}, a kind of file not supported"),
        });
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

pub fn images(pid: Pid, plan: &FdPlan) -> (FilesImage, FdTable) {
    (
        FilesImage {
            files: plan.files.clone(),
        },
        FdTable {
            pid: pid.as_raw(),
            fds: plan.fds.clone(),
        },
    )
}

/// Everything outside the tree that the tree uses: its pipes and terminals, and
/// its session and process group when their leaders are outside.
pub fn externals(plan: &FdPlan, task: &TaskState) -> Vec<External> {
    let mut v = plan.externals.clone();
    let pid = task.pid.as_raw();
    if task.sid != pid {
        v.push(External {
            key: format!("session:[{}]", task.sid),
            kind: ExternalKind::Session,
        });
    }
    if task.pgid != pid {
        v.push(External {
            key: format!("pgrp:[{}]", task.pgid),
            kind: ExternalKind::ProcessGroup,
        });
    }
    v
}
