//! The restorer trampoline's arguments, shared word for word by the host
//! (src/restore/) and the blob (src/restore/blob/). Plain `#[repr(C)]` data;
//! pointers are absolute addresses inside the blob area, which is mapped at the
//! same place in rckpt and in its clone3 child.

pub const RESTORE_MAGIC: u64 = 0x7263_6b70_7265_7374;

/// Shared (MAP_SHARED) page through which the blob and rckpt talk.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Control {
    /// rckpt sets 1 once it has seized the task (futex word).
    pub go: u32,
    /// Where the task is: one of STEP_*.
    pub step: u32,
    /// 0, or the negative errno of the failed step.
    pub error: i64,
    /// Step specific detail (an address, an fd, an index).
    pub detail: u64,
    /// The rseq registration the child inherited from rckpt's thread, which rckpt
    /// reads with PTRACE_GET_RSEQ_CONFIGURATION before setting `go`.
    pub rseq_addr: u64,
    pub rseq_len: u32,
    pub rseq_sig: u32,
    /// Bytes of page extents the process part has read into place so far, in
    /// extent order (rckpt checks what is placed while the rest is read).
    pub placed: u64,
    /// rckpt sets CHECKED_OK once it has checked the process's long extents in
    /// place (CHECKED_BAD: one is damaged); the process waits for it before
    /// anything else writes into its memory (futex word).
    pub checked: u32,
    pub _pad32: u32,
    pub _pad: [u64; 1],
}

pub const CHECKED_OK: u32 = 1;
pub const CHECKED_BAD: u32 = 2;

pub const CONTROL_SIZE: u64 = core::mem::size_of::<Control>() as u64;

/// The leader of a process whose leader had exited: it exits again once its
/// threads exist.
pub const STEP_LEADER_EXITS: u32 = 18;
pub const STEP_CHILDREN: u32 = 19;
pub const STEP_THREADS: u32 = 20;
pub const STEP_EPOLL: u32 = 21;
pub const STEP_LOCKS: u32 = 22;
pub const STEP_TTY: u32 = 23;
pub const STEP_SECCOMP: u32 = 24;
pub const STEP_START: u32 = 1;
pub const STEP_SESSION: u32 = 17;
pub const STEP_FDS: u32 = 2;
pub const STEP_UNMAP: u32 = 3;
pub const STEP_MAP_VMA: u32 = 4;
pub const STEP_READ_PAGES: u32 = 5;
pub const STEP_CHECK_PAGES: u32 = 6;
pub const STEP_PROTECT_VMA: u32 = 7;
pub const STEP_VDSO: u32 = 8;
pub const STEP_MM_MAP: u32 = 9;
pub const STEP_TASK_STATE: u32 = 10;
pub const STEP_SIGNALS: u32 = 11;
pub const STEP_RLIMITS: u32 = 12;
pub const STEP_CREDS: u32 = 13;
pub const STEP_TIMERS: u32 = 14;
pub const STEP_FRAME: u32 = 15;
pub const STEP_PARKED: u32 = 16;

pub fn step_name(step: u32) -> &'static str {
    match step {
        STEP_START => "start",
        STEP_SESSION => "set session and process group",
        STEP_FDS => "install file descriptors",
        STEP_UNMAP => "unmap rckpt's memory",
        STEP_MAP_VMA => "map a VMA",
        STEP_READ_PAGES => "read pages",
        STEP_CHECK_PAGES => "check page checksums",
        STEP_PROTECT_VMA => "protect a VMA",
        STEP_VDSO => "map the vDSO",
        STEP_MM_MAP => "set mm fields (PR_SET_MM_MAP)",
        STEP_TASK_STATE => "restore task settings",
        STEP_SIGNALS => "restore signals",
        STEP_RLIMITS => "restore rlimits",
        STEP_CREDS => "restore credentials",
        STEP_TIMERS => "restore timers",
        STEP_FRAME => "write the signal frame",
        STEP_PARKED => "parked",
        STEP_LEADER_EXITS => "exit as the saved exited leader",
        STEP_CHILDREN => "create child processes",
        STEP_EPOLL => "register fds with epoll",
        STEP_LOCKS => "take POSIX locks",
        STEP_TTY => "set the controlling terminal",
        STEP_THREADS => "create threads",
        STEP_SECCOMP => "install seccomp filters",
        _ => "unknown step",
    }
}

/// A descriptor the blob keeps: rckpt's `src` moves to `fd_base + index`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct KeepFd {
    pub src: i32,
    pub _pad: i32,
}

/// A descriptor of the restored table: kept fd `keep` is duplicated to `fd`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct InstallFd {
    pub keep: u32,
    pub fd: i32,
    pub cloexec: u32,
    pub _pad: u32,
}

/// An epoll registration the task makes again: `tfd` added to `epfd` (its own fd
/// numbers, installed by then).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct BlobEpoll {
    pub epfd: i32,
    pub tfd: i32,
    pub events: u32,
    pub _pad: u32,
    pub data: u64,
}

