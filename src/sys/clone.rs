//! clone3 with a chosen pid, whose child jumps straight into the restorer blob.

use std::arch::asm;

use nix::errno::Errno;

use super::{Pid, Result, SysError};

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

/// Linux 5.5: the child starts with every handler reset to SIG_DFL, so none of
/// rckpt's handlers can run in it.
const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;

/// Where the child goes: the blob's entry, its stack, and its argument (rdi).
#[derive(Debug, Clone, Copy)]
pub struct BlobEntry {
    pub entry: u64,
    pub stack_top: u64,
    pub arg: u64,
}

/// Creates a child with pid `pid` (in rckpt's pid namespace) that runs the blob.
///
/// The caller blocks all signals first and has mapped the blob, its stack and its
/// argument at addresses that are free in the saved layout. The child executes no
/// Rust code: the same asm block that makes the syscall switches its stack and
/// jumps to the blob.
pub fn clone3_into_blob(pid: Pid, blob: BlobEntry) -> Result<Pid> {
    let set_tid: [libc::pid_t; 1] = [pid.as_raw()];
    let args = CloneArgs {
        flags: CLONE_CLEAR_SIGHAND,
        exit_signal: libc::SIGCHLD as u64,
        set_tid: set_tid.as_ptr() as u64,
        set_tid_size: 1,
        ..Default::default()
    };
    let ret: i64;
    // SAFETY: the parent only makes the syscall and reads rax. The child (rax == 0)
    // never returns into Rust: it switches to the blob's own stack and jumps to the
    // blob, which the caller mapped (text executable) at `blob.entry`. rcx and r11
    // are declared clobbered with `out`, so no input operand lives in them.
    unsafe {
        asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "mov rsp, {stack}",
            "mov rdi, {arg}",
            "xor ebp, ebp",
            "jmp {entry}",
            "2:",
            stack = in(reg) blob.stack_top,
            arg = in(reg) blob.arg,
            entry = in(reg) blob.entry,
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") &raw const args,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            out("rcx") _,
            out("r11") _,
        );
    }
    if ret < 0 {
        let errno = Errno::from_raw(-ret as i32);
        return Err(SysError::Task { op: "create task with clone3", pid, errno });
    }
    Ok(Pid::from_raw(ret as i32))
}
