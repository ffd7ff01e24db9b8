//! The restorer trampoline: runs in rckpt's clone3 child (the root), and in every
//! task the root and its descendants create, from an area that is free in every
//! saved layout and in rckpt's own. Each task turns itself into its saved self in
//! the order ARCHITECTURE.md gives, creates its saved children once its own
//! memory is in place (so they inherit it), then its threads; every thread ends
//! parked at an int3, and rckpt unmaps this area and releases them.
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
const EPOLL_CTL_ADD: u64 = 1;
const TIOCSCTTY: u64 = 0x540e;
const TIOCSPGRP: u64 = 0x5410;
const F_SETLK: u64 = 6;
const F_RDLCK: i64 = 0;
const F_WRLCK: i64 = 1;
const RSEQ_FLAG_UNREGISTER: u64 = 1;
const ARCH_MAP_VDSO_64: u64 = 0x2003;
const PR_SET_PDEATHSIG: u64 = 1;
const PR_SET_DUMPABLE: u64 = 4;
const PR_SET_NAME: u64 = 15;
const PR_CAPBSET_READ: u64 = 23;
const PR_CAPBSET_DROP: u64 = 24;
const PR_GET_SECUREBITS: u64 = 27;
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
const SYS_CLONE3: i64 = 435;
const SYS_WAITID: i64 = 247;
const SYS_KILL: i64 = 62;
const SYS_RT_SIGTIMEDWAIT: i64 = 128;
const SYS_SECCOMP: i64 = 317;
const SECCOMP_SET_MODE_FILTER: u64 = 1;
const CLONE_VM: u64 = 0x100;
const CLONE_FS: u64 = 0x200;
const CLONE_FILES: u64 = 0x400;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_THREAD: u64 = 0x10000;
const CLONE_SYSVSEM: u64 = 0x40000;
const CLONE_UNTRACED: u64 = 0x800000;
const SIGCHLD: u64 = 17;
const P_PID: u64 = 1;
const WEXITED: u64 = 4;
const WNOWAIT: u64 = 0x01000000;
const CHUNK: u64 = 256 * 1024;
const POPULATE_WINDOW: u64 = 4 << 20;

#[unsafe(no_mangle)]
#[unsafe(naked)]
pub extern "C" fn _start() -> ! {
    core::arch::naked_asm!("and rsp, -16", "call {main}", "ud2", main = sym task_main)
}

/// Entry of a thread created with CLONE_THREAD: rdi holds its BlobThread.
#[unsafe(no_mangle)]
#[unsafe(naked)]
pub extern "C" fn thread_start() -> ! {
    core::arch::naked_asm!("and rsp, -16", "call {main}", "ud2", main = sym thread_main)
}

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// clone3 whose child starts at `entry` on `stack_top` with `arg` in rdi; the
/// parent gets the child's pid (or -errno).
unsafe fn clone_into(flags: u64, exit_signal: u64, pid: i32, stack_top: u64, entry: u64, arg: u64) -> i64 {
    let set_tid = [pid];
    let ca = CloneArgs {
        flags,
        exit_signal,
        stack: 0,
        stack_size: 0,
        set_tid: set_tid.as_ptr() as u64,
        set_tid_size: 1,
        ..CloneArgs::default()
    };
    let ret: i64;
    // SAFETY: the child never returns into this function's frame: it switches
    // to its own stack top (inside the blob area) and jumps to a blob entry.
    unsafe {
        core::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "mov rsp, {stack}",
            "mov rdi, {arg}",
            "xor ebp, ebp",
            "jmp {entry}",
            "2:",
            stack = in(reg) stack_top,
            arg = in(reg) arg,
            entry = in(reg) entry,
            inlateout("rax") SYS_CLONE3 => ret,
            in("rdi") &raw const ca,
            in("rsi") size_of::<CloneArgs>(),
            out("rcx") _,
            out("r11") _,
        );
    }
    ret
}

/// Progress and failure reporting into this thread's Control.
struct Report(*mut Control);

impl Report {
    fn step(&self, s: u32, detail: u64) {
        // SAFETY: the control array is a shared mapping kept for the blob's life.
        unsafe {
            core::ptr::write_volatile(&raw mut (*self.0).step, s);
            core::ptr::write_volatile(&raw mut (*self.0).detail, detail);
        }
    }