/// A POSIX lock the task takes again on its fd `fd` (POSIX locks belong to the
/// process, so only the task can take them).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct BlobLock {
    pub fd: i32,
    pub write: u32,
    pub start: u64,
    /// 0: to the end of the file.
    pub len: u64,
}

/// Make it the controlling terminal (the session leader).
pub const TTY_OP_SCTTY: u32 = 1;
/// Make the task's group the foreground one.
pub const TTY_OP_FOREGROUND: u32 = 2;

pub const MADV_BIT_DONTFORK: u32 = 1 << 0;
pub const MADV_BIT_DONTDUMP: u32 = 1 << 1;
pub const MADV_BIT_HUGEPAGE: u32 = 1 << 2;
pub const MADV_BIT_NOHUGEPAGE: u32 = 1 << 3;
pub const MADV_BIT_MERGEABLE: u32 = 1 << 4;
pub const MADV_BIT_WIPEONFORK: u32 = 1 << 5;
pub const MADV_BIT_RANDOM: u32 = 1 << 6;
pub const MADV_BIT_SEQUENTIAL: u32 = 1 << 7;
pub const MADV_BIT_MLOCK: u32 = 1 << 8;
pub const MADV_BIT_MLOCK_ONFAULT: u32 = 1 << 9;

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct BlobVma {
    pub start: u64,
    pub end: u64,
    /// Final protection.
    pub prot: u32,
    /// mmap flags (MAP_PRIVATE/SHARED, MAP_ANONYMOUS, MAP_GROWSDOWN).
    pub flags: u32,
    /// Index of the kept fd to map from, or -1 for anonymous memory.
    pub keep: i32,
    /// MADV_BIT_*.
    pub madv: u32,
    pub pgoff: u64,
    /// NUL-terminated PR_SET_VMA_ANON_NAME name, or 0.
    pub name: u64,
    /// Whether page extents land in this VMA (it is mapped writable until filled).
    pub has_pages: u32,
    /// Kept as inherited from the parent (which maps it alike, with pages the task
    /// still shares), not mapped afresh.
    pub inherit: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct BlobRange {
    pub start: u64,
    pub len: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct BlobExtent {
    pub start: u64,
    pub len: u64,
    pub file_off: u64,
    pub crc: u32,
    /// EXTENT_* bits.
    pub flags: u32,
}

/// Read from the previous image's pages file (whose extents rckpt checked whole
/// before anything was created): no crc of its own.
pub const EXTENT_PREV: u32 = 1;
/// Checked by rckpt in place, from another thread, while the task reads the
/// rest (see `restore::check`): the task does not compute the crc itself.
pub const EXTENT_RCKPT_CHECKS: u32 = 2;

/// `struct prctl_mm_map`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct PrctlMmMap {
    pub start_code: u64,
    pub end_code: u64,
    pub start_data: u64,
    pub end_data: u64,
    pub start_brk: u64,
    pub brk: u64,
    pub start_stack: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
    pub auxv: u64,
    pub auxv_size: u32,
    pub exe_fd: u32,
}

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
pub struct KRlimit {
    pub cur: u64,
    pub max: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct BlobTimer {
    pub id: i32,
    pub clock: i32,
    /// struct sigevent: value, signo, notify, tid.
    pub sigval: u64,
    pub signo: i32,
    pub notify: i32,
    pub notify_tid: i32,
    pub _pad: i32,
    pub interval_sec: i64,
    pub interval_nsec: i64,
    pub value_sec: i64,
    pub value_nsec: i64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct BlobCreds {
    pub uid: [u32; 4],
    pub gid: [u32; 4],
    pub groups: u64,
    pub nr_groups: u32,
    pub securebits: u32,
    pub cap_inheritable: u64,
    pub cap_permitted: u64,
    pub cap_effective: u64,
    pub cap_bounding: u64,
    pub cap_ambient: u64,
    pub last_cap: u32,
    pub no_new_privs: u32,
    /// setgroups (which needs CAP_SETGID even for the same groups) only when the
    /// groups differ from the inherited ones.
    pub set_groups: u32,
    /// Keep capabilities across the id change with SECURE_NO_SETUID_FIXUP
    /// (which needs CAP_SETPCAP): only when rckpt holds it.
    pub setuid_fixup: u32,
}

/// A seccomp filter to install: `len` `struct sock_filter`s at `insns`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct BlobFilter {
    pub insns: u64,
    pub len: u32,
    /// SECCOMP_FILTER_FLAG_*.
    pub flags: u32,
}

/// A pending signal to queue to the task (shared) or to a thread.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct BlobSiginfo {
    pub shared: u32,
    pub signo: i32,
    pub info: [u8; 128],
}

/// Per-thread state, set by each thread itself.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct BlobThread {
    pub tid: i32,
    /// PR_SET_PDEATHSIG value, or -1 to leave it.
    pub pdeath_signal: i32,
    /// Address of this thread's Control in the shared control array.
    pub ctl: u64,
    /// PR_SET_DUMPABLE value (per mm, but reset by every credential change).
    pub dumpable: i32,
    pub _pad1: i32,
    /// Top of this thread's stack in the blob area (threads other than the one
    /// running the process part).
    pub stack_top: u64,
    /// Its pending signals: `nr_siginfo` BlobSiginfo at `siginfo`.
    pub nr_siginfo: u64,
    pub siginfo: u64,
    /// Address where the prepared rt_sigframe goes, and its bytes in the blob area.
    pub frame_addr: u64,
    pub frame_src: u64,
    pub frame_len: u64,
    pub comm: [u8; 16],
    pub rseq_addr: u64,
    pub rseq_len: u32,
    pub rseq_sig: u32,
    pub robust_head: u64,
    pub robust_len: u64,
    pub tid_address: u64,
    pub nice: i32,
    pub nr_affinity: u32,
    pub affinity: [u64; 16],
    pub timer_slack_ns: u64,
    pub creds: BlobCreds,
    /// The thread's own seccomp filters, oldest first: those it does not share
    /// with every thread of its process (see RestoreArgs::seccomp).
    pub nr_seccomp: u64,
    pub seccomp: u64,
}

