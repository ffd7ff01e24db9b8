//! `mm-PID.img`: the address space: every VMA with its backing, the mm fields that
//! PR_SET_MM_MAP takes, the auxv, the exe file, the vDSO, and where each saved page
//! extent lives in `pages-PID.img`.

use serde::{Deserialize, Serialize};

use crate::{ImageError, check};

pub fn file_name(pid: i32) -> String {
    format!("mm-{pid}.img")
}

pub const PAGE_SIZE: u64 = 4096;
/// Highest user address with 5-level paging; 4-level kernels stop at 0x7fff_ffff_f000.
pub const TASK_SIZE_MAX: u64 = 0x00ff_ffff_ffff_f000;
pub const VSYSCALL_START: u64 = 0xffff_ffff_ff60_0000;

pub const PROT_READ: u8 = 1;
pub const PROT_WRITE: u8 = 2;
pub const PROT_EXEC: u8 = 4;

/// VMA flags worth restoring (from smaps VmFlags).
pub mod vmflags {
    pub const GROWSDOWN: u32 = 1 << 0;
    pub const LOCKED: u32 = 1 << 1;
    pub const DONTFORK: u32 = 1 << 2;
    pub const DONTDUMP: u32 = 1 << 3;
    pub const HUGEPAGE: u32 = 1 << 4;
    pub const NOHUGEPAGE: u32 = 1 << 5;
    pub const MERGEABLE: u32 = 1 << 6;
    pub const WIPEONFORK: u32 = 1 << 7;
    pub const RANDOM: u32 = 1 << 8;
    pub const SEQUENTIAL: u32 = 1 << 9;
    pub const LOCKONFAULT: u32 = 1 << 10;
    /// "mw": a shared file mapping that may become writable (needs an O_RDWR file).
    pub const MAYWRITE: u32 = 1 << 11;
    /// "nr": mapped with MAP_NORESERVE (no swap space reserved, not counted
    /// against the commit limit). Mm image version 2 and later.
    pub const NORESERVE: u32 = 1 << 12;
    pub const ALL: u32 = (1 << 13) - 1;
    /// What mm image version 1 could hold.
    pub const ALL_V1: u32 = (1 << 12) - 1;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MmImage {
    pub pid: i32,
    pub fields: MmFields,
    /// The saved auxiliary vector, as (type, value) words, AT_NULL included.
    pub auxv: Vec<u64>,
    /// Index into `files` of the executable (mm->exe_file).
    pub exe: Option<u32>,
    /// Files mapped by VMAs (and the exe), each with what identifies its content.
    pub files: Vec<MappedFile>,
    pub vmas: Vec<Vma>,
    pub vdso: Option<Vdso>,
    /// Name of the pages file of this task.
    pub pages_file: String,
    /// Saved page extents, sorted by address, each inside one private VMA.
    pub extents: Vec<PageExtent>,
    /// Pages this task still shared with its parent (the same physical page, as
    /// after fork): not saved; restore keeps the parent's mapping of their VMA,
    /// which the task inherits when its parent creates it. Sorted, page ranges.
    pub parent_pages: Vec<PageRange>,
    /// Pages unchanged since the pre-dump this dump builds on (the inventory's
    /// `prev`): their bytes are in that image's pages file of the same task.
    /// Sorted, page ranges, none overlapping an extent or a parent range.
    pub prev_pages: Vec<PageRange>,
    /// In a pre-dump: the ranges whose writes are tracked (uffd write-protect)
    /// until the dump that builds on it.
    pub tracked: Vec<PageRange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRange {
    pub start: u64,
    pub nr_pages: u64,
}

impl PageRange {
    pub fn end(&self) -> Option<u64> {
        self.nr_pages.checked_mul(PAGE_SIZE).and_then(|l| self.start.checked_add(l))
    }
}

/// The fields of `struct prctl_mm_map` (less auxv and exe_fd).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MmFields {
    pub start_code: u64,
    pub end_code: u64,
    pub start_data: u64,
    pub end_data: u64,
    pub start_brk: u64,
    pub brk: u64,
    pub start_stack: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappedFile {
    pub path: String,
    pub size: u64,
    pub mtime_ns: i128,
    pub dev: u64,
    pub ino: u64,
    /// NT_GNU_BUILD_ID of an ELF file, when it has one.
    pub build_id: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub prot: u8,
    pub shared: bool,
    pub flags: u32,
    pub kind: VmaKind,
    /// PR_SET_VMA_ANON_NAME name of an anonymous VMA.
    pub anon_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VmaKind {
    Anon,
    Heap,
    Stack,
    /// Mapped from `files[file]` at byte offset `offset`.
    File {
        file: u32,
        offset: u64,
    },
    /// Shared memory (MAP_SHARED|MAP_ANONYMOUS or a memfd), its bytes in the
    /// files image's `contents[content]`, mapped at byte offset `offset`: every
    /// task mapping the same content shares it again.
    Shared {
        content: u32,
        offset: u64,
    },
    Vvar,
    VvarVclock,
    Vdso,
    Vsyscall,
}

impl VmaKind {
    /// Whether the VMA's pages are saved (private memory that may differ from any file).
    pub fn has_pages(&self, shared: bool) -> bool {
        match self {
            VmaKind::Anon | VmaKind::Heap | VmaKind::Stack => !shared,
            VmaKind::File { .. } => !shared,
            _ => false,
        }
    }
}

/// The vDSO and its data pages: restored at the saved place only when the running
/// kernel's vDSO has the same bytes and the data pages the same sizes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vdso {
    pub vvar_start: u64,
    pub vvar_size: u64,
    pub vvar_vclock_size: u64,
    pub vdso_start: u64,
    pub vdso_bytes: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageExtent {
    pub start: u64,
    pub nr_pages: u64,
    /// Byte offset in the pages file (page aligned, after its header page).
    pub offset: u64,
    pub crc32c: u32,
}

impl PageExtent {
    pub fn len(&self) -> u64 {
        self.nr_pages * PAGE_SIZE
    }
    pub fn end(&self) -> u64 {
        self.start + self.len()
    }
}

fn aligned(v: u64) -> bool {
    v % PAGE_SIZE == 0
}

impl MmImage {
    /// Checks the address space on its own. `pages_size` is the size of the pages
    /// file as the inventory lists it.
    pub fn validate(&self, pages_size: u64) -> Result<(), ImageError> {
        let pid = self.pid;
        check(self.vmas.len() <= 1 << 20, || format!("task {pid}: too many VMAs"))?;
        check(self.auxv.len() % 2 == 0 && self.auxv.len() <= 1024, || {
            format!("task {pid}: auxv length {}", self.auxv.len())
        })?;
        check(self.files.len() <= 1 << 20, || format!("task {pid}: too many mapped files"))?;
        for f in &self.files {
            crate::check_abs_path(&f.path)?;
            if let Some(b) = &f.build_id {
                check(b.len() <= 64, || format!("task {pid}: build-id too long"))?;
            }
        }
        if let Some(e) = self.exe {
            check((e as usize) < self.files.len(), || format!("task {pid}: exe file index {e}"))?;
        }
        let mut prev_end = 0u64;
        let mut vdso_seen = 0;
        for v in &self.vmas {
            let what = || format!("task {pid}: VMA {:#x}-{:#x}", v.start, v.end);
            check(aligned(v.start) && aligned(v.end) && v.start < v.end, || format!("{} is not page aligned", what()))?;
            check(v.start >= prev_end, || format!("{} overlaps or is out of order", what()))?;
            prev_end = v.end;
            if v.kind == VmaKind::Vsyscall {
                check(v.start == VSYSCALL_START, || format!("{}: vsyscall at the wrong place", what()))?;
            } else {
                check(v.end <= TASK_SIZE_MAX, || format!("{} is above the user address space", what()))?;
            }
            check(v.prot & !(PROT_READ | PROT_WRITE | PROT_EXEC) == 0, || format!("{}: protection bits", what()))?;
            check(v.flags & !vmflags::ALL == 0, || format!("{}: unknown flags", what()))?;
            if let Some(n) = &v.anon_name {
                check(n.len() < 80 && !n.contains('\0'), || format!("{}: anon name", what()))?;
            }
            match &v.kind {
                VmaKind::File { file, offset } => {
                    check((*file as usize) < self.files.len(), || format!("{}: file index {file}", what()))?;
                    check(aligned(*offset), || format!("{}: file offset not aligned", what()))?;
                }
                VmaKind::Shared { offset, .. } => {
                    check(v.shared && aligned(*offset), || format!("{}: shared memory mapping", what()))?;
                }
                VmaKind::Vvar | VmaKind::VvarVclock | VmaKind::Vdso => vdso_seen += 1,
                _ => {}
            }
        }
        if vdso_seen > 0 {
            let d = self
                .vdso
                .as_ref()
                .ok_or_else(|| ImageError::Invalid(format!("task {pid}: vDSO VMAs without vDSO data")))?;
            check(d.vdso_bytes.len() as u64 <= 64 * PAGE_SIZE && aligned(d.vdso_bytes.len() as u64), || {
                format!("task {pid}: vDSO of {} bytes", d.vdso_bytes.len())
            })?;
            let end = d.vvar_start.checked_add(d.vvar_size).and_then(|e| e.checked_add(d.vvar_vclock_size));
            check(end == Some(d.vdso_start), || format!("task {pid}: vDSO block is not contiguous"))?;
            // The block must be exactly the three VMAs restore maps it as.
            let find = |k: VmaKind| self.vmas.iter().find(|v| v.kind == k).map(|v| (v.start, v.end));
            let vdso_end = d.vdso_start.checked_add(d.vdso_bytes.len() as u64);
            check(find(VmaKind::Vvar) == Some((d.vvar_start, d.vvar_start + d.vvar_size)), || {
                format!("task {pid}: [vvar] does not match the vDSO block")
            })?;
            check(
                d.vvar_vclock_size == 0
                    || find(VmaKind::VvarVclock) == Some((d.vvar_start + d.vvar_size, d.vdso_start)),
                || format!("task {pid}: [vvar_vclock] does not match the vDSO block"),
            )?;
            check(vdso_end.is_some() && find(VmaKind::Vdso) == Some((d.vdso_start, vdso_end.unwrap())), || {
                format!("task {pid}: [vdso] does not match the vDSO bytes")
            })?;
            check(
                self.vmas
                    .iter()
                    .filter(|v| matches!(v.kind, VmaKind::Vvar | VmaKind::VvarVclock | VmaKind::Vdso))
                    .count()
                    <= 3,
                || format!("task {pid}: more than one vDSO"),
            )?;
        }
        crate::check_file_name(&self.pages_file)?;
        let mut vi = 0usize;
        let mut prev = 0u64;
        let mut next_off = crate::pages::HEADER_LEN;
        check(self.extents.len() <= 1 << 24, || format!("task {pid}: too many page extents"))?;
        for e in &self.extents {
            let what = || format!("task {pid}: page extent at {:#x}", e.start);
            check(aligned(e.start) && e.nr_pages > 0 && e.nr_pages <= TASK_SIZE_MAX / PAGE_SIZE, || {
                format!("{} is malformed", what())
            })?;
            check(e.start >= prev, || format!("{} overlaps or is out of order", what()))?;
            let end =
                e.start.checked_add(e.len()).ok_or_else(|| ImageError::Invalid(format!("{} overflows", what())))?;
            prev = end;
            while vi < self.vmas.len() && self.vmas[vi].end <= e.start {
                vi += 1;
            }
            let v = self.vmas.get(vi).ok_or_else(|| ImageError::Invalid(format!("{} is outside every VMA", what())))?;
            check(v.start <= e.start && end <= v.end, || format!("{} is not inside one VMA", what()))?;
            check(v.kind.has_pages(v.shared), || format!("{} is in a VMA whose pages are not saved", what()))?;
            // Extents are laid out back to back in address order: offsets are derived,
            // so a damaged offset is caught here, not by a read past the end.
            check(e.offset == next_off, || format!("{}: offset {} where {} was expected", what(), e.offset, next_off))?;
            next_off += e.len();
        }
        check(next_off == pages_size, || {
            format!("task {pid}: pages file holds {pages_size} bytes, extents need {next_off}")
        })?;
        let f = &self.fields;
        check(f.start_code <= f.end_code && f.start_data <= f.end_data && f.start_brk <= f.brk, || {
            format!("task {pid}: mm fields out of order")
        })?;
        check(f.arg_start <= f.arg_end && f.env_start <= f.env_end, || format!("task {pid}: arg/env bounds"))?;
        Ok(())
    }

    pub fn pages_len(&self) -> u64 {
        self.extents.iter().map(PageExtent::len).sum()
    }

    /// Whether `mine` and `theirs` (of `other`) map the same thing the same way:
    /// range, protection, flags, and backing (for files, the same file and offset).
    pub fn same_vma(&self, mine: &Vma, other: &MmImage, theirs: &Vma) -> bool {
        let backing = match (&mine.kind, &theirs.kind) {
            (VmaKind::File { file: a, offset: oa }, VmaKind::File { file: b, offset: ob }) => {
                let (fa, fb) = (self.files.get(*a as usize), other.files.get(*b as usize));
                oa == ob && fa.zip(fb).is_some_and(|(x, y)| x.path == y.path && x.dev == y.dev && x.ino == y.ino)
            }
            (a, b) => a == b,
        };
        backing
            && mine.start == theirs.start
            && mine.end == theirs.end
            && mine.prot == theirs.prot
            && mine.shared == theirs.shared
            && mine.flags == theirs.flags
            && mine.anon_name == theirs.anon_name
    }

    /// The VMA that holds [start, end), if one does (VMAs sorted, as validated).
    pub fn vma_holding(&self, start: u64, end: u64) -> Option<&Vma> {
        let i = self.vmas.partition_point(|v| v.end <= start);
        self.vmas.get(i).filter(|v| v.start <= start && end <= v.end)
    }

    /// Checks the pages shared with the parent against both address spaces: each
    /// range lies in a private VMA of this task that the parent has identically
    /// (which restore keeps from the parent), and no saved extent overlaps one.
    /// Checks the ranges taken from the previous image: sorted, page aligned, in
    /// VMAs whose pages are saved, clear of this image's extents and of the
    /// parent's pages. (That the previous image holds them is checked against
    /// it at restore.)
    pub fn validate_prev_pages(&self) -> Result<(), ImageError> {
        let pid = self.pid;
        check(self.prev_pages.len() <= 1 << 24 && self.tracked.len() <= 1 << 20, || {
            format!("task {pid}: too many previous or tracked ranges")
        })?;
        for (list, what) in [(&self.prev_pages, "previous"), (&self.tracked, "tracked")] {
            let mut prev = 0u64;
            for r in list.iter() {
                let end = r.end().ok_or_else(|| ImageError::Invalid(format!("task {pid}: {what} range overflows")))?;
                check(aligned(r.start) && r.nr_pages > 0 && r.start >= prev, || {
                    format!("task {pid}: {what} range at {:#x}", r.start)
                })?;
                prev = end;
                let v = self.vma_holding(r.start, end).ok_or_else(|| {
                    ImageError::Invalid(format!("task {pid}: {what} range at {:#x} outside its VMAs", r.start))
                })?;
                check(v.kind.has_pages(v.shared), || {
                    format!("task {pid}: {what} range at {:#x} in a VMA without pages", r.start)
                })?;
            }
        }
        for r in &self.prev_pages {
            let end = r.start + r.nr_pages * PAGE_SIZE;
            let ei = self.extents.partition_point(|e| e.end() <= r.start);
            check(!self.extents.get(ei).is_some_and(|e| e.start < end), || {
                format!("task {pid}: previous range at {:#x} overlaps a saved extent", r.start)
            })?;
            let pi = self.parent_pages.partition_point(|p| p.start + p.nr_pages * PAGE_SIZE <= r.start);
            check(!self.parent_pages.get(pi).is_some_and(|p| p.start < end), || {
                format!("task {pid}: previous range at {:#x} overlaps the parent's pages", r.start)
            })?;
        }
        Ok(())
    }

    pub fn validate_parent_pages(&self, parent: Option<&MmImage>) -> Result<(), ImageError> {
        let pid = self.pid;
        if self.parent_pages.is_empty() {
            return Ok(());
        }
        let parent =
            parent.ok_or_else(|| ImageError::Invalid(format!("task {pid}: pages shared with a parent it has not")))?;
        check(self.parent_pages.len() <= 1 << 24, || format!("task {pid}: too many shared page ranges"))?;
        let mut prev = 0u64;
        for r in &self.parent_pages {
            let end = r.end().ok_or_else(|| ImageError::Invalid(format!("task {pid}: shared range overflows")))?;
            check(aligned(r.start) && r.nr_pages > 0 && r.start >= prev, || {
                format!("task {pid}: shared range at {:#x}", r.start)
            })?;
            prev = end;
            let v = self.vma_holding(r.start, end).ok_or_else(|| {
                ImageError::Invalid(format!("task {pid}: shared range at {:#x} outside its VMAs", r.start))
            })?;
            check(v.kind.has_pages(v.shared), || {
                format!("task {pid}: shared range at {:#x} in a VMA without pages", r.start)
            })?;
            let pi = parent.vmas.partition_point(|p| p.start < v.start);
            let pv = parent.vmas.get(pi).filter(|p| p.start == v.start && p.end == v.end);
            check(pv.is_some_and(|p| self.same_vma(v, parent, p)), || {
                format!(
                    "task {pid}: shared range at {:#x} in a VMA its parent {} does not have alike",
                    r.start, parent.pid
                )
            })?;
            // Extents are sorted and disjoint: only the first ending after the
            // range's start can overlap it.
            let ei = self.extents.partition_point(|e| e.end() <= r.start);
            check(!self.extents.get(ei).is_some_and(|e| e.start < end), || {
                format!("task {pid}: shared range at {:#x} overlaps a saved extent", r.start)
            })?;
        }
        Ok(())
    }
}