    /// Records the failure for rckpt and ends the whole task; rckpt names the step.
    fn fail(&self, err: i64) -> ! {
        // SAFETY: as in `step`; exit_group ends this task.
        unsafe {
            core::ptr::write_volatile(&raw mut (*self.0).error, if err < 0 { err } else { -1 });
            exit_group(125)
        }
    }

    fn ck(&self, r: i64) -> i64 {
        if r < 0 { self.fail(r) } else { r }
    }
}

unsafe fn slice<'a, T>(addr: u64, n: u64) -> &'a [T] {
    if n == 0 {
        return &[];
    }
    // SAFETY: rckpt wrote `n` elements of T at `addr` inside the blob area.
    unsafe { core::slice::from_raw_parts(addr as *const T, n as usize) }
}

/// A process: its leader thread (or, for an exited leader, the task with its
/// pid) runs this.
unsafe extern "C" fn task_main(a: *const RestoreArgs) -> ! {
    // SAFETY: rckpt passes the args it wrote into the blob area; every pointer in
    // them points into the same area.
    let a = unsafe { &*a };
    let threads = unsafe { slice::<BlobThread>(a.threads, a.nr_threads) };
    let me = &threads[0];
    let rep = Report(me.ctl as *mut Control);
    if a.magic != RESTORE_MAGIC {
        rep.fail(-22);
    }
    rep.step(STEP_START, 0);
    // SAFETY: raw syscalls on this task's own state, with pointers into the area.
    unsafe {
        if a.wait_go != 0 {
            // Wait until rckpt has seized us (it then traces us with EXITKILL).
            let c = rep.0;
            while core::ptr::read_volatile(&raw const (*c).go) == 0 {
                let ts = [1i64, 0];
                sc(SYS_FUTEX, &[&raw const (*c).go as u64, FUTEX_WAIT, 0, ts.as_ptr() as u64]);
                if sc(SYS_GETPPID, &[]) != a.parent_pid as i64 {
                    exit_group(124);
                }
            }
            // 2. The kernel would otherwise write into restored memory.
            let (ra, rl, rs) = (
                core::ptr::read_volatile(&raw const (*c).rseq_addr),
                core::ptr::read_volatile(&raw const (*c).rseq_len),
                core::ptr::read_volatile(&raw const (*c).rseq_sig),
            );
            if ra != 0 {
                rep.ck(sc(SYS_RSEQ, &[ra, rl as u64, RSEQ_FLAG_UNREGISTER, rs as u64]));
            }
            let ss = [0u64, SS_DISABLE as u64, 0];
            sc(SYS_SIGALTSTACK, &[ss.as_ptr() as u64, 0]);
        }

        // Its own session or group, as saved.
        rep.step(STEP_SESSION, a.session as u64);
        match a.session {
            1 => {
                rep.ck(sc(SYS_SETSID, &[]));
            }
            2 => {
                rep.ck(sc(SYS_SETPGID, &[0, a.pgid as u64]));
            }
            _ => {}
        }

        // Files: the root moves every fd the tree needs to fd_base + i and closes
        // the rest of rckpt's; a child closes what it inherited below fd_base.
        rep.step(STEP_FDS, 0);
        let keep = slice::<KeepFd>(a.keep, a.nr_keep as u64);
        if a.keep != 0 {
            for (i, k) in keep.iter().enumerate() {
                rep.step(STEP_FDS, k.src as u64);
                rep.ck(sc(SYS_DUP3, &[k.src as u64, (a.fd_base + i as i32) as u64, O_CLOEXEC]));
            }
            rep.ck(sc(SYS_CLOSE_RANGE, &[(a.fd_base as u32 + a.nr_keep) as u64, u32::MAX as u64, 0]));
        }
        if a.fd_base > 0 {
            rep.ck(sc(SYS_CLOSE_RANGE, &[0, (a.fd_base - 1) as u64, 0]));
        }
        for f in slice::<InstallFd>(a.install, a.nr_install) {
            rep.step(STEP_FDS, f.fd as u64);
            let flags = if f.cloexec != 0 { O_CLOEXEC } else { 0 };
            rep.ck(sc(SYS_DUP3, &[(a.fd_base + f.keep as i32) as u64, f.fd as u64, flags]));
        }
        let kept = |k: i32| (a.fd_base + k) as u64;
        for e in slice::<BlobEpoll>(a.epoll, a.nr_epoll) {
            rep.step(STEP_EPOLL, e.tfd as u64);
            // struct epoll_event is packed on x86_64: events, then data.
            let mut ev = [0u8; 12];
            ev[..4].copy_from_slice(&e.events.to_ne_bytes());
            ev[4..].copy_from_slice(&e.data.to_ne_bytes());
            rep.ck(sc(SYS_EPOLL_CTL, &[e.epfd as u64, EPOLL_CTL_ADD, e.tfd as u64, ev.as_ptr() as u64]));
        }
        // Before any child exists, so that they inherit it.
        if a.tty_op & TTY_OP_SCTTY != 0 {
            rep.step(STEP_TTY, 1);
            rep.ck(sc(SYS_IOCTL, &[kept(a.tty_keep), TIOCSCTTY, 0]));
        }
        if a.tty_op & TTY_OP_FOREGROUND != 0 {
            rep.step(STEP_TTY, 2);
            let pgrp: i32 = a.pid;
            rep.ck(sc(SYS_IOCTL, &[kept(a.tty_keep), TIOCSPGRP, &raw const pgrp as u64]));
        }

        // 3. Memory: nothing but this area, then every saved VMA.
        rep.step(STEP_UNMAP, 0);
        for r in slice::<BlobRange>(a.unmap, a.nr_unmap) {
            rep.step(STEP_UNMAP, r.start);
            rep.ck(sc(SYS_MUNMAP, &[r.start, r.len]));
        }

        // 4. exe_fd and the mm fields, now that the old exe mapping is gone and
        // before the saved VMAs are mapped: the kernel refuses to change the exe
        // link while any VMA maps the old exe file, which the saved ones may (a
        // tree started from the rckpt binary itself). PR_SET_MM_MAP checks only
        // the values, not the VMAs.
        rep.step(STEP_MM_MAP, 0);
        let mut mm = a.mm_map;
        mm.exe_fd = if a.exe_keep >= 0 { kept(a.exe_keep) as u32 } else { u32::MAX };
        rep.ck(sc(SYS_PRCTL, &[PR_SET_MM, PR_SET_MM_MAP, &raw const mm as u64, size_of::<PrctlMmMap>() as u64, 0]));

        let vmas = slice::<BlobVma>(a.vmas, a.nr_vmas);
        for v in vmas {
            rep.step(STEP_MAP_VMA, v.start);
            let prot = if v.has_pages != 0 { v.prot | PROT_READ | PROT_WRITE } else { v.prot };
            if v.inherit != 0 {
                // The parent's mapping, inherited copy-on-write: keep it.
                rep.ck(sc(SYS_MPROTECT, &[v.start, v.end - v.start, prot as u64]));
                continue;
            }
            let fd = if v.keep >= 0 { kept(v.keep) } else { u64::MAX };
            let r = rep.ck(sc(SYS_MMAP, &[v.start, v.end - v.start, prot as u64, (v.flags | MAP_FIXED) as u64, fd, v.pgoff]));
            if r as u64 != v.start {
                rep.fail(-17);
            }
        }
        // In inherited VMAs, what the task did not have goes: back to zeroes (or to
        // the file, for a private file mapping).
        for r in slice::<BlobRange>(a.discard, a.nr_discard) {
            rep.step(STEP_MAP_VMA, r.start);
            rep.ck(sc(SYS_MADVISE, &[r.start, r.len, 4 /* MADV_DONTNEED */]));
        }
        let pages = kept(a.pages_keep);
        let mut placed = 0u64;
        for e in slice::<BlobExtent>(a.extents, a.nr_extents) {
            rep.step(STEP_READ_PAGES, e.start);
            let mut crc = 0u32;
            let mut off = 0u64;
            let own_check = e.flags & (EXTENT_PREV | EXTENT_RCKPT_CHECKS) == 0;
            let mut populated = 0u64;
            while off < e.len {
                // Allocate pages a window at a time rather than one fault per page
                // inside pread (MADV_POPULATE_WRITE; older kernels skip it). Not
                // the whole extent at once: what is placed grows evenly, and rckpt
                // checks it as it grows.
                if e.len >= 64 * 4096 && off >= populated {
                    let w = (e.len - off).min(POPULATE_WINDOW);
                    sc(SYS_MADVISE, &[e.start + off, w, 23 /* MADV_POPULATE_WRITE */]);
                    populated = off + w;
                }
                let n = (e.len - off).min(CHUNK);
                let mut got = 0u64;
                while got < n {
                    let src = if e.flags & EXTENT_PREV != 0 { kept(a.prev_pages_keep) } else { pages };
                    let r = rep.ck(sc(SYS_PREAD64, &[src, e.start + off + got, n - got, e.file_off + off + got]));
                    if r == 0 {
                        rep.fail(-5);
                    }
                    got += r as u64;
                }
                // Checked while the chunk is still in cache (a pre-dump's pages
                // were checked by rckpt, and rckpt checks long extents in place).
                if own_check {
                    crc = common::crc::append(crc, core::slice::from_raw_parts((e.start + off) as *const u8, n as usize));
                }
                off += n;
                placed += n;
                core::ptr::write_volatile(&raw mut (*rep.0).placed, placed);
            }
            if own_check && crc != e.crc {
                rep.step(STEP_CHECK_PAGES, e.start);
                rep.fail(-74); // EBADMSG
            }
        }
        // rckpt checks the long extents as they land; nothing else may write into
        // this memory (the frames, a child's tid) until it has.
        let extents = slice::<BlobExtent>(a.extents, a.nr_extents);
        if extents.iter().any(|e| e.flags & EXTENT_RCKPT_CHECKS != 0) {
            rep.step(STEP_CHECK_PAGES, 0);
            let c = rep.0;
            loop {
                match core::ptr::read_volatile(&raw const (*c).checked) {
                    0 => {
                        let ts = [1i64, 0];
                        sc(SYS_FUTEX, &[&raw const (*c).checked as u64, FUTEX_WAIT, 0, ts.as_ptr() as u64]);
                    }
                    CHECKED_OK => break,
                    _ => rep.fail(-74), // EBADMSG; rckpt names the extent
                }
            }
        }
        for v in vmas {
            rep.step(STEP_PROTECT_VMA, v.start);
            protect(&rep, v);
        }
        if a.vdso_at != 0 {
            rep.step(STEP_VDSO, a.vdso_at);
            rep.ck(sc(SYS_ARCH_PRCTL, &[ARCH_MAP_VDSO_64, a.vdso_at]));
        }

        // Children, now that this task's memory is in place: they inherit it.
        let proc_stack = me.stack_top;
        let kids = slice::<BlobChild>(a.children, a.nr_children);
        if kids.iter().any(|c| c.kind == CHILD_HELPER) {
            // A helper's child comes back here when the helper exits, as it came
            // to this subreaper once.
            rep.ck(sc(SYS_PRCTL, &[PR_SET_CHILD_SUBREAPER, 1]));
        }
        for c in kids {
            rep.step(STEP_CHILDREN, c.pid as u64);
            if c.kind == CHILD_HELPER {
                rep.ck(clone_into(0, SIGCHLD, c.pid, proc_stack, helper_start as *const () as u64, c.args));
                let mut info = [0u64; 16];
                rep.ck(sc(SYS_WAITID, &[P_PID, c.pid as u64, info.as_mut_ptr() as u64, WEXITED, 0]));
                continue;
            }
            if c.kind == CHILD_ZOMBIE {
                // Untraced: it lives only long enough to leave its status.
                let r = rep.ck(clone_into(CLONE_UNTRACED, SIGCHLD, c.pid, proc_stack, zombie_start as *const () as u64, c as *const BlobChild as u64));
                let _ = r;
                continue;
            }
            rep.ck(clone_into(0, SIGCHLD, c.pid, proc_stack, _start as *const () as u64, c.args));
            if c.parent_sets_pgid != 0 {
                // A new group later siblings join: it must exist before they do.
                sc(SYS_SETPGID, &[c.pid as u64, c.pgid as u64]);
            }
        }
        // Zombies must be dead before the SIGCHLDs they raise are drained.
        for c in slice::<BlobChild>(a.children, a.nr_children).iter().filter(|c| c.kind == CHILD_ZOMBIE) {
            let mut info = [0u64; 16];
            rep.ck(sc(SYS_WAITID, &[P_PID, c.pid as u64, info.as_mut_ptr() as u64, WEXITED | WNOWAIT, 0]));
        }
        let sigchld: u64 = 1 << (SIGCHLD - 1);
        loop {
            let ts = [0i64, 0];
            if sc(SYS_RT_SIGTIMEDWAIT, &[&raw const sigchld as u64, 0, ts.as_ptr() as u64, 8]) < 0 {
                break;
            }
        }

        // 6. Settings of the whole process, after the mappings.
        rep.step(STEP_TASK_STATE, 0);
        rep.ck(sc(SYS_PERSONALITY, &[a.personality as u64]));
        if a.mdwe != 0 {
            rep.ck(sc(SYS_PRCTL, &[PR_SET_MDWE, a.mdwe as u64, 0, 0, 0]));
        }
        sc(SYS_UMASK, &[a.umask as u64]);
        if a.cwd_keep >= 0 {
            rep.step(STEP_TASK_STATE, 1);
            rep.ck(sc(SYS_FCHDIR, &[kept(a.cwd_keep)]));
        }
        rep.ck(sc(SYS_PRCTL, &[PR_SET_THP_DISABLE, a.thp_disable as u64, 0, 0, 0]));
        rep.ck(sc(SYS_PRCTL, &[PR_SET_CHILD_SUBREAPER, a.child_subreaper as u64]));
        rep.step(STEP_SIGNALS, 0);
        for sig in 1..=64u64 {
            if sig == 9 || sig == 19 {
                continue;
            }
            rep.step(STEP_SIGNALS, sig);
            rep.ck(sc(SYS_RT_SIGACTION, &[sig, &raw const a.sigactions[sig as usize - 1] as u64, 0, 8]));
        }
        // rlimits after mmaps and fds.
        for (res, r) in a.rlimits.iter().enumerate() {
            rep.step(STEP_RLIMITS, res as u64);
            rep.ck(sc(SYS_PRLIMIT64, &[0, res as u64, r as *const KRlimit as u64, 0]));
        }

        // Seccomp filters every thread shares, before the threads exist, so that
        // they inherit them as the same filters.
        seccomp(&rep, slice::<BlobFilter>(a.seccomp, a.nr_seccomp));

        // 5. Threads, before any credentials drop. The first entry is this task.
        for (i, t) in threads.iter().enumerate().skip(1) {
            rep.step(STEP_THREADS, t.tid as u64);
            let flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
            rep.ck(clone_into(flags, 0, t.tid, t.stack_top, thread_start as *const () as u64, &threads[i] as *const BlobThread as u64));
        }

        // Shared pending signals: blocked until rt_sigreturn installs the masks.
        let pid = a.pid as u64;
        for (i, s) in slice::<BlobSiginfo>(a.siginfo, a.nr_siginfo).iter().enumerate() {
            rep.step(STEP_SIGNALS, 100 + i as u64);
            rep.ck(sc(SYS_RT_SIGQUEUEINFO, &[pid, s.signo as u64, s.info.as_ptr() as u64]));
        }
        seccomp(&rep, slice::<BlobFilter>(me.seccomp, me.nr_seccomp));
        creds(&rep, &me.creds);

        // Timers last, so they lose as little time as possible.
        for (which, it) in a.itimers.iter().enumerate() {
            if it.iter().any(|v| *v != 0) {
                rep.step(STEP_TIMERS, which as u64);
                rep.ck(sc(SYS_SETITIMER, &[which as u64, it.as_ptr() as u64, 0]));
            }
        }
        let timers = slice::<BlobTimer>(a.timers, a.nr_timers);
        if !timers.is_empty() {
            rep.step(STEP_TIMERS, 10);
            rep.ck(sc(SYS_PRCTL, &[PR_TIMER_CREATE_RESTORE_IDS, 1, 0, 0, 0]));
            for tm in timers {
                rep.step(STEP_TIMERS, 100 + tm.id as u64);
                // struct sigevent: value, signo, notify, then the tid.
                let mut sev = [0u64; 8];
                sev[0] = tm.sigval;
                sev[1] = (tm.signo as u32 as u64) | ((tm.notify as u32 as u64) << 32);
                sev[2] = tm.notify_tid as u32 as u64;
                let mut id: i32 = tm.id;
                rep.ck(sc(SYS_TIMER_CREATE, &[tm.clock as u64, sev.as_ptr() as u64, &raw mut id as u64]));
                if id != tm.id {
                    rep.fail(-17);
                }
                let spec = [tm.interval_sec, tm.interval_nsec, tm.value_sec, tm.value_nsec];
                if spec.iter().any(|v| *v != 0) {
                    rep.ck(sc(SYS_TIMER_SETTIME, &[id as u64, 0, spec.as_ptr() as u64, 0]));
                }
            }
            rep.ck(sc(SYS_PRCTL, &[PR_TIMER_CREATE_RESTORE_IDS, 0, 0, 0, 0]));
        }
        if a.nr_keep > 0 {
            sc(SYS_CLOSE_RANGE, &[a.fd_base as u64, (a.fd_base as u32 + a.nr_keep - 1) as u64, 0]);
        }
        // POSIX locks after the last close: closing any fd of a file drops the
        // process's POSIX locks on it.
        for l in slice::<BlobLock>(a.locks, a.nr_locks) {
            rep.step(STEP_LOCKS, l.fd as u64);
            // struct flock: type, whence, start, len, pid.
            let fl: [i64; 4] = [if l.write != 0 { F_WRLCK } else { F_RDLCK }, l.start as i64, l.len as i64, 0];
            rep.ck(sc(SYS_FCNTL, &[l.fd as u64, F_SETLK, fl.as_ptr() as u64]));
        }
        if a.leader_exited != 0 {
            // Its threads exist: the leader exits again, and the process goes on
            // with a zombie leader, as it was.
            rep.step(STEP_LEADER_EXITS, 0);
            loop {
                sc(SYS_EXIT, &[0]);
            }
        }
        thread_finish(&rep, me);
    }
}


