//! The memory plan: the VMAs and page extents the trampoline maps and fills, a
//! place for the trampoline itself, and the check of the restored layout.

use rckpt_images::files::{ContentOrigin, FilesImage};
use rckpt_images::mm::{MmImage, PAGE_SIZE, VmaKind, vmflags};

use super::abi::*;
use super::{RestoreError, Result};
use crate::proc::maps;
use crate::sys::Pid;

/// Upper end of the user address space rckpt unmaps up to (4-level paging).
pub const TASK_SIZE: u64 = 0x7fff_ffff_f000;
const MMAP_MIN: u64 = 0x10000;
/// Room left below a stack for it to grow into.
const STACK_GAP: u64 = 8 << 20;

/// `mapped`: the keep index of each mapped file; `shared`: of each content of
/// shared memory.
pub fn blob_vmas(
    mm: &MmImage,
    mapped: &[i32],
    shared: &std::collections::HashMap<u32, i32>,
) -> Vec<(BlobVma, Option<String>)> {
    let mut out = Vec::new();
    for v in &mm.vmas {
        let (mut flags, keep, pgoff) = match &v.kind {
            VmaKind::Anon | VmaKind::Heap | VmaKind::Stack => {
                (libc::MAP_ANONYMOUS | if v.shared { libc::MAP_SHARED } else { libc::MAP_PRIVATE }, -1, 0)
            }
            VmaKind::File { file, offset } => {
                (if v.shared { libc::MAP_SHARED } else { libc::MAP_PRIVATE }, mapped[*file as usize], *offset)
            }
            VmaKind::Shared { content, offset } => (libc::MAP_SHARED, shared[content], *offset),
            VmaKind::Vvar | VmaKind::VvarVclock | VmaKind::Vdso | VmaKind::Vsyscall => continue,
        };
        if v.flags & vmflags::GROWSDOWN != 0 {
            flags |= libc::MAP_GROWSDOWN;
        }
        // Without it a large sparse reservation fails to map (ENOMEM) where the
        // commit limit is lower than its size.
        if v.flags & vmflags::NORESERVE != 0 {
            flags |= libc::MAP_NORESERVE;
        }
        let bits = [
            (vmflags::DONTFORK, MADV_BIT_DONTFORK),
            (vmflags::DONTDUMP, MADV_BIT_DONTDUMP),
            (vmflags::HUGEPAGE, MADV_BIT_HUGEPAGE),
            (vmflags::NOHUGEPAGE, MADV_BIT_NOHUGEPAGE),
            (vmflags::MERGEABLE, MADV_BIT_MERGEABLE),
            (vmflags::WIPEONFORK, MADV_BIT_WIPEONFORK),
            (vmflags::RANDOM, MADV_BIT_RANDOM),
            (vmflags::SEQUENTIAL, MADV_BIT_SEQUENTIAL),
        ];
        let mut madv = bits.iter().filter(|(f, _)| v.flags & f != 0).fold(0, |a, (_, b)| a | b);
        if v.flags & vmflags::LOCKONFAULT != 0 {
            madv |= MADV_BIT_MLOCK_ONFAULT;
        } else if v.flags & vmflags::LOCKED != 0 {
            madv |= MADV_BIT_MLOCK;
        }
        let has_pages = mm.extents.iter().any(|e| e.start < v.end && e.end() > v.start)
            || mm.prev_pages.iter().any(|r| r.start < v.end && r.start + r.nr_pages * PAGE_SIZE > v.start);
        let bv = BlobVma {
            start: v.start,
            end: v.end,
            prot: v.prot as u32,
            flags: flags as u32,
            keep,
            madv,
            pgoff,
            name: 0,
            has_pages: has_pages as u32,
            inherit: inherited(mm, v) as u32,
        };
        out.push((bv, v.anon_name.clone()));
    }
    out
}

/// A VMA the task keeps from its parent: it holds pages still shared with it
/// (validation made sure the parent maps it alike).
pub fn inherited(mm: &MmImage, v: &rckpt_images::mm::Vma) -> bool {
    mm.parent_pages.iter().any(|r| v.start <= r.start && r.start < v.end)
}

