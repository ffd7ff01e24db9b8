//! Measurements on large inputs, which random mutation of small seeds never
//! builds: how much heap a body of a given size can make the decoder take (every
//! list of every kind filled with its smallest element), and how validation time
//! grows with the size of the lists it cross-checks.

use std::time::Instant;

use rckpt_images::core::{SigAction, SigInfo, TaskCore, ThreadCore};
use rckpt_images::fdinfo::FdTable;
use rckpt_images::files::{FileDesc, FileKind, FilesImage};
use rckpt_images::inventory::Inventory;
use rckpt_images::mm::{MmFields, MmImage, PAGE_SIZE, PageExtent, PageRange, Vma, VmaKind};
use rckpt_images::pstree::{PsTree, TaskEntry, TaskState};
use rckpt_images::{Image, ImageSet, Kind, pages, pstree};

use crate::alloc;
use crate::common;
use crate::harness::{self, Dir, Target};

/// One list of one kind, filled with `n` of its smallest element; None when no
/// image of the corpus has an element to copy.
struct Case {
    target: Target,
    what: &'static str,
    build: fn(usize) -> Option<Vec<u8>>,
}

fn enc<T: Image>(v: &T) -> Vec<u8> {
    v.encode().expect("encodes")
}

// Values start from the builders' (or the corpus's) and are emptied field by
// field, so that a field added to a type needs no change here.

fn inventory() -> Inventory {
    let mut v = common::valid_set().inventory;
    v.tool.clear();
    v.kernel_release.clear();
    v.created_unix = 0;
    v.root_pid = 0;
    v.images.clear();
    v.externals.clear();
    v
}

fn task_entry() -> TaskEntry {
    let mut t = common::pstree().tasks[0].clone();
    (t.pid, t.ppid, t.pgid, t.sid) = (0, 0, 0, 0);
    t.threads.clear();
    t.state = TaskState::Running;
    t
}

fn thread() -> ThreadCore {
    let mut t = common::thread(0, "", 0, 0);
    t.regs = Default::default();
    t.xstate.clear();
    t.blocked = 0;
    t.pending.clear();
    t.sigaltstack = Default::default();
    t.rseq = None;
    t.robust_list = Default::default();
    t.tid_address = 0;
    t.creds.groups.clear();
    t.sched.affinity.clear();
    t
}

fn task_core() -> TaskCore {
    let mut c = common::task_core(0, &[]);
    c.sigactions.clear();
    c.shared_pending.clear();
    c.rlimits.clear();
    c.posix_timers.clear();
    c.cwd.clear();
    c.root.clear();
    c
}

fn mm_image() -> MmImage {
    let mut m = common::mm_image(0);
    m.fields = MmFields::default();
    m.auxv.clear();
    m.exe = None;
    m.files.clear();
    m.vmas.clear();
    m.vdso = None;
    m.pages_file.clear();
    m.extents.clear();
    m.parent_pages.clear();
    m
}

fn vma(start: u64, end: u64) -> Vma {
    let mut v = common::mm_image(0).vmas[3].clone();
    (v.start, v.end, v.flags, v.shared) = (start, end, 0, false);
    v.kind = VmaKind::Anon;
    v.anon_name = None;
    v
}

fn ext(start: u64, offset: u64) -> PageExtent {
    PageExtent { start, nr_pages: 1, offset, crc32c: 0 }
}

fn files_image(files: Vec<FileDesc>) -> FilesImage {
    let mut f = common::files_image();
    f.files = files;
    f.pipes.clear();
    f.contents.clear();
    f
}

/// An external description with an empty key and no locks: 5 bytes.
fn file_desc() -> FileDesc {
    let mut f = common::files_image().files.into_iter().find(|f| matches!(f.kind, FileKind::External { .. })).unwrap();
    f.id = 0;
    f.flags = 0;
    f.kind = FileKind::External { key: String::new() };
    f.locks.clear();
    f
}

