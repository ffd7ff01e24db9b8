//! Seccomp filters of a thread: its mode from /proc, its chain with
//! PTRACE_SECCOMP_GET_FILTER (index 0 is the oldest filter, whatever ptrace(2)
//! says: see [`Tracee::seccomp_filter`]), each filter's flags with
//! PTRACE_SECCOMP_GET_METADATA.
//!
//! A thread under seccomp gets PTRACE_O_SUSPEND_SECCOMP before anything runs in
//! it: the parasite's syscalls would otherwise meet the task's filters, which may
//! fail them or kill the task. The suspension ends when rckpt detaches (it is a
//! ptrace option). Both requests need CAP_SYS_ADMIN and a tracer that is not
//! itself under seccomp.
//!
//! Threads that share filters (created after they were installed, or
//! synchronised with SECCOMP_FILTER_FLAG_TSYNC) are recognised by comparing the
//! programs from the oldest filter on: equal programs with an equal older chain
//! are saved once, so restore can install them once for all the threads that
//! share them.

use nix::errno::Errno;
use rckpt_images::seccomp::{self as iseccomp, Seccomp, SeccompFilter, SockFilter};

use super::{DumpError, Result};
use crate::proc;
use crate::sys::ptrace::{Tracee, opts};
use crate::sys::{Pid, SysError};

/// More filters than a chain can hold (MAX_INSNS_PER_PATH with one-instruction
/// programs): a bound on the loop, should the kernel keep answering.
const MAX_CHAIN: u64 = (iseccomp::MAX_INSNS_PER_PATH / 5 + 1) as u64;

const CAP_SYS_ADMIN: u32 = 21;

/// Why rckpt cannot suspend or read filters: it lacks CAP_SYS_ADMIN, or runs
/// under seccomp itself.
fn privilege(pid: Pid, tid: Pid) -> DumpError {
    let me = Pid::this();
    let own = proc::thread_status(me, me).ok();
    let why = if own.as_ref().and_then(|s| s.seccomp).unwrap_or(0) != 0 {
        format!(
            "thread {tid} runs under seccomp filters, and rckpt itself runs under seccomp, which forbids suspending or reading another task's filters"
        )
    } else {
        format!(
            "thread {tid} runs under seccomp filters: suspending them while the parasite runs (PTRACE_O_SUSPEND_SECCOMP) and reading them (PTRACE_SECCOMP_GET_FILTER) need CAP_SYS_ADMIN{}",
            if own.is_some_and(|s| s.capeff & (1 << CAP_SYS_ADMIN) != 0) { "" } else { ", which rckpt does not hold" }
        )
    };
    DumpError::Privilege { pid, cap: "CAP_SYS_ADMIN", why }
}

fn denied(e: &SysError) -> bool {
    matches!(e.errno(), Some(Errno::EPERM | Errno::EACCES))
}

/// The seccomp state of thread `t` of process `pid`; its filters are added to
/// the process's `filters` (shared ones once).
pub fn thread(pid: Pid, t: &Tracee, mode: u32, filters: &mut Vec<SeccompFilter>) -> Result<Seccomp> {
    let tid = t.pid();
    match mode {
        iseccomp::MODE_DISABLED => return Ok(Seccomp::default()),
        iseccomp::MODE_FILTER => {}
        iseccomp::MODE_STRICT => {
            return Err(DumpError::Unsupported {
                pid,
                what: format!(
                    "thread {tid} runs in seccomp strict mode (SECCOMP_MODE_STRICT: only read, write, exit and sigreturn), which rckpt does not save"
                ),
            });
        }
        m => return Err(DumpError::Unsupported { pid, what: format!("thread {tid} is in seccomp mode {m}") }),
    }
    t.set_options(super::freeze::SEIZE_OPTIONS | opts::SUSPEND_SECCOMP)
        .map_err(|e| if denied(&e) { privilege(pid, tid) } else { e.into() })?;

    // Oldest first.
    let mut chain = Vec::new();
    for index in 0..MAX_CHAIN {
        let Some(raw) = t.seccomp_filter(index).map_err(|e| match e.errno() {
            Some(Errno::EMEDIUMTYPE) => DumpError::Unsupported {
                pid,
                what: format!("thread {tid} runs under an eBPF seccomp filter, which rckpt cannot read"),
            },
            _ if denied(&e) => privilege(pid, tid),
            _ => e.into(),
        })?
        else {
            break;
        };
        let insns: Vec<SockFilter> = raw
            .iter()
            .map(|b| SockFilter {
                code: u16::from_ne_bytes([b[0], b[1]]),
                jt: b[2],
                jf: b[3],
                k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
            })
            .collect();
        if insns.iter().any(|i| i.returns_user_notif()) {
            return Err(DumpError::Unsupported {
                pid,
                what: format!(
                    "thread {tid} runs under a seccomp filter that hands syscalls to a listener (SECCOMP_RET_USER_NOTIF), which cannot be restored"
                ),
            });
        }
        let flags = t.seccomp_flags(index)?;
        chain.push((flags, insns));
    }
    if chain.is_empty() {
        // Mode 2 with no filter: the /proc read raced with nothing (a stopped
        // thread cannot change its chain), so the kernel disagrees with itself.
        return Err(DumpError::Refused { pid, why: format!("thread {tid} is in seccomp filter mode without filters") });
    }
    let mut at: Option<u32> = None;
    for (flags, insns) in chain {
        let same = filters.iter().position(|f| f.prev == at && f.flags == flags && f.insns == insns);
        at = Some(match same {
            Some(i) => i as u32,
            None => {
                filters.push(SeccompFilter { prev: at, flags, insns });
                (filters.len() - 1) as u32
            }
        });
    }
    Ok(Seccomp { mode: iseccomp::MODE_FILTER, filter: at })
}
