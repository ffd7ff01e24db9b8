//! ptrace with a guard: a [`Tracee`] is detached when dropped, from any state.
//!
//! ptrace belongs to the thread that attached, so a `Tracee` cannot leave its
//! thread (it is neither `Send` nor `Sync`). Stops are decoded in one place
//! ([`Stop`]), and ESRCH becomes "tracee died".

use std::marker::PhantomData;
use std::mem::{MaybeUninit, size_of};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::wait::{WaitStatus, wait_pid};
use super::{Pid, Result, SysError, task_err};

const PTRACE_SEIZE: libc::c_uint = 0x4206;
const PTRACE_INTERRUPT: libc::c_uint = 0x4207;
const PTRACE_LISTEN: libc::c_uint = 0x4208;
const PTRACE_PEEKSIGINFO: libc::c_uint = 0x4209;
const PTRACE_GETSIGMASK: libc::c_uint = 0x420a;
const PTRACE_SETSIGMASK: libc::c_uint = 0x420b;
const PTRACE_GET_RSEQ_CONFIGURATION: libc::c_uint = 0x420f;
const PTRACE_SECCOMP_GET_FILTER: libc::c_uint = 0x420c;
const PTRACE_SECCOMP_GET_METADATA: libc::c_uint = 0x420d;
const PTRACE_PEEKSIGINFO_SHARED: u32 = 1;
const NT_PRSTATUS: usize = 1;
const NT_X86_XSTATE: usize = 0x202;
pub const PTRACE_EVENT_STOP: i32 = 128;

/// Options for PTRACE_SEIZE.
pub mod opts {
    pub const TRACESYSGOOD: u32 = 0x01;
    pub const TRACEFORK: u32 = 0x02;
    pub const TRACEVFORK: u32 = 0x04;
    pub const TRACECLONE: u32 = 0x08;
    pub const TRACEEXIT: u32 = 0x40;
    pub const EXITKILL: u32 = 0x10_0000;
    pub const SUSPEND_SECCOMP: u32 = 0x20_0000;
}

/// What a tracee stopped for (or how it ended).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Exited(i32),
    Killed {
        signal: i32,
        core: bool,
    },
    /// A signal is about to be delivered; the tracer decides whether it is.
    Signal(i32),
    /// A job-control stop (PTRACE_EVENT_STOP with a stop signal).
    GroupStop(i32),
    /// PTRACE_EVENT_STOP after PTRACE_INTERRUPT.
    Interrupt,
    /// Syscall entry or exit (TRACESYSGOOD).
    Syscall,
    /// Another ptrace event (fork, clone, exec, exit).
    Event(i32),
}

impl Stop {
    pub fn from_status(status: WaitStatus) -> Stop {
        match status {
            WaitStatus::Exited(code) => Stop::Exited(code),
            WaitStatus::Signaled { signal, core } => Stop::Killed { signal, core },
            WaitStatus::Stopped(raw) => {
                let sig = raw & 0xff;
                let event = (raw >> 8) & 0xff;
                if sig == (libc::SIGTRAP | 0x80) {
                    Stop::Syscall
                } else if event == PTRACE_EVENT_STOP {
                    match sig {
                        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU => Stop::GroupStop(sig),
                        _ => Stop::Interrupt,
                    }
                } else if event != 0 {
                    Stop::Event(event)
                } else {
                    Stop::Signal(sig)
                }
            }
        }
    }

    pub fn is_gone(&self) -> bool {
        matches!(self, Stop::Exited(_) | Stop::Killed { .. })
    }
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Exited(c) => write!(f, "exited with {c}"),
            Stop::Killed { signal, .. } => write!(f, "killed by signal {signal}"),
            Stop::Signal(s) => write!(f, "signal {s}"),
            Stop::GroupStop(s) => write!(f, "job-control stop by signal {s}"),
            Stop::Interrupt => write!(f, "interrupt"),
            Stop::Syscall => write!(f, "syscall stop"),
            Stop::Event(e) => write!(f, "ptrace event {e}"),
        }
    }
}

