//! Builders shared by the integration tests of rckpt-images: a small but realistic,
//! internally consistent image of a two-task tree (a root with two threads and a
//! stopped child), the pages files its extents describe, and a kind-erased wrapper
//! so that a test can loop over every metadata kind.

#![allow(dead_code)]

use std::collections::BTreeMap;

use rckpt_images::core::{
    AltStack, Creds, GpRegs, ITimer, PosixTimer, Prctl, Rlimit, RobustList, Rseq, Sched, SigAction, SigInfo, TaskCore,
    ThreadCore,
};
use rckpt_images::fdinfo::{FdEntry, FdTable};
use rckpt_images::files::{FileDesc, FileKind, FileType, FilesImage, PathFile};
use rckpt_images::frame::{self, HEADER_LEN};
use rckpt_images::inventory::{External, ExternalKind, ImageFile, Inventory};
use rckpt_images::mm::{
    MappedFile, MmFields, MmImage, PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE, PageExtent, VSYSCALL_START, Vdso, Vma,
    VmaKind, vmflags,
};
use rckpt_images::pstree::{PsTree, TaskEntry, TaskState};
use rckpt_images::seccomp::{FILTER_FLAG_LOG, MODE_FILTER, Seccomp, SeccompFilter, SockFilter};
use rckpt_images::{Image, ImageError, ImageSet, Kind, core, pages};

pub const ROOT: i32 = 1000;
pub const ROOT_THREAD: i32 = 1001;
pub const CHILD: i32 = 1002;
pub const SID: i32 = 900;

pub const PIPE_KEY: &str = "pipe:[48213]";
pub const TTY_KEY: &str = "tty:[136:3]";

/// The six kinds that are postcard images (Pages is raw data).
pub const META_KINDS: [Kind; 6] = [Kind::Inventory, Kind::PsTree, Kind::Core, Kind::Mm, Kind::Files, Kind::FdInfo];

// ---------------------------------------------------------------------------
// Values

pub fn siginfo(signo: i32, code: i32, pid: i32) -> SigInfo {
    let mut b = vec![0u8; core::SIGINFO_LEN];
    b[0..4].copy_from_slice(&signo.to_le_bytes());
    b[8..12].copy_from_slice(&code.to_le_bytes());
    b[16..20].copy_from_slice(&pid.to_le_bytes());
    b[20..24].copy_from_slice(&1000u32.to_le_bytes());
    SigInfo(b)
}

/// An uncompacted XSAVE area of an AVX machine (832 bytes: legacy 512 + header 64 +
/// YMM_Hi128 256), with a few recognisable bytes.
pub fn xstate(seed: u8) -> Vec<u8> {
    let mut x = vec![0u8; 832];
    x[0..2].copy_from_slice(&0x037fu16.to_le_bytes()); // FCW
    x[24..28].copy_from_slice(&0x1f80u32.to_le_bytes()); // MXCSR
    for (i, b) in x[160..416].iter_mut().enumerate() {
        *b = seed.wrapping_add(i as u8); // XMM registers
    }
    x[512..520].copy_from_slice(&0b111u64.to_le_bytes()); // XSTATE_BV: x87|SSE|AVX
    x
}

pub fn thread(tid: i32, comm: &str, rip: u64, rsp: u64) -> ThreadCore {
    ThreadCore {
        tid,
        comm: comm.to_string(),
        regs: GpRegs {
            rax: (-4i64) as u64, // -EINTR of an interrupted syscall
            rcx: rip,
            r11: 0x246,
            orig_rax: 230, // clock_nanosleep
            rip,
            cs: 0x33,
            eflags: 0x246,
            rsp,
            ss: 0x2b,
            fs_base: 0x7f00_0002_0740,
            rdi: 1,
            rsi: rsp + 0x10,
            ..GpRegs::default()
        },
        xstate: xstate(tid as u8),
        blocked: 1 << (15 - 1), // SIGTERM blocked
        pending: vec![siginfo(10, 0, SID)],
        sigaltstack: AltStack {
            sp: 0,
            flags: 2, // SS_DISABLE
            size: 0,
        },
        rseq: Some(Rseq { addr: 0x7f00_0002_0e20, len: 32, signature: 0x5305_3053 }),
        robust_list: RobustList { head: 0x7f00_0002_0a20, len: 24 },
        tid_address: 0x7f00_0002_0a10,
        creds: Creds {
            uid: [1000; 4],
            gid: [1000; 4],
            groups: vec![4, 24, 27, 1000],
            cap_inheritable: 0,
            cap_permitted: 0,
            cap_effective: 0,
            cap_bounding: 0x1ff_ffff_ffff,
            cap_ambient: 0,
            securebits: 0,
            no_new_privs: false,
        },
        sched: Sched { nice: 0, affinity: vec![0xff], timer_slack_ns: 50_000 },
        seccomp: Seccomp::default(),
    }
}

