//! The address space: every VMA classified by its backing, the files they map
//! (with what identifies their content), the mm fields, auxv and the vDSO. Kinds of
//! memory not supported yet refuse the dump here, before anything is injected.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;

use rckpt_images::mm::{MappedFile, MmFields, MmImage, PageExtent, Vdso, Vma, VmaKind, vmflags};

use super::core::TaskState;
use super::{DumpError, Result};
use crate::proc::{self, maps};
use crate::sys::{Pid, RemoteAddr, mem::ProcMem};

/// A VMA as it will be saved, and whether its pages are.
pub struct PlannedVma {
    pub vma: Vma,
    pub readable: bool,
}

pub struct MmPlan {
    pub vmas: Vec<PlannedVma>,
    pub files: Vec<MappedFile>,
    pub exe: Option<u32>,
    pub vdso: Option<Vdso>,
    pub auxv: Vec<u64>,
    /// A `syscall` instruction in the task's vDSO, for remote syscalls.
    pub syscall_insn: u64,
}

fn flags_of(v: &maps::Vma) -> u32 {
    let table = [
        ("gd", vmflags::GROWSDOWN),
        ("lo", vmflags::LOCKED),
        ("dc", vmflags::DONTFORK),
        ("dd", vmflags::DONTDUMP),
        ("hg", vmflags::HUGEPAGE),
        ("nh", vmflags::NOHUGEPAGE),
        ("mg", vmflags::MERGEABLE),
        ("wf", vmflags::WIPEONFORK),
        ("rr", vmflags::RANDOM),
        ("sr", vmflags::SEQUENTIAL),
        ("lf", vmflags::LOCKONFAULT),
        ("mw", vmflags::MAYWRITE),
        ("nr", vmflags::NORESERVE),
    ];
    table.iter().filter(|(m, _)| v.has(m)).fold(0, |acc, (_, b)| acc | b)
}

fn prot_of(v: &maps::Vma) -> u8 {
    use rckpt_images::mm::{PROT_EXEC, PROT_READ, PROT_WRITE};
    (if v.read { PROT_READ } else { 0 }) | (if v.write { PROT_WRITE } else { 0 }) | (if v.exec { PROT_EXEC } else { 0 })
}

fn unsupported(pid: Pid, v: &maps::Vma, kind: &str) -> DumpError {
    let name = if v.name.is_empty() { String::new() } else { format!(" ({})", v.name) };
    DumpError::Unsupported { pid, what: format!("mapping {:#x}-{:#x}{name} is {kind}", v.start, v.end) }
}

/// Mapped files already identified in this dump, by path and the (dev, inode)
/// the maps named: a tree of many processes maps the same libraries, whose
/// build-ids are read once.
static KNOWN: std::sync::Mutex<BTreeMap<(String, u64, u64), MappedFile>> = std::sync::Mutex::new(BTreeMap::new());

