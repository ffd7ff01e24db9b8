//! The parasite: runs inside a frozen task, from a mapping rckpt made, and reports
//! what only the task itself can (signal handlers, sigaltstack, itimers, brk,
//! prctl settings, rlimits, POSIX timers) and splices its memory into a pipe.
//!
//! Freestanding: no std, no allocation, no TLS; every signal is blocked by rckpt
//! before the parasite starts. See ../abi.rs for the protocol.

#![no_std]
#![no_main]
#![allow(clippy::missing_safety_doc)]

#[path = "../../blob_common/mod.rs"]
#[allow(dead_code)]
mod common;
#[path = "../abi.rs"]
#[allow(dead_code)]
mod abi;

use abi::*;
use common::sys::*;
use core::mem::size_of;

const AF_UNIX: u64 = 1;
const SOCK_SEQPACKET: u64 = 5;
const SOCK_CLOEXEC: u64 = 0o2000000;
const MSG_NOSIGNAL: u64 = 0x4000;
const SOL_SOCKET: i32 = 1;
const SCM_RIGHTS: i32 = 1;
const PR_GET_PDEATHSIG: u64 = 2;
const PR_GET_DUMPABLE: u64 = 3;
const PR_GET_CHILD_SUBREAPER: u64 = 37;
const PR_GET_TID_ADDRESS: u64 = 40;
const PR_GET_THP_DISABLE: u64 = 42;
const PR_GET_MDWE: u64 = 66;
const PR_GET_SECUREBITS: u64 = 27;
const PR_GET_TIMERSLACK: u64 = 30;
const IOV_MAX: usize = 1024;

#[repr(C, align(16))]
struct Buf([u8; MSG_MAX]);

static mut RX: Buf = Buf([0; MSG_MAX]);
static mut TX: Buf = Buf([0; MSG_MAX]);
static mut ARGS: *const ParasiteArgs = core::ptr::null();
static mut SOCK: i32 = -1;
/// The two pipes rckpt drains pages through (one fills while the other empties).
static mut PIPES: [i32; 2] = [-1, -1];

#[unsafe(no_mangle)]
#[unsafe(naked)]
pub extern "C" fn _start() -> ! {
    core::arch::naked_asm!("and rsp, -16", "call {main}", "ud2", main = sym main)
}

#[repr(C)]
struct Iovec {
    base: u64,
    len: u64,
}

#[repr(C)]
struct MsgHdr {
    name: u64,
    namelen: u32,
    _pad: u32,
    iov: *mut Iovec,
    iovlen: u64,
    control: *mut u8,
    controllen: u64,
    flags: i32,
    _pad2: i32,
}

/// Returns to the task's original context: closes what the parasite opened and
/// rt_sigreturns on the frame rckpt prepared. Used when rckpt is gone.
unsafe fn self_cure() -> ! {
    // SAFETY: ARGS was set at entry and points into the parasite's own area; the
    // frame it names was written by rckpt before the parasite started.
    unsafe {
        for p in PIPES {
            if p >= 0 {
                sc(SYS_CLOSE, &[p as u64]);
            }
        }
        if SOCK >= 0 {
            sc(SYS_CLOSE, &[SOCK as u64]);
        }
        let rsp = (*ARGS).sigframe + 8;
        core::arch::asm!("mov rsp, {0}", "mov eax, 15", "syscall", "ud2", in(reg) rsp, options(noreturn));
    }
}

/// Entry of a second (third, ...) thread of the process, while the daemon thread
/// idles: reports per-thread state and sleeps until rckpt stops it.
#[unsafe(no_mangle)]
#[unsafe(naked)]
pub extern "C" fn thread_start() -> ! {
    core::arch::naked_asm!("and rsp, -16", "call {main}", "ud2", main = sym thread_main)
}

