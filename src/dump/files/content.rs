//! Files whose bytes only the tree holds: memfds and files unlinked while open.
//! Their content is saved (up to a limit) in content-N.img, once per inode.

use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, MetadataExt};

use rckpt_images::files::{Content, FileKind};

use super::{Ctx, FileTable, refuse};
use crate::dump::{DumpError, Result};

/// The raw bytes of one content.
pub type ContentData = Vec<u8>;

fn read_all(file: &std::fs::File, len: u64) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    let mut done = 0usize;
    while done < buf.len() {
        let n = file.read_at(&mut buf[done..], done as u64)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    buf.truncate(done);
    Ok(buf)
}

/// The content index of the file behind description `i`, saving it if new.
fn save(table: &mut FileTable, i: usize, md: &std::fs::Metadata, what: &str, ctx: &mut Ctx) -> Result<u32> {
    let key = (md.dev(), md.ino());
    if let Some(c) = ctx.content_index.get(&key) {
        return Ok(*c);
    }
    let (pid, at, fd) = table.descs[i].first();
    if md.size() > table.opts.content_limit {
        return Err(refuse(
            pid,
            fd,
            format_args!("{what} of {} bytes, above the content limit of {}", md.size(), table.opts.content_limit),
        ));
    }
    // A separate description of the same file, so the task's offset stays.
    let path = crate::proc::path(at, &format!("fd/{fd}"));
    let file = std::fs::File::open(&path).map_err(|source| DumpError::Io { op: "open", path: path.clone(), source })?;
    let data = read_all(&file, md.size()).map_err(|source| DumpError::Io { op: "read", path, source })?;
    let content = Content { size: md.size(), data_len: data.len() as u64, crc32c: crc32c::crc32c(&data) };
    ctx.contents.push((content, data));
    let c = ctx.contents.len() as u32 - 1;
    ctx.content_index.insert(key, c);
    Ok(c)
}

pub fn memfd(table: &mut FileTable, i: usize, ctx: &mut Ctx) -> Result<FileKind> {
    let (pid, at, fd) = table.descs[i].first();
    let link = table.descs[i].info.link.clone();
    let name = link.trim_start_matches("/memfd:").trim_end_matches(" (deleted)").to_string();
    let dup = table.dup(at, fd)?;
    let seals = nix::fcntl::fcntl(dup.as_fd(), nix::fcntl::FcntlArg::F_GET_SEALS).unwrap_or(0) as u32;
    let md = std::fs::File::from(dup).metadata().map_err(|source| DumpError::Io {
        op: "stat",
        path: link.clone().into(),
        source,
    })?;
    if !md.is_file() {
        return Err(refuse(pid, fd, format_args!("{link}, a memfd of an unsupported kind (hugetlb?)")));
    }
    let content = save(table, i, &md, "a memfd", ctx)?;
    Ok(FileKind::Memfd { name, seals, pos: table.descs[i].info.pos, content })
}

pub fn deleted(table: &mut FileTable, i: usize, md: &std::fs::Metadata, ctx: &mut Ctx) -> Result<FileKind> {
    let link = table.descs[i].info.link.clone();
    let path = link.trim_end_matches(" (deleted)").to_string();
    let content = save(table, i, md, "a deleted file", ctx)?;
    Ok(FileKind::Deleted { path, mode: md.mode() & 0o7777, pos: table.descs[i].info.pos, content })
}
