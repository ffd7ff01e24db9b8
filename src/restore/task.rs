//! Creating a task: the trampoline's area mapped in rckpt at a place free in both
//! layouts, its arguments written there, clone3 with the saved pid into it, the
//! child seized (PTRACE_O_EXITKILL) before it may go on, then parked, checked,
//! stripped of the trampoline and released into rt_sigreturn.

use std::os::fd::AsRawFd;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use rckpt_images::ImageSet;
use rckpt_images::core::GpRegs;
use rckpt_images::mm::{MmImage, PAGE_SIZE, vmflags};
use rckpt_images::pstree::TaskState as SavedState;

use super::abi::*;
use super::files::{self, FdSetup};
use super::{Outcome, RestoreError, RestoreOptions, Result, mm};
use crate::arch::{self, sigframe};
use crate::fault;
use crate::sys::blobmap::LocalMapping;
use crate::sys::clone::{BlobEntry, clone3_into_blob};
use crate::sys::pod::{self, Pod};
use crate::sys::ptrace::{Resume, Stop, Tracee, opts};
use crate::sys::signal::BlockAll;
use crate::sys::{Pid, RemoteAddr, SysError, page_align_up, remote};

const CTL_LEN: u64 = PAGE_SIZE;
const STACK_LEN: u64 = 128 * 1024;
const PARK_TIMEOUT_BASE: Duration = Duration::from_secs(30);

/// A bump allocator over the argument area, handing out absolute addresses.
struct Arena<'m> {
    buf: &'m mut [u8],
    base: u64,
    at: usize,
}

impl Arena<'_> {
    fn bytes(&mut self, b: &[u8], align: usize) -> Result<u64> {
        let start = self.at.div_ceil(align) * align;
        let end = start + b.len();
        if end > self.buf.len() {
            return Err(RestoreError::Invalid(
                "the restorer's argument area is too small".into(),
            ));
        }
        self.buf[start..end].copy_from_slice(b);
        self.at = end;
        Ok(self.base + start as u64)
    }

    fn put<T: Pod>(&mut self, v: &T) -> Result<u64> {
        self.bytes(pod::bytes_of(v), 16)
    }

    fn slice<T: Pod>(&mut self, v: &[T]) -> Result<u64> {
        if v.is_empty() {
            return Ok(0);
        }
        self.bytes(pod::slice_bytes(v), 16)
    }
}

pub struct Prepared<'s> {
    pid: Pid,
    mm: &'s MmImage,
    ctl: LocalMapping,
    // Held until the child exists: it is mapped in rckpt's own address space.
    _body: LocalMapping,
    area: (u64, u64),
    entry: BlobEntry,
    fds: FdSetup,
    regs: GpRegs,
    /// The registers the frame holds.
    frame_regs: GpRegs,
    frame_rsp: u64,
    insn: u64,
    stop_signal: Option<i32>,
    park_timeout: Duration,
}

fn estimate_args(set: &ImageSet, pid: i32, fds: &FdSetup, nr_vmas: usize) -> u64 {
    let core = &set.cores[&pid];
    let mm = &set.mms[&pid];
    let t = &core.threads[0];
    let names: usize = mm
        .vmas
        .iter()
        .filter_map(|v| v.anon_name.as_ref())
        .map(|n| n.len() + 16)
        .sum();
    let n = std::mem::size_of::<RestoreArgs>()
        + fds.keep.len() * std::mem::size_of::<KeepFd>()
        + fds.install.len() * std::mem::size_of::<InstallFd>()
        + nr_vmas * std::mem::size_of::<BlobVma>()
        + names
        + mm.extents.len() * std::mem::size_of::<BlobExtent>()
        + mm.auxv.len() * 8
        + t.creds.groups.len() * 4
        + (core.shared_pending.len() + t.pending.len()) * std::mem::size_of::<BlobSiginfo>()
        + core.posix_timers.len() * std::mem::size_of::<BlobTimer>()
        + sigframe::frame_size(t.xstate.len()) as usize
        + 16 * 16;
    n as u64 + PAGE_SIZE
}

fn siginfo(shared: bool, s: &rckpt_images::core::SigInfo) -> BlobSiginfo {
    let mut info = [0u8; 128];
    info.copy_from_slice(&s.0);
    BlobSiginfo {
        shared: shared as u32,
        signo: s.signo(),
        info,
    }
}

