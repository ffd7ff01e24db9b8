//! Objects whose bytes only the tree holds: memfds, shared anonymous memory and
//! files unlinked while open. Their content is saved in content-N.img, once per
//! inode however many fds and mappings reach it, and only the ranges holding data
//! (SEEK_DATA/SEEK_HOLE): a sparse object costs what it holds.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::unistd::{Whence, lseek};
use rckpt_images::files::{Content, ContentExtent, ContentOrigin, FileKind};

use super::{Ctx, FileTable, refuse};
use crate::dump::{DumpError, Result};
use crate::proc::maps;
use crate::sys::Pid;

/// The raw bytes of one content: its extents, back to back.
pub type ContentData = Vec<u8>;

/// The ranges of `file` that hold data; the whole file when the filesystem
/// cannot tell.
fn data_extents(file: &File, size: u64) -> std::io::Result<Vec<ContentExtent>> {
    let mut out = Vec::new();
    let mut pos = 0u64;
    while pos < size {
        let start = match lseek(file.as_fd(), pos as i64, Whence::SeekData) {
            Ok(s) => s as u64,
            Err(Errno::ENXIO) => break,
            Err(Errno::EINVAL) if pos == 0 => return Ok(vec![ContentExtent { offset: 0, len: size }]),
            Err(e) => return Err(e.into()),
        };
        if start >= size {
            break;
        }
        let end = (lseek(file.as_fd(), start as i64, Whence::SeekHole)? as u64).min(size);
        out.push(ContentExtent { offset: start, len: end - start });
        pos = end;
    }
    Ok(out)
}

fn read_extents(file: &File, extents: &[ContentExtent]) -> std::io::Result<Vec<u8>> {
    let total: u64 = extents.iter().map(|e| e.len).sum();
    let mut buf = vec![0u8; total as usize];
    let mut at = 0usize;
    for e in extents {
        let dst = &mut buf[at..at + e.len as usize];
        file.read_exact_at(dst, e.offset)?;
        at += e.len as usize;
    }
    Ok(buf)
}

/// Saves the content of `file` (an object with `md`) unless saved already.
fn save(ctx: &mut Ctx, file: &File, md: &std::fs::Metadata, origin: ContentOrigin, path: PathBuf) -> Result<u32> {
    let key = (md.dev(), md.ino());
    if let Some(c) = ctx.content_index.get(&key) {
        return Ok(*c);
    }
    let io = |source| DumpError::Io { op: "read", path: path.clone(), source };
    let extents = data_extents(file, md.size()).map_err(io)?;
    let data = read_extents(file, &extents).map_err(io)?;
    let content =
        Content { origin, size: md.size(), extents, data_len: data.len() as u64, crc32c: crc32c::crc32c(&data) };
    ctx.contents.push((content, data));
    let c = ctx.contents.len() as u32 - 1;
    ctx.content_index.insert(key, c);
    Ok(c)
}

fn open(path: PathBuf) -> Result<(File, std::fs::Metadata)> {
    let file = File::open(&path).map_err(|source| DumpError::Io { op: "open", path: path.clone(), source })?;
    let md = file.metadata().map_err(|source| DumpError::Io { op: "stat", path, source })?;
    Ok((file, md))
}

fn seals(file: &File) -> u32 {
    nix::fcntl::fcntl(file.as_fd(), nix::fcntl::FcntlArg::F_GET_SEALS).unwrap_or(0) as u32
}

fn memfd_name(link: &str) -> String {
    link.trim_start_matches("/memfd:").trim_end_matches(" (deleted)").to_string()
}

/// A memfd held by an fd.
pub fn memfd(table: &mut FileTable, i: usize, ctx: &mut Ctx) -> Result<FileKind> {
    let (pid, at, fd) = table.descs[i].first();
    let link = table.descs[i].info.link.clone();
    // A separate description of the same file, so the task's offset stays.
    let (file, md) = open(crate::proc::path(at, &format!("fd/{fd}")))?;
    if !md.is_file() {
        return Err(refuse(pid, fd, format_args!("{link}, a memfd of an unsupported kind (hugetlb?)")));
    }
    let origin = ContentOrigin::Memfd { name: memfd_name(&link), seals: seals(&file) };
    let content = save(ctx, &file, &md, origin, link.into())?;
    Ok(FileKind::Memfd { pos: table.descs[i].info.pos, content })
}

/// A regular file unlinked while open (its content is saved up to the limit).
pub fn deleted(table: &mut FileTable, i: usize, md: &std::fs::Metadata, ctx: &mut Ctx) -> Result<FileKind> {
    let (pid, at, fd) = table.descs[i].first();
    let link = table.descs[i].info.link.clone();
    let key = (md.dev(), md.ino());
    if !ctx.content_index.contains_key(&key) && md.size() > table.opts.ghost_limit {
        return Err(refuse(
            pid,
            fd,
            format_args!(
                "{link}, a deleted file of {} bytes, above the limit of {} (--ghost-limit)",
                md.size(),
                table.opts.ghost_limit
            ),
        ));
    }
    let (file, md) = open(crate::proc::path(at, &format!("fd/{fd}")))?;
    let origin =
        ContentOrigin::Deleted { path: link.trim_end_matches(" (deleted)").to_string(), mode: md.mode() & 0o7777 };
    let content = save(ctx, &file, &md, origin, link.into())?;
    Ok(FileKind::Deleted { pos: table.descs[i].info.pos, content })
}

/// Shared memory a VMA maps (shared anonymous memory or a memfd): its content,
/// read through /proc/PID/map_files.
pub fn mapping(ctx: &mut Ctx, pid: Pid, at: Pid, v: &maps::Vma) -> Result<u32> {
    let path = crate::proc::path(at, &format!("map_files/{:x}-{:x}", v.start, v.end));
    let (file, md) = open(path.clone()).map_err(|e| match e {
        // Following a map_files link needs CAP_CHECKPOINT_RESTORE (Linux 5.9)
        // or CAP_SYS_ADMIN (proc_map_files_get_link).
        DumpError::Io { ref source, .. } if source.raw_os_error() == Some(libc::EPERM) => DumpError::Privilege {
            pid,
            cap: "CAP_CHECKPOINT_RESTORE",
            why: format!(
                "mapping {:#x}-{:#x} ({}) is shared memory, read through /proc/PID/map_files, which needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN",
                v.start, v.end, v.name
            ),
        },
        e => e,
    })?;
    if !md.is_file() {
        return Err(DumpError::Unsupported {
            pid,
            what: format!("mapping {:#x}-{:#x} ({}) is shared memory of an unsupported kind", v.start, v.end, v.name),
        });
    }
    let origin = if v.name.starts_with("/memfd:") {
        ContentOrigin::Memfd { name: memfd_name(&v.name), seals: seals(&file) }
    } else {
        ContentOrigin::SharedAnon
    };
    save(ctx, &file, &md, origin, path)
}
