//! The host side of the parasite: infect a stopped task, ask it questions, cure it.
//!
//! Lifecycle (after compel): the task is seized and stopped; [`Infected::infect`]
//! blocks every signal, maps an area with two remote syscalls on the vDSO's
//! `syscall` instruction, writes the blob and a signal frame of the original
//! context into it, and starts it; the parasite connects back over an abstract
//! unix socket. [`Infected::cure`] stops the task, closes the parasite's socket and
//! unmaps the area remotely, and puts back the original registers, xstate and
//! mask while the task sits in a ptrace stop inside get_signal, so the kernel's
//! own syscall-restart logic runs on them as if nothing had happened. Dropping an
//! `Infected` cures it too.

pub mod abi;

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, Backlog, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr};
use rckpt_images::core::{AltStack, GpRegs};

use crate::arch::{self, sigframe};
use crate::sys::pod::{self, Pod};
use crate::sys::ptrace::{Resume, Stop, Tracee};
use crate::sys::{self, Pid, RemoteAddr, SysError, mem::ProcMem, remote};
use abi::*;

const STACK_SIZE: u64 = 64 * 1024;
/// Stack of the per-thread routine (a handful of syscalls, no calls deep).
const THREAD_STACK_SIZE: u64 = 16 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ParasiteError {
    #[error(transparent)]
    Sys(#[from] SysError),
    #[error("task {pid}: remote {what} failed: {errno}")]
    Remote { pid: Pid, what: &'static str, errno: Errno },
    #[error("task {pid}: the parasite did not connect within {0:?}", CONNECT_TIMEOUT)]
    NoConnect { pid: Pid },
    #[error("task {pid}: the parasite stopped unexpectedly ({stop}) at {ip:#x}")]
    Crashed { pid: Pid, stop: String, ip: u64 },
    #[error("task {pid}: parasite protocol error: {0}", .what)]
    Protocol { pid: Pid, what: String },
    #[error("task {pid}: parasite command {cmd} failed: {errno}")]
    Command { pid: Pid, cmd: u32, errno: Errno },
    #[error("failed to {op} for the parasite: {errno}")]
    Socket { op: &'static str, errno: Errno },
}

pub type Result<T> = std::result::Result<T, ParasiteError>;

/// What the task was doing when rckpt stopped it: put back by the cure.
#[derive(Clone)]
pub struct OrigState {
    pub regs: libc::user_regs_struct,
    pub xstate: Vec<u8>,
    pub sigmask: u64,
}

/// A task with the parasite running in it.
pub struct Infected<'t> {
    tracee: &'t mut Tracee,
    pid: Pid,
    insn: RemoteAddr,
    orig: OrigState,
    base: RemoteAddr,
    len: u64,
    conn: Option<OwnedFd>,
    remote_sock: i32,
    /// The pipe the parasite holds for CMD_DRAIN, if any.
    remote_pipes: [i32; 2],
    /// Address of the slot (args, frame, stack) where other threads run.
    thread_slot: u64,
    /// Job-control stop signals that arrived while the parasite ran: re-sent after cure.
    pub deferred_signals: Vec<i32>,
    done: bool,
}

/// Finds a `syscall` instruction (0f 05) in a code image (the vDSO).
pub fn find_syscall_insn(code: &[u8]) -> Option<usize> {
    code.windows(2).position(|w| w == [0x0f, 0x05])
}

fn remote_check(pid: Pid, what: &'static str, r: i64) -> Result<u64> {
    if (-4095..0).contains(&r) {
        Err(ParasiteError::Remote { pid, what, errno: Errno::from_raw(-r as i32) })
    } else {
        Ok(r as u64)
    }
}

impl<'t> Infected<'t> {
    /// Infects the stopped `tracee`. `insn` is a `syscall` instruction in its
    /// vDSO; `orig` its state as first stopped.
    pub fn infect(tracee: &'t mut Tracee, insn: RemoteAddr, orig: OrigState) -> Result<Infected<'t>> {
        let pid = tracee.pid();
        let blob = crate::blob::parasite();
        let args_off = blob.size() + STACK_SIZE;
        let frame_len = sigframe::frame_size(orig.xstate.len()) + 64;
        let args_len = sys::page_align_up(std::mem::size_of::<ParasiteArgs>() as u64 + frame_len);
        // One slot for the other threads, which run their routine one at a time.
        let thread_off = args_off + args_len;
        let thread_len = sys::page_align_up(std::mem::size_of::<ThreadArgs>() as u64 + frame_len) + THREAD_STACK_SIZE;
        let len = thread_off + thread_len;

        // The listener first, so nothing is left in the task if it fails.
        let listener = socket::socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::SOCK_CLOEXEC, None)
            .map_err(|errno| ParasiteError::Socket { op: "create socket", errno })?;
        let name = format!("rckpt-{}-{}-{:x}", std::process::id(), pid, nonce());
        let addr = UnixAddr::new_abstract(name.as_bytes())
            .map_err(|errno| ParasiteError::Socket { op: "name socket", errno })?;
        socket::bind(listener.as_raw_fd(), &addr)
            .map_err(|errno| ParasiteError::Socket { op: "bind socket", errno })?;
        socket::listen(&listener, Backlog::new(1).unwrap())
            .map_err(|errno| ParasiteError::Socket { op: "listen", errno })?;

        // Nothing may interrupt the parasite: PTRACE_SETSIGMASK blocks all but
        // SIGKILL and SIGSTOP (which the kernel never lets a task block).
        tracee.set_sigmask(u64::MAX)?;
        let mut me = Infected {
            tracee,
            pid,
            insn,
            orig,
            base: RemoteAddr(0),
            len: 0,
            conn: None,
            remote_sock: -1,
            remote_pipes: [-1, -1],
            thread_slot: 0,
            deferred_signals: Vec::new(),
            done: false,
        };
        let r = me.syscall(
            libc::SYS_mmap,
            [
                0,
                len,
                (libc::PROT_READ | libc::PROT_EXEC) as u64,
                (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64,
                u64::MAX,
                0,
            ],
        )?;
        me.base = RemoteAddr(remote_check(pid, "mmap", r)?);
        me.len = len;
        me.thread_slot = me.base.get() + thread_off;
        let rw_off = blob.exec_end();
        let r = me.syscall(
            libc::SYS_mprotect,
            [me.base.get() + rw_off, len - rw_off, (libc::PROT_READ | libc::PROT_WRITE) as u64, 0, 0, 0],
        )?;
        remote_check(pid, "mprotect", r)?;

        // The blob, its args and the frame of the original context. Written
        // through /proc/PID/mem (FOLL_FORCE writes the read-only code pages too).
        let mem = ProcMem::open(pid, true)?;
        mem.write_all(me.base, &blob.relocated(me.base.get()))?;
        let args_addr = me.base.get() + args_off;
        let area = args_addr + std::mem::size_of::<ParasiteArgs>() as u64;
        let (frame_addr, fp_addr) = sigframe::place_in(area);
        let mut cure_regs: GpRegs = arch::from_user(&me.orig.regs);
        arch::apply_restart(&mut cure_regs, true);
        // The altstack is filled in by the parasite (only the task can read it).
        let frame =
            sigframe::build(frame_addr, fp_addr, &cure_regs, &me.orig.xstate, me.orig.sigmask, &AltStack::default());
        mem.write_all(RemoteAddr(frame_addr), &frame.bytes)?;
        let mut pargs =
            ParasiteArgs { magic: PARASITE_MAGIC, sigframe: frame_addr, sock_len: 0, _pad: 0, sock_addr: [0; 112] };
        let raw = addr.as_ref();
        let sa_len = raw.sun_path.len().min(112 - 2);
        pargs.sock_addr[0..2].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
        // An abstract name: sun_path[0] == 0, then the name (no terminator).
        for (i, c) in raw.sun_path[..sa_len].iter().enumerate() {
            pargs.sock_addr[2 + i] = *c as u8;
        }
        pargs.sock_len = (2 + 1 + name.len()) as u32;
        mem.write_all(RemoteAddr(args_addr), pod::bytes_of(&pargs))?;

        let mut regs = me.orig.regs;
        regs.rip = me.base.get() + blob.entry();
        regs.rsp = me.base.get() + args_off; // top of the stack, which ends where the args begin
        regs.rdi = args_addr;
        regs.orig_rax = u64::MAX;
        regs.rax = 0;
        regs.eflags &= !arch::EFLAGS_INJECT_CLEAR;
        me.tracee.set_regs(&regs)?;
        me.tracee.resume(Resume::Cont, 0)?;

        let conn = me.accept(&listener)?;
        me.conn = Some(conn);
        let hello: Hello = me.recv_msg(0)?.0;
        if hello.magic != PARASITE_MAGIC {
            return Err(ParasiteError::Protocol { pid, what: "bad hello".into() });
        }
        me.remote_sock = hello.sock_fd;
        Ok(me)
    }

    pub fn pid(&self) -> Pid {
        self.pid
    }

    fn syscall(&mut self, nr: i64, args: [u64; 6]) -> Result<i64> {
        let base = self.orig.regs;
        self.syscall_from(&base, nr, args)
    }

    fn syscall_from(&mut self, base: &libc::user_regs_struct, nr: i64, args: [u64; 6]) -> Result<i64> {
        let mut sigs = Vec::new();
        let r = remote::syscall(self.tracee, self.insn, base, nr, args, &mut sigs);
        self.deferred_signals.extend(sigs.into_iter().filter(|s| is_stop_signal(*s)));
        Ok(r?)
    }

    /// Checks on the task while waiting for the parasite: a stop signal is
    /// deferred, anything else means the parasite crashed.
    fn poll_task(&mut self) -> Result<()> {
        let Some(status) = sys::wait::try_wait_pid(self.pid)? else {
            return Ok(());
        };
        match Stop::from_status(status) {
            Stop::Signal(sig @ (libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU)) => {
                self.deferred_signals.push(sig);
                self.tracee.resume(Resume::Cont, 0)?;
                Ok(())
            }
            Stop::Interrupt | Stop::GroupStop(_) => {
                self.tracee.resume(Resume::Cont, 0)?;
                Ok(())
            }
            stop if stop.is_gone() => {
                self.tracee.forget_now();
                Err(SysError::TraceeDied(self.pid).into())
            }
            stop => {
                self.tracee.note_stopped(stop);
                let ip = self.tracee.regs().map(|r| r.rip).unwrap_or(0);
                Err(ParasiteError::Crashed { pid: self.pid, stop: stop.to_string(), ip })
            }
        }
    }

    fn wait_readable(&mut self, fd: i32, timeout: Duration, what: &'static str) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if sys::poll_readable(fd, 20).map_err(|errno| ParasiteError::Socket { op: "poll", errno })? {
                return Ok(());
            }
            self.poll_task()?;
            if Instant::now() >= deadline {
                return Err(SysError::Timeout { what, pid: self.pid, secs: timeout.as_secs_f64() }.into());
            }
        }
    }

    fn accept(&mut self, listener: &OwnedFd) -> Result<OwnedFd> {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        loop {
            match self.wait_readable(
                listener.as_raw_fd(),
                deadline.saturating_duration_since(Instant::now()),
                "parasite connection",
            ) {
                Ok(()) => break,
                Err(ParasiteError::Sys(SysError::Timeout { .. })) => {
                    return Err(ParasiteError::NoConnect { pid: self.pid });
                }
                Err(e) => return Err(e),
            }
        }
        let fd = socket::accept4(listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC)
            .map_err(|errno| ParasiteError::Socket { op: "accept", errno })?;
        Ok(sys::owned_fd(fd))
    }

    fn send_msg(&mut self, bytes: &[u8], fd: Option<i32>) -> Result<()> {
        let conn = self.conn.as_ref().expect("connected").as_raw_fd();
        let iov = [std::io::IoSlice::new(bytes)];
        let fds = fd.map(|f| [f]);
        let cmsgs: Vec<ControlMessage> = fds.as_ref().map(|f| vec![ControlMessage::ScmRights(f)]).unwrap_or_default();
        socket::sendmsg::<()>(conn, &iov, &cmsgs, MsgFlags::MSG_NOSIGNAL, None)
            .map_err(|errno| ParasiteError::Socket { op: "send to the parasite", errno })?;
        Ok(())
    }

    /// Receives one message; returns its header-bearing prefix as T and the bytes.
    fn recv_msg<T: Pod>(&mut self, cmd: u32) -> Result<(T, Vec<u8>)> {
        let conn = self.conn.as_ref().expect("connected").as_raw_fd();
        self.wait_readable(conn, REPLY_TIMEOUT, "parasite reply")?;
        let mut buf = vec![0u8; MSG_MAX];
        let n = socket::recv(conn, &mut buf, MsgFlags::empty())
            .map_err(|errno| ParasiteError::Socket { op: "receive from the parasite", errno })?;
        buf.truncate(n);
        let hdr: MsgHeader = pod::read(&buf)
            .ok_or_else(|| ParasiteError::Protocol { pid: self.pid, what: format!("short reply of {n} bytes") })?;
        if hdr.cmd != cmd {
            return Err(ParasiteError::Protocol {
                pid: self.pid,
                what: format!("reply to command {} instead of {cmd}", hdr.cmd),
            });
        }
        if hdr.status < 0 {
            return Err(ParasiteError::Command { pid: self.pid, cmd, errno: Errno::from_raw(-hdr.status as i32) });
        }
        let v = pod::read::<T>(&buf).ok_or_else(|| ParasiteError::Protocol {
            pid: self.pid,
            what: format!("reply of {n} bytes to command {cmd}"),
        })?;
        Ok((v, buf))
    }

    fn request(&mut self, cmd: u32, nr: u32, payload: &[u8], fd: Option<i32>) -> Result<()> {
        let hdr = MsgHeader { cmd, nr, status: 0, arg: 0 };
        let mut msg = pod::bytes_of(&hdr).to_vec();
        msg.extend_from_slice(payload);
        self.send_msg(&msg, fd)
    }

    pub fn misc(&mut self) -> Result<MiscReply> {
        self.request(CMD_MISC, 0, &[], None)?;
        Ok(self.recv_msg::<MiscReply>(CMD_MISC)?.0)
    }

    pub fn timers(&mut self, ids: &[i32]) -> Result<Vec<TimerState>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(TIMERS_MAX) {
            self.request(CMD_TIMERS, chunk.len() as u32, pod::slice_bytes(chunk), None)?;
            let (hdr, buf): (MsgHeader, _) = self.recv_msg(CMD_TIMERS)?;
            let sz = std::mem::size_of::<TimerState>();
            if hdr.nr as usize != chunk.len() || buf.len() < std::mem::size_of::<MsgHeader>() + chunk.len() * sz {
                return Err(ParasiteError::Protocol { pid: self.pid, what: "short timers reply".into() });
            }
            for i in 0..hdr.nr as usize {
                let off = std::mem::size_of::<MsgHeader>() + i * sz;
                out.push(
                    pod::read(&buf[off..])
                        .ok_or_else(|| ParasiteError::Protocol { pid: self.pid, what: "short timers reply".into() })?,
                );
            }
        }
        Ok(out)
    }

    /// Runs the per-thread routine in `t`, another stopped thread of this process,
    /// and puts `t` back exactly as `orig` (at an interrupt stop, so the kernel
    /// restarts an interrupted syscall as it would have).
    pub fn thread_info(&mut self, t: &mut Tracee, orig: &OrigState) -> Result<ThreadReply> {
        let tid = t.pid();
        let blob = crate::blob::parasite();
        let entry = blob
            .symbol("thread_start")
            .ok_or_else(|| ParasiteError::Protocol { pid: tid, what: "the parasite has no thread entry".into() })?;
        t.set_sigmask(u64::MAX)?;
        let args_addr = self.thread_slot;
        let (frame_addr, fp_addr) = sigframe::place_in(args_addr + std::mem::size_of::<ThreadArgs>() as u64);
        let mut cure_regs: GpRegs = arch::from_user(&orig.regs);
        arch::apply_restart(&mut cure_regs, true);
        let frame = sigframe::build(frame_addr, fp_addr, &cure_regs, &orig.xstate, orig.sigmask, &AltStack::default());
        let mem = ProcMem::open(self.pid, true)?;
        mem.write_all(RemoteAddr(frame_addr), &frame.bytes)?;
        mem.write_all(RemoteAddr(args_addr), pod::bytes_of(&ThreadArgs { sigframe: frame_addr }))?;
        let mut regs = orig.regs;
        regs.rip = self.base.get() + entry;
        regs.rsp = self.base.get() + self.len;
        regs.rdi = args_addr;
        regs.orig_rax = u64::MAX;
        regs.rax = 0;
        regs.eflags &= !arch::EFLAGS_INJECT_CLEAR;
        t.set_regs(&regs)?;
        t.resume(Resume::Cont, 0)?;
        let reply = self.recv_thread_reply(t);
        // Back into a stop inside get_signal, then the original state.
        let mut stopped = false;
        if t.stop_state().is_none() {
            t.interrupt()?;
            loop {
                match t.wait(Duration::from_secs(10), "thread routine stop")? {
                    Stop::Interrupt | Stop::GroupStop(_) => break,
                    Stop::Signal(s) => {
                        self.deferred_signals.push(s);
                        t.resume(Resume::Cont, 0)?;
                    }
                    Stop::Syscall | Stop::Event(_) => t.resume(Resume::Cont, 0)?,
                    s => {
                        return Err(SysError::UnexpectedStop {
                            pid: tid,
                            what: "thread routine stop",
                            stop: s.to_string(),
                        }
                        .into());
                    }
                }
            }
            stopped = true;
        }
        if stopped {
            t.set_regs(&orig.regs)?;
            t.set_xstate(&orig.xstate)?;
            t.set_sigmask(orig.sigmask)?;
        }
        let reply = reply?;
        if reply.tid != tid.as_raw() {
            return Err(ParasiteError::Protocol {
                pid: tid,
                what: format!("thread reply from {} instead of {tid}", reply.tid),
            });
        }
        Ok(reply)
    }

    fn recv_thread_reply(&mut self, t: &mut Tracee) -> Result<ThreadReply> {
        let conn = self.conn.as_ref().expect("connected").as_raw_fd();
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            if sys::poll_readable(conn, 20).map_err(|errno| ParasiteError::Socket { op: "poll", errno })? {
                break;
            }
            if let Some(status) = sys::wait::try_wait_pid(t.pid())? {
                let stop = Stop::from_status(status);
                t.note_stopped(stop);
                let ip = t.regs().map(|r| r.rip).unwrap_or(0);
                return Err(ParasiteError::Crashed { pid: t.pid(), stop: stop.to_string(), ip });
            }
            self.poll_task()?;
            if Instant::now() >= deadline {
                return Err(SysError::Timeout {
                    what: "thread routine",
                    pid: t.pid(),
                    secs: REPLY_TIMEOUT.as_secs_f64(),
                }
                .into());
            }
        }
        Ok(self.recv_msg::<ThreadReply>(CMD_THREAD)?.0)
    }

    /// Gives the parasite the write end of a pipe for [`Infected::drain`].
    /// userfaultfd(flags) made in the task: its fd number there.
    pub fn userfaultfd(&mut self, flags: u64) -> Result<i32> {
        let hdr = MsgHeader { cmd: CMD_UFFD, nr: 0, status: 0, arg: flags };
        self.send_msg(pod::bytes_of(&hdr), None)?;
        Ok(self.recv_msg::<MsgHeader>(CMD_UFFD)?.0.arg as i32)
    }

    /// close(fd) in the task.
    pub fn close_remote(&mut self, fd: i32) -> Result<()> {
        let hdr = MsgHeader { cmd: CMD_CLOSE, nr: 0, status: 0, arg: fd as u64 };
        self.send_msg(pod::bytes_of(&hdr), None)?;
        self.recv_msg::<MsgHeader>(CMD_CLOSE)?;
        Ok(())
    }

    /// Hands the parasite the write ends of its two pipes, in one message.
    pub fn set_pipes(&mut self, write_ends: [&OwnedFd; 2]) -> Result<()> {
        let conn = self.conn.as_ref().expect("connected").as_raw_fd();
        let hdr = MsgHeader { cmd: CMD_PIPE, nr: 0, status: 0, arg: 0 };
        let fds = [write_ends[0].as_raw_fd(), write_ends[1].as_raw_fd()];
        let iov = [std::io::IoSlice::new(pod::bytes_of(&hdr))];
        socket::sendmsg::<()>(conn, &iov, &[ControlMessage::ScmRights(&fds)], MsgFlags::MSG_NOSIGNAL, None)
            .map_err(|errno| ParasiteError::Socket { op: "send to the parasite", errno })?;
        let (hdr, _): (MsgHeader, _) = self.recv_msg(CMD_PIPE)?;
        self.remote_pipes = [hdr.arg as u32 as i32, (hdr.arg >> 32) as u32 as i32];
        Ok(())
    }

    /// Asks the parasite to vmsplice `ranges` into the pipe of `slot` (their
    /// total must fit in it); `drain_reply` collects the answer, so rckpt can
    /// empty the other pipe meanwhile.
    pub fn drain_request(&mut self, slot: usize, ranges: &[DrainRange]) -> Result<()> {
        assert!(ranges.len() <= DRAIN_MAX_RANGES);
        let hdr = MsgHeader { cmd: CMD_DRAIN, nr: ranges.len() as u32, status: 0, arg: slot as u64 & 1 };
        let mut msg = pod::bytes_of(&hdr).to_vec();
        msg.extend_from_slice(pod::slice_bytes(ranges));
        self.send_msg(&msg, None)
    }

    /// The reply to the oldest drain request: each range's crc32c appended to
    /// its `crc`.
    pub fn drain_reply(&mut self, ranges: &[DrainRange]) -> Result<Vec<u32>> {
        let (hdr, buf): (MsgHeader, _) = self.recv_msg(CMD_DRAIN)?;
        let off = std::mem::size_of::<MsgHeader>();
        if hdr.nr as usize != ranges.len() || buf.len() < off + ranges.len() * 4 {
            return Err(ParasiteError::Protocol { pid: self.pid, what: "short drain reply".into() });
        }
        Ok((0..ranges.len())
            .map(|i| u32::from_le_bytes(buf[off + i * 4..off + i * 4 + 4].try_into().unwrap()))
            .collect())
    }

    /// Takes the parasite out and puts the original state back. The task is left
    /// in an interrupt stop, ready to be detached or killed.
    pub fn cure(mut self) -> Result<Vec<i32>> {
        self.cure_inner()?;
        Ok(std::mem::take(&mut self.deferred_signals))
    }

    /// Interrupts the task (if running) and waits for its interrupt stop,
    /// keeping job-control stop signals for later and dropping anything else (all
    /// but SIGKILL and SIGSTOP are blocked while the parasite runs: what else
    /// stops it is a fault of the parasite's own making).
    fn stop_task(&mut self, what: &'static str) -> Result<()> {
        if self.tracee.stop_state().is_none() {
            self.tracee.interrupt()?;
        }
        loop {
            let stop = match self.tracee.stop_state() {
                Some(Stop::Interrupt | Stop::GroupStop(_)) => return Ok(()),
                Some(s) => s,
                None => self.tracee.wait(Duration::from_secs(10), what)?,
            };
            match stop {
                Stop::Interrupt | Stop::GroupStop(_) => return Ok(()),
                Stop::Signal(s) => {
                    if is_stop_signal(s) {
                        self.deferred_signals.push(s);
                    }
                    self.tracee.resume(Resume::Cont, 0)?;
                }
                Stop::Syscall | Stop::Event(_) => self.tracee.resume(Resume::Cont, 0)?,
                s => return Err(SysError::UnexpectedStop { pid: self.pid, what, stop: s.to_string() }.into()),
            }
        }
    }

    /// Every step is attempted even when one fails (a task must not be left with
    /// the parasite's registers); the first error is returned.
    fn cure_inner(&mut self) -> Result<()> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        // Stop the task first (it is in the parasite, idle or mid-command): were our
        // end of the socket closed while it runs, the parasite would see EOF and
        // return to the original context by itself.
        self.stop_task("parasite stop")?;
        self.conn = None;
        let cur = self.tracee.regs()?;
        // Where is it? The parasite may have cured itself already (it lost its
        // socket): then the task runs its own code with its own state, which must
        // be left alone; only the area it could not unmap is taken away.
        let in_area = cur.rip >= self.base.get() && cur.rip < self.base.get() + self.len.max(1);
        let at_insn = cur.rip == self.insn.get() || cur.rip == self.insn.get() + 2;
        let self_cured = self.len > 0 && !in_area && !at_insn;
        let mut first: Option<ParasiteError> = None;
        let mut note = |r: Result<()>| {
            if let Err(e) = r
                && first.is_none()
            {
                first = Some(e);
            }
        };
        if !self_cured {
            for fd in [
                std::mem::replace(&mut self.remote_pipes[0], -1),
                std::mem::replace(&mut self.remote_pipes[1], -1),
                std::mem::replace(&mut self.remote_sock, -1),
            ] {
                if fd >= 0 {
                    let r = self.syscall_from(&cur, libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0]);
                    note(r.and_then(|r| remote_check(self.pid, "close", r).map(|_| ())));
                }
            }
        }
        if self.len > 0 {
            let r = self.syscall_from(&cur, libc::SYS_munmap, [self.base.get(), self.len, 0, 0, 0, 0]);
            note(r.and_then(|r| remote_check(self.pid, "munmap", r).map(|_| ())));
            self.len = 0;
        }
        // Back into a stop inside get_signal, so that the kernel applies its
        // syscall-restart rules to the restored registers when the task resumes.
        let back = (|| -> Result<()> {
            self.tracee.interrupt()?;
            self.tracee.resume(Resume::Cont, 0)?;
            self.stop_task("interrupt after cure")
        })();
        note(back);
        let restore = (|| -> Result<()> {
            if self_cured {
                self.tracee.set_regs(&cur)?;
            } else {
                self.tracee.set_regs(&self.orig.regs)?;
                self.tracee.set_xstate(&self.orig.xstate)?;
                self.tracee.set_sigmask(self.orig.sigmask)?;
            }
            Ok(())
        })();
        note(restore);
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn is_stop_signal(s: i32) -> bool {
    matches!(s, libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU)
}

impl Drop for Infected<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.cure_inner();
        }
    }
}

fn nonce() -> u64 {
    let t =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    t ^ ((std::process::id() as u64) << 32)
}
