//! Pages: found with PAGEMAP_SCAN (present or swapped, not the zero page, and in
//! private file mappings only pages no longer backed by the file), moved without
//! pinning: the parasite vmsplices them into a pipe that rckpt splices into the
//! pages file, computing each extent's crc32c on the way (in the task, in parallel
//! with rckpt's copy). Unreadable areas (PROT_NONE) are read with pread of
//! /proc/PID/mem, which does not pin either.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;

use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags, fcntl, splice};
use rckpt_images::mm::{PAGE_SIZE, PageExtent};
use rckpt_images::pages;

use super::mm::MmPlan;
use super::{DumpError, Result};
use crate::parasite::Infected;
use crate::parasite::abi::{DRAIN_MAX_RANGES, DrainRange};
use crate::sys::pagemap::{PAGE_IS_FILE, PAGE_IS_PFNZERO, PAGE_IS_PRESENT, PAGE_IS_SWAPPED, Pagemap, Query};
use crate::sys::{RemoteAddr, SysError, mem::ProcMem};

const WANT: Query =
    Query { required: 0, excluded: PAGE_IS_PFNZERO | PAGE_IS_FILE, any_of: PAGE_IS_PRESENT | PAGE_IS_SWAPPED };

fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> DumpError {
    move |source| DumpError::Io { op, path: "pages file".into(), source }
}

/// Runs of saved pages, in address order, each inside one VMA.
pub fn scan(pid: crate::sys::Pid, plan: &MmPlan) -> Result<Vec<(u64, u64, bool)>> {
    let pm = Pagemap::open(pid)?;
    let mut out = Vec::new();
    let mut regions = Vec::new();
    for p in &plan.vmas {
        if !p.vma.kind.has_pages(p.vma.shared) {
            continue;
        }
        regions.clear();
        pm.scan(p.vma.start, p.vma.end, WANT, &mut regions)?;
        out.extend(regions.iter().map(|r| (r.start, r.end, p.readable)));
    }
    Ok(out)
}

struct Pipe {
    r: OwnedFd,
    w: OwnedFd,
    size: u64,
}

fn pipe() -> Result<Pipe> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|errno| SysError::Os { op: "create a pipe", errno })?;
    let max = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .unwrap_or(1 << 20);
    let size = fcntl(&w, FcntlArg::F_SETPIPE_SZ(max.min(16 << 20)))
        .or_else(|_| fcntl(&w, FcntlArg::F_GETPIPE_SZ))
        .map_err(|errno| SysError::Os { op: "size a pipe", errno })?;
    Ok(Pipe { r, w, size: size as u64 })
}

/// Moves exactly `len` bytes from the pipe into `file` at `off`.
fn splice_out(p: &Pipe, file: &File, mut off: i64, mut len: u64) -> Result<()> {
    while len > 0 {
        let n = splice(p.r.as_fd(), None, file.as_fd(), Some(&mut off), len as usize, SpliceFFlags::SPLICE_F_MOVE)
            .map_err(|errno| SysError::Os { op: "splice pages into the image", errno })?;
        if n == 0 {
            return Err(SysError::Os { op: "splice pages into the image", errno: nix::errno::Errno::EPIPE }.into());
        }
        len -= n as u64;
    }
    Ok(())
}

/// Writes the pages file and returns its extents.
/// Writes the pages file of process `owner` (the parasite runs in one of its
/// threads, whose leader may have exited).
pub fn dump(inf: &mut Infected<'_>, owner: crate::sys::Pid, plan: &MmPlan, file: &mut File) -> Result<Vec<PageExtent>> {
    let pid = inf.pid();
    file.write_all_at(&pages::header(owner.as_raw()), 0).map_err(io("write pages header"))?;
    let runs = scan(pid, plan)?;
    let mut extents: Vec<PageExtent> = Vec::with_capacity(runs.len());
    let mut off = pages::HEADER_LEN;
    for &(s, e, _) in &runs {
        extents.push(PageExtent { start: s, nr_pages: (e - s) / PAGE_SIZE, offset: off, crc32c: 0 });
        off += e - s;
    }
    file.set_len(off).map_err(io("size pages file"))?;

    let p = pipe()?;
    inf.set_pipe(&p.w)?;
    let mem = ProcMem::open(pid, false)?;
    let mut buf = Vec::new();
    // A batch: pieces of extents that fit the pipe together; (extent index, piece).
    let mut batch: Vec<(usize, DrainRange)> = Vec::new();
    let mut batch_len = 0u64;
    let mut batch_off = 0u64;
    let flush = |inf: &mut Infected<'_>,
                 batch: &mut Vec<(usize, DrainRange)>,
                 batch_len: &mut u64,
                 batch_off: u64,
                 extents: &mut [PageExtent]|
     -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let ranges: Vec<DrainRange> = batch.iter().map(|(_, r)| *r).collect();
        let crcs = inf.drain(&ranges)?;
        for ((i, _), c) in batch.iter().zip(crcs) {
            extents[*i].crc32c = c;
        }
        splice_out(&p, file, batch_off as i64, *batch_len)?;
        batch.clear();
        *batch_len = 0;
        Ok(())
    };
    for (i, &(start, end, readable)) in runs.iter().enumerate() {
        let ext_off = extents[i].offset;
        if !readable {
            flush(inf, &mut batch, &mut batch_len, batch_off, &mut extents)?;
            let len = (end - start) as usize;
            buf.resize(len.min(1 << 20), 0);
            let mut done = 0usize;
            let mut crc = 0u32;
            while done < len {
                let n = buf.len().min(len - done);
                mem.read_exact(RemoteAddr(start + done as u64), &mut buf[..n])?;
                crc = crc32c::crc32c_append(crc, &buf[..n]);
                file.write_all_at(&buf[..n], ext_off + done as u64).map_err(io("write pages"))?;
                done += n;
            }
            extents[i].crc32c = crc;
            continue;
        }
        let mut at = start;
        while at < end {
            if batch.is_empty() {
                batch_off = extents[i].offset + (at - start);
            }
            let room = p.size - batch_len;
            let n = (end - at).min(room);
            // The crc of a piece continues from the previous piece of the extent.
            let crc = if at == start { 0 } else { extents[i].crc32c };
            batch.push((i, DrainRange { addr: at, len: n, crc, _pad: 0 }));
            batch_len += n;
            at += n;
            if batch_len == p.size || batch.len() == DRAIN_MAX_RANGES || at < end {
                flush(inf, &mut batch, &mut batch_len, batch_off, &mut extents)?;
            }
        }
    }
    flush(inf, &mut batch, &mut batch_len, batch_off, &mut extents)?;
    Ok(extents)
}
