//! The parasite's protocol, shared word for word by the host (src/parasite/) and
//! the blob (src/parasite/blob/). Everything is `#[repr(C)]` plain data.
//!
//! rckpt writes [`ParasiteArgs`] into the parasite's area and starts it at its
//! entry with rdi pointing there. The parasite connects to rckpt's abstract unix
//! socket (SOCK_SEQPACKET) and serves one request per message. If the socket
//! closes, the parasite returns to the task's original context by itself with
//! rt_sigreturn on the frame rckpt prepared, so a killed rckpt leaves a running
//! task.

pub const PARASITE_MAGIC: u64 = 0x7263_6b70_7061_7261;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct ParasiteArgs {
    pub magic: u64,
    /// Address of the rt_sigframe of the original context (pretcode slot).
    pub sigframe: u64,
    pub sock_len: u32,
    pub _pad: u32,
    /// struct sockaddr_un of rckpt's listening socket.
    pub sock_addr: [u8; 112],
}

pub const CMD_MISC: u32 = 1;
pub const CMD_TIMERS: u32 = 2;
/// Carries the write end of a pipe (SCM_RIGHTS) for CMD_DRAIN.
pub const CMD_PIPE: u32 = 3;
pub const CMD_DRAIN: u32 = 4;
/// Sent by a thread running [`ThreadArgs`]'s routine (unsolicited, once).
pub const CMD_THREAD: u32 = 5;
/// userfaultfd(arg) in the task (a pre-dump's write tracker); the reply's arg is
/// its fd there.
pub const CMD_UFFD: u32 = 6;
/// close(arg) in the task.
pub const CMD_CLOSE: u32 = 7;

/// What rckpt writes for one more thread of the process, which it then starts at
/// the parasite's `thread_start` with rdi pointing here. The thread reports in a
/// [`ThreadReply`] over the daemon's socket, then sleeps until rckpt interrupts
/// it; if rckpt never does, it returns to its original context by itself.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct ThreadArgs {
    /// The rt_sigframe of this thread's original context.
    pub sigframe: u64,
}

/// Per-thread state only the thread itself can report.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct ThreadReply {
    pub hdr: MsgHeader,
    pub tid: i32,
    pub pdeath_signal: i32,
    pub altstack: KStack,
    pub tid_address: u64,
    pub timer_slack_ns: u64,
    pub securebits: i32,
    pub _pad: i32,
}

/// Every message (both ways) starts with this.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct MsgHeader {
    pub cmd: u32,
    /// Number of entries that follow (command specific).
    pub nr: u32,
    /// 0 or a negative errno (replies).
    pub status: i64,
    /// Command specific (e.g. index of the failing entry).
    pub arg: u64,
}

/// The first message from the parasite.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Hello {
    pub hdr: MsgHeader,
    pub magic: u64,
    pub sock_fd: i32,
    pub tid: i32,
}

/// Kernel `struct sigaction` of x86_64.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct KSigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct KStack {
    pub sp: u64,
    pub flags: i32,
    pub _pad: i32,
    pub size: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct KTimeval {
    pub sec: i64,
    pub usec: i64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct KItimerval {
    pub interval: KTimeval,
    pub value: KTimeval,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct KTimespec {
    pub sec: i64,
    pub nsec: i64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct KItimerspec {
    pub interval: KTimespec,
    pub value: KTimespec,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct KRlimit {
    pub cur: u64,
    pub max: u64,
}

/// Reply to CMD_MISC: what only the task itself can report.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MiscReply {
    pub hdr: MsgHeader,
    pub sigactions: [KSigAction; 64],
    pub altstack: KStack,
    pub itimers: [KItimerval; 3],
    pub brk: u64,
    pub tid_address: u64,
    pub pdeath_signal: i32,
    pub child_subreaper: i32,
    pub dumpable: i32,
    pub thp_disable: i32,
    pub mdwe: i32,
    pub securebits: i32,
    pub timer_slack_ns: u64,
    pub rlimits: [KRlimit; 16],
}

/// One POSIX timer in a CMD_TIMERS reply (the request carries `nr` i32 ids).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct TimerState {
    pub id: i32,
    pub overrun: i32,
    pub spec: KItimerspec,
}

/// One range of a CMD_DRAIN request: vmsplice'd into the pipe, and the crc32c of
/// its bytes appended to `crc` (the reply carries `nr` u32 results).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct DrainRange {
    pub addr: u64,
    pub len: u64,
    pub crc: u32,
    pub _pad: u32,
}

/// The largest message either side sends.
pub const MSG_MAX: usize = 64 * 1024;
pub const DRAIN_MAX_RANGES: usize = (MSG_MAX - core::mem::size_of::<MsgHeader>()) / core::mem::size_of::<DrainRange>();
pub const TIMERS_MAX: usize = (MSG_MAX - core::mem::size_of::<MsgHeader>()) / core::mem::size_of::<TimerState>();
