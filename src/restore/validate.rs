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

/// Least privilege: the tree gets nothing the invoker does not hold.
fn check_privilege(set: &ImageSet) -> Result<()> {
    let me = Pid::this();
    let st =
        proc::thread_status(me, me).map_err(|e| RestoreError::Privilege(format!("cannot read own status: {e}")))?;
    let cap_setuid = st.capeff & (1 << 7) != 0;
    let cap_setgid = st.capeff & (1 << 6) != 0;
    let mine_u = [st.ruid, st.euid, st.suid];
    let mine_g = [st.rgid, st.egid, st.sgid];
    for core in set.cores.values() {
        for t in &core.threads {
            let c = &t.creds;
            let who = format!("task {} thread {}", core.pid, t.tid);
            for (name, saved, mine) in [
                ("inheritable", c.cap_inheritable, st.capinh | st.capprm),
                ("permitted", c.cap_permitted, st.capprm),
                ("effective", c.cap_effective, st.capprm),
                ("bounding", c.cap_bounding & c.cap_permitted, st.capbnd.unwrap_or(u64::MAX)),
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
            if !cap_setuid && c.uid.iter().any(|u| !mine_u.contains(u)) {
                return Err(RestoreError::Privilege(format!("{who}: uids {:?} need CAP_SETUID", c.uid)));
            }
            if !cap_setgid && (c.gid.iter().any(|g| !mine_g.contains(g)) || c.groups != st.groups) {
                return Err(RestoreError::Privilege(format!("{who}: gids {:?} and groups need CAP_SETGID", c.gid)));
            }
        }
        let limits = procfs::process::Process::myself()
            .and_then(|p| p.limits())
            .map_err(|e| RestoreError::Privilege(format!("cannot read own limits: {e}")))?;
        let mine = limits_max(&limits);
        for r in &core.rlimits {
            let have = mine[r.resource as usize];
            if r.max > have {
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

pub fn check_host(set: &ImageSet, opts: &RestoreOptions) -> Result<()> {
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