/// A seccomp filter as libseccomp would make it: check the architecture, then
/// return `action` for syscall `nr` and allow the rest.
pub fn seccomp_program(nr: u32, action: u32) -> Vec<SockFilter> {
    let s = |code: u16, jt: u8, jf: u8, k: u32| SockFilter { code, jt, jf, k };
    vec![
        s(0x20, 0, 0, 4),           // ld [arch]
        s(0x15, 1, 0, 0xc000_003e), // jeq AUDIT_ARCH_X86_64
        s(0x06, 0, 0, 0),           // ret KILL_THREAD
        s(0x20, 0, 0, 0),           // ld [nr]
        s(0x15, 0, 1, nr),          // jeq nr
        s(0x06, 0, 0, action),      // ret action
        s(0x06, 0, 0, 0x7fff_0000), // ret ALLOW
    ]
}

/// Two filters: one every thread of the task shares (getppid fails with EPERM),
/// and one only the second thread installed on top of it (logged).
pub fn seccomp_filters() -> Vec<SeccompFilter> {
    vec![
        SeccompFilter { prev: None, flags: 0, insns: seccomp_program(110, 0x0005_0001) },
        SeccompFilter { prev: Some(0), flags: FILTER_FLAG_LOG, insns: seccomp_program(124, 0x0005_0026) },
    ]
}

pub fn task_core(pid: i32, tids: &[i32]) -> TaskCore {
    let mut sigactions = vec![SigAction::default(); core::NSIG];
    // SIGINT handled, SIGPIPE ignored, SIGCHLD with SA_RESTART|SA_RESTORER|SA_NOCLDSTOP.
    sigactions[1] =
        SigAction { handler: 0x401_1a0, flags: 0x0400_0000 | 0x1000_0000, restorer: 0x7f00_0000_1040, mask: 0 };
    sigactions[12] = SigAction { handler: 1, ..SigAction::default() };
    sigactions[16] = SigAction {
        handler: 0x401_2c0,
        flags: 0x0400_0000 | 0x1000_0000 | 1,
        restorer: 0x7f00_0000_1040,
        mask: 1 << 1,
    };
    let mut rlimits = Vec::new();
    for r in 0..core::RLIMIT_COUNT {
        let (cur, max) = match r {
            3 => (8 << 20, u64::MAX),  // RLIMIT_STACK
            4 => (0, u64::MAX),        // RLIMIT_CORE
            6 => (63_000, 63_000),     // RLIMIT_NPROC
            7 => (1024, 524_288),      // RLIMIT_NOFILE
            8 => (8 << 20, 8 << 20),   // RLIMIT_MEMLOCK
            11 => (63_000, 63_000),    // RLIMIT_SIGPENDING
            12 => (819_200, 819_200),  // RLIMIT_MSGQUEUE
            13 | 14 => (0, 0),         // RLIMIT_NICE, RLIMIT_RTPRIO
            _ => (u64::MAX, u64::MAX), // unlimited
        };
        rlimits.push(Rlimit { resource: r, cur, max });
    }
    TaskCore {
        pid,
        threads: tids
            .iter()
            .enumerate()
            .map(|(i, &tid)| {
                thread(
                    tid,
                    if i == 0 { "sleeper" } else { "worker" },
                    0x7f00_0000_10a9,
                    0x7ffc_0002_0d00 - (i as u64) * 0x1000,
                )
            })
            .collect(),
        sigactions,
        shared_pending: vec![siginfo(14, 0x80, 0)],
        rlimits,
        itimers: [ITimer { interval_us: 0, value_us: 1_500_000 }, ITimer::default(), ITimer::default()],
        posix_timers: vec![PosixTimer {
            id: 0,
            clock: 1, // CLOCK_MONOTONIC
            notify: 0,
            signo: 12,
            sigval: 0xdead_beef,
            notify_tid: 0,
            interval_ns: 250_000_000,
            value_ns: 120_000_000,
            overrun: 0,
        }],
        personality: 0,
        umask: 0o022,
        cwd: "/home/user/work".into(),
        root: "/".into(),
        prctl: Prctl { pdeath_signal: 0, child_subreaper: false, dumpable: 1, thp_disable: false, mdwe: 0 },
        seccomp_filters: Vec::new(),
    }
}