unsafe extern "C" fn thread_main(args: *const ThreadArgs) -> ! {
    // SAFETY: rckpt wrote the args and this thread's frame into the parasite area;
    // SOCK was set by the daemon thread of the same process (same memory).
    unsafe {
        let uc_stack = ((*args).sigframe + 8 + 16) as *mut KStack;
        let mut r = ThreadReply { hdr: MsgHeader { cmd: CMD_THREAD, ..MsgHeader::default() }, ..ThreadReply::default() };
        r.tid = sc(SYS_GETTID, &[]) as i32;
        sc(SYS_SIGALTSTACK, &[0, &raw mut r.altstack as u64]);
        (*uc_stack).sp = r.altstack.sp;
        (*uc_stack).flags = r.altstack.flags;
        (*uc_stack).size = r.altstack.size;
        sc(SYS_PRCTL, &[PR_GET_TID_ADDRESS, &raw mut r.tid_address as u64]);
        sc(SYS_PRCTL, &[PR_GET_PDEATHSIG, &raw mut r.pdeath_signal as u64]);
        r.securebits = sc(SYS_PRCTL, &[PR_GET_SECUREBITS]) as i32;
        r.timer_slack_ns = sc(SYS_PRCTL, &[PR_GET_TIMERSLACK]) as u64;
        sc(SYS_SENDTO, &[SOCK as u64, &raw const r as u64, size_of::<ThreadReply>() as u64, MSG_NOSIGNAL, 0, 0]);
        // rckpt stops this thread as soon as the reply arrives; should it be gone,
        // go back to the original context after a while (about 10 s of TSC at
        // 3 GHz). No sleeping syscall: nanosleep, poll or a futex wait with a
        // timeout would overwrite the thread's restart block, which the syscall
        // it was interrupted in may still need.
        let start = core::arch::x86_64::_rdtsc();
        while core::arch::x86_64::_rdtsc().wrapping_sub(start) < 30_000_000_000 {
            sc(SYS_SCHED_YIELD, &[]);
        }
        let rsp = (*args).sigframe + 8;
        core::arch::asm!("mov rsp, {0}", "mov eax, 15", "syscall", "ud2", in(reg) rsp, options(noreturn));
    }
}

unsafe extern "C" fn main(args: *const ParasiteArgs) -> ! {
    // SAFETY: rckpt passes the address of the args it wrote into this area.
    unsafe {
        ARGS = args;
        if (*args).magic != PARASITE_MAGIC {
            self_cure();
        }
        // The original context's altstack goes into the cure frame: rt_sigreturn
        // restores it from there.
        let uc_stack = ((*args).sigframe + 8 + 16) as *mut KStack;
        let mut ss = KStack::default();
        if sc(SYS_SIGALTSTACK, &[0, &raw mut ss as u64]) == 0 {
            (*uc_stack).sp = ss.sp;
            (*uc_stack).flags = ss.flags;
            (*uc_stack).size = ss.size;
        }
        let s = sc(SYS_SOCKET, &[AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0]);
        if s < 0 {
            self_cure();
        }
        SOCK = s as i32;
        if sc(SYS_CONNECT, &[s as u64, (*args).sock_addr.as_ptr() as u64, (*args).sock_len as u64]) < 0 {
            self_cure();
        }
        let hello = Hello {
            hdr: MsgHeader::default(),
            magic: PARASITE_MAGIC,
            sock_fd: SOCK,
            tid: sc(SYS_GETTID, &[]) as i32,
        };
        send(&raw const hello as *const u8, size_of::<Hello>());
        loop {
            let n = recv();
            if n < size_of::<MsgHeader>() {
                self_cure();
            }
            let rx = &raw const RX.0 as *const u8;
            let hdr = *(rx as *const MsgHeader);
            let tx = &raw mut TX.0 as *mut u8;
            let len = match hdr.cmd {
                CMD_MISC => misc(tx),
                CMD_TIMERS => timers(&hdr, rx.add(size_of::<MsgHeader>()) as *const i32, n, tx),
                CMD_PIPE => {
                    let h = &mut *(tx as *mut MsgHeader);
                    // Both pipes' numbers in the task, slot 0 low.
                    let ok = PIPES[0] >= 0 && PIPES[1] >= 0;
                    let arg = (PIPES[0] as u32 as u64) | ((PIPES[1] as u32 as u64) << 32);
                    *h = MsgHeader { cmd: CMD_PIPE, status: if ok { 0 } else { -9 }, arg, nr: 0 };
                    size_of::<MsgHeader>()
                }
                CMD_DRAIN => drain(&hdr, rx.add(size_of::<MsgHeader>()) as *const DrainRange, n, tx),
                CMD_UFFD | CMD_CLOSE => {
                    let r = if hdr.cmd == CMD_UFFD {
                        sc(SYS_USERFAULTFD, &[hdr.arg])
                    } else {
                        sc(SYS_CLOSE, &[hdr.arg])
                    };
                    let h = &mut *(tx as *mut MsgHeader);
                    *h = MsgHeader { cmd: hdr.cmd, status: r.min(0), arg: r.max(0) as u64, nr: 0 };
                    size_of::<MsgHeader>()
                }
                _ => {
                    let h = &mut *(tx as *mut MsgHeader);
                    *h = MsgHeader { cmd: hdr.cmd, status: -22, ..MsgHeader::default() };
                    size_of::<MsgHeader>()
                }
            };
            send(tx, len);
        }
    }
}

