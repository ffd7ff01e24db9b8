//! Checks of this machine and this invoker against the image, before any process
//! exists: the same vDSO, the same mapped files, the files of the fd table, every
//! external bound, and nothing asked for beyond what the invoker holds.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::time::{Duration, Instant};

use rckpt_images::ImageSet;
use rckpt_images::files::{FileKind, FileType};
use rckpt_images::inventory::ExternalKind;
use rckpt_images::mm::{MappedFile, VmaKind};

use super::{RestoreError, RestoreOptions, Result};
use crate::proc;
use crate::sys::{Pid, RemoteAddr, mem::ProcMem};

/// rckpt's own vDSO: (vvar size, vvar_vclock size, vdso bytes).
pub fn own_vdso() -> Result<(u64, u64, Vec<u8>)> {
    let me = Pid::this();
    let maps = proc::maps::maps(me).map_err(|e| RestoreError::Mismatch(format!("cannot read own maps: {e}")))?;
    let find = |n: &str| maps.iter().find(|v| v.name == n).map(|v| (v.start, v.end));
    let (ds, de) = find("[vdso]").ok_or_else(|| RestoreError::Mismatch("this kernel gives rckpt no vDSO".into()))?;
    let vvar = find("[vvar]").map(|(s, e)| e - s).unwrap_or(0);
    let vclock = find("[vvar_vclock]").map(|(s, e)| e - s).unwrap_or(0);
    let mem = ProcMem::open(me, false)?;
    let mut bytes = vec![0u8; (de - ds) as usize];
    mem.read_exact(RemoteAddr(ds), &mut bytes)?;
    Ok((vvar, vclock, bytes))
}

fn check_vdso(set: &ImageSet) -> Result<()> {
    let (vvar, vclock, bytes) = own_vdso()?;
    for mm in set.mms.values() {
        let Some(d) = &mm.vdso else { continue };
        if d.vdso_bytes != bytes {
            return Err(RestoreError::Mismatch(format!(
                "task {}: the running kernel's vDSO differs from the image's ({} bytes here, {} saved); restore on the kernel that dumped it",
                mm.pid,
                bytes.len(),
                d.vdso_bytes.len()
            )));
        }
        if d.vvar_size != vvar || d.vvar_vclock_size != vclock {
            return Err(RestoreError::Mismatch(format!(
                "task {}: [vvar]/[vvar_vclock] are {vvar}/{vclock} bytes here, {}/{} in the image",
                mm.pid, d.vvar_size, d.vvar_vclock_size
            )));
        }
    }
    Ok(())
}

