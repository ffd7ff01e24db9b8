//! General registers and the syscall-restart rules applied to them.

use rckpt_images::core::GpRegs;

pub const USER_CS: u64 = 0x33;
/// Flags cleared in registers rckpt injects (TF would trap, DF would run the
/// blobs' string instructions backwards, AC would fault unaligned accesses).
pub const EFLAGS_INJECT_CLEAR: u64 = (1 << 8) | (1 << 10) | (1 << 18);
pub const USER_DS: u64 = 0x2b;

const ERESTARTSYS: i64 = -512;
const ERESTARTNOINTR: i64 = -513;
const ERESTARTNOHAND: i64 = -514;
const ERESTART_RESTARTBLOCK: i64 = -516;
const EINTR: i64 = -4;
pub const NR_RESTART_SYSCALL: u64 = 219;
pub const NR_RT_SIGRETURN: u64 = 15;
/// The length of the `syscall` instruction.
pub const SYSCALL_INSN_LEN: u64 = 2;

pub fn from_user(r: &libc::user_regs_struct) -> GpRegs {
    GpRegs {
        r15: r.r15,
        r14: r.r14,
        r13: r.r13,
        r12: r.r12,
        rbp: r.rbp,
        rbx: r.rbx,
        r11: r.r11,
        r10: r.r10,
        r9: r.r9,
        r8: r.r8,
        rax: r.rax,
        rcx: r.rcx,
        rdx: r.rdx,
        rsi: r.rsi,
        rdi: r.rdi,
        orig_rax: r.orig_rax,
        rip: r.rip,
        cs: r.cs,
        eflags: r.eflags,
        rsp: r.rsp,
        ss: r.ss,
        fs_base: r.fs_base,
        gs_base: r.gs_base,
        ds: r.ds,
        es: r.es,
        fs: r.fs,
        gs: r.gs,
    }
}

pub fn to_user(g: &GpRegs) -> libc::user_regs_struct {
    libc::user_regs_struct {
        r15: g.r15,
        r14: g.r14,
        r13: g.r13,
        r12: g.r12,
        rbp: g.rbp,
        rbx: g.rbx,
        r11: g.r11,
        r10: g.r10,
        r9: g.r9,
        r8: g.r8,
        rax: g.rax,
        rcx: g.rcx,
        rdx: g.rdx,
        rsi: g.rsi,
        rdi: g.rdi,
        orig_rax: g.orig_rax,
        rip: g.rip,
        cs: g.cs,
        eflags: g.eflags,
        rsp: g.rsp,
        ss: g.ss,
        fs_base: g.fs_base,
        gs_base: g.gs_base,
        ds: g.ds,
        es: g.es,
        fs: g.fs,
        gs: g.gs,
    }
}

/// What a thread stopped inside a system call needs when it runs again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Not in a syscall, or the syscall completed.
    None,
    /// ERESTARTSYS/NOINTR/NOHAND: run the same syscall again.
    Again,
    /// ERESTART_RESTARTBLOCK: the kernel kept restart state (nanosleep, poll with
    /// a timeout, ...). The same task can call restart_syscall; a new one cannot.
    Block,
}

pub fn restart_kind(g: &GpRegs) -> Restart {
    if (g.orig_rax as i64) < 0 {
        return Restart::None;
    }
    match g.rax as i64 {
        ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND => Restart::Again,
        ERESTART_RESTARTBLOCK => Restart::Block,
        _ => Restart::None,
    }
}

/// Applies what the kernel would do when the thread returns to user space with no
/// signal handler to run: back up to the `syscall` instruction and run it again.
/// `same_task` is true for the parasite's self-cure (restart_syscall still has the
/// kernel's restart block); a restored task gets EINTR instead, as the kernel gives
/// when that state is gone.
pub fn apply_restart(g: &mut GpRegs, same_task: bool) {
    match restart_kind(g) {
        Restart::None => {}
        Restart::Again => {
            g.rax = g.orig_rax;
            g.rip -= SYSCALL_INSN_LEN;
        }
        Restart::Block if same_task => {
            g.rax = NR_RESTART_SYSCALL;
            g.rip -= SYSCALL_INSN_LEN;
        }
        Restart::Block => g.rax = EINTR as u64,
    }
    g.orig_rax = u64::MAX;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_rules() {
        let mut g = GpRegs { orig_rax: 34, rax: ERESTARTNOHAND as u64, rip: 0x1002, ..Default::default() };
        apply_restart(&mut g, false);
        assert_eq!((g.rax, g.rip, g.orig_rax), (34, 0x1000, u64::MAX));

        let mut g = GpRegs { orig_rax: 35, rax: ERESTART_RESTARTBLOCK as u64, rip: 0x1002, ..Default::default() };
        let mut same = g;
        apply_restart(&mut g, false);
        assert_eq!((g.rax as i64, g.rip), (EINTR, 0x1002));
        apply_restart(&mut same, true);
        assert_eq!((same.rax, same.rip), (NR_RESTART_SYSCALL, 0x1000));

        let mut g = GpRegs { orig_rax: u64::MAX, rax: ERESTARTSYS as u64, rip: 0x1002, ..Default::default() };
        apply_restart(&mut g, false);
        assert_eq!((g.rax as i64, g.rip), (ERESTARTSYS, 0x1002));
    }
}
