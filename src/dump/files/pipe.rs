//! Pipes and FIFOs. A pipe is the tree's own when both its ends are held in the
//! tree; its unread data is duplicated with tee(2) (nothing is consumed) into a
//! pipe of rckpt's and read there. Otherwise it belongs to the outside world and
//! is an external.

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags, fcntl, tee};
use rckpt_images::files::{FileKind, PipeData};
use rckpt_images::inventory::ExternalKind;

use super::{Ctx, Desc, FileTable, refuse};
use crate::dump::{DumpError, Result};
use crate::proc;
use crate::sys::SysError;

/// For each pipe inode, a description holding its read end and one holding its
/// write end, if the tree has them.
#[derive(Default)]
pub struct Pipes {
    ends: HashMap<u64, (Option<usize>, Option<usize>)>,
}

/// The pipe inode behind a description: `pipe:[ino]`, or a FIFO by path.
fn pipe_ino(d: &Desc) -> Option<u64> {
    if let Some(ino) = d.info.link.strip_prefix("pipe:[").and_then(|s| s.strip_suffix(']')) {
        return ino.parse().ok();
    }
    if !d.info.link.starts_with('/') {
        return None;
    }
    let (_, at, fd) = d.first();
    let md = std::fs::metadata(proc::path(at, &format!("fd/{fd}"))).ok()?;
    use std::os::unix::fs::FileTypeExt;
    md.file_type().is_fifo().then_some(md.ino())
}

impl Pipes {
    pub fn survey(descs: &[Desc]) -> Pipes {
        let mut p = Pipes::default();
        for (i, d) in descs.iter().enumerate() {
            let Some(ino) = pipe_ino(d) else { continue };
            let acc = d.info.flags & libc::O_ACCMODE as u32;
            let e = p.ends.entry(ino).or_default();
            if acc == libc::O_RDONLY as u32 || acc == libc::O_RDWR as u32 {
                e.0.get_or_insert(i);
            }
            if acc == libc::O_WRONLY as u32 || acc == libc::O_RDWR as u32 {
                e.1.get_or_insert(i);
            }
        }
        p
    }
}

fn sys(op: &'static str) -> impl FnOnce(nix::errno::Errno) -> DumpError {
    move |errno| DumpError::Sys(SysError::Os { op, errno })
}

/// The unread bytes of the pipe whose read end is description `r`.
fn data(table: &mut FileTable, r: usize, ino: u64, ctx: &mut Ctx) -> Result<u32> {
    if let Some(i) = ctx.pipe_index.get(&ino) {
        return Ok(*i);
    }
    let (pid, at, fd) = table.descs[r].first();
    let end = table.dup(at, fd)?;
    let size = fcntl(&end, FcntlArg::F_GETPIPE_SZ).map_err(sys("size a pipe"))? as u32;
    let (our_r, our_w): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(sys("create a pipe"))?;
    if fcntl(&our_w, FcntlArg::F_SETPIPE_SZ(size as i32)).is_err() {
        return Err(refuse(
            pid,
            fd,
            format_args!("a pipe of {size} bytes, larger than rckpt can copy (pipe-max-size)"),
        ));
    }
    // tee duplicates what is buffered without consuming it.
    let n = match tee(end.as_fd(), our_w.as_fd(), size as usize, SpliceFFlags::SPLICE_F_NONBLOCK) {
        Ok(n) => n,
        Err(nix::errno::Errno::EAGAIN) => 0,
        Err(e) => return Err(sys("copy a pipe's data")(e)),
    };
    let mut buf = vec![0u8; n];
    std::fs::File::from(our_r).read_exact(&mut buf).map_err(|source| DumpError::Io {
        op: "read a pipe's data",
        path: "pipe".into(),
        source,
    })?;
    ctx.pipes.push(PipeData { size, data: buf });
    let i = ctx.pipes.len() as u32 - 1;
    ctx.pipe_index.insert(ino, i);
    Ok(i)
}

pub fn classify(table: &mut FileTable, i: usize, pipes: &Pipes, ctx: &mut Ctx) -> Result<FileKind> {
    let ino = pipe_ino(&table.descs[i]).expect("a pipe");
    match pipes.ends.get(&ino) {
        Some(&(Some(r), Some(_))) => Ok(FileKind::Pipe { pipe: data(table, r, ino, ctx)? }),
        _ => {
            let key = format!("pipe:[{ino}]");
            ctx.external(&key, ExternalKind::Pipe);
            Ok(FileKind::External { key })
        }
    }
}

/// A FIFO: reopened by path at restore, with the data its buffer holds if the
/// tree can read it.
pub fn fifo(table: &mut FileTable, i: usize, path: &str, pipes: &Pipes, ctx: &mut Ctx) -> Result<FileKind> {
    let ino = pipe_ino(&table.descs[i]).expect("a FIFO");
    let pipe = match pipes.ends.get(&ino) {
        Some(&(Some(r), _)) => data(table, r, ino, ctx)?,
        _ => {
            if let Some(i) = ctx.pipe_index.get(&ino) {
                *i
            } else {
                ctx.pipes.push(PipeData { size: 65536, data: Vec::new() });
                let n = ctx.pipes.len() as u32 - 1;
                ctx.pipe_index.insert(ino, n);
                n
            }
        }
    };
    Ok(FileKind::Fifo { path: path.to_string(), pipe })
}