/// A mapped file must be the one that was mapped: ELF files by build-id and size,
/// others by size and mtime.
pub fn check_mapped_file(f: &MappedFile) -> Result<()> {
    let md = std::fs::metadata(&f.path)
        .map_err(|e| RestoreError::Mismatch(format!("mapped file {} is missing: {e}", f.path)))?;
    if !md.is_file() {
        return Err(RestoreError::Mismatch(format!("mapped file {} is no longer a regular file", f.path)));
    }
    if md.size() != f.size {
        return Err(RestoreError::Mismatch(format!(
            "mapped file {} changed: size {} where {} was saved",
            f.path,
            md.size(),
            f.size
        )));
    }
    match &f.build_id {
        Some(saved) => {
            let now = crate::elf::build_id(std::path::Path::new(&f.path))
                .map_err(|e| RestoreError::Mismatch(format!("cannot read mapped file {}: {e}", f.path)))?;
            if now.as_ref() != Some(saved) {
                return Err(RestoreError::Mismatch(format!(
                    "mapped file {} changed: build-id {} where {} was saved",
                    f.path,
                    now.map(|v| hex(&v)).unwrap_or_else(|| "none".into()),
                    hex(saved)
                )));
            }
        }
        None => {
            let mtime = md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128;
            if mtime != f.mtime_ns {
                return Err(RestoreError::Mismatch(format!("mapped file {} changed: modified since the dump", f.path)));
            }
        }
    }
    Ok(())
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn check_files(set: &ImageSet) -> Result<()> {
    for mm in set.mms.values() {
        for (i, f) in mm.files.iter().enumerate() {
            let used = mm.exe == Some(i as u32)
                || mm.vmas.iter().any(|v| matches!(v.kind, VmaKind::File { file, .. } if file as usize == i));
            if used {
                check_mapped_file(f)?;
            }
        }
    }
    for d in &set.files.files {
        let FileKind::Path(p) = &d.kind else { continue };
        let md = std::fs::metadata(&p.path)
            .map_err(|e| RestoreError::Mismatch(format!("open file {} is missing: {e}", p.path)))?;
        let ft = md.file_type();
        let same = match p.ftype {
            FileType::Regular => ft.is_file(),
            FileType::Directory => ft.is_dir(),
            FileType::CharDevice => ft.is_char_device() && md.rdev() == p.rdev,
        };
        if !same {
            return Err(RestoreError::Mismatch(format!("open file {} is no longer a {:?}", p.path, p.ftype)));
        }
    }
    Ok(())
}

fn check_externals(set: &ImageSet, opts: &RestoreOptions) -> Result<()> {
    let mut missing = Vec::new();
    for e in &set.inventory.externals {
        let bound = opts.inherit.iter().any(|i| i.key == e.key)
            || (opts.shell_job
                && matches!(e.kind, ExternalKind::Tty | ExternalKind::Session | ExternalKind::ProcessGroup));
        if !bound {
            // Name who uses it, so the user knows which fd to pass.
            let users: Vec<String> = set
                .fdtables
                .values()
                .flat_map(|t| {
                    t.fds.iter().filter_map(move |f| match &set.files.files[f.file as usize].kind {
                        FileKind::External { key } if *key == e.key => Some(format!("task {} fd {}", t.pid, f.fd)),
                        _ => None,
                    })
                })
                .collect();
            if users.is_empty() {
                missing.push(e.key.clone());
            } else {
                missing.push(format!("{} ({})", e.key, users.join(", ")));
            }
        }
    }
    for i in &opts.inherit {
        if !crate::sys::fd_is_open(i.fd) {
            return Err(RestoreError::Usage(format!("--inherit-fd fd[{}]: rckpt has no fd {}", i.fd, i.fd)));
        }
    }
    if missing.is_empty() { Ok(()) } else { Err(RestoreError::Unbound { missing }) }
}

const RLIMIT_NAMES: [&str; 16] = [
    "CPU",
    "FSIZE",
    "DATA",
    "STACK",
    "CORE",
    "RSS",
    "NPROC",
    "NOFILE",
    "MEMLOCK",
    "AS",
    "LOCKS",
    "SIGPENDING",
    "MSGQUEUE",
    "NICE",
    "RTPRIO",
    "RTTIME",
];

// Capability numbers (linux/capability.h).
const CAP_SETGID: u32 = 6;
const CAP_SETUID: u32 = 7;
const CAP_SETPCAP: u32 = 8;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_SYS_NICE: u32 = 23;
const CAP_SYS_RESOURCE: u32 = 24;
const CAP_CHECKPOINT_RESTORE: u32 = 40;
const RLIMIT_NICE: u32 = 13;

/// What rckpt itself holds, from /proc/self/status: the restored tasks start
/// with these credentials (each is created before its parent's drop) and the
/// trampoline can only narrow them.
pub struct Own {
    pub status: procfs::process::Status,
    /// Hard limits, by resource.
    pub hard: [u64; 16],
}

impl Own {
    pub fn read() -> Result<Own> {
        let me = Pid::this();
        let status =
            proc::thread_status(me, me).map_err(|e| RestoreError::Privilege(format!("cannot read own status: {e}")))?;
        let limits = procfs::process::Process::myself()
            .and_then(|p| p.limits())
            .map_err(|e| RestoreError::Privilege(format!("cannot read own limits: {e}")))?;
        Ok(Own { status, hard: limits_max(&limits) })
    }

    /// Whether capability `cap` is in rckpt's effective set.
    pub fn has(&self, cap: u32) -> bool {
        self.status.capeff & (1 << cap) != 0
    }

    /// Whether `groups` are rckpt's supplementary groups (as sets: the kernel
    /// keeps them sorted).
    pub fn same_groups(&self, groups: &[u32]) -> bool {
        let mut a = groups.to_vec();
        let mut b = self.status.groups.clone();
        a.sort_unstable();
        a.dedup();
        b.sort_unstable();
        b.dedup();
        a == b
    }
}

/// Least privilege (ARCHITECTURE rule 7): the tree gets nothing the invoker
/// does not hold, and asks for nothing the kernel would refuse the trampoline
/// (which runs with rckpt's credentials until it sets the saved ones).
fn check_privilege(set: &ImageSet) -> Result<()> {
    let own = Own::read()?;
    let st = &own.status;
    // clone3 with set_tid, and the exe link of PR_SET_MM_MAP.
    if !own.has(CAP_CHECKPOINT_RESTORE) && !own.has(CAP_SYS_ADMIN) {
        return Err(RestoreError::Privilege(
            "creating tasks with their saved pids (clone3 set_tid) and setting their executable (PR_SET_MM_MAP) need CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN".into(),
        ));
    }
    let mine_u = [st.ruid, st.euid, st.suid, st.fuid];
    let mine_g = [st.rgid, st.egid, st.sgid, st.fgid];
    let own_bnd = st.capbnd.unwrap_or(0);
    let own_securebits = crate::sys::task::securebits();
    let own_nice = crate::sys::task::nice(Pid::this()).unwrap_or(0);
    for core in set.cores.values() {
        for t in &core.threads {
            let c = &t.creds;
            let who = format!("task {} thread {}", core.pid, t.tid);
            // capset(2) without CAP_SETPCAP: permitted within rckpt's permitted,
            // inheritable within rckpt's inheritable and permitted. Effective
            // and ambient are raised from permitted.
            for (name, saved, mine) in [
                ("inheritable", c.cap_inheritable, st.capinh | st.capprm),
                ("permitted", c.cap_permitted, st.capprm),
                ("effective", c.cap_effective, st.capprm),
                ("bounding", c.cap_bounding, own_bnd),
                ("ambient", c.cap_ambient, st.capprm),
            ] {
                if saved & !mine != 0 {
                    return Err(RestoreError::Privilege(format!(
                        "{who}: {name} capabilities {:#x} include {:#x} that rckpt does not hold",
                        saved,
                        saved & !mine
                    )));
                }
            }
            if own_bnd & !c.cap_bounding != 0 && !own.has(CAP_SETPCAP) {
                return Err(RestoreError::Privilege(format!(
                    "{who}: its bounding set {:#x} lacks capabilities {:#x} of rckpt's, and dropping them needs CAP_SETPCAP",
                    c.cap_bounding,
                    own_bnd & !c.cap_bounding
                )));
            }
            if c.securebits != own_securebits && !own.has(CAP_SETPCAP) {
                return Err(RestoreError::Privilege(format!(
                    "{who}: securebits {:#x} (rckpt's are {own_securebits:#x}) need CAP_SETPCAP",
                    c.securebits
                )));
            }
            // setresuid(2) without CAP_SETUID: only to the caller's real,
            // effective or saved id; setfsuid(2) also to its fs id.
            let foreign = |ids: &[u32; 4], mine: &[u32; 4]| {
                ids[..3].iter().any(|i| !mine[..3].contains(i)) || !mine.contains(&ids[3])
            };
            if !own.has(CAP_SETUID) && foreign(&c.uid, &mine_u) {
                return Err(RestoreError::Privilege(format!(
                    "{who}: uids {:?} (real, effective, saved, fs) are not rckpt's {mine_u:?}: they need CAP_SETUID",
                    c.uid
                )));
            }
            if !own.has(CAP_SETGID) && foreign(&c.gid, &mine_g) {
                return Err(RestoreError::Privilege(format!(
                    "{who}: gids {:?} (real, effective, saved, fs) are not rckpt's {mine_g:?}: they need CAP_SETGID",
                    c.gid
                )));
            }
            if !own.has(CAP_SETGID) && !own.same_groups(&c.groups) {
                return Err(RestoreError::Privilege(format!(
                    "{who}: supplementary groups {:?} are not rckpt's {:?}: they need CAP_SETGID",
                    c.groups, st.groups
                )));
            }
            // setpriority(2): a lower nice value than the inherited one needs
            // CAP_SYS_NICE or an RLIMIT_NICE (already the saved one) allowing it.
            let rlim_nice = core.rlimits.iter().find(|r| r.resource == RLIMIT_NICE).map(|r| r.cur).unwrap_or(0);
            if t.sched.nice < own_nice && (20 - t.sched.nice) as u64 > rlim_nice && !own.has(CAP_SYS_NICE) {
                return Err(RestoreError::Privilege(format!(
                    "{who}: nice {} is below rckpt's {own_nice} and its RLIMIT_NICE ({rlim_nice}) allows no lower than {}: it needs CAP_SYS_NICE",
                    t.sched.nice,
                    20 - rlim_nice.min(40) as i64
                )));
            }
            // Suspending the filters while the trampoline runs (PTRACE_O_SUSPEND_SECCOMP)
            // and installing them without no_new_privs need CAP_SYS_ADMIN.
            if t.seccomp.filter.is_some() {
                if st.seccomp.unwrap_or(0) != 0 {
                    return Err(RestoreError::Privilege(format!(
                        "{who}: it runs under seccomp filters, and rckpt itself runs under seccomp, which forbids suspending them while the trampoline runs"
                    )));
                }
                if !own.has(CAP_SYS_ADMIN) {
                    return Err(RestoreError::Privilege(format!(
                        "{who}: it runs under seccomp filters: suspending them while the trampoline runs (PTRACE_O_SUSPEND_SECCOMP) and installing them need CAP_SYS_ADMIN"
                    )));
                }
            }
        }
        // prlimit(2): a hard limit above the caller's needs CAP_SYS_RESOURCE.
        // Limits are only ever lowered otherwise.
        for r in &core.rlimits {
            let have = own.hard[r.resource as usize];
            if r.max > have && !own.has(CAP_SYS_RESOURCE) {
                return Err(RestoreError::Privilege(format!(
                    "task {}: rlimit {} hard limit {} exceeds rckpt's {} (raising it needs CAP_SYS_RESOURCE)",
                    core.pid,
                    RLIMIT_NAMES[r.resource as usize],
                    show_limit(r.max),
                    show_limit(have)
                )));
            }
        }
    }
    Ok(())
}

fn show_limit(v: u64) -> String {
    if v == u64::MAX { "unlimited".into() } else { v.to_string() }
}

fn limits_max(l: &procfs::process::Limits) -> [u64; 16] {
    use procfs::process::LimitValue;
    let v = |x: &LimitValue| match x {
        LimitValue::Unlimited => u64::MAX,
        LimitValue::Value(n) => *n,
    };
    [
        v(&l.max_cpu_time.hard_limit),
        v(&l.max_file_size.hard_limit),
        v(&l.max_data_size.hard_limit),
        v(&l.max_stack_size.hard_limit),
        v(&l.max_core_file_size.hard_limit),
        v(&l.max_resident_set.hard_limit),
        v(&l.max_processes.hard_limit),
        v(&l.max_open_files.hard_limit),
        v(&l.max_locked_memory.hard_limit),
        v(&l.max_address_space.hard_limit),
        v(&l.max_file_locks.hard_limit),
        v(&l.max_pending_signals.hard_limit),
        v(&l.max_msgqueue_size.hard_limit),
        v(&l.max_nice_priority.hard_limit),
        v(&l.max_realtime_priority.hard_limit),
        v(&l.max_realtime_timeout.hard_limit),
    ]
}

fn check_xstate(set: &ImageSet) -> Result<()> {
    let me = crate::arch::xstate::own_xstate_size();
    for core in set.cores.values() {
        for t in &core.threads {
            if t.xstate.len() > me {
                return Err(RestoreError::Mismatch(format!(
                    "thread {}: its FPU state is {} bytes, this CPU's is {me} (a CPU with more vector state dumped it)",
                    t.tid,
                    t.xstate.len()
                )));
            }
        }
    }
    Ok(())
}

/// The CPU must have every feature the image's had (the tree may have picked
/// code for them at start-up).
fn check_cpu(set: &ImageSet) -> Result<()> {
    let missing = crate::arch::cpu::missing(&set.inventory.cpu, &crate::arch::cpu::this_cpu());
    if missing.is_empty() {
        return Ok(());
    }
    Err(RestoreError::Mismatch(format!(
        "this CPU lacks features the image's CPU ({}) had, which the tree may use: {}",
        set.inventory.cpu.vendor,
        missing.join(", ")
    )))
}

pub fn check_host(set: &ImageSet, opts: &RestoreOptions) -> Result<()> {
    check_cpu(set)?;
    check_externals(set, opts)?;
    check_privilege(set)?;
    check_vdso(set)?;
    check_xstate(set)?;
    check_files(set)?;
    Ok(())
}

/// A pid held by a zombie that init has not reaped yet frees up soon (init here
/// reaps lazily, about a second): wait for it, bounded, and say so.
pub fn wait_pid_free(pid: i32) -> Result<()> {
    let p = Pid::from_raw(pid);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut said = false;
    loop {
        match proc::stat(p) {
            Err(_) => return Ok(()),
            Ok(s) if s.state == 'Z' || s.state == 'X' => {
                if !said {
                    eprintln!("rckpt: pid {pid} is still held by an unreaped zombie; waiting up to 10 s for it to go");
                    said = true;
                }
                if Instant::now() >= deadline {
                    return Err(RestoreError::PidTaken { pid });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(_) => return Err(RestoreError::PidTaken { pid }),
        }
    }
}
