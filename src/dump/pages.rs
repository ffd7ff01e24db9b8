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
use rckpt_images::mm::{PAGE_SIZE, PageExtent, PageRange};
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
/// Runs of saved pages, in address order, each inside one VMA, less the
/// `skip` ranges (sorted; pages shared with the parent).
pub fn scan(pid: crate::sys::Pid, plan: &MmPlan, skip: &[PageRange]) -> Result<Vec<(u64, u64, bool)>> {
    let pm = Pagemap::open(pid)?;
    let mut out = Vec::new();
    let mut regions = Vec::new();
    for p in &plan.vmas {
        if !p.vma.kind.has_pages(p.vma.shared) {
            continue;
        }
        regions.clear();
        pm.scan(p.vma.start, p.vma.end, WANT, &mut regions)?;
        for r in &regions {
            subtract(r.start, r.end, skip, |s, e| out.push((s, e, p.readable)));
        }
    }
    Ok(out)
}

/// Calls `f` with the pieces of [start, end) outside every range of `skip`.
fn subtract(start: u64, end: u64, skip: &[PageRange], mut f: impl FnMut(u64, u64)) {
    let mut at = start;
    let first = skip.partition_point(|r| r.start + r.nr_pages * PAGE_SIZE <= start);
    for r in &skip[first..] {
        if r.start >= end {
            break;
        }
        if r.start > at {
            f(at, r.start);
        }
        at = at.max(r.start + r.nr_pages * PAGE_SIZE);
    }
    if at < end {
        f(at, end);
    }
}

/// The pages of a child that are still the very page its parent has at the same
/// address (copy-on-write after fork, written by neither), in VMAs the two map
/// alike. They are not saved for the child: restore has the child inherit them
/// from its restored parent, so a forked tree comes back at its real footprint.
/// Needs page frame numbers in /proc/PID/pagemap (CAP_SYS_ADMIN); without them
/// nothing is shared and every page is saved.
pub fn shared_with_parent(
    child: crate::sys::Pid,
    cplan: &MmPlan,
    parent: crate::sys::Pid,
    pplan: &MmPlan,
) -> Result<Vec<PageRange>> {
    const PRESENT: u64 = 1 << 63;
    const PFN: u64 = (1 << 55) - 1;
    let (cpm, ppm) = (Pagemap::open(child)?, Pagemap::open(parent)?);
    let mut out: Vec<PageRange> = Vec::new();
    let mut regions = Vec::new();
    for c in &cplan.vmas {
        if !c.vma.kind.has_pages(c.vma.shared)
            || !pplan.vmas.iter().any(|p| super::mm::same_vma(cplan, &c.vma, pplan, &p.vma))
        {
            continue;
        }
        regions.clear();
        cpm.scan(c.vma.start, c.vma.end, WANT, &mut regions)?;
        // Ranges never cross a VMA boundary (restore keeps them VMA by VMA).
        let first = out.len();
        for r in &regions {
            let n = ((r.end - r.start) / PAGE_SIZE) as usize;
            let (ce, pe) = (cpm.entries(r.start, n)?, ppm.entries(r.start, n)?);
            for i in 0..n {
                let same =
                    ce[i] & PRESENT != 0 && pe[i] & PRESENT != 0 && ce[i] & PFN != 0 && ce[i] & PFN == pe[i] & PFN;
                if !same {
                    continue;
                }
                let addr = r.start + i as u64 * PAGE_SIZE;
                let in_vma = out.len() > first;
                match out.last_mut() {
                    Some(l) if in_vma && l.start + l.nr_pages * PAGE_SIZE == addr => l.nr_pages += 1,
                    _ => out.push(PageRange { start: addr, nr_pages: 1 }),
                }
            }
        }
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
pub fn dump(
    inf: &mut Infected<'_>,
    owner: crate::sys::Pid,
    plan: &MmPlan,
    skip: &[PageRange],
    file: &mut File,
) -> Result<Vec<PageExtent>> {
    let pid = inf.pid();
    file.write_all_at(&pages::header(owner.as_raw()), 0).map_err(io("write pages header"))?;
    let runs = scan(pid, plan, skip)?;
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
        crate::progress::bytes(*batch_len);
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
                crate::progress::bytes(n as u64);
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