/// Receives one message into RX; a descriptor passed with it becomes the pipe
/// of the slot its header's `arg` names.
unsafe fn recv() -> usize {
    // SAFETY: RX and the control buffer live for the call; the kernel writes at
    // most their lengths.
    unsafe {
        let mut iov = Iovec { base: &raw mut RX.0 as u64, len: MSG_MAX as u64 };
        let mut control = [0u64; 4];
        let mut msg = MsgHdr {
            name: 0,
            namelen: 0,
            _pad: 0,
            iov: &mut iov,
            iovlen: 1,
            control: control.as_mut_ptr() as *mut u8,
            controllen: 32,
            flags: 0,
            _pad2: 0,
        };
        let n = sc(SYS_RECVMSG, &[SOCK as u64, &raw mut msg as u64, 0x40000000 /* MSG_CMSG_CLOEXEC */]);
        if n <= 0 {
            return 0;
        }
        if msg.controllen >= 20 {
            // struct cmsghdr { u64 len; i32 level; i32 type; } then the fd.
            let level = control[1] as u32 as i32;
            let kind = (control[1] >> 32) as u32 as i32;
            if level == SOL_SOCKET && kind == SCM_RIGHTS {
                // One descriptor per pipe slot, in slot order (cmsg_len 20 or 24).
                let fds = [control[2] as u32 as i32, (control[2] >> 32) as u32 as i32];
                let count = if control[0] >= 24 { 2 } else { 1 };
                for (slot, &fd) in fds.iter().enumerate().take(count) {
                    if PIPES[slot] >= 0 {
                        sc(SYS_CLOSE, &[PIPES[slot] as u64]);
                    }
                    PIPES[slot] = fd;
                }
            }
        }
        n as usize
    }
}

unsafe fn send(buf: *const u8, len: usize) {
    // SAFETY: buf/len describe a live buffer. A failed send means rckpt is gone.
    unsafe {
        if sc(SYS_SENDTO, &[SOCK as u64, buf as u64, len as u64, MSG_NOSIGNAL, 0, 0]) < 0 {
            self_cure();
        }
    }
}

unsafe fn misc(tx: *mut u8) -> usize {
    // SAFETY: TX is MSG_MAX bytes, larger than MiscReply; every syscall writes
    // into a field of it.
    unsafe {
        let r = &mut *(tx as *mut MiscReply);
        r.hdr = MsgHeader { cmd: CMD_MISC, ..MsgHeader::default() };
        let mut sig = 1;
        while sig <= 64 {
            let a = &raw mut r.sigactions[sig - 1];
            *a = KSigAction::default();
            sc(SYS_RT_SIGACTION, &[sig as u64, 0, a as u64, 8]);
            sig += 1;
        }
        let mut ss = KStack::default();
        sc(SYS_SIGALTSTACK, &[0, &raw mut ss as u64]);
        r.altstack = ss;
        let mut i = 0;
        while i < 3 {
            r.itimers[i] = KItimerval::default();
            sc(SYS_GETITIMER, &[i as u64, &raw mut r.itimers[i] as u64]);
            i += 1;
        }
        r.brk = sc(SYS_BRK, &[0]) as u64;
        r.tid_address = 0;
        sc(SYS_PRCTL, &[PR_GET_TID_ADDRESS, &raw mut r.tid_address as u64]);
        r.pdeath_signal = 0;
        sc(SYS_PRCTL, &[PR_GET_PDEATHSIG, &raw mut r.pdeath_signal as u64]);
        r.child_subreaper = 0;
        sc(SYS_PRCTL, &[PR_GET_CHILD_SUBREAPER, &raw mut r.child_subreaper as u64]);
        r.dumpable = sc(SYS_PRCTL, &[PR_GET_DUMPABLE]) as i32;
        r.thp_disable = sc(SYS_PRCTL, &[PR_GET_THP_DISABLE]) as i32;
        let mdwe = sc(SYS_PRCTL, &[PR_GET_MDWE, 0, 0, 0, 0]);
        r.mdwe = if mdwe < 0 { 0 } else { mdwe as i32 };
        r.securebits = sc(SYS_PRCTL, &[PR_GET_SECUREBITS]) as i32;
        r.timer_slack_ns = sc(SYS_PRCTL, &[PR_GET_TIMERSLACK]) as u64;
        let mut res = 0;
        while res < 16 {
            r.rlimits[res] = KRlimit { cur: u64::MAX, max: u64::MAX };
            sc(SYS_PRLIMIT64, &[0, res as u64, 0, &raw mut r.rlimits[res] as u64]);
            res += 1;
        }
        size_of::<MiscReply>()
    }
}