/// Whether [lo, hi) lies in saved writable memory (or where a stack grows).
fn frame_fits(mm: &MmImage, lo: u64, hi: u64) -> bool {
    mm.vmas.iter().any(|v| {
        let start = if v.flags & vmflags::GROWSDOWN != 0 {
            v.start.saturating_sub(1 << 20)
        } else {
            v.start
        };
        v.prot & rckpt_images::mm::PROT_WRITE != 0 && start <= lo && hi <= v.end
    })
}

pub fn prepare<'s>(set: &'s ImageSet, opts: &RestoreOptions) -> Result<Prepared<'s>> {
    let entry = set.pstree.root();
    let pid = entry.pid;
    let core = &set.cores[&pid];
    let mm = &set.mms[&pid];
    let t = &core.threads[0];
    let fds = files::open_all(set, pid, opts)?;
    let vmas = mm::blob_vmas(mm, &fds.mapped);
    let blob = crate::blob::restorer();
    let args_len = page_align_up(estimate_args(set, pid, &fds, vmas.len()));
    let total = CTL_LEN + blob.size() + STACK_LEN + args_len;
    let base = mm::find_hole(mm, total)?;
    let ctl = LocalMapping::anon_at(base, CTL_LEN, true)?;
    let mut body = LocalMapping::anon_at(base + CTL_LEN, total - CTL_LEN, false)?;
    let blob_base = base + CTL_LEN;
    let stack_top = blob_base + blob.size() + STACK_LEN;
    let fd_base = files::fd_base(&fds)?;

    // The frame rt_sigreturn will consume, where the kernel would put a signal
    // frame below the saved stack pointer.
    // ERESTART_RESTARTBLOCK becomes EINTR here (the kernel's restart block for it
    // is gone); the other restarts are left to the kernel at release.
    let mut regs = t.regs;
    if arch::restart_kind(&regs) == arch::Restart::Block {
        arch::apply_restart(&mut regs, false);
    }
    let (frame_addr, fp_addr) = sigframe::place_below(regs.rsp, t.xstate.len());
    if !frame_fits(mm, frame_addr, regs.rsp) {
        return Err(RestoreError::Invalid(format!(
            "thread {}: no saved writable memory below its stack pointer {:#x} for the signal frame",
            t.tid, regs.rsp
        )));
    }
    let frame = sigframe::build(
        frame_addr,
        fp_addr,
        &regs,
        &t.xstate,
        t.blocked,
        &t.sigaltstack,
    );

    let args_addr;
    {
        let bytes = body.bytes_mut();
        blob.relocate_into(blob_base, &mut bytes[..blob.size() as usize]);
        let args_off = (stack_top - blob_base) as usize;
        let mut a = Arena {
            buf: &mut bytes[args_off..],
            base: stack_top,
            at: 0,
        };
        let keep: Vec<KeepFd> = fds
            .keep
            .iter()
            .map(|f| KeepFd {
                src: f.as_raw_fd(),
                _pad: 0,
            })
            .collect();
        let keep_addr = a.slice(&keep)?;
        let install_addr = a.slice(&fds.install)?;
        let mut bvmas = Vec::with_capacity(vmas.len());
        for (mut v, name) in vmas {
            if let Some(n) = name {
                let mut z = n.into_bytes();
                z.push(0);
                v.name = a.bytes(&z, 1)?;
            }
            bvmas.push(v);
        }
        let vmas_addr = a.slice(&bvmas)?;
        let exts = mm::extents(mm);
        let ext_addr = a.slice(&exts)?;
        let auxv_addr = a.slice(&mm.auxv)?;
        let groups_addr = a.slice(&t.creds.groups)?;
        let mut sigs: Vec<BlobSiginfo> = core
            .shared_pending
            .iter()
            .map(|s| siginfo(true, s))
            .collect();
        sigs.extend(t.pending.iter().map(|s| siginfo(false, s)));
        let sig_addr = a.slice(&sigs)?;
        let timers: Vec<BlobTimer> = core
            .posix_timers
            .iter()
            .map(|p| BlobTimer {
                id: p.id,
                clock: p.clock,
                sigval: p.sigval,
                signo: p.signo,
                notify: p.notify,
                notify_tid: p.notify_tid,
                _pad: 0,
                interval_sec: (p.interval_ns / 1_000_000_000) as i64,
                interval_nsec: (p.interval_ns % 1_000_000_000) as i64,
                value_sec: (p.value_ns / 1_000_000_000) as i64,
                value_nsec: (p.value_ns % 1_000_000_000) as i64,
            })
            .collect();
        let timers_addr = a.slice(&timers)?;
        let frame_src = a.bytes(&frame.bytes, 64)?;

        let mut mm_map = mm::mm_map(mm);
        mm_map.auxv = auxv_addr;
        mm_map.auxv_size = (mm.auxv.len() * 8) as u32;
        let mut comm = [0u8; 16];
        comm[..t.comm.len().min(15)].copy_from_slice(&t.comm.as_bytes()[..t.comm.len().min(15)]);
        let mut affinity = [0u64; 16];
        let nr_aff = t.sched.affinity.len().min(16);
        affinity[..nr_aff].copy_from_slice(&t.sched.affinity[..nr_aff]);
        let c = &t.creds;
        let thread = BlobThread {
            tid: t.tid,
            _pad: 0,
            frame_addr,
            frame_src,
            frame_len: frame.bytes.len() as u64,
            comm,
            rseq_addr: t.rseq.map(|r| r.addr).unwrap_or(0),
            rseq_len: t.rseq.map(|r| r.len).unwrap_or(0),
            rseq_sig: t.rseq.map(|r| r.signature).unwrap_or(0),
            robust_head: t.robust_list.head,
            robust_len: t.robust_list.len,
            tid_address: t.tid_address,
            nice: t.sched.nice,
            nr_affinity: nr_aff as u32,
            affinity,
            timer_slack_ns: t.sched.timer_slack_ns,
            creds: BlobCreds {
                uid: c.uid,
                gid: c.gid,
                groups: groups_addr,
                nr_groups: c.groups.len() as u32,
                securebits: c.securebits,
                cap_inheritable: c.cap_inheritable,
                cap_permitted: c.cap_permitted,
                cap_effective: c.cap_effective,
                cap_bounding: c.cap_bounding,
                cap_ambient: c.cap_ambient,
                last_cap: crate::proc::cap_last_cap(),
                no_new_privs: c.no_new_privs as u32,
            },
        };
        let mut rl = [KRlimit {
            cur: u64::MAX,
            max: u64::MAX,
        }; 16];
        for r in &core.rlimits {
            rl[r.resource as usize] = KRlimit {
                cur: r.cur,
                max: r.max,
            };
        }
        let mut acts = [KSigAction::default(); 64];
        for (i, s) in core.sigactions.iter().enumerate() {
            acts[i] = KSigAction {
                handler: s.handler,
                flags: s.flags,
                restorer: s.restorer,
                mask: s.mask,
            };
        }
        let it = |i: usize| {
            let t = &core.itimers[i];
            [
                (t.interval_us / 1_000_000) as i64,
                (t.interval_us % 1_000_000) as i64,
                (t.value_us / 1_000_000) as i64,
                (t.value_us % 1_000_000) as i64,
            ]
        };
        let args = RestoreArgs {
            magic: RESTORE_MAGIC,
            ctl: base,
            rckpt_pid: std::process::id() as i32,
            pid,
            keep_start: base,
            keep_end: base + total,
            task_size: mm::TASK_SIZE,
            session: if entry.sid == pid {
                1
            } else if entry.pgid == pid {
                2
            } else {
                0
            },
            _pad2: 0,
            fd_base,
            nr_keep: keep.len() as u32,
            keep: keep_addr,
            nr_install: fds.install.len() as u64,
            install: install_addr,
            pages_keep: fds.pages,
            exe_keep: fds.exe,
            cwd_keep: fds.cwd,
            _pad0: 0,
            nr_vmas: bvmas.len() as u64,
            vmas: vmas_addr,
            nr_extents: exts.len() as u64,
            extents: ext_addr,
            vdso_at: mm.vdso.as_ref().map(|d| d.vvar_start).unwrap_or(0),
            mm_map,
            personality: core.personality,
            umask: core.umask,
            mdwe: core.prctl.mdwe,
            dumpable: core.prctl.dumpable,
            pdeath_signal: core.prctl.pdeath_signal,
            child_subreaper: core.prctl.child_subreaper as u32,
            thp_disable: core.prctl.thp_disable as u32,
            _pad1: 0,
            rlimits: rl,
            sigactions: acts,
            nr_siginfo: sigs.len() as u64,
            siginfo: sig_addr,
            itimers: [it(0), it(1), it(2)],
            nr_timers: timers.len() as u64,
            timers: timers_addr,
            thread,
        };
        args_addr = a.put(&args)?;
    }
    body.protect(0, blob.exec_end(), libc::PROT_READ | libc::PROT_EXEC)?;

    let d = mm.vdso.as_ref().ok_or_else(|| {
        RestoreError::Invalid(format!("task {pid} has no vDSO to release it through"))
    })?;
    let insn = crate::parasite::find_syscall_insn(&d.vdso_bytes)
        .map(|o| d.vdso_start + o as u64)
        .ok_or_else(|| {
            RestoreError::Invalid(format!(
                "task {pid}: the saved vDSO has no syscall instruction"
            ))
        })?;
    let park_timeout = PARK_TIMEOUT_BASE + Duration::from_secs(mm.pages_len() / (100 << 20));
    Ok(Prepared {
        pid: Pid::from_raw(pid),
        mm,
        ctl,
        _body: body,
        area: (base, total),
        entry: BlobEntry {
            entry: blob_base + blob.entry(),
            stack_top,
            arg: args_addr,
        },
        fds,
        regs: t.regs,
        frame_regs: regs,
        frame_rsp: frame.sigreturn_rsp(),
        insn,
        stop_signal: match entry.state {
            SavedState::Stopped { signal } => Some(signal),
            SavedState::Running => None,
        },
        park_timeout,
    })
}