/// `task_core` of a task whose threads run under [`seccomp_filters`]: the first
/// thread under the shared one, the others under both.
pub fn seccomp_task_core(pid: i32, tids: &[i32]) -> TaskCore {
    let mut c = task_core(pid, tids);
    c.seccomp_filters = seccomp_filters();
    for (i, t) in c.threads.iter_mut().enumerate() {
        t.seccomp = Seccomp { mode: MODE_FILTER, filter: Some((i > 0) as u32) };
    }
    c
}

pub const VVAR_START: u64 = 0x7ffc_1000_0000;
pub const VVAR_SIZE: u64 = 0x4000;
pub const VCLOCK_SIZE: u64 = 0x2000;
pub const VDSO_START: u64 = VVAR_START + VVAR_SIZE + VCLOCK_SIZE;
pub const VDSO_SIZE: u64 = 0x2000;

pub fn vdso_bytes() -> Vec<u8> {
    let mut b = vec![0u8; VDSO_SIZE as usize];
    b[0..4].copy_from_slice(b"\x7fELF");
    b[4] = 2; // ELFCLASS64
    b[5] = 1; // little endian
    b[0x100..0x102].copy_from_slice(&[0x0f, 0x05]); // a syscall instruction
    b
}

fn vma(start: u64, end: u64, prot: u8, kind: VmaKind) -> Vma {
    Vma { start, end, prot, shared: false, flags: 0, kind, anon_name: None }
}