unsafe fn timers(hdr: &MsgHeader, ids: *const i32, n: usize, tx: *mut u8) -> usize {
    // SAFETY: the request holds `nr` ids (checked against the message length) and
    // the reply fits TX (TIMERS_MAX entries).
    unsafe {
        let nr = (hdr.nr as usize).min(TIMERS_MAX).min((n - size_of::<MsgHeader>()) / 4);
        let out = tx.add(size_of::<MsgHeader>()) as *mut TimerState;
        let mut i = 0;
        while i < nr {
            let id = *ids.add(i);
            let t = &mut *out.add(i);
            *t = TimerState { id, ..TimerState::default() };
            let r = sc(SYS_TIMER_GETTIME, &[id as u64, &raw mut t.spec as u64]);
            if r < 0 {
                *(tx as *mut MsgHeader) = MsgHeader { cmd: CMD_TIMERS, status: r, arg: i as u64, nr: 0 };
                return size_of::<MsgHeader>();
            }
            t.overrun = sc(SYS_TIMER_GETOVERRUN, &[id as u64]) as i32;
            i += 1;
        }
        *(tx as *mut MsgHeader) = MsgHeader { cmd: CMD_TIMERS, nr: nr as u32, ..MsgHeader::default() };
        size_of::<MsgHeader>() + nr * size_of::<TimerState>()
    }
}

/// vmsplices each range into the pipe of slot `hdr.arg` (rckpt sized the
/// request to fit the pipe) and appends its bytes to the range's crc32c.
unsafe fn drain(hdr: &MsgHeader, ranges: *const DrainRange, n: usize, tx: *mut u8) -> usize {
    // SAFETY: `nr` is bounded by the message length; every range names memory of
    // this task that rckpt found present; the reply fits TX.
    unsafe {
        let nr = (hdr.nr as usize).min(DRAIN_MAX_RANGES).min((n - size_of::<MsgHeader>()) / size_of::<DrainRange>());
        let crcs = tx.add(size_of::<MsgHeader>()) as *mut u32;
        let mut status = 0i64;
        let mut failed = 0u64;
        let mut i = 0;
        'ranges: while i < nr {
            let r = *ranges.add(i);
            *crcs.add(i) = common::crc::append(r.crc, core::slice::from_raw_parts(r.addr as *const u8, r.len as usize));
            let mut off = 0u64;
            while off < r.len {
                let mut iov = Iovec { base: r.addr + off, len: r.len - off };
                let k = sc(SYS_VMSPLICE, &[PIPES[(hdr.arg & 1) as usize] as u64, &raw mut iov as u64, 1, 0]);
                if k <= 0 {
                    status = if k == 0 { -5 } else { k };
                    failed = i as u64;
                    break 'ranges;
                }
                off += k as u64;
            }
            i += 1;
        }
        let _ = IOV_MAX;
        *(tx as *mut MsgHeader) = MsgHeader { cmd: CMD_DRAIN, nr: nr as u32, status, arg: failed };
        size_of::<MsgHeader>() + nr * 4
    }
}
