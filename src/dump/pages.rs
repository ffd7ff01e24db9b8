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
use crate::sys::pagemap::{
    PAGE_IS_FILE, PAGE_IS_PFNZERO, PAGE_IS_PRESENT, PAGE_IS_SWAPPED, PAGE_IS_WRITTEN, Pagemap, Query,
};
use crate::sys::{RemoteAddr, SysError, mem::ProcMem};

const WANT: Query =
    Query { required: 0, excluded: PAGE_IS_PFNZERO | PAGE_IS_FILE, any_of: PAGE_IS_PRESENT | PAGE_IS_SWAPPED };

fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> DumpError {
    move |source| DumpError::Io { op, path: "pages file".into(), source }
}

const WRITTEN: Query = Query { required: PAGE_IS_WRITTEN, ..WANT };
const CLEAN: Query = Query { excluded: WANT.excluded | PAGE_IS_WRITTEN, ..WANT };

/// Runs of saved pages, in address order, each inside one VMA, less the
/// `skip` ranges (sorted; pages shared with the parent); and, given the
/// extents of the pre-dump this dump builds on, the pages written by nobody
/// since it (uffd write-protect still set) that it holds: those are taken from
/// it at restore instead.
pub fn scan(
    pid: crate::sys::Pid,
    plan: &MmPlan,
    skip: &[PageRange],
    prev: Option<&[PageExtent]>,
) -> Result<(Vec<(u64, u64, bool)>, Vec<PageRange>)> {
    let pm = Pagemap::open(pid)?;
    let mut out = Vec::new();
    let mut from_prev: Vec<PageRange> = Vec::new();
    let mut regions = Vec::new();
    for p in &plan.vmas {
        if !p.vma.kind.has_pages(p.vma.shared) {
            continue;
        }
        regions.clear();
        let Some(prev) = prev.filter(|_| p.readable) else {
            pm.scan(p.vma.start, p.vma.end, WANT, &mut regions)?;
            for r in &regions {
                subtract(r.start, r.end, skip, |s, e| out.push((s, e, p.readable)));
            }
            continue;
        };
        // Written since (or never protected): saved; clean and held by the
        // pre-dump: taken from it; clean but not in it: saved.
        let mut own: Vec<(u64, u64)> = Vec::new();
        pm.scan(p.vma.start, p.vma.end, WRITTEN, &mut regions)?;
        own.extend(regions.iter().map(|r| (r.start, r.end)));
        regions.clear();
        pm.scan(p.vma.start, p.vma.end, CLEAN, &mut regions)?;
        for r in &regions {
            split_by(r.start, r.end, prev, |s, e, held| {
                if held {
                    subtract(s, e, skip, |s, e| push_range(&mut from_prev, p.vma.start, s, e));
                } else {
                    own.push((s, e));
                }
            });
        }
        own.sort_unstable();
        for (s, e) in own {
            subtract(s, e, skip, |s, e| match out.last_mut() {
                Some(l) if l.1 == s && l.0 >= p.vma.start => l.1 = e,
                _ => out.push((s, e, true)),
            });
        }
    }
    Ok((out, from_prev))
}

/// Appends [s, e) to sorted ranges, joining the last one if it is adjacent and
/// in the same VMA (starting at `vma_start`).
fn push_range(v: &mut Vec<PageRange>, vma_start: u64, s: u64, e: u64) {
    match v.last_mut() {
        Some(l) if l.start + l.nr_pages * PAGE_SIZE == s && l.start >= vma_start => l.nr_pages += (e - s) / PAGE_SIZE,
        _ => v.push(PageRange { start: s, nr_pages: (e - s) / PAGE_SIZE }),
    }
}

/// Calls `f` with the pieces of [start, end), each inside or outside the
/// (sorted, disjoint) extents.
fn split_by(start: u64, end: u64, extents: &[PageExtent], mut f: impl FnMut(u64, u64, bool)) {
    let mut at = start;
    let first = extents.partition_point(|e| e.end() <= start);
    for e in &extents[first..] {
        if e.start >= end || at >= end {
            break;
        }
        if e.start > at {
            f(at, e.start, false);
            at = e.start;
        }
        let stop = e.end().min(end);
        f(at, stop, true);
        at = stop;
    }
    if at < end {
        f(at, end, false);
    }
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
    static MAX: std::sync::OnceLock<i32> = std::sync::OnceLock::new();
    let max = *MAX.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .unwrap_or(1 << 20)
    });
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

/// Pieces of extents that fill a pipe together, bound for the file at `off`:
/// (extent index, first piece of its extent, the range).
#[derive(Default)]
struct Batch {
    off: u64,
    len: u64,
    pieces: Vec<(usize, bool, DrainRange)>,
}

