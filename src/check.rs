//! `rckpt check`: probes each kernel interface rckpt relies on.

use std::fmt::Write;

use crate::sys::Pid;

fn kernel_at_least(major: u32, minor: u32) -> bool {
    let rel = nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default();
    let mut it = rel.split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse::<u32>().ok());
    let (a, b) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

/// Returns the report and whether every required feature is there.
pub fn check() -> (String, bool) {
    let me = Pid::this();
    let mut rows: Vec<(&str, bool, String)> = Vec::new();
    let scan = crate::sys::pagemap::Pagemap::open(me).and_then(|p| {
        let mut v = Vec::new();
        p.scan(
            0,
            0x1000,
            crate::sys::pagemap::Query { required: 0, excluded: 0, any_of: crate::sys::pagemap::PAGE_IS_PRESENT },
            &mut v,
        )
    });
    rows.push(("PAGEMAP_SCAN ioctl (6.7)", scan.is_ok(), scan.err().map(|e| e.to_string()).unwrap_or_default()));
    let pidfd = crate::sys::pidfd::open(me);
    rows.push(("pidfd_open (5.3) / pidfd_getfd (5.6)", pidfd.is_ok(), String::new()));
    rows.push(("clone3 with set_tid (5.5)", kernel_at_least(5, 5), String::new()));
    rows.push(("PTRACE_GET_RSEQ_CONFIGURATION (5.13)", kernel_at_least(5, 13), String::new()));
    rows.push(("PR_TIMER_CREATE_RESTORE_IDS (6.13)", kernel_at_least(6, 13), String::new()));
    let vdso = crate::restore::validate::own_vdso();
    let vdso_ok = vdso.as_ref().is_ok_and(|(_, _, b)| crate::parasite::find_syscall_insn(b).is_some());
    rows.push((
        "vDSO with a syscall instruction",
        vdso_ok,
        vdso.map(|(v, c, b)| format!("[vvar] {v} B, [vvar_vclock] {c} B, [vdso] {} B", b.len()))
            .unwrap_or_else(|e| e.to_string()),
    ));
    let status = crate::proc::thread_status(me, me).ok();
    let caps = status.as_ref().map(|s| s.capeff).unwrap_or(0);
    let has = |c: u32| caps & (1u64 << c) != 0;
    rows.push(("CAP_SYS_PTRACE (trace other users' tasks)", has(19), String::new()));
    rows.push(("CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN (set_tid, exe link)", has(40) || has(21), String::new()));
    let own_seccomp = status.and_then(|s| s.seccomp).unwrap_or(0);
    rows.push((
        "CAP_SYS_ADMIN, not under seccomp (seccomp filters: PTRACE_O_SUSPEND_SECCOMP, PTRACE_SECCOMP_GET_FILTER)",
        has(21) && own_seccomp == 0,
        if own_seccomp != 0 { format!("rckpt runs in seccomp mode {own_seccomp}") } else { String::new() },
    ));
    let yama = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope").ok().map(|s| s.trim().to_string());
    rows.push((
        "ptrace allowed (yama ptrace_scope < 3)",
        yama.as_deref() != Some("3"),
        yama.map(|y| format!("ptrace_scope {y}")).unwrap_or_default(),
    ));
    let blobs = std::panic::catch_unwind(|| {
        crate::blob::parasite();
        crate::blob::restorer();
    })
    .is_ok();
    rows.push(("parasite and restorer blobs load", blobs, String::new()));
    let required = rows.len();
    rows.push((
        "(optional) incremental dumps: asynchronous userfaultfd write-protect (6.7)",
        crate::sys::uffd::supported(),
        "rckpt pre-dump / dump --prev-images-dir".to_string(),
    ));
    let mut s = String::new();
    let mut all = true;
    for (i, (name, ok, note)) in rows.iter().enumerate() {
        all &= *ok || i >= required;
        let _ = writeln!(
            s,
            "{:<8} {name}{}",
            if *ok { "ok" } else { "missing" },
            if note.is_empty() { String::new() } else { format!(" ({note})") }
        );
    }
    (s, all)
}