/// The protection, advice, lock and name of a filled VMA.
unsafe fn protect(rep: &Report, v: &BlobVma) {
    // SAFETY: operations on a VMA this task just mapped.
    unsafe {
        let len = v.end - v.start;
        if v.has_pages != 0 && v.prot != (v.prot | PROT_READ | PROT_WRITE) {
            rep.ck(sc(SYS_MPROTECT, &[v.start, len, v.prot as u64]));
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
                rep.ck(sc(SYS_MADVISE, &[v.start, len, adv]));
            }
        }
        if v.madv & MADV_BIT_MLOCK != 0 {
            rep.ck(sc(SYS_MLOCK, &[v.start, len]));
        } else if v.madv & MADV_BIT_MLOCK_ONFAULT != 0 {
            rep.ck(sc(325 /* mlock2 */, &[v.start, len, 1]));
        }
        if v.name != 0 {
            rep.ck(sc(SYS_PRCTL, &[PR_SET_VMA, PR_SET_VMA_ANON_NAME, v.start, len, v.name]));
        }
    }
}

/// A helper for a session or group whose leader is gone.
#[unsafe(no_mangle)]
#[unsafe(naked)]
pub extern "C" fn helper_start() -> ! {
    core::arch::naked_asm!("and rsp, -16", "call {main}", "ud2", main = sym helper_main)
}