/// What to unmap before mapping the saved VMAs: everything in the user address
/// space but the trampoline's area and the inherited VMAs.
pub fn unmap_ranges(mm: &MmImage, area: (u64, u64)) -> Vec<BlobRange> {
    let mut keep: Vec<(u64, u64)> = vec![area];
    keep.extend(mm.vmas.iter().filter(|v| inherited(mm, v)).map(|v| (v.start, v.end)));
    keep.sort_unstable();
    let mut out = Vec::new();
    let mut at = 0u64;
    for (s, e) in keep {
        if s > at {
            out.push(BlobRange { start: at, len: s - at });
        }
        at = at.max(e);
    }
    if at < TASK_SIZE {
        out.push(BlobRange { start: at, len: TASK_SIZE - at });
    }
    out
}

/// In inherited VMAs, the pages the task had neither saved nor shared: they
/// must read as zero (or as the file) again.
pub fn discard_ranges(mm: &MmImage) -> Vec<BlobRange> {
    let mut have: Vec<(u64, u64)> = mm.extents.iter().map(|e| (e.start, e.end())).collect();
    have.extend(mm.parent_pages.iter().map(|r| (r.start, r.start + r.nr_pages * PAGE_SIZE)));
    have.sort_unstable();
    let mut out = Vec::new();
    for v in mm.vmas.iter().filter(|v| inherited(mm, v)) {
        let mut at = v.start;
        for &(s, e) in have.iter().filter(|(s, e)| *e > v.start && *s < v.end) {
            if s > at {
                out.push(BlobRange { start: at, len: s - at });
            }
            at = at.max(e);
        }
        if at < v.end {
            out.push(BlobRange { start: at, len: v.end - at });
        }
    }
    out
}

/// Extents this long and longer are checked by rckpt while the task reads
/// (shorter ones the task checks itself, while they are in its cache).
pub const CHECKED_BY_RCKPT_FROM: u64 = 1 << 20;

/// The task's own extents, then the pieces of the pages it takes from the
/// pre-dump (`prev`, its mm image there, which holds them all: checked).
/// `rckpt_checks`: long extents are left to rckpt's checker (`restore::check`).
pub fn extents(mm: &MmImage, prev: Option<&MmImage>, rckpt_checks: bool) -> Vec<BlobExtent> {
    let mut out: Vec<BlobExtent> = mm
        .extents
        .iter()
        .map(|e| BlobExtent {
            start: e.start,
            len: e.len(),
            file_off: e.offset,
            crc: e.crc32c,
            flags: if rckpt_checks && e.len() >= CHECKED_BY_RCKPT_FROM { EXTENT_RCKPT_CHECKS } else { 0 },
        })
        .collect();
    if let Some(pm) = prev {
        for r in &mm.prev_pages {
            let end = r.start + r.nr_pages * PAGE_SIZE;
            let mut at = r.start;
            while at < end {
                let i = pm.extents.partition_point(|e| e.end() <= at);
                let Some(e) = pm.extents.get(i).filter(|e| e.start <= at) else { break };
                let stop = e.end().min(end);
                out.push(BlobExtent {
                    start: at,
                    len: stop - at,
                    file_off: e.offset + (at - e.start),
                    crc: 0,
                    flags: EXTENT_PREV,
                });
                at = stop;
            }
        }
    }
    out
}

pub fn mm_map(mm: &MmImage) -> PrctlMmMap {
    let f = &mm.fields;
    PrctlMmMap {
        start_code: f.start_code,
        end_code: f.end_code,
        start_data: f.start_data,
        end_data: f.end_data,
        start_brk: f.start_brk,
        brk: f.brk,
        start_stack: f.start_stack,
        arg_start: f.arg_start,
        arg_end: f.arg_end,
        env_start: f.env_start,
        env_end: f.env_end,
        auxv: 0,
        auxv_size: 0,
        exe_fd: u32::MAX,
    }
}

