//! `core-PID.img`: a task's registers, signals, credentials, limits and the
//! per-process settings that only the task itself (through the parasite) or
//! /proc can report.

use serde::{Deserialize, Serialize};

use crate::seccomp::{Seccomp, SeccompFilter};
use crate::{ImageError, check};

pub fn file_name(pid: i32) -> String {
    format!("core-{pid}.img")
}

/// Size of a kernel siginfo.
pub const SIGINFO_LEN: usize = 128;
/// Bounds of an x86 XSAVE area in the uncompacted (user) format.
pub const XSTATE_MIN: usize = 576;
pub const XSTATE_MAX: usize = 64 * 1024;
/// Linux has 16 resource limits.
pub const RLIMIT_COUNT: u32 = 16;
pub const NSIG: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCore {
    pub pid: i32,
    pub threads: Vec<ThreadCore>,
    /// Dispositions of signals 1..=64 (index 0 is signal 1).
    pub sigactions: Vec<SigAction>,
    /// Shared (process-wide) pending signals, in queue order.
    pub shared_pending: Vec<SigInfo>,
    pub rlimits: Vec<Rlimit>,
    pub itimers: [ITimer; 3],
    pub posix_timers: Vec<PosixTimer>,
    pub personality: u32,
    pub umask: u32,
    pub cwd: String,
    pub root: String,
    pub prctl: Prctl,
    /// Every distinct seccomp filter of the process's threads (see
    /// [`crate::seccomp`]): threads that shared a filter share its entry.
    pub seccomp_filters: Vec<SeccompFilter>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadCore {
    pub tid: i32,
    pub comm: String,
    pub regs: GpRegs,
    /// NT_X86_XSTATE as PTRACE_GETREGSET gives it (uncompacted XSAVE layout).
    pub xstate: Vec<u8>,
    pub blocked: u64,
    /// Pending signals private to this thread, in queue order.
    pub pending: Vec<SigInfo>,
    pub sigaltstack: AltStack,
    pub rseq: Option<Rseq>,
    pub robust_list: RobustList,
    pub tid_address: u64,
    pub creds: Creds,
    pub sched: Sched,
    pub seccomp: Seccomp,
}

/// `struct user_regs_struct` of x86_64, field for field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpRegs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub orig_rax: u64,
    pub rip: u64,
    pub cs: u64,
    pub eflags: u64,
    pub rsp: u64,
    pub ss: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    pub ds: u64,
    pub es: u64,
    pub fs: u64,
    pub gs: u64,
}

/// A raw kernel siginfo (128 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigInfo(pub Vec<u8>);