unsafe extern "C" fn helper_main(h: *const HelperArgs) -> ! {
    // SAFETY: rckpt passes the HelperArgs it wrote into the area.
    unsafe {
        let h = &*h;
        let rep = Report(h.ctl as *mut Control);
        if h.magic != RESTORE_MAGIC {
            rep.fail(-22);
        }
        rep.step(STEP_SESSION, h.session as u64);
        if h.session == 1 {
            rep.ck(sc(SYS_SETSID, &[]));
        } else {
            rep.ck(sc(SYS_SETPGID, &[0, 0]));
        }
        rep.step(STEP_CHILDREN, h.root_pid as u64);
        rep.ck(clone_into(0, SIGCHLD, h.root_pid, h.stack_top, _start as *const () as u64, h.root_args));
        // Gone again, as the leader was; the root is handed to rckpt, a
        // subreaper, or to init.
        rep.step(STEP_LEADER_EXITS, 0);
        exit_group(0);
    }
}

/// A zombie: takes its session and group, then leaves the saved status.
#[unsafe(no_mangle)]
#[unsafe(naked)]
pub extern "C" fn zombie_start() -> ! {
    core::arch::naked_asm!("and rsp, -16", "call {main}", "ud2", main = sym zombie_main)
}

unsafe extern "C" fn zombie_main(c: *const BlobChild) -> ! {
    // SAFETY: the parent passes one of its BlobChild entries.
    unsafe {
        let c = &*c;
        if c.sid == c.pid {
            sc(SYS_SETSID, &[]);
        } else {
            sc(SYS_SETPGID, &[0, c.pgid as u64]);
        }
        let sig = c.status & 0x7f;
        if sig == 0 {
            exit_group((c.status >> 8) & 0xff);
        }
        // Killed by a signal: no core file, default action, unblocked.
        let zero = [0u64, 0];
        sc(SYS_PRLIMIT64, &[0, 4 /* RLIMIT_CORE */, zero.as_ptr() as u64, 0]);
        let dfl = [0u64; 4];
        sc(SYS_RT_SIGACTION, &[sig as u64, dfl.as_ptr() as u64, 0, 8]);
        let set: u64 = 1 << (sig - 1);
        sc(SYS_RT_SIGPROCMASK, &[1 /* SIG_UNBLOCK */, &raw const set as u64, 0, 8]);
        sc(SYS_KILL, &[sc(SYS_GETPID, &[]) as u64, sig as u64]);
        exit_group(128 + sig);
    }
}