/// A description of the corpus whose kind `pick` accepts.
fn corpus_desc(pick: fn(&FileDesc) -> bool) -> Option<FileDesc> {
    harness::contexts().iter().flat_map(|s| s.files.files.iter()).find(|f| pick(f)).cloned()
}

fn fd_table() -> FdTable {
    let mut t = common::fd_table(common::ROOT);
    t.pid = 0;
    t.fds.clear();
    t
}

const CASES: &[Case] = &[
    Case {
        target: Target::Inventory,
        what: "images",
        build: |n| {
            let mut f = common::valid_set().inventory.images[0].clone();
            f.name.clear();
            f.size = 0;
            f.kind = Kind::Inventory;
            Some(enc(&Inventory { images: vec![f; n], ..inventory() }))
        },
    },
    Case {
        target: Target::Inventory,
        what: "externals",
        build: |n| {
            let mut e = common::valid_set().inventory.externals[0].clone();
            e.key.clear();
            Some(enc(&Inventory { externals: vec![e; n], ..inventory() }))
        },
    },
    Case { target: Target::PsTree, what: "tasks", build: |n| Some(enc(&PsTree { tasks: vec![task_entry(); n] })) },
    Case {
        target: Target::PsTree,
        what: "tasks[0].threads",
        build: |n| Some(enc(&PsTree { tasks: vec![TaskEntry { threads: vec![0; n], ..task_entry() }] })),
    },
    Case {
        target: Target::Core,
        what: "threads",
        build: |n| Some(enc(&TaskCore { threads: vec![thread(); n], ..task_core() })),
    },
    Case {
        target: Target::Core,
        what: "shared_pending",
        build: |n| Some(enc(&TaskCore { shared_pending: vec![SigInfo(vec![]); n], ..task_core() })),
    },
    Case {
        target: Target::Core,
        what: "threads[0].pending",
        build: |n| {
            Some(enc(&TaskCore {
                threads: vec![ThreadCore { pending: vec![SigInfo(vec![]); n], ..thread() }],
                ..task_core()
            }))
        },
    },
    Case {
        target: Target::Core,
        what: "sigactions",
        build: |n| Some(enc(&TaskCore { sigactions: vec![SigAction::default(); n], ..task_core() })),
    },
    Case {
        target: Target::Core,
        what: "posix_timers",
        build: |n| {
            let mut t = common::task_core(0, &[]).posix_timers[0];
            (t.id, t.clock, t.notify, t.signo, t.notify_tid, t.overrun) = (0, 0, 0, 0, 0, 0);
            (t.sigval, t.interval_ns, t.value_ns) = (0, 0, 0);
            Some(enc(&TaskCore { posix_timers: vec![t; n], ..task_core() }))
        },
    },
    Case {
        target: Target::Core,
        what: "threads[0].xstate",
        build: |n| Some(enc(&TaskCore { threads: vec![ThreadCore { xstate: vec![0; n], ..thread() }], ..task_core() })),
    },
    Case {
        target: Target::Core,
        what: "threads[0].creds.groups",
        build: |n| {
            let mut t = thread();
            t.creds.groups = vec![0; n];
            Some(enc(&TaskCore { threads: vec![t], ..task_core() }))
        },
    },
    Case { target: Target::Mm, what: "auxv", build: |n| Some(enc(&MmImage { auxv: vec![0; n], ..mm_image() })) },
    Case {
        target: Target::Mm,
        what: "files",
        build: |n| {
            let mut f = common::mm_image(0).files[0].clone();
            f.path.clear();
            (f.size, f.mtime_ns, f.dev, f.ino, f.build_id) = (0, 0, 0, 0, None);
            Some(enc(&MmImage { files: vec![f; n], ..mm_image() }))
        },
    },
    Case {
        target: Target::Mm,
        what: "vmas",
        build: |n| Some(enc(&MmImage { vmas: vec![vma(0, 0); n], ..mm_image() })),
    },
    Case {
        target: Target::Mm,
        what: "extents",
        build: |n| {
            let e = PageExtent { start: 0, nr_pages: 0, offset: 0, crc32c: 0 };
            Some(enc(&MmImage { extents: vec![e; n], ..mm_image() }))
        },
    },
    Case {
        target: Target::Mm,
        what: "parent_pages",
        build: |n| Some(enc(&MmImage { parent_pages: vec![PageRange { start: 0, nr_pages: 0 }; n], ..mm_image() })),
    },
    Case { target: Target::Files, what: "files", build: |n| Some(enc(&files_image(vec![file_desc(); n]))) },
    Case {
        target: Target::Files,
        what: "files[0].locks",
        build: |n| {
            let mut l = corpus_desc(|f| !f.locks.is_empty())?.locks[0];
            (l.owner, l.start, l.len, l.write) = (0, 0, 0, false);
            Some(enc(&files_image(vec![FileDesc { locks: vec![l; n], ..file_desc() }])))
        },
    },
    Case {
        target: Target::Files,
        what: "files[0] unix queue",
        build: |n| {
            let mut d = corpus_desc(|f| matches!(f.kind, FileKind::Unix(_)))?;
            if let FileKind::Unix(u) = &mut d.kind {
                u.queue = vec![vec![]; n];
            }
            Some(enc(&files_image(vec![FileDesc { kind: d.kind, ..file_desc() }])))
        },
    },
    Case {
        target: Target::Files,
        what: "pipes",
        build: |n| {
            let mut p = harness::contexts().iter().flat_map(|s| s.files.pipes.iter()).next()?.clone();
            p.size = 0;
            p.data.clear();
            Some(enc(&FilesImage { pipes: vec![p; n], ..files_image(vec![]) }))
        },
    },
    Case {
        target: Target::FdInfo,
        what: "fds",
        build: |n| {
            let mut e = common::fd_table(common::ROOT).fds[0];
            (e.fd, e.file, e.cloexec) = (0, 0, false);
            Some(enc(&FdTable { fds: vec![e; n], ..fd_table() }))
        },
    },
];