/// The address space of a small dynamically linked program: the executable (three
/// VMAs), a heap, libc, a shared anonymous mapping, a named private mapping, the
/// stack, the vDSO block and the vsyscall page; five private extents.
pub fn mm_image(pid: i32) -> MmImage {
    let rw = PROT_READ | PROT_WRITE;
    let rx = PROT_READ | PROT_EXEC;
    let exe = VmaKind::File { file: 0, offset: 0 };
    let vmas = vec![
        vma(0x40_0000, 0x40_1000, PROT_READ, exe.clone()),
        vma(0x40_1000, 0x40_3000, rx, VmaKind::File { file: 0, offset: 0x1000 }),
        vma(0x40_3000, 0x40_5000, rw, VmaKind::File { file: 0, offset: 0x3000 }),
        vma(0x40_5000, 0x42_6000, rw, VmaKind::Heap),
        vma(0x7f00_0000_0000, 0x7f00_0000_2000, rx, VmaKind::File { file: 1, offset: 0 }),
        Vma { shared: true, flags: vmflags::DONTFORK, ..vma(0x7f00_0001_0000, 0x7f00_0001_4000, rw, VmaKind::Anon) },
        Vma {
            anon_name: Some("arena".into()),
            flags: vmflags::HUGEPAGE,
            ..vma(0x7f00_0002_0000, 0x7f00_0002_3000, rw, VmaKind::Anon)
        },
        Vma { flags: vmflags::GROWSDOWN, ..vma(0x7ffc_0000_0000, 0x7ffc_0002_1000, rw, VmaKind::Stack) },
        vma(VVAR_START, VVAR_START + VVAR_SIZE, PROT_READ, VmaKind::Vvar),
        vma(VVAR_START + VVAR_SIZE, VDSO_START, PROT_READ, VmaKind::VvarVclock),
        vma(VDSO_START, VDSO_START + VDSO_SIZE, rx, VmaKind::Vdso),
        vma(VSYSCALL_START, VSYSCALL_START + PAGE_SIZE, PROT_EXEC, VmaKind::Vsyscall),
    ];
    // (start, pages): .data, heap (two runs), the named arena, the stack top.
    let runs = [(0x40_3000u64, 2u64), (0x40_5000, 1), (0x40_8000, 3), (0x7f00_0002_1000, 1), (0x7ffc_0001_f000, 2)];
    let mut m = MmImage {
        pid,
        fields: MmFields {
            start_code: 0x40_1000,
            end_code: 0x40_2f31,
            start_data: 0x40_3e10,
            end_data: 0x40_4a58,
            start_brk: 0x40_5000,
            brk: 0x42_6000,
            start_stack: 0x7ffc_0002_0f40,
            arg_start: 0x7ffc_0002_0f80,
            arg_end: 0x7ffc_0002_0f9a,
            env_start: 0x7ffc_0002_0f9a,
            env_end: 0x7ffc_0002_0fe8,
        },
        auxv: vec![
            33, VDSO_START, // AT_SYSINFO_EHDR
            6, PAGE_SIZE, // AT_PAGESZ
            3, 0x40_0040, // AT_PHDR
            9, 0x40_1020, // AT_ENTRY
            0, 0, // AT_NULL
        ],
        exe: Some(0),
        files: vec![
            MappedFile {
                path: "/usr/local/bin/sleeper".into(),
                size: 18_344,
                mtime_ns: 1_700_000_000_123_456_789,
                dev: 0x803,
                ino: 1_311_234,
                build_id: Some((0u8..20).collect()),
            },
            MappedFile {
                path: "/usr/lib/x86_64-linux-gnu/libc.so.6".into(),
                size: 2_125_328,
                mtime_ns: 1_690_000_000_000_000_000,
                dev: 0x803,
                ino: 2_883_611,
                build_id: Some(vec![0xab; 20]),
            },
        ],
        vmas,
        vdso: Some(Vdso {
            vvar_start: VVAR_START,
            vvar_size: VVAR_SIZE,
            vvar_vclock_size: VCLOCK_SIZE,
            vdso_start: VDSO_START,
            vdso_bytes: vdso_bytes(),
        }),
        pages_file: pages::file_name(pid),
        extents: Vec::new(),
        parent_pages: Vec::new(),
        prev_pages: Vec::new(),
        tracked: Vec::new(),
    };
    let mut offset = pages::HEADER_LEN;
    for (start, nr_pages) in runs {
        m.extents.push(PageExtent { start, nr_pages, offset, crc32c: 0 });
        offset += nr_pages * PAGE_SIZE;
    }
    let data = pages_file(&m);
    for e in &mut m.extents {
        e.crc32c = crc32c::crc32c(&data[e.offset as usize..(e.offset + e.len()) as usize]);
    }
    m
}

/// The pages file an mm image describes: the header page, then deterministic data
/// for each extent at its offset.
pub fn pages_file(m: &MmImage) -> Vec<u8> {
    let mut out = pages::header(m.pid);
    for e in &m.extents {
        assert_eq!(out.len() as u64, e.offset, "extents are back to back");
        for i in 0..e.len() {
            out.push(((e.start + i) >> 12) as u8 ^ (i as u8).wrapping_mul(31));
        }
    }
    out
}

pub fn pages_size(m: &MmImage) -> u64 {
    pages::HEADER_LEN + m.pages_len()
}

