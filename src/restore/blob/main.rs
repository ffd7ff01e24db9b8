//! The restorer trampoline: runs in rckpt's clone3 child, from an area that is free
//! in both the saved layout and rckpt's own, and turns the child into the saved
//! task in the order ARCHITECTURE.md gives. It ends parked at an int3; rckpt then
//! unmaps this area and releases the task into rt_sigreturn.
//!
//! Freestanding: no std, no allocation, no TLS. Every signal is blocked (inherited
//! from rckpt's thread) until rt_sigreturn installs the saved mask.

#![no_std]
#![no_main]
#![allow(clippy::missing_safety_doc)]

#[path = "../../blob_common/mod.rs"]
#[allow(dead_code)]
mod common;
#[path = "../abi.rs"]
#[allow(dead_code)]
mod abi;

use abi::*;
use common::sys::*;
use core::mem::size_of;

const PROT_READ: u32 = 1;
const PROT_WRITE: u32 = 2;
const MAP_FIXED: u32 = 0x10;
const O_CLOEXEC: u64 = 0o2000000;
const SS_DISABLE: i32 = 2;
const FUTEX_WAIT: u64 = 0;
const RSEQ_FLAG_UNREGISTER: u64 = 1;
const ARCH_MAP_VDSO_64: u64 = 0x2003;
const PR_SET_PDEATHSIG: u64 = 1;
const PR_SET_DUMPABLE: u64 = 4;
const PR_SET_NAME: u64 = 15;
const PR_CAPBSET_DROP: u64 = 24;
const PR_SET_SECUREBITS: u64 = 28;
const PR_SET_TIMERSLACK: u64 = 29;
const PR_SET_MM: u64 = 35;
const PR_SET_MM_MAP: u64 = 14;
const PR_SET_CHILD_SUBREAPER: u64 = 36;
const PR_SET_NO_NEW_PRIVS: u64 = 38;
const PR_SET_THP_DISABLE: u64 = 41;
const PR_CAP_AMBIENT: u64 = 47;
const PR_CAP_AMBIENT_RAISE: u64 = 2;
const PR_CAP_AMBIENT_CLEAR_ALL: u64 = 4;
const PR_SET_MDWE: u64 = 65;
const PR_TIMER_CREATE_RESTORE_IDS: u64 = 77;
const PR_SET_VMA: u64 = 0x53564d41;
const PR_SET_VMA_ANON_NAME: u64 = 0;
const SECURE_NO_SETUID_FIXUP: u64 = 1 << 2;
const SYS_RT_SIGQUEUEINFO: i64 = 129;
const CHUNK: u64 = 256 * 1024;

static mut CTL: *mut Control = core::ptr::null_mut();

#[unsafe(no_mangle)]
#[unsafe(naked)]
pub extern "C" fn _start() -> ! {
    core::arch::naked_asm!("and rsp, -16", "call {main}", "ud2", main = sym main)
}

fn step(s: u32, detail: u64) {
    // SAFETY: CTL points at the shared control page for the blob's whole life.
    unsafe {
        core::ptr::write_volatile(&raw mut (*CTL).step, s);
        core::ptr::write_volatile(&raw mut (*CTL).detail, detail);
    }
}

/// Records the failure for rckpt and ends the task; rckpt reports which step.
fn fail(err: i64) -> ! {
    // SAFETY: as in `step`; exit_group ends this task only.
    unsafe {
        core::ptr::write_volatile(&raw mut (*CTL).error, if err < 0 { err } else { -1 });
        exit_group(125)
    }
}

fn ck(r: i64) -> i64 {
    if r < 0 { fail(r) } else { r }
}

unsafe fn slice<'a, T>(addr: u64, n: u64) -> &'a [T] {
    if n == 0 {
        return &[];
    }
    // SAFETY: rckpt wrote `n` elements of T at `addr` inside the blob area.
    unsafe { core::slice::from_raw_parts(addr as *const T, n as usize) }
}

