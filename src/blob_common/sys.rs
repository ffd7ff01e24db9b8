//! Raw x86_64 system calls for the blobs.

use core::arch::asm;

#[inline(always)]
pub unsafe fn syscall6(nr: i64, a: u64, b: u64, c: u64, d: u64, e: u64, f: u64) -> i64 {
    let ret: i64;
    // SAFETY: the caller upholds the contract of syscall `nr`.
    unsafe {
        asm!("syscall", inlateout("rax") nr => ret, in("rdi") a, in("rsi") b, in("rdx") c, in("r10") d, in("r8") e, in("r9") f,
             lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

#[inline(always)]
pub unsafe fn sc(nr: i64, args: &[u64]) -> i64 {
    let mut a = [0u64; 6];
    let mut i = 0;
    while i < args.len() && i < 6 {
        a[i] = args[i];
        i += 1;
    }
    // SAFETY: forwarded contract.
    unsafe { syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5]) }
}

pub const SYS_READ: i64 = 0;
pub const SYS_WRITE: i64 = 1;
pub const SYS_CLOSE: i64 = 3;
pub const SYS_MMAP: i64 = 9;
pub const SYS_IOCTL: i64 = 16;
pub const SYS_MPROTECT: i64 = 10;
pub const SYS_MUNMAP: i64 = 11;
pub const SYS_BRK: i64 = 12;
pub const SYS_RT_SIGACTION: i64 = 13;
pub const SYS_RT_SIGPROCMASK: i64 = 14;
pub const SYS_RT_SIGRETURN: i64 = 15;
pub const SYS_PREAD64: i64 = 17;
pub const SYS_MADVISE: i64 = 28;
pub const SYS_DUP3: i64 = 292;
pub const SYS_SCHED_YIELD: i64 = 24;
pub const SYS_NANOSLEEP: i64 = 35;
pub const SYS_GETITIMER: i64 = 36;
pub const SYS_SETITIMER: i64 = 38;
pub const SYS_GETPID: i64 = 39;
pub const SYS_SOCKET: i64 = 41;
pub const SYS_CONNECT: i64 = 42;
pub const SYS_SENDTO: i64 = 44;
pub const SYS_RECVFROM: i64 = 45;
pub const SYS_RECVMSG: i64 = 47;
pub const SYS_EXIT: i64 = 60;
pub const SYS_FCNTL: i64 = 72;
pub const SYS_EPOLL_CTL: i64 = 233;
pub const SYS_FCHDIR: i64 = 81;
pub const SYS_UMASK: i64 = 95;
pub const SYS_GETPPID: i64 = 110;
pub const SYS_SETPGID: i64 = 109;
pub const SYS_SETSID: i64 = 112;
pub const SYS_SETRESUID: i64 = 117;
pub const SYS_SETRESGID: i64 = 119;
pub const SYS_SETFSUID: i64 = 122;
pub const SYS_SETFSGID: i64 = 123;
pub const SYS_CAPSET: i64 = 126;
pub const SYS_SETGROUPS: i64 = 116;
pub const SYS_SIGALTSTACK: i64 = 131;
pub const SYS_PERSONALITY: i64 = 135;
pub const SYS_SETPRIORITY: i64 = 141;
pub const SYS_MLOCK: i64 = 149;
pub const SYS_PRCTL: i64 = 157;
pub const SYS_ARCH_PRCTL: i64 = 158;
pub const SYS_SETRLIMIT: i64 = 160;
pub const SYS_GETTID: i64 = 186;
pub const SYS_FUTEX: i64 = 202;
pub const SYS_SCHED_SETAFFINITY: i64 = 203;
pub const SYS_SET_TID_ADDRESS: i64 = 218;
pub const SYS_TIMER_CREATE: i64 = 222;
pub const SYS_TIMER_SETTIME: i64 = 223;
pub const SYS_TIMER_GETTIME: i64 = 224;
pub const SYS_TIMER_GETOVERRUN: i64 = 225;
pub const SYS_EXIT_GROUP: i64 = 231;
pub const SYS_TGKILL: i64 = 234;
pub const SYS_SET_ROBUST_LIST: i64 = 273;
pub const SYS_VMSPLICE: i64 = 278;
pub const SYS_PRLIMIT64: i64 = 302;
pub const SYS_RT_TGSIGQUEUEINFO: i64 = 297;
pub const SYS_RSEQ: i64 = 334;
pub const SYS_CLOSE_RANGE: i64 = 436;
pub const SYS_USERFAULTFD: i64 = 323;

pub unsafe fn exit_group(code: i32) -> ! {
    loop {
        // SAFETY: exit_group does not return.
        unsafe { sc(SYS_EXIT_GROUP, &[code as u64]) };
    }
}