pub fn files_image() -> FilesImage {
    let path = |path: &str, ftype, pos, size, rdev| {
        FileKind::Path(PathFile { path: path.into(), ftype, pos, size, mtime_ns: 1_700_000_100_000_000_000, rdev })
    };
    FilesImage {
        files: vec![
            FileDesc {
                id: 0,
                flags: 0o2, // O_RDWR
                kind: path("/dev/null", FileType::CharDevice, 0, 0, 0x103),
                locks: vec![],
            },
            FileDesc {
                id: 1,
                flags: 0o1, // O_WRONLY
                kind: FileKind::External { key: PIPE_KEY.into() },
                locks: vec![],
            },
            FileDesc {
                id: 2,
                flags: 0o2001 | 0o100000, // O_WRONLY|O_APPEND|O_LARGEFILE
                kind: path("/home/user/work/log.txt", FileType::Regular, 4_210, 4_210, 0),
                locks: vec![],
            },
            FileDesc {
                id: 3,
                flags: 0o200000 | 0o100000, // O_DIRECTORY|O_LARGEFILE
                kind: path("/home/user/work", FileType::Directory, 0, 4096, 0),
                locks: vec![],
            },
            FileDesc { id: 4, flags: 0o2, kind: FileKind::External { key: TTY_KEY.into() }, locks: vec![] },
        ],
        pipes: vec![],
        contents: vec![],
        ptys: vec![],
    }
}

pub fn fd_table(pid: i32) -> FdTable {
    let e = |fd, file, cloexec| FdEntry { fd, file, cloexec };
    FdTable {
        pid,
        fds: if pid == ROOT {
            vec![e(0, 0, false), e(1, 1, false), e(2, 4, false), e(3, 2, true), e(7, 3, true), e(255, 4, true)]
        } else {
            vec![e(0, 0, false), e(1, 1, false), e(2, 1, false)]
        },
        tty: None,
    }
}

pub fn pstree() -> PsTree {
    PsTree {
        tasks: vec![
            TaskEntry {
                pid: ROOT,
                ppid: 1,
                pgid: ROOT,
                sid: SID,
                threads: vec![ROOT, ROOT_THREAD],
                state: TaskState::Running,
            },
            TaskEntry {
                pid: CHILD,
                ppid: ROOT,
                pgid: ROOT,
                sid: SID,
                threads: vec![CHILD],
                state: TaskState::Stopped { signal: 19 },
            },
        ],
    }
}

/// A valid image of the two-task tree, its inventory listing every file with the
/// size it has when encoded.
pub fn valid_set() -> ImageSet {
    let pstree = pstree();
    let mut cores = BTreeMap::new();
    let mut mms = BTreeMap::new();
    let mut fdtables = BTreeMap::new();
    for t in &pstree.tasks {
        // The root runs under seccomp filters, so every image test meets them.
        let core = if t.pid == ROOT { seccomp_task_core(t.pid, &t.threads) } else { task_core(t.pid, &t.threads) };
        cores.insert(t.pid, core);
        mms.insert(t.pid, mm_image(t.pid));
        fdtables.insert(t.pid, fd_table(t.pid));
    }
    let mut set = ImageSet {
        inventory: Inventory {
            tool: "rckpt 0.1.0".into(),
            created_unix: 1_700_000_200,
            kernel_release: "6.8.0-45-generic".into(),
            root_pid: ROOT,
            images: Vec::new(),
            externals: vec![
                External { key: PIPE_KEY.into(), kind: ExternalKind::Pipe },
                External { key: TTY_KEY.into(), kind: ExternalKind::Tty },
            ],
            namespaces: Default::default(),
            cpu: Default::default(),
            pre_dump: false,
            prev: None,
        },
        pstree,
        files: files_image(),
        cores,
        mms,
        fdtables,
    };
    relist(&mut set);
    set
}

