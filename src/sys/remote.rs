//! System calls executed by another task, on a `syscall` instruction that already
//! exists in it (the vDSO has several), so no code page is ever patched.

use std::time::Duration;

use super::ptrace::{Resume, Stop, Tracee};
use super::{RemoteAddr, Result, SysError};

const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs syscall `nr` in the stopped `tracee` at the `syscall` instruction `insn`,
/// starting from registers `base` (which the caller restores afterwards).
///
/// orig_rax is set to -1 so the kernel applies no syscall restart to these
/// registers when the task leaves the stop it is in. Signal-delivery stops seen on
/// the way are suppressed and returned in `signals` for the caller to re-inject.
pub fn syscall(
    tracee: &mut Tracee,
    insn: RemoteAddr,
    base: &libc::user_regs_struct,
    nr: i64,
    args: [u64; 6],
    signals: &mut Vec<i32>,
) -> Result<i64> {
    let pid = tracee.pid();
    let mut regs = *base;
    regs.rip = insn.get();
    regs.rax = nr as u64;
    regs.orig_rax = u64::MAX;
    regs.eflags &= !crate::arch::EFLAGS_INJECT_CLEAR;
    regs.rdi = args[0];
    regs.rsi = args[1];
    regs.rdx = args[2];
    regs.r10 = args[3];
    regs.r8 = args[4];
    regs.r9 = args[5];
    tracee.set_regs(&regs)?;
    for phase in ["syscall entry", "syscall exit"] {
        tracee.resume(Resume::Syscall, 0)?;
        let mut detours = 0;
        loop {
            match tracee.wait(STEP_TIMEOUT, "remote syscall")? {
                Stop::Syscall => break,
                Stop::Signal(sig) if detours < 16 && !is_fault(sig) => {
                    signals.push(sig);
                    detours += 1;
                    tracee.resume(Resume::Syscall, 0)?;
                }
                Stop::Interrupt | Stop::GroupStop(_) if detours < 16 => {
                    detours += 1;
                    tracee.resume(Resume::Syscall, 0)?;
                }
                stop => {
                    return Err(SysError::UnexpectedStop { pid, what: phase, stop: stop.to_string() });
                }
            }
        }
        if phase == "syscall entry" {
            let at = tracee.regs()?;
            if at.orig_rax != nr as u64 {
                return Err(SysError::UnexpectedStop {
                    pid,
                    what: "remote syscall entry",
                    stop: format!("syscall {} instead of {nr}", at.orig_rax as i64),
                });
            }
        }
    }
    Ok(tracee.regs()?.rax as i64)
}

fn is_fault(sig: i32) -> bool {
    matches!(sig, libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGTRAP)
}