/// A thread other than the one running the process part.
unsafe extern "C" fn thread_main(t: *const BlobThread) -> ! {
    // SAFETY: the creator passes one of the BlobThread entries of the area.
    unsafe {
        let t = &*t;
        let rep = Report(t.ctl as *mut Control);
        rep.step(STEP_START, 0);
        seccomp(&rep, slice::<BlobFilter>(t.seccomp, t.nr_seccomp));
        creds(&rep, &t.creds);
        thread_finish(&rep, t);
    }
}

/// What every thread sets for itself, then the frame and the park.
unsafe fn thread_finish(rep: &Report, t: &BlobThread) -> ! {
    // SAFETY: syscalls on this thread's own state; the frame goes to the thread's
    // saved stack, which is mapped.
    unsafe {
        rep.step(STEP_TASK_STATE, 10);
        rep.ck(sc(SYS_PRCTL, &[PR_SET_NAME, t.comm.as_ptr() as u64]));
        sc(SYS_SET_TID_ADDRESS, &[t.tid_address]);
        rep.ck(sc(SYS_SET_ROBUST_LIST, &[t.robust_head, t.robust_len]));
        if t.rseq_addr != 0 {
            rep.step(STEP_TASK_STATE, 13);
            rep.ck(sc(SYS_RSEQ, &[t.rseq_addr, t.rseq_len as u64, 0, t.rseq_sig as u64]));
        }
        if t.nr_affinity > 0 {
            rep.step(STEP_TASK_STATE, 14);
            rep.ck(sc(SYS_SCHED_SETAFFINITY, &[0, t.nr_affinity as u64 * 8, t.affinity.as_ptr() as u64]));
        }
        rep.step(STEP_TASK_STATE, 15);
        rep.ck(sc(SYS_SETPRIORITY, &[0, 0, t.nice as u64]));
        rep.ck(sc(SYS_PRCTL, &[PR_SET_TIMERSLACK, t.timer_slack_ns]));
        let tid = sc(SYS_GETTID, &[]) as u64;
        let pid = sc(SYS_GETPID, &[]) as u64;
        for (i, s) in slice::<BlobSiginfo>(t.siginfo, t.nr_siginfo).iter().enumerate() {
            rep.step(STEP_SIGNALS, 200 + i as u64);
            rep.ck(sc(SYS_RT_TGSIGQUEUEINFO, &[pid, tid, s.signo as u64, s.info.as_ptr() as u64]));
        }
        // commit_creds resets these two: after this thread's credentials. The
        // dumpable flag is per mm and any thread's credential change resets it,
        // so every thread sets it after its own.
        rep.ck(sc(SYS_PRCTL, &[PR_SET_DUMPABLE, t.dumpable as u64]));
        if t.pdeath_signal >= 0 {
            rep.ck(sc(SYS_PRCTL, &[PR_SET_PDEATHSIG, t.pdeath_signal as u64]));
        }
        // 7. The frame rt_sigreturn will consume, below the saved stack pointer.
        rep.step(STEP_FRAME, t.frame_addr);
        core::ptr::copy_nonoverlapping(t.frame_src as *const u8, t.frame_addr as *mut u8, t.frame_len as usize);
        // 8. Park: rckpt unmaps this area and releases us into rt_sigreturn.
        rep.step(STEP_PARKED, 0);
        core::arch::asm!("int3");
        exit_group(123);
    }
}

