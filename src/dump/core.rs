//! A task's core state from ptrace and /proc: registers, xstate, masks, pending
//! signals, rseq, robust list, credentials, scheduling. What only the task can
//! report is added by [`super::signals::apply_misc`] from the parasite.

use rckpt_images::core::{
    AltStack, Creds, ITimer, Prctl, RobustList, Rseq, Sched, SigAction, SigInfo, TaskCore,
    ThreadCore,
};

use super::{DumpError, Result};
use crate::arch;
use crate::proc::{self, timers::TimerInfo};
use crate::sys::ptrace::Tracee;
use crate::sys::{Pid, task};

/// Everything collected about one task before the parasite runs.
pub struct TaskState {
    pub pid: Pid,
    pub core: TaskCore,
    pub regs_raw: libc::user_regs_struct,
    pub xstate: Vec<u8>,
    pub blocked: u64,
    pub pgid: i32,
    pub sid: i32,
    pub stop_signal: Option<i32>,
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

pub fn collect(tracee: &mut Tracee, stop_signal: Option<i32>) -> Result<TaskState> {
    let pid = tracee.pid();
    let stat = proc::stat(pid)?;
    let status = proc::thread_status(pid, pid)?;
    if status.seccomp.unwrap_or(0) != 0 {
        return Err(DumpError::Unsupported {
            pid,
            what: "it runs under seccomp".into(),
        });
    }
    let cwd = proc::read_link(proc::path(pid, "cwd"))?;
    let root = proc::read_link(proc::path(pid, "root"))?;
    for (what, p) in [("working directory", &cwd), ("root directory", &root)] {
        if p.ends_with(" (deleted)") || !p.starts_with('/') {
            return Err(DumpError::Unsupported {
                pid,
                what: format!("its {what} {p} is deleted or unreachable"),
            });
        }
    }
    if root != "/" {
        return Err(DumpError::Unsupported {
            pid,
            what: format!("it runs in a chroot ({root})"),
        });
    }

    let regs_raw = tracee.regs()?;
    let xstate = tracee.xstate()?;
    let blocked = tracee.sigmask()?;
    let pending = siginfos(tracee.pending_siginfo(false)?);
    let shared_pending = siginfos(tracee.pending_siginfo(true)?);
    let rseq = tracee.rseq_config()?.map(|c| Rseq {
        addr: c.rseq_abi_pointer,
        len: c.rseq_abi_size,
        signature: c.signature,
    });
    let (head, len) = task::robust_list(pid)?;
    let comm = proc::read_string(proc::path(pid, "comm"))?
        .trim_end_matches('\n')
        .to_string();
    let thread = ThreadCore {
        tid: pid.as_raw(),
        comm,
        regs: arch::from_user(&regs_raw),
        xstate: xstate.clone(),
        blocked,
        pending,
        sigaltstack: AltStack::default(),
        rseq,
        robust_list: RobustList { head, len },
        tid_address: 0,
        creds: creds(pid, pid)?,
        sched: Sched {
            nice: task::nice(pid)?,
            affinity: task::affinity(pid)?,
            timer_slack_ns: 0,
        },
    };
    let core = TaskCore {
        pid: pid.as_raw(),
        threads: vec![thread],
        sigactions: vec![SigAction::default(); 64],
        shared_pending,
        rlimits: Vec::new(),
        itimers: [ITimer::default(); 3],
        posix_timers: Vec::new(),
        personality: proc::personality(pid)?,
        umask: status.umask.unwrap_or(0o022),
        cwd,
        root,
        prctl: Prctl::default(),
    };
    Ok(TaskState {
        pid,
        core,
        regs_raw,
        xstate,
        blocked,
        pgid: stat.pgrp,
        sid: stat.session,
        stop_signal,
        proc_timers: proc::timers::timers(pid)?,
        stat,
        brk: 0,
    })
}

pub fn image(task: &TaskState) -> TaskCore {
    task.core.clone()
}