/// The number of elements that makes a case's file about `len` bytes.
fn elements_for(case: &Case, len: usize) -> Option<usize> {
    let (a, b) = ((case.build)(1)?.len(), (case.build)(1025)?.len());
    let per = ((b - a) as f64 / 1024.0).max(1.0 / 8.0);
    Some((((len.saturating_sub(a)) as f64 / per) as usize).max(1))
}

pub struct AllocRow {
    pub target: Target,
    pub what: &'static str,
    pub len: usize,
    pub peak: usize,
    pub secs: f64,
}

/// Heap taken by decoding and validating files of about each size in `sizes`
/// (never above the kind's cap), for every list of every kind.
pub fn alloc_table(sizes: &[usize]) -> Vec<AllocRow> {
    let mut rows = Vec::new();
    for case in CASES {
        let cap = case.target.cap(&[]) as usize;
        for &size in sizes {
            if size > cap {
                continue;
            }
            let Some(mut bytes) = elements_for(case, size).and_then(case.build) else { continue };
            let mut size = size;
            while bytes.len() > cap {
                size = size * 15 / 16;
                bytes = (case.build)(elements_for(case, size).unwrap()).unwrap();
            }
            let t = Instant::now();
            alloc::take_metered();
            harness::run(case.target, &bytes);
            let peak = alloc::take_metered();
            rows.push(AllocRow {
                target: case.target,
                what: case.what,
                len: bytes.len(),
                peak,
                secs: t.elapsed().as_secs_f64(),
            });
        }
    }
    rows
}

// ---------------------------------------------------------------------------
// Time