/// A helper task with the pid of a session or group leader that is gone: it
/// takes the session (setsid) or the group (setpgid), creates the root inside
/// it and exits, as the leader once did.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct HelperArgs {
    pub magic: u64,
    /// 1: setsid(); 2: setpgid(0, 0).
    pub session: u32,
    pub root_pid: i32,
    pub root_args: u64,
    pub stack_top: u64,
    /// Its Control (for failures).
    pub ctl: u64,
}

pub const CHILD_PROCESS: u32 = 1;
pub const CHILD_ZOMBIE: u32 = 2;
/// `args` is a HelperArgs: the helper creates the real child and exits.
pub const CHILD_HELPER: u32 = 3;

/// A child the task creates with clone3 (set_tid = `pid`) once its own memory is
/// in place, so that the child inherits it.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct BlobChild {
    pub kind: u32,
    pub pid: i32,
    /// CHILD_PROCESS: its RestoreArgs.
    pub args: u64,
    /// CHILD_ZOMBIE: the wait(2) status it must leave.
    pub status: i32,
    pub sid: i32,
    pub pgid: i32,
    /// The parent sets the child's group right after creating it (a new group
    /// that later siblings join), instead of leaving it to the child.
    pub parent_sets_pgid: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct RestoreArgs {
    pub magic: u64,
    /// Whether this task waits for rckpt's go (the root only).
    pub wait_go: u32,
    pub leader_exited: u32,
    /// The parent the root checks for while it waits for rckpt's go (rckpt, or
    /// the helper that created it).
    pub parent_pid: i32,
    pub pid: i32,
    /// What to unmap first: everything but the blob area and inherited VMAs.
    pub nr_unmap: u64,
    pub unmap: u64,
    /// Pages of inherited VMAs the task did not have: MADV_DONTNEED.
    pub nr_discard: u64,
    pub discard: u64,

    /// 1: setsid() (the task led its session); 2: setpgid(0, pgid); 0: keep the
    /// inherited ones.
    pub session: u32,
    pub pgid: i32,
    /// Close the fds below fd_base inherited from the parent (not for the root,
    /// whose low fds are rckpt's and are closed with the rest).
    pub close_inherited: u32,
    pub _pad2: u32,
    pub fd_base: i32,
    pub nr_keep: u32,
    pub keep: u64,
    pub nr_install: u64,
    pub install: u64,
    pub nr_epoll: u64,
    pub epoll: u64,
    pub nr_locks: u64,
    pub locks: u64,
    /// TTY_OP_*: what to do with kept fd `tty_keep`, the controlling terminal.
    pub tty_op: u32,
    pub tty_keep: i32,
    /// Kept fds (-1 when absent).
    pub pages_keep: i32,
    pub exe_keep: i32,
    pub cwd_keep: i32,
    /// The pages file of the pre-dump this image builds on (-1: none).
    pub prev_pages_keep: i32,

    pub nr_vmas: u64,
    pub vmas: u64,
    pub nr_extents: u64,
    pub extents: u64,
    /// Start of the saved [vvar] block for ARCH_MAP_VDSO_64, or 0.
    pub vdso_at: u64,
    pub mm_map: PrctlMmMap,

    pub personality: u32,
    pub umask: u32,
    pub mdwe: u32,
    pub child_subreaper: u32,
    pub thp_disable: u32,
    pub _pad1: u32,
    pub rlimits: [KRlimit; 16],
    pub sigactions: [KSigAction; 64],
    /// Shared pending signals.
    pub nr_siginfo: u64,
    pub siginfo: u64,
    pub itimers: [[i64; 4]; 3],
    pub nr_timers: u64,
    pub timers: u64,

    pub nr_children: u64,
    pub children: u64,
    /// The threads, the one running this (the leader's tid) first.
    pub nr_threads: u64,
    pub threads: u64,
    /// The seccomp filters every thread of the process shares, oldest first:
    /// installed once before the threads are created, so they inherit them as
    /// the same filters (which a later SECCOMP_FILTER_FLAG_TSYNC requires).
    pub nr_seccomp: u64,
    pub seccomp: u64,
}