/// Forgets the files identified by an earlier dump of this process.
pub fn forget_known_files() {
    KNOWN.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// Identity of a mapped file, checked again at restore.
pub fn mapped_file(pid: Pid, path: &str, dev: Option<(u64, u64)>) -> Result<MappedFile> {
    if let Some((d, ino)) = dev
        && let Some(f) = KNOWN.lock().unwrap_or_else(|e| e.into_inner()).get(&(path.to_string(), d, ino))
    {
        return Ok(f.clone());
    }
    let f = identify(pid, path, dev)?;
    if let Some((d, ino)) = dev {
        KNOWN.lock().unwrap_or_else(|e| e.into_inner()).insert((path.to_string(), d, ino), f.clone());
    }
    Ok(f)
}

fn identify(pid: Pid, path: &str, dev: Option<(u64, u64)>) -> Result<MappedFile> {
    let p = std::path::Path::new(path);
    let md = std::fs::metadata(p).map_err(|source| DumpError::Io { op: "stat mapped file", path: p.into(), source })?;
    if let Some((d, ino)) = dev
        && (md.ino() != ino || md.dev() != d)
    {
        return Err(DumpError::Unsupported {
            pid,
            what: format!("mapped file {path} was replaced since it was mapped"),
        });
    }
    let build_id = if md.is_file() {
        crate::elf::build_id(p).map_err(|source| DumpError::Io { op: "read mapped file", path: p.into(), source })?
    } else {
        None
    };
    Ok(MappedFile {
        path: path.to_string(),
        size: md.size(),
        mtime_ns: md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128,
        dev: md.dev(),
        ino: md.ino(),
        build_id,
    })
}

/// `at` is a live thread of `pid` (its leader may have exited) for /proc.
pub fn collect(pid: Pid, at: Pid, shm: &mut super::files::FileTable) -> Result<MmPlan> {
    let smaps = maps::smaps(at)?;
    let mut files: Vec<MappedFile> = Vec::new();
    let mut file_index: BTreeMap<(u64, u64), u32> = BTreeMap::new();
    let mut vmas = Vec::new();
    let mut vvar: Option<(u64, u64)> = None;
    let mut vvar_vclock = 0u64;
    let mut vdso_range: Option<(u64, u64)> = None;
    for v in &smaps {
        let mut anon_name = None;
        let kind = match v.name.as_str() {
            "[heap]" => VmaKind::Heap,
            "[stack]" => VmaKind::Stack,
            "[vdso]" => {
                vdso_range = Some((v.start, v.end));
                VmaKind::Vdso
            }
            "[vvar]" => {
                vvar = Some((v.start, v.end));
                VmaKind::Vvar
            }
            "[vvar_vclock]" => {
                vvar_vclock = v.len();
                VmaKind::VvarVclock
            }
            "[vsyscall]" => VmaKind::Vsyscall,
            "" if v.shared => return Err(unsupported(pid, v, "shared memory of an unknown kind")),
            "" => VmaKind::Anon,
            n if n.starts_with("[anon:") && n.ends_with(']') => {
                if v.shared {
                    return Err(unsupported(pid, v, "shared anonymous memory"));
                }
                anon_name = Some(n[6..n.len() - 1].to_string());
                VmaKind::Anon
            }
            n if n.starts_with("[anon_shmem:") => {
                return Err(unsupported(pid, v, "named shared anonymous memory"));
            }
            "/dev/zero (deleted)" if v.shared => {
                VmaKind::Shared { content: shm.shared_mapping(pid, at, v)?, offset: v.offset }
            }
            n if n.starts_with("/memfd:") && n.ends_with(" (deleted)") && v.shared && !v.has("ht") => {
                VmaKind::Shared { content: shm.shared_mapping(pid, at, v)?, offset: v.offset }
            }
            n if n.starts_with('/') => {
                if v.has("ht") {
                    return Err(unsupported(pid, v, "hugetlb memory"));
                }
                if n.ends_with(" (deleted)") {
                    let what = if n.starts_with("/SYSV") {
                        "SysV shared memory"
                    } else if n.starts_with("/memfd:") {
                        "a memfd mapping"
                    } else if n.starts_with("/dev/zero") || n.starts_with("/anon_hugepage") {
                        "shared anonymous memory"
                    } else {
                        "a mapped file that was deleted"
                    };
                    return Err(unsupported(pid, v, what));
                }
                if v.has("io") || v.has("pf") {
                    return Err(unsupported(pid, v, "a device mapping"));
                }
                let dev = nix::sys::stat::makedev(v.dev_major as u64, v.dev_minor as u64);
                if n == "/dev/zero" && !v.shared {
                    // A private mapping of /dev/zero is anonymous memory.
                    VmaKind::Anon
                } else {
                    let md = std::fs::metadata(n).map_err(|source| DumpError::Io {
                        op: "stat mapped file",
                        path: n.into(),
                        source,
                    })?;
                    if !md.is_file() {
                        return Err(unsupported(pid, v, "a device mapping"));
                    }
                    let idx = match file_index.get(&(dev, v.inode)) {
                        Some(i) => *i,
                        None => {
                            files.push(mapped_file(pid, n, Some((dev, v.inode)))?);
                            let i = files.len() as u32 - 1;
                            file_index.insert((dev, v.inode), i);
                            i
                        }
                    };
                    VmaKind::File { file: idx, offset: v.offset }
                }
            }
            _ => return Err(unsupported(pid, v, "a special mapping")),
        };
        let vma =
            Vma { start: v.start, end: v.end, prot: prot_of(v), shared: v.shared, flags: flags_of(v), kind, anon_name };
        vmas.push(PlannedVma { vma, readable: v.read });
    }

    let exe_path = proc::read_link(proc::path(at, "exe"))?;
    if exe_path.ends_with(" (deleted)") {
        return Err(DumpError::Unsupported { pid, what: format!("its executable {exe_path} was deleted") });
    }
    let exe_md = std::fs::metadata(&exe_path).map_err(|source| DumpError::Io {
        op: "stat executable",
        path: exe_path.clone().into(),
        source,
    })?;
    let exe = match file_index.get(&(exe_md.dev(), exe_md.ino())) {
        Some(i) => *i,
        None => {
            files.push(mapped_file(pid, &exe_path, None)?);
            files.len() as u32 - 1
        }
    };

    let (vdso, syscall_insn) = match (vvar, vdso_range) {
        (Some((vs, ve)), Some((ds, de))) => {
            let mem = ProcMem::open(at, false)?;
            let mut bytes = vec![0u8; (de - ds) as usize];
            mem.read_exact(RemoteAddr(ds), &mut bytes)?;
            let insn = super::syscall_insn(ds, &bytes).ok_or_else(|| DumpError::Unsupported {
                pid,
                what: "its vDSO has no syscall instruction to run remote syscalls on".into(),
            })?;
            (
                Some(Vdso {
                    vvar_start: vs,
                    vvar_size: ve - vs,
                    vvar_vclock_size: vvar_vclock,
                    vdso_start: ds,
                    vdso_bytes: bytes,
                }),
                insn,
            )
        }
        _ => {
            return Err(DumpError::Unsupported {
                pid,
                what: "it has no vDSO (remote syscalls run on its syscall instruction)".into(),
            });
        }
    };
    Ok(MmPlan { vmas, files, exe: Some(exe), vdso, auxv: proc::auxv(at)?, syscall_insn })
}

/// Whether two VMAs (of two plans) map the same thing the same way.
pub fn same_vma(a_plan: &MmPlan, a: &Vma, b_plan: &MmPlan, b: &Vma) -> bool {
    let backing = match (&a.kind, &b.kind) {
        (VmaKind::File { file: x, offset: ox }, VmaKind::File { file: y, offset: oy }) => {
            let (fx, fy) = (&a_plan.files[*x as usize], &b_plan.files[*y as usize]);
            ox == oy && fx.path == fy.path && fx.dev == fy.dev && fx.ino == fy.ino
        }
        (x, y) => x == y,
    };
    backing
        && a.start == b.start
        && a.end == b.end
        && a.prot == b.prot
        && a.shared == b.shared
        && a.flags == b.flags
        && a.anon_name == b.anon_name
}

pub fn image(
    pid: Pid,
    task: &TaskState,
    plan: &MmPlan,
    extents: Vec<PageExtent>,
    parent_pages: Vec<rckpt_images::mm::PageRange>,
    prev_pages: Vec<rckpt_images::mm::PageRange>,
) -> Result<MmImage> {
    let s = &task.stat;
    let fields = MmFields {
        start_code: s.startcode,
        end_code: s.endcode,
        start_data: s.start_data.unwrap_or(0),
        end_data: s.end_data.unwrap_or(0),
        start_brk: s.start_brk.unwrap_or(0),
        brk: task.brk,
        start_stack: s.startstack,
        arg_start: s.arg_start.unwrap_or(0),
        arg_end: s.arg_end.unwrap_or(0),
        env_start: s.env_start.unwrap_or(0),
        env_end: s.env_end.unwrap_or(0),
    };
    Ok(MmImage {
        pid: pid.as_raw(),
        fields,
        auxv: plan.auxv.clone(),
        exe: plan.exe,
        files: plan.files.clone(),
        vmas: plan.vmas.iter().map(|p| p.vma.clone()).collect(),
        vdso: plan.vdso.clone(),
        pages_file: rckpt_images::pages::file_name(pid.as_raw()),
        extents,
        parent_pages,
        prev_pages,
        tracked: Vec::new(),
    })
}