/// Asks the parasite for `batch` in the pipe of `slot`, then completes the
/// batch before it (emptying the other pipe while the parasite fills this one).
fn submit(
    inf: &mut Infected<'_>,
    pipes: &[Pipe; 2],
    file: &File,
    extents: &mut [PageExtent],
    inflight: &mut Option<(usize, Batch)>,
    slot: &mut usize,
    batch: Batch,
) -> Result<()> {
    if batch.pieces.is_empty() {
        return Ok(());
    }
    let ranges: Vec<DrainRange> = batch.pieces.iter().map(|(_, _, r)| *r).collect();
    inf.drain_request(*slot, &ranges)?;
    let prev = inflight.replace((*slot, batch));
    *slot ^= 1;
    if let Some(prev) = prev {
        complete(inf, pipes, file, extents, prev)?;
    }
    Ok(())
}

/// Takes the parasite's reply for the oldest batch (each piece's crc32c, folded
/// into its extent's) and moves its bytes from the pipe into the file.
fn complete(
    inf: &mut Infected<'_>,
    pipes: &[Pipe; 2],
    file: &File,
    extents: &mut [PageExtent],
    (slot, batch): (usize, Batch),
) -> Result<()> {
    let ranges: Vec<DrainRange> = batch.pieces.iter().map(|(_, _, r)| *r).collect();
    let crcs = inf.drain_reply(&ranges)?;
    for ((i, first, r), c) in batch.pieces.iter().zip(crcs) {
        let e = &mut extents[*i];
        e.crc32c = if *first { c } else { crc32c::crc32c_combine(e.crc32c, c, r.len as usize) };
    }
    splice_out(&pipes[slot], file, batch.off as i64, batch.len)?;
    // Start writing it back now, so the fsync at the end has little left to do.
    crate::sys::start_writeback(file.as_fd(), batch.off, batch.len);
    crate::progress::bytes(batch.len);
    Ok(())
}

/// Writes the pages file of process `owner` (the parasite runs in one of its
/// threads, whose leader may have exited).
/// The two pipes pages go through, made once per dump and lent to each
/// task's parasite in turn (empty between tasks).
pub struct Pipes([Pipe; 2]);

impl Pipes {
    pub fn new() -> Result<Pipes> {
        Ok(Pipes([pipe()?, pipe()?]))
    }
}

pub fn dump(
    inf: &mut Infected<'_>,
    owner: crate::sys::Pid,
    plan: &MmPlan,
    skip: &[PageRange],
    prev: Option<&[PageExtent]>,
    file: &mut File,
    pipes: &Pipes,
) -> Result<(Vec<PageExtent>, Vec<PageRange>)> {
    let pipes = &pipes.0;
    let pid = inf.pid();
    file.write_all_at(&pages::header(owner.as_raw()), 0).map_err(io("write pages header"))?;
    let (runs, from_prev) = scan(pid, plan, skip, prev)?;
    let mut extents: Vec<PageExtent> = Vec::with_capacity(runs.len());
    let mut off = pages::HEADER_LEN;
    for &(s, e, _) in &runs {
        extents.push(PageExtent { start: s, nr_pages: (e - s) / PAGE_SIZE, offset: off, crc32c: 0 });
        off += e - s;
    }
    file.set_len(off).map_err(io("size pages file"))?;

    // Two pipes: the parasite fills one while rckpt empties the other into the
    // file, so the task's copy and rckpt's run side by side.
    inf.set_pipes([&pipes[0].w, &pipes[1].w])?;
    let cap = pipes[0].size.min(pipes[1].size);
    let mem = ProcMem::open(pid, false)?;
    let mut buf = Vec::new();
    let mut cur = Batch::default();
    let mut inflight: Option<(usize, Batch)> = None;
    let mut slot = 0usize;
    for (i, &(start, end, readable)) in runs.iter().enumerate() {
        let ext_off = extents[i].offset;
        if !readable {
            submit(inf, &pipes, file, &mut extents, &mut inflight, &mut slot, std::mem::take(&mut cur))?;
            if let Some(prev) = inflight.take() {
                complete(inf, &pipes, file, &mut extents, prev)?;
            }
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
            if cur.pieces.is_empty() {
                cur.off = ext_off + (at - start);
            }
            let n = (end - at).min(cap - cur.len);
            cur.pieces.push((i, at == start, DrainRange { addr: at, len: n, crc: 0, _pad: 0 }));
            cur.len += n;
            at += n;
            if cur.len == cap || cur.pieces.len() == DRAIN_MAX_RANGES || at < end {
                submit(inf, &pipes, file, &mut extents, &mut inflight, &mut slot, std::mem::take(&mut cur))?;
            }
        }
    }
    submit(inf, &pipes, file, &mut extents, &mut inflight, &mut slot, cur)?;
    if let Some(prev) = inflight.take() {
        complete(inf, &pipes, file, &mut extents, prev)?;
    }
    Ok((extents, from_prev))
}