/// `struct ptrace_rseq_configuration`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct RseqConfig {
    pub rseq_abi_pointer: u64,
    pub rseq_abi_size: u32,
    pub signature: u32,
    pub flags: u32,
    pub pad: u32,
}

#[repr(C)]
struct PeekSiginfoArgs {
    off: u64,
    flags: u32,
    nr: i32,
}

/// A task seized by this thread. Dropping it detaches, re-delivering a signal that
/// was stopped on and leaving a job-control stop in effect.
pub struct Tracee {
    pid: Pid,
    /// Whether the tracee is in a ptrace stop, and which.
    stopped: Option<Stop>,
    gone: bool,
    _not_send: PhantomData<*const ()>,
}

fn raw(req: libc::c_uint, pid: Pid, addr: usize, data: usize) -> std::result::Result<libc::c_long, Errno> {
    // SAFETY: the requests used here read or write only the buffers that the
    // callers pass as `addr`/`data`, each sized as the request requires.
    let r = unsafe { libc::ptrace(req, pid.as_raw(), addr as *mut libc::c_void, data as *mut libc::c_void) };
    if r < 0 { Err(Errno::last()) } else { Ok(r) }
}

impl Tracee {
    /// PTRACE_SEIZE: attaches without stopping the task.
    pub fn seize(pid: Pid, options: u32) -> Result<Tracee> {
        raw(PTRACE_SEIZE, pid, 0, options as usize).map_err(task_err("seize", pid))?;
        Ok(Tracee { pid, stopped: None, gone: false, _not_send: PhantomData })
    }

    /// A task this thread already traces because it was auto-attached (it was
    /// created by a tracee with PTRACE_O_TRACEFORK/TRACECLONE set).
    pub fn adopt(pid: Pid) -> Tracee {
        Tracee { pid, stopped: None, gone: false, _not_send: PhantomData }
    }

    pub fn pid(&self) -> Pid {
        self.pid
    }

    pub fn stop_state(&self) -> Option<Stop> {
        self.stopped
    }

    /// PTRACE_INTERRUPT: the task will report a PTRACE_EVENT_STOP.
    pub fn interrupt(&self) -> Result<()> {
        raw(PTRACE_INTERRUPT, self.pid, 0, 0).map_err(task_err("interrupt", self.pid))?;
        Ok(())
    }

    /// Waits (bounded) for the next stop or the end of the task.
    pub fn wait(&mut self, timeout: Duration, what: &'static str) -> Result<Stop> {
        let status = wait_pid(self.pid, Instant::now() + timeout, what)?;
        let stop = Stop::from_status(status);
        if stop.is_gone() {
            self.gone = true;
            self.stopped = None;
        } else {
            self.stopped = Some(stop);
        }
        Ok(stop)
    }