/// Rewrites the inventory's file list from the other files of `set` (what the
/// writer does last), so that a test can change a task file and stay consistent.
pub fn relist(set: &mut ImageSet) {
    let size = |b: Result<Vec<u8>, ImageError>| b.expect("encodes").len() as u64;
    let mut images = Vec::new();
    for (name, kind) in ImageSet::expected_files(&set.pstree, &set.files) {
        let pid = name.trim_end_matches(".img").rsplit('-').next().and_then(|p| p.parse::<i32>().ok());
        let content = name.strip_prefix("content-").and_then(|n| n.trim_end_matches(".img").parse::<usize>().ok());
        let sz = match (kind, pid) {
            (Kind::Pages, _) if content.is_some() => set.files.contents[content.unwrap()].data_len,
            (Kind::PsTree, _) => size(set.pstree.encode()),
            (Kind::Files, _) => size(set.files.encode()),
            (Kind::Core, Some(p)) => set.cores.get(&p).map_or(0, |c| size(c.encode())),
            (Kind::Mm, Some(p)) => set.mms.get(&p).map_or(0, |m| size(m.encode())),
            (Kind::FdInfo, Some(p)) => set.fdtables.get(&p).map_or(0, |f| size(f.encode())),
            (Kind::Pages, Some(p)) => set.mms.get(&p).map_or(0, pages_size),
            _ => unreachable!("{name}"),
        };
        images.push(ImageFile { name, kind, size: sz });
    }
    set.inventory.images = images;
}

// ---------------------------------------------------------------------------
// Kind-erased images

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyImage {
    Inventory(Inventory),
    PsTree(PsTree),
    Core(TaskCore),
    Mm(MmImage),
    Files(FilesImage),
    FdInfo(FdTable),
}

impl AnyImage {
    pub fn kind(&self) -> Kind {
        match self {
            AnyImage::Inventory(_) => Kind::Inventory,
            AnyImage::PsTree(_) => Kind::PsTree,
            AnyImage::Core(_) => Kind::Core,
            AnyImage::Mm(_) => Kind::Mm,
            AnyImage::Files(_) => Kind::Files,
            AnyImage::FdInfo(_) => Kind::FdInfo,
        }
    }

    pub fn encode(&self) -> Result<Vec<u8>, ImageError> {
        match self {
            AnyImage::Inventory(v) => v.encode(),
            AnyImage::PsTree(v) => v.encode(),
            AnyImage::Core(v) => v.encode(),
            AnyImage::Mm(v) => v.encode(),
            AnyImage::Files(v) => v.encode(),
            AnyImage::FdInfo(v) => v.encode(),
        }
    }

    /// Decodes `bytes` as a `kind` image (Pages is not a metadata kind: panics).
    pub fn decode(kind: Kind, bytes: &[u8]) -> Result<AnyImage, ImageError> {
        Ok(match kind {
            Kind::Inventory => AnyImage::Inventory(Inventory::decode(bytes)?),
            Kind::PsTree => AnyImage::PsTree(PsTree::decode(bytes)?),
            Kind::Core => AnyImage::Core(TaskCore::decode(bytes)?),
            Kind::Mm => AnyImage::Mm(MmImage::decode(bytes)?),
            Kind::Files => AnyImage::Files(FilesImage::decode(bytes)?),
            Kind::FdInfo => AnyImage::FdInfo(FdTable::decode(bytes)?),
            Kind::Pages => panic!("pages files are not postcard images"),
        })
    }

    /// Decodes a bare postcard body of the current version.
    pub fn decode_version(kind: Kind, version: u16, body: &[u8]) -> Result<AnyImage, ImageError> {
        Ok(match kind {
            Kind::Inventory => AnyImage::Inventory(Inventory::decode_version(version, body)?),
            Kind::PsTree => AnyImage::PsTree(PsTree::decode_version(version, body)?),
            Kind::Core => AnyImage::Core(TaskCore::decode_version(version, body)?),
            Kind::Mm => AnyImage::Mm(MmImage::decode_version(version, body)?),
            Kind::Files => AnyImage::Files(FilesImage::decode_version(version, body)?),
            Kind::FdInfo => AnyImage::FdInfo(FdTable::decode_version(version, body)?),
            Kind::Pages => panic!("pages files are not postcard images"),
        })
    }