unsafe extern "C" fn main(a: *const RestoreArgs) -> ! {
    // SAFETY: rckpt passes the args it wrote into the blob area.
    let a = unsafe { &*a };
    // SAFETY: the control page is part of the kept area.
    unsafe { CTL = a.ctl as *mut Control };
    if a.magic != RESTORE_MAGIC {
        fail(-22);
    }
    step(STEP_START, 0);
    // SAFETY: raw syscalls on this task's own state, with pointers into the blob area.
    unsafe {
        // Wait until rckpt has seized us (it then traces us with EXITKILL).
        while core::ptr::read_volatile(&raw const (*CTL).go) == 0 {
            let ts = [1i64, 0];
            sc(SYS_FUTEX, &[&raw const (*CTL).go as u64, FUTEX_WAIT, 0, ts.as_ptr() as u64]);
            if sc(SYS_GETPPID, &[]) != a.rckpt_pid as i64 {
                exit_group(124);
            }
        }
        // 2. The kernel would otherwise write into restored memory.
        let (ra, rl, rs) = (
            core::ptr::read_volatile(&raw const (*CTL).rseq_addr),
            core::ptr::read_volatile(&raw const (*CTL).rseq_len),
            core::ptr::read_volatile(&raw const (*CTL).rseq_sig),
        );
        if ra != 0 {
            ck(sc(SYS_RSEQ, &[ra, rl as u64, RSEQ_FLAG_UNREGISTER, rs as u64]));
        }
        let ss = [0u64, SS_DISABLE as u64, 0];
        sc(SYS_SIGALTSTACK, &[ss.as_ptr() as u64, 0]);

        // Its own session or group, as saved (a clone3 child of rckpt leads
        // neither, so both calls are allowed).
        step(STEP_SESSION, a.session as u64);
        match a.session {
            1 => {
                ck(sc(SYS_SETSID, &[]));
            }
            2 => {
                ck(sc(SYS_SETPGID, &[0, 0]));
            }
            _ => {}
        }

        // Files: every kept fd to fd_base + i, nothing else of rckpt's, then the
        // saved table.
        step(STEP_FDS, 0);
        let keep = slice::<KeepFd>(a.keep, a.nr_keep as u64);
        for (i, k) in keep.iter().enumerate() {
            step(STEP_FDS, k.src as u64);
            ck(sc(SYS_DUP3, &[k.src as u64, (a.fd_base + i as i32) as u64, O_CLOEXEC]));
        }
        if a.fd_base > 0 {
            ck(sc(SYS_CLOSE_RANGE, &[0, (a.fd_base - 1) as u64, 0]));
        }
        ck(sc(SYS_CLOSE_RANGE, &[(a.fd_base as u32 + a.nr_keep) as u64, u32::MAX as u64, 0]));
        for f in slice::<InstallFd>(a.install, a.nr_install) {
            step(STEP_FDS, f.fd as u64);
            let flags = if f.cloexec != 0 { O_CLOEXEC } else { 0 };
            ck(sc(SYS_DUP3, &[(a.fd_base + f.keep as i32) as u64, f.fd as u64, flags]));
        }
        let kept = |k: i32| (a.fd_base + k) as u64;

        // 3. Memory: nothing of rckpt's but this area, then every saved VMA.
        step(STEP_UNMAP, 0);
        ck(sc(SYS_MUNMAP, &[0, a.keep_start]));
        ck(sc(SYS_MUNMAP, &[a.keep_end, a.task_size - a.keep_end]));

        // 4. exe_fd and the mm fields, now that rckpt's exe mapping is gone and
        // before the saved VMAs are mapped: the kernel refuses to change the exe
        // link while any VMA maps the old exe file, which the saved ones may (a
        // tree started from the rckpt binary itself). PR_SET_MM_MAP checks only
        // the values, not the VMAs.
        step(STEP_MM_MAP, 0);
        let mut mm = a.mm_map;
        mm.exe_fd = if a.exe_keep >= 0 { kept(a.exe_keep) as u32 } else { u32::MAX };
        ck(sc(SYS_PRCTL, &[PR_SET_MM, PR_SET_MM_MAP, &raw const mm as u64, size_of::<PrctlMmMap>() as u64, 0]));
        let vmas = slice::<BlobVma>(a.vmas, a.nr_vmas);
        for v in vmas {
            step(STEP_MAP_VMA, v.start);
            let prot = if v.has_pages != 0 { v.prot | PROT_READ | PROT_WRITE } else { v.prot };
            let fd = if v.keep >= 0 { kept(v.keep) } else { u64::MAX };
            let r = ck(sc(SYS_MMAP, &[v.start, v.end - v.start, prot as u64, (v.flags | MAP_FIXED) as u64, fd, v.pgoff]));
            if r as u64 != v.start {
                fail(-17);
            }
        }
        let pages = kept(a.pages_keep);
        for e in slice::<BlobExtent>(a.extents, a.nr_extents) {
            step(STEP_READ_PAGES, e.start);
            let mut crc = 0u32;
            let mut off = 0u64;
            while off < e.len {
                let n = (e.len - off).min(CHUNK);
                let mut got = 0u64;
                while got < n {
                    let r = ck(sc(SYS_PREAD64, &[pages, e.start + off + got, n - got, e.file_off + off + got]));
                    if r == 0 {
                        fail(-5);
                    }
                    got += r as u64;
                }
                // Checked while the chunk is still in cache.
                crc = common::crc::append(crc, core::slice::from_raw_parts((e.start + off) as *const u8, n as usize));
                off += n;
            }
            if crc != e.crc {
                step(STEP_CHECK_PAGES, e.start);
                fail(-74); // EBADMSG
            }
        }
        for v in vmas {
            step(STEP_PROTECT_VMA, v.start);
            let len = v.end - v.start;
            if v.has_pages != 0 && v.prot != (v.prot | PROT_READ | PROT_WRITE) {
                ck(sc(SYS_MPROTECT, &[v.start, len, v.prot as u64]));
            }
            let advice: [(u32, u64); 8] = [
                (MADV_BIT_DONTFORK, 10),
                (MADV_BIT_DONTDUMP, 16),
                (MADV_BIT_HUGEPAGE, 14),
                (MADV_BIT_NOHUGEPAGE, 15),
                (MADV_BIT_MERGEABLE, 12),
                (MADV_BIT_WIPEONFORK, 18),
                (MADV_BIT_RANDOM, 1),
                (MADV_BIT_SEQUENTIAL, 2),
            ];
            for (bit, adv) in advice {
                if v.madv & bit != 0 {
                    ck(sc(SYS_MADVISE, &[v.start, len, adv]));
                }
            }
            if v.madv & MADV_BIT_MLOCK != 0 {
                ck(sc(SYS_MLOCK, &[v.start, len]));
            } else if v.madv & MADV_BIT_MLOCK_ONFAULT != 0 {
                ck(sc(325 /* mlock2 */, &[v.start, len, 1]));
            }
            if v.name != 0 {
                ck(sc(SYS_PRCTL, &[PR_SET_VMA, PR_SET_VMA_ANON_NAME, v.start, len, v.name]));
            }
        }
        if a.vdso_at != 0 {
            step(STEP_VDSO, a.vdso_at);
            ck(sc(SYS_ARCH_PRCTL, &[ARCH_MAP_VDSO_64, a.vdso_at]));
        }

        // 6. Task settings after the mappings.
        let t = &a.thread;
        step(STEP_TASK_STATE, 0);
        ck(sc(SYS_PERSONALITY, &[a.personality as u64]));
        if a.mdwe != 0 {
            ck(sc(SYS_PRCTL, &[PR_SET_MDWE, a.mdwe as u64, 0, 0, 0]));
        }
        sc(SYS_UMASK, &[a.umask as u64]);
        if a.cwd_keep >= 0 {
            step(STEP_TASK_STATE, 1);
            ck(sc(SYS_FCHDIR, &[kept(a.cwd_keep)]));
        }
        ck(sc(SYS_PRCTL, &[PR_SET_NAME, t.comm.as_ptr() as u64]));
        sc(SYS_SET_TID_ADDRESS, &[t.tid_address]);
        step(STEP_TASK_STATE, 2);
        ck(sc(SYS_SET_ROBUST_LIST, &[t.robust_head, t.robust_len]));
        if t.rseq_addr != 0 {
            step(STEP_TASK_STATE, 3);
            ck(sc(SYS_RSEQ, &[t.rseq_addr, t.rseq_len as u64, 0, t.rseq_sig as u64]));
        }
        if t.nr_affinity > 0 {
            step(STEP_TASK_STATE, 4);
            ck(sc(SYS_SCHED_SETAFFINITY, &[0, t.nr_affinity as u64 * 8, t.affinity.as_ptr() as u64]));
        }
        step(STEP_TASK_STATE, 5);
        ck(sc(SYS_SETPRIORITY, &[0, 0, t.nice as u64]));
        ck(sc(SYS_PRCTL, &[PR_SET_TIMERSLACK, t.timer_slack_ns]));
        ck(sc(SYS_PRCTL, &[PR_SET_THP_DISABLE, a.thp_disable as u64, 0, 0, 0]));
        ck(sc(SYS_PRCTL, &[PR_SET_CHILD_SUBREAPER, a.child_subreaper as u64]));

        step(STEP_SIGNALS, 0);
        for sig in 1..=64u64 {
            if sig == 9 || sig == 19 {
                continue;
            }
            step(STEP_SIGNALS, sig);
            ck(sc(SYS_RT_SIGACTION, &[sig, &raw const a.sigactions[sig as usize - 1] as u64, 0, 8]));
        }

        // rlimits after mmaps and fds.
        for (res, r) in a.rlimits.iter().enumerate() {
            step(STEP_RLIMITS, res as u64);
            ck(sc(SYS_PRLIMIT64, &[0, res as u64, r as *const KRlimit as u64, 0]));
        }

        creds(&t.creds);

        // commit_creds resets these two: after credentials.
        step(STEP_TASK_STATE, 6);
        ck(sc(SYS_PRCTL, &[PR_SET_DUMPABLE, a.dumpable as u64]));
        ck(sc(SYS_PRCTL, &[PR_SET_PDEATHSIG, a.pdeath_signal as u64]));

        // Pending signals: blocked until rt_sigreturn installs the saved mask.
        let pid = a.pid as u64;
        for (i, s) in slice::<BlobSiginfo>(a.siginfo, a.nr_siginfo).iter().enumerate() {
            step(STEP_SIGNALS, 100 + i as u64);
            if s.shared != 0 {
                ck(sc(SYS_RT_SIGQUEUEINFO, &[pid, s.signo as u64, s.info.as_ptr() as u64]));
            } else {
                ck(sc(SYS_RT_TGSIGQUEUEINFO, &[pid, t.tid as u64, s.signo as u64, s.info.as_ptr() as u64]));
            }
        }

        // Timers last, so they lose as little time as possible.
        for (which, it) in a.itimers.iter().enumerate() {
            if it.iter().any(|v| *v != 0) {
                step(STEP_TIMERS, which as u64);
                ck(sc(SYS_SETITIMER, &[which as u64, it.as_ptr() as u64, 0]));
            }
        }
        let timers = slice::<BlobTimer>(a.timers, a.nr_timers);
        if !timers.is_empty() {
            step(STEP_TIMERS, 10);
            ck(sc(SYS_PRCTL, &[PR_TIMER_CREATE_RESTORE_IDS, 1, 0, 0, 0]));
            for tm in timers {
                step(STEP_TIMERS, 100 + tm.id as u64);
                // struct sigevent: value, signo, notify, then the tid.
                let mut sev = [0u64; 8];
                sev[0] = tm.sigval;
                sev[1] = (tm.signo as u32 as u64) | ((tm.notify as u32 as u64) << 32);
                sev[2] = tm.notify_tid as u32 as u64;
                let mut id: i32 = tm.id;
                ck(sc(SYS_TIMER_CREATE, &[tm.clock as u64, sev.as_ptr() as u64, &raw mut id as u64]));
                if id != tm.id {
                    fail(-17);
                }
                let spec = [tm.interval_sec, tm.interval_nsec, tm.value_sec, tm.value_nsec];
                if spec.iter().any(|v| *v != 0) {
                    ck(sc(SYS_TIMER_SETTIME, &[id as u64, 0, spec.as_ptr() as u64, 0]));
                }
            }
            ck(sc(SYS_PRCTL, &[PR_TIMER_CREATE_RESTORE_IDS, 0, 0, 0, 0]));
        }

        // 7. The frame rt_sigreturn will consume, below the saved stack pointer.
        step(STEP_FRAME, t.frame_addr);
        core::ptr::copy_nonoverlapping(t.frame_src as *const u8, t.frame_addr as *mut u8, t.frame_len as usize);

        if a.nr_keep > 0 {
            sc(SYS_CLOSE_RANGE, &[a.fd_base as u64, (a.fd_base as u32 + a.nr_keep - 1) as u64, 0]);
        }
        // 8. Park: rckpt unmaps this area and releases us into rt_sigreturn.
        step(STEP_PARKED, 0);
        core::arch::asm!("int3");
        exit_group(123);
    }
}