/// A chain of `n` running tasks, each the child of the one saved before it: the
/// parent lookup of `PsTree::validate` scans every earlier task.
pub fn pstree_chain(n: usize) -> PsTree {
    PsTree {
        tasks: (0..n as i32)
            .map(|i| TaskEntry {
                pid: 2 + i,
                ppid: if i == 0 { 1 } else { 1 + i },
                pgid: 2,
                sid: 2,
                threads: vec![2 + i],
                ..task_entry()
            })
            .collect(),
    }
}

/// A task whose mm has `n` one-page extents in one VMA and `n` one-page ranges
/// shared with its parent in another (which the parent maps alike), and the
/// parent: `validate_parent_pages` compares every range with every extent.
pub fn parent_pages_pair(n: usize) -> (MmImage, MmImage) {
    let a = 0x1000_0000u64;
    let len = n as u64 * PAGE_SIZE;
    let b = a + len + PAGE_SIZE;
    let vmas = vec![vma(a, a + len), vma(b, b + len)];
    let mut m = MmImage { pid: 3, vmas: vmas.clone(), pages_file: pages::file_name(3), ..mm_image() };
    for i in 0..n as u64 {
        m.extents.push(ext(a + i * PAGE_SIZE, pages::HEADER_LEN + i * PAGE_SIZE));
        m.parent_pages.push(PageRange { start: b + i * PAGE_SIZE, nr_pages: 1 });
    }
    let parent = MmImage { pid: 2, vmas, pages_file: pages::file_name(2), ..mm_image() };
    (m, parent)
}

/// An image of `n` running tasks whose inventory lists every file they need:
/// `ImageSet::validate` looks each one up in the inventory's list.
pub fn many_tasks_set(n: usize) -> ImageSet {
    let mut set = common::valid_set();
    set.pstree = pstree_chain(n);
    set.files = files_image(vec![]);
    set.inventory = Inventory { root_pid: 2, ..inventory() };
    set.inventory.images = ImageSet::expected_files(&set.pstree, &set.files)
        .into_iter()
        .map(|(name, kind)| {
            let mut f = common::valid_set().inventory.images[0].clone();
            (f.name, f.kind, f.size) = (name, kind, 0);
            f
        })
        .collect();
    set.cores.clear();
    set.mms.clear();
    set.fdtables.clear();
    set
}

pub struct TimeRow {
    pub what: &'static str,
    pub n: usize,
    /// The file that holds the lists, encoded.
    pub len: usize,
    pub secs: f64,
    pub result: String,
}

fn timed(what: &'static str, n: usize, len: usize, f: impl FnOnce() -> String) -> TimeRow {
    let t = Instant::now();
    let result = f();
    TimeRow { what, n, len, secs: t.elapsed().as_secs_f64(), result }
}

fn short(r: Result<(), rckpt_images::ImageError>) -> String {
    match r {
        Ok(()) => "valid".into(),
        Err(e) => {
            let s = e.to_string();
            if s.len() > 60 { format!("{}…", &s[..60]) } else { s }
        }
    }
}

/// Validation time against list length, for the checks that compare lists with
/// lists, doubling `n` from `start` while one run stays under `budget` seconds.
pub fn time_table(start: usize, budget: f64) -> Vec<TimeRow> {
    let mut rows = Vec::new();
    let mut n = start;
    loop {
        let t = pstree_chain(n);
        let len = enc(&t).len();
        let row = timed("PsTree::validate, chain of n tasks", n, len, || short(t.validate()));
        let secs = row.secs;
        rows.push(row);
        if secs > budget || n >= pstree::PID_MAX_LIMIT as usize / 2 {
            break;
        }
        n *= 2;
    }
    let mut n = start;
    loop {
        let (m, parent) = parent_pages_pair(n);
        let len = enc(&m).len();
        let size = pages::HEADER_LEN + m.pages_len();
        let row = timed("MmImage::validate + validate_parent_pages, n extents x n ranges", n, len, || {
            short(m.validate(size).and_then(|()| m.validate_parent_pages(Some(&parent))))
        });
        let secs = row.secs;
        rows.push(row);
        if secs > budget {
            break;
        }
        n *= 2;
    }
    let mut n = start / 4;
    loop {
        let set = many_tasks_set(n);
        let Ok(inv) = set.inventory.encode() else { break };
        let len = inv.len();
        let row = timed("ImageSet::validate, n tasks (4n+2 files listed)", n, len, || short(set.validate()));
        let secs = row.secs;
        rows.push(row);
        if secs > budget {
            break;
        }
        n *= 2;
    }
    rows
}