impl SigInfo {
    pub fn signo(&self) -> i32 {
        i32::from_le_bytes(self.0[0..4].try_into().unwrap())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigAction {
    /// SIG_DFL (0), SIG_IGN (1) or a handler address.
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AltStack {
    pub sp: u64,
    pub flags: i32,
    pub size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rseq {
    pub addr: u64,
    pub len: u32,
    pub signature: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RobustList {
    pub head: u64,
    pub len: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Creds {
    pub uid: [u32; 4],
    pub gid: [u32; 4],
    pub groups: Vec<u32>,
    pub cap_inheritable: u64,
    pub cap_permitted: u64,
    pub cap_effective: u64,
    pub cap_bounding: u64,
    pub cap_ambient: u64,
    pub securebits: u32,
    pub no_new_privs: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sched {
    pub nice: i32,
    /// CPU affinity mask, 64 CPUs per word.
    pub affinity: Vec<u64>,
    pub timer_slack_ns: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    pub resource: u32,
    pub cur: u64,
    pub max: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ITimer {
    pub interval_us: u64,
    pub value_us: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PosixTimer {
    pub id: i32,
    pub clock: i32,
    /// SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD_ID (SIGEV_THREAD is SIGEV_SIGNAL for the kernel).
    pub notify: i32,
    pub signo: i32,
    pub sigval: u64,
    /// Target thread for SIGEV_THREAD_ID.
    pub notify_tid: i32,
    pub interval_ns: u64,
    pub value_ns: u64,
    pub overrun: i32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prctl {
    pub pdeath_signal: i32,
    pub child_subreaper: bool,
    pub dumpable: i32,
    pub thp_disable: bool,
    pub mdwe: u32,
}

impl TaskCore {
    pub fn validate(&self) -> Result<(), ImageError> {
        let pid = self.pid;
        check(!self.threads.is_empty(), || format!("task {pid}: no threads"))?;
        check(self.sigactions.len() == NSIG, || {
            format!("task {pid}: {} signal actions, not 64", self.sigactions.len())
        })?;
        for t in &self.threads {
            t.validate(pid)?;
        }
        for s in &self.shared_pending {
            s.validate(pid)?;
        }
        check(self.shared_pending.len() <= 1 << 16, || format!("task {pid}: too many pending signals"))?;
        let mut seen = 0u32;
        for r in &self.rlimits {
            check(r.resource < RLIMIT_COUNT, || format!("task {pid}: rlimit resource {}", r.resource))?;
            check(seen & (1 << r.resource) == 0, || format!("task {pid}: rlimit {} twice", r.resource))?;
            seen |= 1 << r.resource;
            check(r.cur <= r.max, || format!("task {pid}: rlimit {} soft above hard", r.resource))?;
        }
        check(seen == (1 << RLIMIT_COUNT) - 1, || format!("task {pid}: not all {RLIMIT_COUNT} rlimits are saved"))?;
        check(self.posix_timers.len() <= 1 << 16, || format!("task {pid}: too many timers"))?;
        for t in &self.posix_timers {
            check(t.id >= 0, || format!("task {pid}: timer id {}", t.id))?;
            check(t.signo >= 0 && t.signo <= 64, || format!("task {pid}: timer signal {}", t.signo))?;
        }
        check(self.umask <= 0o777, || format!("task {pid}: umask {:o}", self.umask))?;
        for p in [&self.cwd, &self.root] {
            crate::check_abs_path(p)?;
        }
        check((0..=64).contains(&self.prctl.pdeath_signal), || format!("task {pid}: pdeath signal"))?;
        check((0..=1).contains(&self.prctl.dumpable), || format!("task {pid}: dumpable {}", self.prctl.dumpable))?;
        let threads: Vec<(i32, Seccomp)> = self.threads.iter().map(|t| (t.tid, t.seccomp)).collect();
        crate::seccomp::validate(pid, &self.seccomp_filters, &threads)?;
        Ok(())
    }
}

impl ThreadCore {
    fn validate(&self, pid: i32) -> Result<(), ImageError> {
        let tid = self.tid;
        check(tid > 0, || format!("task {pid}: tid {tid}"))?;
        check(self.comm.len() < 16 && !self.comm.contains('\0'), || format!("thread {tid}: comm too long"))?;
        check((XSTATE_MIN..=XSTATE_MAX).contains(&self.xstate.len()) && self.xstate.len() % 64 == 0, || {
            format!("thread {tid}: xstate of {} bytes", self.xstate.len())
        })?;
        check(self.pending.len() <= 1 << 16, || format!("thread {tid}: too many pending signals"))?;
        for s in &self.pending {
            s.validate(pid)?;
        }
        check(self.creds.groups.len() <= 65536, || format!("thread {tid}: too many groups"))?;
        check(self.sched.affinity.len() <= 128, || format!("thread {tid}: affinity mask too long"))?;
        check((-20..=19).contains(&self.sched.nice), || format!("thread {tid}: nice {}", self.sched.nice))?;
        if let Some(r) = self.rseq {
            check(r.len >= 32 && r.len <= 4096, || format!("thread {tid}: rseq length {}", r.len))?;
        }
        Ok(())
    }
}

impl SigInfo {
    fn validate(&self, pid: i32) -> Result<(), ImageError> {
        check(self.0.len() == SIGINFO_LEN, || format!("task {pid}: siginfo of {} bytes", self.0.len()))?;
        let signo = self.signo();
        check((1..=64).contains(&signo), || format!("task {pid}: pending signal {signo}"))
    }
}