/// A task rckpt created: killed and reaped on drop unless released.
struct Created {
    pid: Pid,
    tracee: Option<Tracee>,
}

impl Drop for Created {
    fn drop(&mut self) {
        let _ = kill(self.pid, Signal::SIGKILL);
        if let Some(t) = self.tracee.take() {
            t.forget();
        }
        let _ = nix::sys::wait::waitpid(self.pid, Some(nix::sys::wait::WaitPidFlag::__WALL));
    }
}

fn ctl_state(ctl: &LocalMapping) -> Control {
    pod::read(&ctl.read_bytes(0, std::mem::size_of::<Control>())).unwrap_or_default()
}

pub fn create_and_release(p: Prepared<'_>) -> Result<Pid> {
    let pid = p.pid;
    let child = {
        // The child inherits this mask: nothing may run in it before rt_sigreturn.
        let _blocked = BlockAll::new()?;
        clone3_into_blob(pid, p.entry).map_err(|e| match e {
            SysError::Task {
                errno: nix::errno::Errno::EEXIST,
                ..
            } => RestoreError::PidTaken { pid: pid.as_raw() },
            e => e.into(),
        })?
    };
    let mut created = Created {
        pid: child,
        tracee: None,
    };
    if child != pid {
        return Err(RestoreError::Invalid(format!(
            "clone3 gave pid {child} instead of {pid}"
        )));
    }
    created.tracee = Some(Tracee::seize(child, opts::EXITKILL | opts::TRACESYSGOOD)?);
    let tracee = created.tracee.as_mut().unwrap();
    // The rseq area rckpt's thread registered is inherited; the trampoline must
    // unregister it with the exact registration the kernel holds.
    tracee.interrupt_and_wait(Duration::from_secs(5))?;
    let rseq = tracee.rseq_config()?;
    let mut ctl = Control::default();
    if let Some(r) = rseq {
        ctl.rseq_addr = r.rseq_abi_pointer;
        ctl.rseq_len = r.rseq_abi_size;
        ctl.rseq_sig = r.signature;
    }
    p.ctl.write_bytes(0, pod::bytes_of(&ctl));
    tracee.resume(Resume::Cont, 0)?;
    fault::point("restore.created")?;
    p.ctl.store_and_wake(0, 1);
    drop(p.fds);

    // Wait for the trampoline to park (int3) or fail.
    loop {
        let stop = tracee.wait(p.park_timeout, "the restorer to park")?;
        let st = ctl_state(&p.ctl);
        let step = step_name(st.step);
        match stop {
            Stop::Signal(libc::SIGTRAP) if st.step == STEP_PARKED => break,
            Stop::Exited(_) if st.step == STEP_CHECK_PAGES => {
                tracee.forget_now();
                return Err(RestoreError::PagesCorrupt {
                    file: rckpt_images::pages::file_name(pid.as_raw()),
                    addr: st.detail,
                    pid: pid.as_raw(),
                });
            }
            Stop::Exited(_) => {
                tracee.forget_now();
                return Err(RestoreError::Step {
                    pid: pid.as_raw(),
                    step,
                    detail: st.detail,
                    errno: nix::errno::Errno::from_raw((-st.error) as i32),
                });
            }
            Stop::Interrupt | Stop::Syscall | Stop::Event(_) => tracee.resume(Resume::Cont, 0)?,
            s => {
                if s.is_gone() {
                    tracee.forget_now();
                }
                return Err(RestoreError::Crashed {
                    pid: pid.as_raw(),
                    step,
                    stop: s.to_string(),
                });
            }
        }
    }
    fault::point("restore.parked")?;

    // Take the trampoline out, from a syscall in the restored vDSO.
    let at = tracee.regs()?;
    let mut sigs = Vec::new();
    let r = remote::syscall(
        tracee,
        RemoteAddr(p.insn),
        &at,
        libc::SYS_munmap,
        [p.area.0, p.area.1, 0, 0, 0, 0],
        &mut sigs,
    )?;
    if r != 0 {
        return Err(RestoreError::Step {
            pid: pid.as_raw(),
            step: "unmap the restorer",
            detail: p.area.0,
            errno: nix::errno::Errno::from_raw(-r as i32),
        });
    }
    fault::point("restore.unmapped")?;
    mm::check_layout(pid, p.mm)?;

    // rt_sigreturn, watched: the frame's registers are checked once the kernel
    // has taken them.
    let mut r = tracee.regs()?;
    r.rip = p.insn;
    r.rax = arch::NR_RT_SIGRETURN;
    r.rsp = p.frame_rsp;
    r.orig_rax = u64::MAX;
    r.fs_base = p.regs.fs_base;
    r.gs_base = p.regs.gs_base;
    r.eflags &= !0x100;
    tracee.set_regs(&r)?;
    for phase in ["rt_sigreturn entry", "rt_sigreturn exit"] {
        tracee.resume(Resume::Syscall, 0)?;
        match tracee.wait(Duration::from_secs(10), "rt_sigreturn")? {
            Stop::Syscall => {}
            s => {
                return Err(RestoreError::Crashed {
                    pid: pid.as_raw(),
                    step: phase,
                    stop: s.to_string(),
                });
            }
        }
    }
    let mut now = tracee.regs()?;
    if now.rip != p.frame_regs.rip || now.rsp != p.frame_regs.rsp || now.rax != p.frame_regs.rax {
        return Err(RestoreError::Crashed {
            pid: pid.as_raw(),
            step: "rt_sigreturn",
            stop: format!("resumed at {:#x}, not {:#x}", now.rip, p.frame_regs.rip),
        });
    }
    // A thread stopped in a restartable syscall: give the kernel back the syscall
    // number, and let its own signal path decide, when the task leaves the stop
    // below, between restarting it and EINTR (if a signal with a handler is
    // already pending), exactly as for a task that was never checkpointed.
    if arch::restart_kind(&p.regs) == arch::Restart::Again {
        now.orig_rax = p.regs.orig_rax;
        tracee.set_regs(&now)?;
    }
    tracee.interrupt()?;
    tracee.resume(Resume::Cont, 0)?;
    match tracee.wait(Duration::from_secs(10), "the parked task")? {
        Stop::Interrupt => {}
        s => {
            return Err(RestoreError::Crashed {
                pid: pid.as_raw(),
                step: "park after rt_sigreturn",
                stop: s.to_string(),
            });
        }
    }
    if p.stop_signal.is_some() {
        // Queued now, taken by get_signal as soon as the task leaves this stop.
        let _ = kill(pid, Signal::SIGSTOP);
    }

    // Released: the task runs its own code from here on.
    let t = created.tracee.take().unwrap();
    t.detach(0)?;
    std::mem::forget(created);
    Ok(pid)
}

/// Waits for the restored root and returns its status for rckpt's own exit.
pub fn wait_exit(pid: Pid) -> Result<Outcome> {
    use nix::sys::wait::{WaitStatus, waitpid};
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(Outcome::Exited(code as u8)),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(Outcome::Exited(128 + sig as u8)),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => {
                return Err(SysError::Task {
                    op: "wait for the restored task",
                    pid,
                    errno,
                }
                .into());
            }
        }
    }
}