    /// The checks a file gets on its own. Mm and FdInfo need context from the rest
    /// of the image: the pages file size and the number of open files of `set`.
    pub fn validate_alone(&self, set: &ImageSet) -> Result<(), ImageError> {
        match self {
            AnyImage::Inventory(v) => v.validate(),
            AnyImage::PsTree(v) => v.validate(),
            AnyImage::Core(v) => v.validate(),
            AnyImage::Mm(v) => {
                let size = set.inventory.file(&pages::file_name(v.pid)).map_or(0, |f| f.size);
                v.validate(size)
            }
            AnyImage::Files(v) => v.validate(),
            AnyImage::FdInfo(v) => v.validate(set.files.files.len()),
        }
    }

    /// A copy of `set` with this image in place of the one of its kind; a per-task
    /// image replaces the root's (the reader files it under the pid it asked for,
    /// whatever pid the image claims).
    pub fn substitute(&self, set: &ImageSet) -> ImageSet {
        let mut s = set.clone();
        match self.clone() {
            AnyImage::Inventory(v) => s.inventory = v,
            AnyImage::PsTree(v) => s.pstree = v,
            AnyImage::Files(v) => s.files = v,
            AnyImage::Core(v) => {
                s.cores.insert(ROOT, v);
            }
            AnyImage::Mm(v) => {
                s.mms.insert(ROOT, v);
            }
            AnyImage::FdInfo(v) => {
                s.fdtables.insert(ROOT, v);
            }
        }
        s
    }
}

/// One image of every metadata kind from `set` (the root's for per-task kinds).
pub fn samples(set: &ImageSet) -> Vec<AnyImage> {
    vec![
        AnyImage::Inventory(set.inventory.clone()),
        AnyImage::PsTree(set.pstree.clone()),
        AnyImage::Core(set.cores[&ROOT].clone()),
        AnyImage::Mm(set.mms[&ROOT].clone()),
        AnyImage::Files(set.files.clone()),
        AnyImage::FdInfo(set.fdtables[&ROOT].clone()),
    ]
}

pub fn sample(set: &ImageSet, kind: Kind) -> AnyImage {
    samples(set).into_iter().find(|s| s.kind() == kind).expect("a metadata kind")
}

// ---------------------------------------------------------------------------
// Forging frames

/// Recomputes the header checksum of a framed file in place.
pub fn fix_header_crc(bytes: &mut [u8]) {
    let c = crc32c::crc32c(&bytes[0..28]);
    bytes[28..32].copy_from_slice(&c.to_le_bytes());
}

/// Makes the header of a framed file agree with its body: length and both checksums.
pub fn refit_frame(bytes: &mut [u8]) {
    let len = (bytes.len() - HEADER_LEN) as u64;
    bytes[16..24].copy_from_slice(&len.to_le_bytes());
    let c = crc32c::crc32c(&bytes[HEADER_LEN..]);
    bytes[24..28].copy_from_slice(&c.to_le_bytes());
    fix_header_crc(bytes);
}

/// A frame with arbitrary header fields around `body`, both checksums correct.
pub fn forge(kind: u16, version: u16, reserved: [u8; 4], body_len: u64, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; HEADER_LEN];
    out[0..8].copy_from_slice(&frame::MAGIC);
    out[8..10].copy_from_slice(&kind.to_le_bytes());
    out[10..12].copy_from_slice(&version.to_le_bytes());
    out[12..16].copy_from_slice(&reserved);
    out[16..24].copy_from_slice(&body_len.to_le_bytes());
    out[24..28].copy_from_slice(&crc32c::crc32c(body).to_le_bytes());
    fix_header_crc(&mut out);
    out.extend_from_slice(body);
    out
}

/// Asserts that `r` is an `Invalid` error whose message contains every fragment.
#[track_caller]
pub fn assert_invalid<T: std::fmt::Debug>(r: Result<T, ImageError>, fragments: &[&str]) {
    match r {
        Err(ImageError::Invalid(msg)) => {
            for f in fragments {
                assert!(msg.contains(f), "message {msg:?} does not mention {f:?} (wanted all of {fragments:?})");
            }
        }
        other => panic!("expected an Invalid error mentioning {fragments:?}, got {other:?}"),
    }
}
