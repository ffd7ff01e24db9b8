//! Signal dispositions, the altstack, timers and the other settings only the task
//! can report, from the parasite's answers.

use rckpt_images::core::{AltStack, ITimer, PosixTimer, Prctl, Rlimit, SigAction};

use super::core::TaskState;
use super::{DumpError, Result};
use crate::parasite::abi::{MiscReply, TimerState};

const SIGEV_SIGNAL: i32 = 0;
const SIGEV_NONE: i32 = 1;
const SIGEV_THREAD_ID: i32 = 4;

fn tv_us(t: &crate::parasite::abi::KTimeval) -> u64 {
    (t.sec.max(0) as u64) * 1_000_000 + t.usec.max(0) as u64
}

fn ts_ns(t: &crate::parasite::abi::KTimespec) -> u64 {
    (t.sec.max(0) as u64) * 1_000_000_000 + t.nsec.max(0) as u64
}

/// Per-thread answers of the other threads.
pub fn apply_thread(task: &mut TaskState, r: &crate::parasite::abi::ThreadReply) {
    if let Some(t) = task.core.threads.iter_mut().find(|t| t.tid == r.tid) {
        t.sigaltstack = AltStack { sp: r.altstack.sp, flags: r.altstack.flags, size: r.altstack.size };
        t.tid_address = r.tid_address;
        t.creds.securebits = r.securebits as u32;
        t.sched.timer_slack_ns = r.timer_slack_ns;
    }
}

pub fn apply_misc(task: &mut TaskState, m: &MiscReply, timers: &[TimerState]) -> Result<()> {
    let pid = task.pid;
    let c = &mut task.core;
    c.sigactions = m
        .sigactions
        .iter()
        .map(|a| SigAction { handler: a.handler, flags: a.flags, restorer: a.restorer, mask: a.mask })
        .collect();
    for (i, it) in m.itimers.iter().enumerate() {
        c.itimers[i] = ITimer { interval_us: tv_us(&it.interval), value_us: tv_us(&it.value) };
    }
    c.rlimits =
        m.rlimits.iter().enumerate().map(|(r, l)| Rlimit { resource: r as u32, cur: l.cur, max: l.max }).collect();
    c.prctl = Prctl {
        pdeath_signal: m.pdeath_signal,
        child_subreaper: m.child_subreaper != 0,
        dumpable: m.dumpable,
        thp_disable: m.thp_disable != 0,
        mdwe: m.mdwe as u32,
    };
    // The thread the parasite ran in (the first live one).
    let t = &mut c.threads[0];
    t.sigaltstack = AltStack { sp: m.altstack.sp, flags: m.altstack.flags, size: m.altstack.size };
    t.tid_address = m.tid_address;
    t.creds.securebits = m.securebits as u32;
    t.sched.timer_slack_ns = m.timer_slack_ns;
    task.brk = m.brk;

    c.posix_timers.clear();
    for info in &task.proc_timers {
        let st = timers.iter().find(|t| t.id == info.id).ok_or_else(|| DumpError::Refused {
            pid,
            why: format!("POSIX timer {} vanished while it was being read", info.id),
        })?;
        let notify = match (info.notify.as_str(), info.thread_target) {
            ("none", _) => SIGEV_NONE,
            (_, true) => SIGEV_THREAD_ID,
            _ => SIGEV_SIGNAL,
        };
        c.posix_timers.push(PosixTimer {
            id: info.id,
            clock: info.clock,
            notify,
            signo: info.signo,
            sigval: info.sigval,
            notify_tid: info.notify_tid,
            interval_ns: ts_ns(&st.spec.interval),
            value_ns: ts_ns(&st.spec.value),
            overrun: st.overrun,
        });
    }
    Ok(())
}