/// A place for `size` bytes free in rckpt's own layout and in the saved one,
/// away from where stacks grow.
pub fn find_hole(mms: &[&MmImage], size: u64) -> Result<u64> {
    let mut busy: Vec<(u64, u64)> = vec![(0, MMAP_MIN)];
    let own = maps::maps(Pid::this()).map_err(|e| RestoreError::Invalid(format!("cannot read own maps: {e}")))?;
    for v in own.iter().filter(|v| v.name != "[vsyscall]") {
        let gap = if v.has("gd") || v.name == "[stack]" { STACK_GAP } else { 0 };
        busy.push((v.start.saturating_sub(gap), v.end));
    }
    for v in mms.iter().flat_map(|m| m.vmas.iter()).filter(|v| v.kind != VmaKind::Vsyscall) {
        let gap = if v.flags & vmflags::GROWSDOWN != 0 { STACK_GAP } else { 0 };
        busy.push((v.start.saturating_sub(gap), v.end));
    }
    busy.sort_unstable();
    let need = size + 2 * PAGE_SIZE;
    // Top-down, like the kernel's own mmap placement.
    let mut limit = TASK_SIZE;
    for &(s, e) in busy.iter().rev() {
        if e < limit && limit - e >= need {
            return Ok(limit - need + PAGE_SIZE);
        }
        limit = limit.min(s);
    }
    Err(RestoreError::Invalid(format!("no free place of {size} bytes for the restorer")))
}

/// One line of a layout: range, permissions, name.
type Line = (u64, u64, String, String);

fn coalesce(mut v: Vec<Line>) -> Vec<Line> {
    let mut out: Vec<Line> = Vec::new();
    v.sort();
    for l in v {
        match out.last_mut() {
            Some(p) if p.1 == l.0 && p.2 == l.2 && p.3 == l.3 => p.1 = l.1,
            _ => out.push(l),
        }
    }
    out
}

fn saved_name(mm: &MmImage, files: &FilesImage, v: &rckpt_images::mm::Vma) -> String {
    match &v.kind {
        VmaKind::Shared { content, .. } => match &files.contents[*content as usize].origin {
            ContentOrigin::Memfd { name, .. } => format!("/memfd:{name} (deleted)"),
            _ => "/dev/zero (deleted)".into(),
        },
        VmaKind::Heap => "[heap]".into(),
        VmaKind::Stack => "[stack]".into(),
        VmaKind::Vdso => "[vdso]".into(),
        VmaKind::Vvar => "[vvar]".into(),
        VmaKind::VvarVclock => "[vvar_vclock]".into(),
        VmaKind::Vsyscall => "[vsyscall]".into(),
        VmaKind::File { file, .. } => mm.files[*file as usize].path.clone(),
        VmaKind::Anon => v.anon_name.as_ref().map(|n| format!("[anon:{n}]")).unwrap_or_default(),
    }
}

/// Compares the task's layout with the saved one: same ranges, permissions and
/// backing. Adjacent twins the kernel merged are compared merged; the stack may
/// have grown down.
pub fn check_layout(pid: Pid, mm: &MmImage, files: &FilesImage) -> Result<()> {
    let now = maps::maps(pid).map_err(|e| RestoreError::Layout { pid: pid.as_raw(), what: e.to_string() })?;
    let mut a: Vec<Line> = now.iter().map(|v| (v.start, v.end, v.perms(), v.name.clone())).collect();
    let b: Vec<Line> = mm
        .vmas
        .iter()
        .map(|v| {
            let p = format!(
                "{}{}{}{}",
                if v.prot & 1 != 0 { 'r' } else { '-' },
                if v.prot & 2 != 0 { 'w' } else { '-' },
                if v.prot & 4 != 0 { 'x' } else { '-' },
                if v.shared { 's' } else { 'p' }
            );
            (v.start, v.end, p, saved_name(mm, files, v))
        })
        .collect();
    if let (Some(sa), Some(sb)) = (a.iter_mut().find(|l| l.3 == "[stack]"), b.iter().find(|l| l.3 == "[stack]"))
        && sa.1 == sb.1
        && sa.0 < sb.0
    {
        sa.0 = sb.0;
    }
    let (a, b) = (coalesce(a), coalesce(b));
    if a != b {
        let diff: Vec<String> = a
            .iter()
            .filter(|l| !b.contains(l))
            .map(|l| format!("+{:#x}-{:#x} {} {}", l.0, l.1, l.2, l.3))
            .chain(b.iter().filter(|l| !a.contains(l)).map(|l| format!("-{:#x}-{:#x} {} {}", l.0, l.1, l.2, l.3)))
            .take(8)
            .collect();
        return Err(RestoreError::Layout { pid: pid.as_raw(), what: diff.join("; ") });
    }
    Ok(())
}
