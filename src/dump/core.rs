//! A task's core state from ptrace and /proc: registers, xstate, masks, pending
//! signals, rseq, robust list, credentials, scheduling. What only the task can
//! report is added by [`super::signals::apply_misc`] from the parasite.

use rckpt_images::core::{
    AltStack, Creds, ITimer, Prctl, RobustList, Rseq, Sched, SigAction, SigInfo, TaskCore, ThreadCore,
};
use rckpt_images::seccomp::SeccompFilter;

use super::freeze::{Frozen, FrozenTask};
use super::{DumpError, Result};
use crate::arch;
use crate::parasite::OrigState;
use crate::proc::{self, timers::TimerInfo};
use crate::sys::ptrace::Tracee;
use crate::sys::{Pid, RemoteAddr, task};

/// Everything collected about one process before the parasite runs.
pub struct TaskState {
    pub pid: Pid,
    pub core: TaskCore,
    /// What each thread was doing when frozen, in `core.threads` order: the
    /// parasite and the cure need it.
    pub orig: Vec<OrigState>,
    pub pgid: i32,
    pub sid: i32,
    pub stop_signal: Option<i32>,
    pub leader_exited: bool,
    pub stat: procfs::process::Stat,
    pub proc_timers: Vec<TimerInfo>,
    /// Set from the parasite.
    pub brk: u64,
}

fn siginfos(v: Vec<[u8; 128]>) -> Vec<SigInfo> {
    v.into_iter().map(|b| SigInfo(b.to_vec())).collect()
}

fn creds(pid: Pid, tid: Pid) -> Result<Creds> {
    let st = proc::thread_status(pid, tid)?;
    Ok(Creds {
        uid: [st.ruid, st.euid, st.suid, st.fuid],
        gid: [st.rgid, st.egid, st.sgid, st.fgid],
        groups: st.groups.clone(),
        cap_inheritable: st.capinh,
        cap_permitted: st.capprm,
        cap_effective: st.capeff,
        cap_bounding: st.capbnd.unwrap_or(u64::MAX),
        cap_ambient: st.capamb.unwrap_or(0),
        securebits: 0,
        no_new_privs: st.nonewprivs.unwrap_or(0) != 0,
    })
}

fn thread(pid: Pid, t: &Tracee, filters: &mut Vec<SeccompFilter>) -> Result<(ThreadCore, OrigState)> {
    let tid = t.pid();
    // First: a thread under seccomp is suspended from it before anything runs in it.
    let mode = proc::thread_status(pid, tid)?.seccomp.unwrap_or(0);
    let seccomp = super::seccomp::thread(pid, t, mode, filters)?;
    let regs_raw = t.regs()?;
    let xstate = t.xstate()?;
    let blocked = t.sigmask()?;
    let pending = siginfos(t.pending_siginfo(false)?);
    let rseq =
        t.rseq_config()?.map(|c| Rseq { addr: c.rseq_abi_pointer, len: c.rseq_abi_size, signature: c.signature });
    let (head, len) = task::robust_list(tid)?;
    let comm = proc::read_string(proc::path(pid, &format!("task/{tid}/comm")))?.trim_end_matches('\n').to_string();
    let mut regs = arch::from_user(&regs_raw);
    if let Some(r) = rseq
        && let Some(abort) = rseq_abort_ip(tid, r.addr, regs.rip)?
    {
        // Inside an rseq critical section: the kernel would abort it when the
        // thread next runs, so the saved thread starts at the abort handler.
        regs.rip = abort;
    }
    let core = ThreadCore {
        tid: tid.as_raw(),
        comm,
        regs,
        xstate: xstate.clone(),
        blocked,
        pending,
        sigaltstack: AltStack::default(),
        rseq,
        robust_list: RobustList { head, len },
        tid_address: 0,
        creds: creds(pid, tid)?,
        sched: Sched { nice: task::nice(tid)?, affinity: task::affinity(tid)?, timer_slack_ns: 0 },
        seccomp,
    };
    Ok((core, OrigState { regs: regs_raw, xstate, sigmask: blocked }))
}

/// The abort handler of the rseq critical section `ip` is in, if it is in one.
fn rseq_abort_ip(tid: Pid, rseq: u64, ip: u64) -> Result<Option<u64>> {
    let mem = crate::sys::mem::ProcMem::open(tid, false)?;
    // struct rseq: cpu_id_start, cpu_id (u32 each), then rseq_cs (u64).
    let cs = mem.read_u64(RemoteAddr(rseq + 8))?;
    if cs == 0 {
        return Ok(None);
    }
    // struct rseq_cs: version, flags (u32), start_ip, post_commit_offset, abort_ip.
    let mut d = [0u8; 32];
    if mem.read_exact(RemoteAddr(cs), &mut d).is_err() {
        return Ok(None);
    }
    let word = |i: usize| u64::from_le_bytes(d[i..i + 8].try_into().unwrap());
    let (start, len, abort) = (word(8), word(16), word(24));
    Ok((start <= ip && ip - start < len).then_some(abort))
}

/// Collects a process: every live thread's registers and signal state from
/// ptrace, the rest from /proc.
pub fn collect(frozen: &mut Frozen, task: &FrozenTask) -> Result<TaskState> {
    let pid = task.pid;
    let first = task.threads[0];
    // From a live thread: an exited leader's own stat shows no mm.
    let stat = proc::thread_stat(pid, first)?;
    let status = proc::thread_status(pid, first)?;
    let cwd = proc::read_link(proc::path(first, "cwd"))?;
    let root = proc::read_link(proc::path(first, "root"))?;
    for (what, p) in [("working directory", &cwd), ("root directory", &root)] {
        if p.ends_with(" (deleted)") || !p.starts_with('/') {
            return Err(DumpError::Unsupported { pid, what: format!("its {what} {p} is deleted or unreachable") });
        }
    }
    if root != "/" {
        return Err(DumpError::Unsupported { pid, what: format!("it runs in a chroot ({root})") });
    }
    let mut threads = Vec::new();
    let mut orig = Vec::new();
    let mut seccomp_filters = Vec::new();
    for &tid in &task.threads {
        let (c, o) = thread(pid, frozen.tracee(tid), &mut seccomp_filters)?;
        threads.push(c);
        orig.push(o);
    }
    let shared_pending = siginfos(frozen.tracee(first).pending_siginfo(true)?);
    let core = TaskCore {
        pid: pid.as_raw(),
        threads,
        sigactions: vec![SigAction::default(); 64],
        shared_pending,
        rlimits: Vec::new(),
        itimers: [ITimer::default(); 3],
        posix_timers: Vec::new(),
        personality: proc::personality(first)?,
        umask: status.umask.unwrap_or(0o022),
        cwd,
        root,
        prctl: Prctl::default(),
        seccomp_filters,
    };
    Ok(TaskState {
        pid,
        core,
        orig,
        pgid: stat.pgrp,
        sid: stat.session,
        stop_signal: task.stop_signal,
        leader_exited: task.leader_exited,
        proc_timers: proc::timers::timers(pid)?,
        stat,
        brk: 0,
    })
}

pub fn image(task: &TaskState) -> TaskCore {
    task.core.clone()
}