/// Credentials, in the order that keeps the rights each step needs: groups and
/// ids with SECURE_NO_SETUID_FIXUP (so capabilities survive the uid change), then
/// securebits, the bounding set, the capability sets, ambient ones.
unsafe fn creds(c: &BlobCreds) {
    // SAFETY: syscalls on this task's own credentials with pointers into the args.
    unsafe {
        step(STEP_CREDS, 0);
        ck(sc(SYS_PRCTL, &[PR_SET_SECUREBITS, SECURE_NO_SETUID_FIXUP]));
        step(STEP_CREDS, 1);
        ck(sc(SYS_SETGROUPS, &[c.nr_groups as u64, c.groups]));
        step(STEP_CREDS, 2);
        ck(sc(SYS_SETRESGID, &[c.gid[0] as u64, c.gid[1] as u64, c.gid[2] as u64]));
        ck(sc(SYS_SETRESUID, &[c.uid[0] as u64, c.uid[1] as u64, c.uid[2] as u64]));
        sc(SYS_SETFSGID, &[c.gid[3] as u64]);
        sc(SYS_SETFSUID, &[c.uid[3] as u64]);
        step(STEP_CREDS, 3);
        ck(sc(SYS_PRCTL, &[PR_SET_SECUREBITS, c.securebits as u64]));
        step(STEP_CREDS, 4);
        let mut cap = 0u64;
        while cap <= c.last_cap as u64 {
            if c.cap_bounding & (1 << cap) == 0 {
                ck(sc(SYS_PRCTL, &[PR_CAPBSET_DROP, cap]));
            }
            cap += 1;
        }
        step(STEP_CREDS, 5);
        // _LINUX_CAPABILITY_VERSION_3: two 32-bit words per set.
        let hdr = [0x2008_0522u32, 0];
        let data = [
            c.cap_effective as u32,
            c.cap_permitted as u32,
            c.cap_inheritable as u32,
            (c.cap_effective >> 32) as u32,
            (c.cap_permitted >> 32) as u32,
            (c.cap_inheritable >> 32) as u32,
        ];
        ck(sc(SYS_CAPSET, &[hdr.as_ptr() as u64, data.as_ptr() as u64]));
        step(STEP_CREDS, 6);
        ck(sc(SYS_PRCTL, &[PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0]));
        let mut cap = 0u64;
        while cap <= c.last_cap as u64 {
            if c.cap_ambient & (1 << cap) != 0 {
                ck(sc(SYS_PRCTL, &[PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0]));
            }
            cap += 1;
        }
        if c.no_new_privs != 0 {
            step(STEP_CREDS, 7);
            ck(sc(SYS_PRCTL, &[PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0]));
        }
    }
}