/// Installs seccomp filters, oldest first. rckpt traces every task of the tree
/// with PTRACE_O_SUSPEND_SECCOMP until it releases it, so no filter applies to
/// what the trampoline and rckpt still do in the task (the syscalls below, the
/// remote munmap of this area, the final rt_sigreturn): the order of the steps
/// does not depend on what the filters allow. They go in before the
/// credentials: without no_new_privs, installing a filter needs CAP_SYS_ADMIN,
/// which the restorer has and the saved credentials may not.
unsafe fn seccomp(rep: &Report, filters: &[BlobFilter]) {
    for (i, f) in filters.iter().enumerate() {
        rep.step(STEP_SECCOMP, i as u64);
        // struct sock_fprog: unsigned short len, then (8-aligned) the pointer.
        let prog: [u64; 2] = [f.len as u64, f.insns];
        // SAFETY: the program is `len` sock_filters rckpt wrote into the area.
        rep.ck(unsafe { sc(SYS_SECCOMP, &[SECCOMP_SET_MODE_FILTER, f.flags as u64, prog.as_ptr() as u64]) });
    }
}

/// Credentials, in the order that keeps the rights each step needs: groups and
/// ids with SECURE_NO_SETUID_FIXUP (so capabilities survive the uid change), then
/// securebits, the bounding set, the capability sets, ambient ones. Per thread.
unsafe fn creds(rep: &Report, c: &BlobCreds) {
    // SAFETY: syscalls on this thread's own credentials with pointers into the args.
    unsafe {
        // Each step that needs a capability (CAP_SETPCAP, CAP_SETGID) is taken
        // only when it changes something, so that an invoker without them
        // restores its own tasks.
        rep.step(STEP_CREDS, 0);
        if c.setuid_fixup != 0 {
            rep.ck(sc(SYS_PRCTL, &[PR_SET_SECUREBITS, SECURE_NO_SETUID_FIXUP]));
        }
        rep.step(STEP_CREDS, 1);
        if c.set_groups != 0 {
            rep.ck(sc(SYS_SETGROUPS, &[c.nr_groups as u64, c.groups]));
        }
        rep.step(STEP_CREDS, 2);
        rep.ck(sc(SYS_SETRESGID, &[c.gid[0] as u64, c.gid[1] as u64, c.gid[2] as u64]));
        rep.ck(sc(SYS_SETRESUID, &[c.uid[0] as u64, c.uid[1] as u64, c.uid[2] as u64]));
        sc(SYS_SETFSGID, &[c.gid[3] as u64]);
        sc(SYS_SETFSUID, &[c.uid[3] as u64]);
        rep.step(STEP_CREDS, 3);
        if sc(SYS_PRCTL, &[PR_GET_SECUREBITS]) != c.securebits as i64 {
            rep.ck(sc(SYS_PRCTL, &[PR_SET_SECUREBITS, c.securebits as u64]));
        }
        rep.step(STEP_CREDS, 4);
        let mut cap = 0u64;
        while cap <= c.last_cap as u64 {
            if c.cap_bounding & (1 << cap) == 0 && sc(SYS_PRCTL, &[PR_CAPBSET_READ, cap]) == 1 {
                rep.ck(sc(SYS_PRCTL, &[PR_CAPBSET_DROP, cap]));
            }
            cap += 1;
        }
        rep.step(STEP_CREDS, 5);
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
        rep.ck(sc(SYS_CAPSET, &[hdr.as_ptr() as u64, data.as_ptr() as u64]));
        rep.step(STEP_CREDS, 6);
        rep.ck(sc(SYS_PRCTL, &[PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0]));
        let mut cap = 0u64;
        while cap <= c.last_cap as u64 {
            if c.cap_ambient & (1 << cap) != 0 {
                rep.ck(sc(SYS_PRCTL, &[PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0]));
            }
            cap += 1;
        }
        if c.no_new_privs != 0 {
            rep.step(STEP_CREDS, 7);
            rep.ck(sc(SYS_PRCTL, &[PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0]));
        }
    }
}