    /// Interrupts and waits for the interrupt stop. A signal-delivery stop seen on
    /// the way is a signal that arrived before the freeze: it is delivered (as it
    /// would have been), never swallowed; a stop signal thus ends in a job-control
    /// stop, which is reported as such.
    pub fn interrupt_and_wait(&mut self, timeout: Duration) -> Result<Stop> {
        self.interrupt()?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.wait(left, "interrupt stop")? {
                Stop::Signal(sig) => self.resume(Resume::Cont, sig)?,
                s @ (Stop::Interrupt | Stop::GroupStop(_)) => return Ok(s),
                Stop::Syscall | Stop::Event(_) => self.resume(Resume::Cont, 0)?,
                s @ (Stop::Exited(_) | Stop::Killed { .. }) => {
                    return Err(SysError::UnexpectedStop {
                        pid: self.pid,
                        what: "interrupt stop",
                        stop: s.to_string(),
                    });
                }
            }
        }
    }

    /// Records a stop the caller consumed through its own wait.
    pub fn note_stopped(&mut self, stop: Stop) {
        if stop.is_gone() {
            self.gone = true;
            self.stopped = None;
        } else {
            self.stopped = Some(stop);
        }
    }

    /// Marks the tracee as gone (it died, and the caller saw it).
    pub fn forget_now(&mut self) {
        self.gone = true;
        self.stopped = None;
    }

    pub fn resume(&mut self, how: Resume, sig: i32) -> Result<()> {
        let req = match how {
            Resume::Cont => libc::PTRACE_CONT,
            Resume::Syscall => libc::PTRACE_SYSCALL,
            Resume::Listen => PTRACE_LISTEN,
        };
        raw(req, self.pid, 0, sig as usize).map_err(task_err("resume", self.pid))?;
        self.stopped = None;
        Ok(())
    }

    pub fn regs(&self) -> Result<libc::user_regs_struct> {
        let mut regs = MaybeUninit::<libc::user_regs_struct>::zeroed();
        let mut iov = libc::iovec { iov_base: regs.as_mut_ptr().cast(), iov_len: size_of::<libc::user_regs_struct>() };
        raw(libc::PTRACE_GETREGSET, self.pid, NT_PRSTATUS, &raw mut iov as usize)
            .map_err(task_err("read registers", self.pid))?;
        // SAFETY: zero-initialised plain-old-data, filled by the kernel.
        Ok(unsafe { regs.assume_init() })
    }

    pub fn set_regs(&self, regs: &libc::user_regs_struct) -> Result<()> {
        let mut iov = libc::iovec {
            iov_base: (regs as *const libc::user_regs_struct).cast_mut().cast(),
            iov_len: size_of::<libc::user_regs_struct>(),
        };
        raw(libc::PTRACE_SETREGSET, self.pid, NT_PRSTATUS, &raw mut iov as usize)
            .map_err(task_err("write registers", self.pid))?;
        Ok(())
    }

    /// The XSAVE area in the uncompacted user format, as long as the kernel makes it.
    pub fn xstate(&self) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
        raw(libc::PTRACE_GETREGSET, self.pid, NT_X86_XSTATE, &raw mut iov as usize)
            .map_err(task_err("read xstate", self.pid))?;
        buf.truncate(iov.iov_len);
        // Kept per thread until the image is written: only what the kernel gave
        // (about 2.7 KiB with AVX-512), not the 64 KiB asked for (which made
        // rckpt's peak memory grow by 64 KiB per thread).
        buf.shrink_to_fit();
        Ok(buf)
    }

    pub fn set_xstate(&self, xstate: &[u8]) -> Result<()> {
        let mut iov = libc::iovec { iov_base: xstate.as_ptr().cast_mut().cast(), iov_len: xstate.len() };
        raw(libc::PTRACE_SETREGSET, self.pid, NT_X86_XSTATE, &raw mut iov as usize)
            .map_err(task_err("write xstate", self.pid))?;
        Ok(())
    }

    /// The blocked mask; during sigsuspend and friends, the mask to be restored.
    pub fn sigmask(&self) -> Result<u64> {
        let mut mask = 0u64;
        raw(PTRACE_GETSIGMASK, self.pid, 8, &raw mut mask as usize).map_err(task_err("read signal mask", self.pid))?;
        Ok(mask)
    }

    pub fn set_sigmask(&self, mask: u64) -> Result<()> {
        raw(PTRACE_SETSIGMASK, self.pid, 8, &raw const mask as usize)
            .map_err(task_err("write signal mask", self.pid))?;
        Ok(())
    }

    /// Every queued siginfo, private or shared, in queue order, without dequeuing.
    pub fn pending_siginfo(&self, shared: bool) -> Result<Vec<[u8; 128]>> {
        let mut out = Vec::new();
        loop {
            let mut buf = [[0u8; 128]; 32];
            let args = PeekSiginfoArgs {
                off: out.len() as u64,
                flags: if shared { PTRACE_PEEKSIGINFO_SHARED } else { 0 },
                nr: buf.len() as i32,
            };
            let n = raw(PTRACE_PEEKSIGINFO, self.pid, &raw const args as usize, buf.as_mut_ptr() as usize)
                .map_err(task_err("peek pending signals", self.pid))? as usize;
            out.extend_from_slice(&buf[..n]);
            if n < buf.len() {
                return Ok(out);
            }
        }
    }

    /// The siginfo of the current signal-delivery stop.
    pub fn siginfo(&self) -> Result<[u8; 128]> {
        let mut buf = [0u8; 128];
        raw(libc::PTRACE_GETSIGINFO, self.pid, 0, buf.as_mut_ptr() as usize)
            .map_err(task_err("read siginfo", self.pid))?;
        Ok(buf)
    }

    /// rseq registration (Linux 5.13+); None when the thread has none.
    pub fn rseq_config(&self) -> Result<Option<RseqConfig>> {
        let mut conf = RseqConfig::default();
        raw(PTRACE_GET_RSEQ_CONFIGURATION, self.pid, size_of::<RseqConfig>(), &raw mut conf as usize)
            .map_err(task_err("read rseq configuration", self.pid))?;
        Ok((conf.rseq_abi_pointer != 0).then_some(conf))
    }

    /// PTRACE_SETOPTIONS: `options` replaces every option set so far.
    /// PTRACE_O_SUSPEND_SECCOMP needs CAP_SYS_ADMIN and a tracer that is not
    /// itself under seccomp (EPERM otherwise).
    pub fn set_options(&self, options: u32) -> Result<()> {
        raw(libc::PTRACE_SETOPTIONS, self.pid, 0, options as usize)
            .map_err(task_err("set ptrace options", self.pid))?;
        Ok(())
    }

    /// The classic BPF program of seccomp filter `index` of the thread's chain,
    /// as `struct sock_filter`s; None past the end (Linux 4.4; CAP_SYS_ADMIN,
    /// else EACCES). Index 0 is the oldest filter: get_nth_filter() counts
    /// `index` back from the chain's length (ptrace(2) says the newest; the
    /// kernel and a thread with two chained filters say otherwise).
    pub fn seccomp_filter(&self, index: u64) -> Result<Option<Vec<[u8; 8]>>> {
        let n = match raw(PTRACE_SECCOMP_GET_FILTER, self.pid, index as usize, 0) {
            Ok(n) => n as usize,
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(task_err("read a seccomp filter", self.pid)(e)),
        };
        // The kernel copies the whole program: the buffer holds the count it gave.
        let mut buf = vec![[0u8; 8]; n];
        let got = raw(PTRACE_SECCOMP_GET_FILTER, self.pid, index as usize, buf.as_mut_ptr() as usize)
            .map_err(task_err("read a seccomp filter", self.pid))? as usize;
        if got != n {
            return Err(SysError::Task { op: "read a seccomp filter", pid: self.pid, errno: Errno::EAGAIN });
        }
        Ok(Some(buf))
    }

    /// The flags of seccomp filter `index` (SECCOMP_FILTER_FLAG_LOG is the only
    /// one the kernel keeps; Linux 4.16).
    pub fn seccomp_flags(&self, index: u64) -> Result<u32> {
        // struct seccomp_metadata: filter_off in, flags out.
        let mut md = [index, 0u64];
        raw(PTRACE_SECCOMP_GET_METADATA, self.pid, size_of::<[u64; 2]>(), md.as_mut_ptr() as usize)
            .map_err(task_err("read the flags of a seccomp filter", self.pid))?;
        Ok(md[1] as u32)
    }

    /// Detaches, delivering `sig` (0 for none).
    pub fn detach(mut self, sig: i32) -> Result<()> {
        let r = self.detach_inner(sig);
        self.gone = true;
        r
    }

    fn detach_inner(&mut self, sig: i32) -> Result<()> {
        if self.gone {
            return Ok(());
        }
        if self.stopped.is_none() {
            match self.interrupt_and_wait(Duration::from_secs(5)) {
                Ok(_) => {}
                Err(SysError::TraceeDied(_)) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        let sig = match self.stopped {
            Some(Stop::Signal(s)) if sig == 0 => s,
            _ => sig,
        };
        match raw(libc::PTRACE_DETACH, self.pid, 0, sig as usize) {
            Ok(_) | Err(Errno::ESRCH) => Ok(()),
            Err(e) => Err(SysError::Task { op: "detach", pid: self.pid, errno: e }),
        }
    }

    /// Marks the tracee as gone (it was killed and reaped by the caller).
    pub fn forget(mut self) {
        self.gone = true;
    }
}

impl Drop for Tracee {
    fn drop(&mut self) {
        if !self.gone {
            let _ = self.detach_inner(0);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    Cont,
    Syscall,
    Listen,
}