/// About the largest n whose file still fits its kind's cap, extrapolated from a
/// measured row (elements take near constant space).
pub fn max_n(row: &TimeRow) -> usize {
    let cap = if row.what.starts_with("PsTree") {
        Kind::PsTree
    } else if row.what.starts_with("MmImage") {
        Kind::Mm
    } else {
        Kind::Inventory
    }
    .body_cap() as f64;
    (row.n as f64 * cap / row.len as f64) as usize
}

// ---------------------------------------------------------------------------
// Reproducers of the slow checks, as inputs of the fuzz targets

/// A pstree.img of a chain of `n` tasks (input of the `pstree` target).
pub fn pstree_repro(n: usize) -> Vec<u8> {
    enc(&pstree_chain(n))
}

/// A whole, valid image (input of the `image` target): the builders' two-task
/// tree where the child has `n` one-page extents in one private VMA and `n`
/// one-page ranges shared with its parent in another, which the parent maps alike.
pub fn parent_pages_image(n: usize) -> Dir {
    use crate::common::{CHILD, ROOT};
    let mut set = crate::common::valid_set();
    let a = 0x1000_0000u64;
    let len = n as u64 * PAGE_SIZE;
    let b = a + len + PAGE_SIZE;
    for pid in [ROOT, CHILD] {
        let m = set.mms.get_mut(&pid).unwrap();
        m.vmas.push(vma(a, a + len));
        m.vmas.push(vma(b, b + len));
        m.vmas.sort_by_key(|v| v.start);
    }
    let c = set.mms.get_mut(&CHILD).unwrap();
    for i in 0..n as u64 {
        c.extents.push(ext(a + i * PAGE_SIZE, 0));
        c.parent_pages.push(PageRange { start: b + i * PAGE_SIZE, nr_pages: 1 });
    }
    c.extents.sort_by_key(|e| e.start);
    let mut off = pages::HEADER_LEN;
    for e in &mut c.extents {
        e.offset = off;
        off += e.len();
    }
    crate::common::relist(&mut set);
    set.validate().expect("the reproducer is a valid image");
    Dir::from_set(&set)
}

/// Sizes of the decoded elements that the allocation figures come from.
pub fn element_sizes() -> Vec<(&'static str, usize)> {
    use rckpt_images::{core, fdinfo, files, inventory, mm};
    use std::mem::size_of;
    vec![
        ("inventory::ImageFile", size_of::<inventory::ImageFile>()),
        ("inventory::External", size_of::<inventory::External>()),
        ("pstree::TaskEntry", size_of::<TaskEntry>()),
        ("core::ThreadCore", size_of::<ThreadCore>()),
        ("core::SigInfo", size_of::<SigInfo>()),
        ("core::PosixTimer", size_of::<core::PosixTimer>()),
        ("mm::MappedFile", size_of::<mm::MappedFile>()),
        ("mm::Vma", size_of::<Vma>()),
        ("mm::PageExtent", size_of::<PageExtent>()),
        ("files::FileDesc", size_of::<FileDesc>()),
        ("files::PipeData", size_of::<files::PipeData>()),
        ("Vec<u8> (a unix queue message)", size_of::<Vec<u8>>()),
        ("fdinfo::FdEntry", size_of::<fdinfo::FdEntry>()),
    ]
}
