//! Creating the tree: the trampoline's area mapped in rckpt at a place free in
//! every saved layout and in rckpt's own, the arguments of every task written
//! there, clone3 of the root with its saved pid into it, the root seized
//! (PTRACE_O_EXITKILL, and every task it creates traced the same way) before it
//! may go on; then every thread parked, checked, stripped of the trampoline,
//! taken through its final rt_sigreturn, and released in saved order.

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use rckpt_images::ImageSet;
use rckpt_images::core::GpRegs;
use rckpt_images::mm::{MmImage, vmflags};
use rckpt_images::pstree::TaskState as Saved;
use rckpt_images::seccomp::SeccompFilter;

use super::abi::*;
use super::files::{self, FdSetup};
use super::read::PrevSet;
use super::validate::Own;
use super::{Outcome, RestoreError, RestoreOptions, Result, check, mm};
use crate::arch::{self, sigframe};
use crate::fault;
use crate::sys::blobmap::LocalMapping;
use crate::sys::clone::{BlobEntry, clone3_into_blob};
use crate::sys::pod::{self, Pod};
use crate::sys::ptrace::{Resume, Stop, Tracee, opts};
use crate::sys::signal::BlockAll;
use crate::sys::{Pid, RemoteAddr, SysError, page_align_up, remote};

const STACK_LEN: u64 = 128 * 1024;
const THREAD_STACK_LEN: u64 = 32 * 1024;
const PARK_TIMEOUT_BASE: Duration = Duration::from_secs(30);
const PTRACE_EVENT_FORK: i32 = 1;
const PTRACE_EVENT_VFORK: i32 = 2;
const PTRACE_EVENT_CLONE: i32 = 3;

/// A bump allocator over the argument area, handing out absolute addresses.
struct Arena<'m> {
    buf: &'m mut [u8],
    base: u64,
    at: usize,
}

impl Arena<'_> {
    fn reserve(&mut self, len: usize, align: usize) -> Result<(u64, usize)> {
        let start = self.at.div_ceil(align) * align;
        let end = start + len;
        if end > self.buf.len() {
            return Err(RestoreError::Invalid("the restorer's argument area is too small".into()));
        }
        self.at = end;
        Ok((self.base + start as u64, start))
    }

    fn bytes(&mut self, b: &[u8], align: usize) -> Result<u64> {
        let (addr, off) = self.reserve(b.len(), align)?;
        self.buf[off..off + b.len()].copy_from_slice(b);
        Ok(addr)
    }

    fn put_at<T: Pod>(&mut self, addr: u64, v: &T) {
        let off = (addr - self.base) as usize;
        let b = pod::bytes_of(v);
        self.buf[off..off + b.len()].copy_from_slice(b);
    }

    fn slice<T: Pod>(&mut self, v: &[T]) -> Result<u64> {
        if v.is_empty() {
            return Ok(0);
        }
        self.bytes(pod::slice_bytes(v), 16)
    }
}

/// One thread to park and release.
struct ThreadPlan {
    tid: i32,
    /// Offset of its Control in the control array.
    ctl_off: usize,
    regs: GpRegs,
    frame_regs: GpRegs,
    frame_rsp: u64,
}

struct TaskPlan<'s> {
    pid: i32,
    mm: &'s MmImage,
    files: &'s rckpt_images::files::FilesImage,
    /// The task running the process part (offset of its Control), which for an
    /// exited leader exits once its threads exist.
    runner_ctl: usize,
    threads: Vec<ThreadPlan>,
    leader_exited: bool,
    stopped: bool,
    /// A `syscall` instruction in the restored vDSO.
    insn: u64,
    /// The page extents its trampoline reads, in order.
    extents: Vec<BlobExtent>,
}

pub struct Prepared<'s> {
    root: Pid,
    /// The helper rckpt creates first, and its Control, when the root's session
    /// or group leader is gone.
    helper: Option<(Pid, usize)>,
    /// The helpers trampolines create for tasks below the root.
    helpers: Vec<(Pid, usize)>,
    /// Shared with the page checker's thread.
    ctl: std::sync::Arc<LocalMapping>,
    // Held until the root exists: mapped in rckpt's own address space.
    _body: LocalMapping,
    area: (u64, u64),
    entry: BlobEntry,
    /// rckpt's copies, closed once the root has its own.
    fds: Option<FdSetup>,
    tasks: Vec<TaskPlan<'s>>,
    park_timeout: Duration,
    /// Some task runs under seccomp filters: the tree is traced with
    /// PTRACE_O_SUSPEND_SECCOMP (see create_and_release).
    suspend_seccomp: bool,
    /// The tree gets a PID namespace of its own (rckpt has unshared it).
    pid_ns: bool,
}

/// The pids rckpt uses for the image's tasks: the same ones, unless the tree
/// has a PID namespace of its own; then they are found by walking the tree
/// from its init and reading each task's NSpid.
struct HostPids {
    ns: bool,
    root: Pid,
    map: BTreeMap<i32, i32>,
    scanned: bool,
}

impl HostPids {
    fn new(ns: bool, root: Pid) -> HostPids {
        HostPids { ns, root, map: BTreeMap::new(), scanned: false }
    }

    /// The pid rckpt sees for image pid `inner` (None: not created yet).
    fn get(&mut self, inner: i32) -> Option<Pid> {
        if !self.ns {
            return Some(Pid::from_raw(inner));
        }
        if !self.map.contains_key(&inner) && !self.scanned {
            self.scan();
        }
        self.map.get(&inner).map(|h| Pid::from_raw(*h))
    }

    /// Allows one more walk of the tree (once per round of waiting).
    fn next_round(&mut self) {
        self.scanned = false;
    }

    fn scan(&mut self) {
        self.scanned = true;
        let mut todo = vec![self.root.as_raw()];
        while let Some(p) = todo.pop() {
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else { continue };
            for t in tasks.flatten() {
                let Some(tid) = t.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
                if let Some(inner) =
                    crate::sys::ns::nspids(Pid::from_raw(p), Pid::from_raw(tid)).and_then(|v| v.last().copied())
                {
                    self.map.insert(inner, tid);
                }
                let kids = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
                todo.extend(kids.split_whitespace().filter_map(|k| k.parse::<i32>().ok()));
            }
        }
    }
}

fn siginfo(shared: bool, s: &rckpt_images::core::SigInfo) -> BlobSiginfo {
    let mut info = [0u8; 128];
    info.copy_from_slice(&s.0);
    BlobSiginfo { shared: shared as u32, signo: s.signo(), info }
}

/// Whether [lo, hi) lies in saved writable memory (or where a stack grows).
fn frame_fits(mm: &MmImage, lo: u64, hi: u64) -> bool {
    mm.vmas.iter().any(|v| {
        let start = if v.flags & vmflags::GROWSDOWN != 0 { v.start.saturating_sub(1 << 20) } else { v.start };
        v.prot & rckpt_images::mm::PROT_WRITE != 0 && start <= lo && hi <= v.end
    })
}

/// The helper the root needs, if its session or group leader is gone (not in
/// the tree, not an external the dump named): (its pid, 1 for a session or 2 for
/// a group). The dump refused the cases one helper cannot rebuild.
fn root_helper(set: &ImageSet) -> Option<(i32, u32)> {
    helper_for(set, set.pstree.root())
}

/// The helper task `t` needs, if its session or group leader is gone and it
/// does not inherit that session or group from its parent: (the helper's pid, 1
/// for a session or 2 for a group). The dump refused the cases one helper
/// cannot rebuild.
fn helper_for(set: &ImageSet, t: &rckpt_images::pstree::TaskEntry) -> Option<(i32, u32)> {
    let inside = |id: i32| set.pstree.tasks.iter().any(|x| x.pid == id);
    let named = |key: String| set.inventory.externals.iter().any(|e| e.key == key);
    let parent = set.pstree.find(t.ppid).filter(|_| t.ppid != 0);
    let (psid, ppgid) = parent.map(|p| (p.sid, p.pgid)).unwrap_or((0, 0));
    if t.sid != t.pid && t.sid != psid && !inside(t.sid) && !named(format!("session:[{}]", t.sid)) {
        return Some((t.sid, 1));
    }
    if t.pgid != t.pid && t.pgid != ppgid && !inside(t.pgid) && !named(format!("pgrp:[{}]", t.pgid)) {
        return Some((t.pgid, 2));
    }
    None
}

/// The pids of the helpers a restore of `set` needs (they must be free).
pub fn helper_pids(set: &ImageSet) -> Vec<i32> {
    set.pstree
        .tasks
        .iter()
        .filter(|t| !t.state.is_zombie())
        .filter_map(|t| helper_for(set, t))
        .map(|(p, _)| p)
        .collect()
}

fn same_exe(set: &ImageSet, parent: Option<i32>, pid: i32) -> bool {
    let Some(pp) = parent else { return false };
    let (a, b) = (&set.mms[&pid], &set.mms[&pp]);
    match (a.exe.map(|i| &a.files[i as usize]), b.exe.map(|i| &b.files[i as usize])) {
        (Some(x), Some(y)) => x.path == y.path && x.dev == y.dev && x.ino == y.ino,
        _ => false,
    }
}

/// Upper bound of the argument area for the whole tree.
fn estimate_args(set: &ImageSet, fds: &FdSetup, prev: Option<&PrevSet>) -> u64 {
    let mut n = fds.keep.len() * 8 + 4096;
    for t in &set.pstree.tasks {
        n += std::mem::size_of::<BlobChild>() + std::mem::size_of::<HelperArgs>() + 64;
        if t.state.is_zombie() {
            continue;
        }
        let core = &set.cores[&t.pid];
        let mm = &set.mms[&t.pid];
        n += std::mem::size_of::<RestoreArgs>() + 16 * 16;
        let tf = fds.task(t.pid);
        n += tf.install.len() * std::mem::size_of::<InstallFd>()
            + tf.epoll.len() * std::mem::size_of::<super::abi::BlobEpoll>()
            + tf.locks.len() * std::mem::size_of::<super::abi::BlobLock>()
            + 64;
        n += mm.vmas.len() * std::mem::size_of::<BlobVma>();
        n += mm.vmas.iter().filter_map(|v| v.anon_name.as_ref()).map(|n| n.len() + 16).sum::<usize>();
        // Own extents, and the pieces taken from a pre-dump (at most one more
        // than its extents per range).
        let prev_pieces = mm.prev_pages.len() * 2 + prev.and_then(|p| p.mms.get(&t.pid)).map_or(0, |m| m.extents.len());
        n += (mm.extents.len() + prev_pieces) * std::mem::size_of::<BlobExtent>();
        n += (2 * mm.vmas.len() + mm.extents.len() + mm.parent_pages.len() + 4) * std::mem::size_of::<BlobRange>();
        n += mm.auxv.len() * 8;
        n += core.shared_pending.len() * std::mem::size_of::<BlobSiginfo>();
        n += core.posix_timers.len() * std::mem::size_of::<BlobTimer>();
        let (chains, _) = seccomp_chains(core);
        n += core.seccomp_filters.iter().map(|f| f.insns.len() * 8 + 16).sum::<usize>();
        n += chains.iter().map(|c| c.len() + 1).sum::<usize>() * std::mem::size_of::<BlobFilter>() + 64;
        for th in &core.threads {
            n += std::mem::size_of::<BlobThread>() + 64;
            n += th.creds.groups.len() * 4 + 16;
            n += th.pending.len() * std::mem::size_of::<BlobSiginfo>() + 16;
            n += sigframe::frame_size(th.xstate.len()) as usize + 64;
        }
        n += std::mem::size_of::<BlobThread>() + 64;
    }
    n as u64
}

fn creds_of(c: &rckpt_images::core::Creds, groups: u64, own: &Own) -> BlobCreds {
    BlobCreds {
        uid: c.uid,
        gid: c.gid,
        groups,
        nr_groups: c.groups.len() as u32,
        securebits: c.securebits,
        cap_inheritable: c.cap_inheritable,
        cap_permitted: c.cap_permitted,
        cap_effective: c.cap_effective,
        cap_bounding: c.cap_bounding,
        cap_ambient: c.cap_ambient,
        last_cap: crate::proc::cap_last_cap(),
        no_new_privs: c.no_new_privs as u32,
        set_groups: !own.same_groups(&c.groups) as u32,
        setuid_fixup: own.has(CAP_SETPCAP) as u32,
    }
}

const CAP_SETPCAP: u32 = 8;

/// The area's copy of each seccomp filter's program (`struct sock_filter`s).
fn seccomp_programs(a: &mut Arena<'_>, filters: &[SeccompFilter]) -> Result<Vec<BlobFilter>> {
    let mut out = Vec::with_capacity(filters.len());
    for f in filters {
        let mut b = Vec::with_capacity(f.insns.len() * 8);
        for i in &f.insns {
            b.extend_from_slice(&i.code.to_ne_bytes());
            b.extend_from_slice(&[i.jt, i.jf]);
            b.extend_from_slice(&i.k.to_ne_bytes());
        }
        out.push(BlobFilter { insns: a.bytes(&b, 8)?, len: f.insns.len() as u32, flags: f.flags });
    }
    Ok(out)
}

/// Each thread's seccomp chain (oldest first), and how many of its oldest
/// filters every thread of the process shares: those the runner installs before
/// it creates the threads, so that they inherit them.
fn seccomp_chains(core: &rckpt_images::core::TaskCore) -> (Vec<Vec<u32>>, usize) {
    let chains: Vec<Vec<u32>> =
        core.threads.iter().map(|t| rckpt_images::seccomp::chain(&core.seccomp_filters, t.seccomp.filter)).collect();
    let shared = chains.iter().map(|c| c.iter().zip(&chains[0]).take_while(|(x, y)| x == y).count()).min().unwrap_or(0);
    (chains, shared)
}

/// Session and group set-up of `t`, created by a parent in `parent_sid` and
/// `parent_pgid`: (session mode, parent sets the group).
fn session_mode(t: &rckpt_images::pstree::TaskEntry, parent: Option<(i32, i32)>) -> (u32, bool) {
    if t.sid == t.pid {
        return (1, false);
    }
    match parent {
        Some((_, ppgid)) if t.pgid == ppgid => (0, false),
        Some(_) => (2, t.pgid == t.pid),
        // The root, created by rckpt: keep rckpt's session (bound with --shell-job)
        // but take its own group if it led one.
        None if t.pgid == t.pid => (2, false),
        None => (0, false),
    }
}

/// `rckpt_checks`: long page extents are left to rckpt's checker thread
/// (`check::Worker`), which exists.
pub fn prepare<'s>(
    set: &'s ImageSet,
    opts: &RestoreOptions,
    prev: Option<&PrevSet>,
    rckpt_checks: bool,
) -> Result<Prepared<'s>> {
    let root = set.pstree.root().pid;
    let fds = files::open_all(set, opts, prev)?;
    let own = Own::read()?;
    let blob = crate::blob::restorer();
    let live: Vec<&rckpt_images::pstree::TaskEntry> =
        set.pstree.tasks.iter().filter(|t| !t.state.is_zombie()).collect();

    let helper = root_helper(set);
    let nr_helpers = live.iter().filter(|t| helper_for(set, t).is_some()).count();
    // One Control per thread, plus one for each exited leader and each helper.
    let nr_ctl: usize = live.iter().map(|t| t.threads.len() + (t.state == Saved::LeaderExited) as usize).sum::<usize>()
        + nr_helpers.max(1);
    let ctl_len = page_align_up((nr_ctl as u64) * CONTROL_SIZE);
    let max_threads = live.iter().map(|t| t.threads.len()).max().unwrap_or(1) as u64;
    let stacks_len = STACK_LEN + max_threads * THREAD_STACK_LEN;
    let args_len = page_align_up(estimate_args(set, &fds, prev));
    let total = ctl_len + blob.size() + stacks_len + args_len;
    let mms: Vec<&MmImage> = live.iter().map(|t| &set.mms[&t.pid]).collect();
    let base = mm::find_hole(&mms, total)?;
    let ctl = std::sync::Arc::new(LocalMapping::anon_at(base, ctl_len, true)?);
    let mut body = LocalMapping::anon_at(base + ctl_len, total - ctl_len, false)?;
    let blob_base = base + ctl_len;
    let stacks_base = blob_base + blob.size();
    let proc_stack_top = stacks_base + STACK_LEN;
    let args_base = stacks_base + stacks_len;
    let fd_base = files::fd_base(&fds)?;

    let mut plans = Vec::new();
    let root_args;
    let helper_args;
    // Helpers' Controls come last; the root's helper (if any) takes the first.
    let helper_ctl = nr_ctl - nr_helpers.max(1);
    let mut next_helper_ctl = helper_ctl + helper.is_some() as usize;
    let mut helpers: Vec<(Pid, usize)> = Vec::new();
    {
        let bytes = body.bytes_mut();
        blob.relocate_into(blob_base, &mut bytes[..blob.size() as usize]);
        let args_off = (args_base - blob_base) as usize;
        let mut a = Arena { buf: &mut bytes[args_off..], base: args_base, at: 0 };
        let keep: Vec<KeepFd> = fds.keep.iter().map(|f| KeepFd { src: f.as_raw_fd(), _pad: 0 }).collect();
        let keep_addr = a.slice(&keep)?;
        // Every task's RestoreArgs has its place first, so parents can point at
        // their children's.
        let mut args_at: BTreeMap<i32, u64> = BTreeMap::new();
        for t in &live {
            args_at.insert(t.pid, a.reserve(std::mem::size_of::<RestoreArgs>(), 16)?.0);
        }
        let mut next_ctl = 0usize;
        for t in &live {
            let pid = t.pid;
            let core = &set.cores[&pid];
            let mm = &set.mms[&pid];
            let tf = fds.task(pid);
            let install_addr = a.slice(&tf.install)?;
            let epoll_addr = a.slice(&tf.epoll)?;
            let locks_addr = a.slice(&tf.locks)?;
            let mut bvmas = Vec::new();
            for (mut v, name) in mm::blob_vmas(mm, &tf.mapped, &tf.shared) {
                if let Some(n) = name {
                    let mut z = n.into_bytes();
                    z.push(0);
                    v.name = a.bytes(&z, 1)?;
                }
                bvmas.push(v);
            }
            let vmas_addr = a.slice(&bvmas)?;
            let exts = mm::extents(mm, prev.and_then(|p| p.mms.get(&pid)), rckpt_checks);
            let ext_addr = a.slice(&exts)?;
            let unmap = mm::unmap_ranges(mm, (base, base + total));
            let unmap_addr = a.slice(&unmap)?;
            let discard = mm::discard_ranges(mm);
            let discard_addr = a.slice(&discard)?;
            let auxv_addr = a.slice(&mm.auxv)?;
            let shared: Vec<BlobSiginfo> = core.shared_pending.iter().map(|s| siginfo(true, s)).collect();
            let shared_addr = a.slice(&shared)?;
            let timers: Vec<BlobTimer> = core
                .posix_timers
                .iter()
                .map(|p| BlobTimer {
                    id: p.id,
                    clock: p.clock,
                    sigval: p.sigval,
                    signo: p.signo,
                    notify: p.notify,
                    notify_tid: p.notify_tid,
                    _pad: 0,
                    interval_sec: (p.interval_ns / 1_000_000_000) as i64,
                    interval_nsec: (p.interval_ns % 1_000_000_000) as i64,
                    value_sec: (p.value_ns / 1_000_000_000) as i64,
                    value_nsec: (p.value_ns % 1_000_000_000) as i64,
                })
                .collect();
            let timers_addr = a.slice(&timers)?;
            let programs = seccomp_programs(&mut a, &core.seccomp_filters)?;
            let (chains, nr_shared) = seccomp_chains(core);
            let shared_filters: Vec<BlobFilter> = chains
                .first()
                .map(|c| c[..nr_shared].iter().map(|&f| programs[f as usize]).collect())
                .unwrap_or_default();
            let shared_filters_addr = a.slice(&shared_filters)?;

            // Threads: the runner (the task with the process's pid) first.
            let mut bthreads = Vec::new();
            let mut tplans = Vec::new();
            let leader_exited = t.state == Saved::LeaderExited;
            let mut runner_ctl = next_ctl;
            if leader_exited {
                // The exited leader runs the process part, creates the threads and
                // exits; it has no saved registers, so it uses the first thread's
                // credentials.
                let th = &core.threads[0];
                let groups = a.slice(&th.creds.groups)?;
                let mut comm = [0u8; 16];
                comm[..1].copy_from_slice(b"-");
                bthreads.push(BlobThread {
                    tid: pid,
                    pdeath_signal: -1,
                    ctl: base + (next_ctl as u64) * CONTROL_SIZE,
                    dumpable: core.prctl.dumpable,
                    stack_top: proc_stack_top,
                    creds: creds_of(&th.creds, groups, &own),
                    comm,
                    ..BlobThread::default()
                });
                next_ctl += 1;
            }
            for (i, th) in core.threads.iter().enumerate() {
                let mut regs = th.regs;
                // ERESTART_RESTARTBLOCK becomes EINTR here (the kernel's restart
                // block is gone); other restarts are left to the kernel at release.
                if arch::restart_kind(&regs) == arch::Restart::Block {
                    arch::apply_restart(&mut regs, false);
                }
                let (frame_addr, fp_addr) = sigframe::place_below(regs.rsp, th.xstate.len());
                if !frame_fits(mm, frame_addr, regs.rsp) {
                    return Err(RestoreError::Invalid(format!(
                        "thread {}: no saved writable memory below its stack pointer {:#x} for the signal frame",
                        th.tid, regs.rsp
                    )));
                }
                let frame = sigframe::build(frame_addr, fp_addr, &regs, &th.xstate, th.blocked, &th.sigaltstack);
                let frame_src = a.bytes(&frame.bytes, 64)?;
                let groups = a.slice(&th.creds.groups)?;
                let pend: Vec<BlobSiginfo> = th.pending.iter().map(|s| siginfo(false, s)).collect();
                let pend_addr = a.slice(&pend)?;
                let own_filters: Vec<BlobFilter> =
                    chains[i][nr_shared..].iter().map(|&f| programs[f as usize]).collect();
                let own_filters_addr = a.slice(&own_filters)?;
                let mut comm = [0u8; 16];
                let n = th.comm.len().min(15);
                comm[..n].copy_from_slice(&th.comm.as_bytes()[..n]);
                let mut affinity = [0u64; 16];
                let nr_aff = th.sched.affinity.len().min(16);
                affinity[..nr_aff].copy_from_slice(&th.sched.affinity[..nr_aff]);
                let is_runner = !leader_exited && i == 0;
                let stack_index = bthreads.len() as u64; // 0 is the runner's
                let ctl_off = next_ctl;
                next_ctl += 1;
                if is_runner {
                    runner_ctl = ctl_off;
                }
                bthreads.push(BlobThread {
                    tid: th.tid,
                    // The root's parent is rckpt now: with --detach, rckpt's exit
                    // would fire the signal at once.
                    pdeath_signal: if (th.tid == pid || i == 0) && !(pid == root && opts.detach) {
                        core.prctl.pdeath_signal
                    } else {
                        -1
                    },
                    ctl: base + (ctl_off as u64) * CONTROL_SIZE,
                    dumpable: core.prctl.dumpable,
                    _pad1: 0,
                    stack_top: if is_runner { proc_stack_top } else { proc_stack_top + stack_index * THREAD_STACK_LEN },
                    nr_siginfo: pend.len() as u64,
                    siginfo: pend_addr,
                    frame_addr,
                    frame_src,
                    frame_len: frame.bytes.len() as u64,
                    comm,
                    rseq_addr: th.rseq.map(|r| r.addr).unwrap_or(0),
                    rseq_len: th.rseq.map(|r| r.len).unwrap_or(0),
                    rseq_sig: th.rseq.map(|r| r.signature).unwrap_or(0),
                    robust_head: th.robust_list.head,
                    robust_len: th.robust_list.len,
                    tid_address: th.tid_address,
                    nice: th.sched.nice,
                    nr_affinity: nr_aff as u32,
                    affinity,
                    timer_slack_ns: th.sched.timer_slack_ns,
                    creds: creds_of(&th.creds, groups, &own),
                    nr_seccomp: own_filters.len() as u64,
                    seccomp: own_filters_addr,
                });
                tplans.push(ThreadPlan {
                    tid: th.tid,
                    ctl_off,
                    regs: th.regs,
                    frame_regs: regs,
                    frame_rsp: frame.sigreturn_rsp(),
                });
            }
            let threads_addr = a.slice(&bthreads)?;

            let parent = set.pstree.find(t.ppid).filter(|_| t.ppid != 0);
            let mut children = Vec::new();
            for c in set.pstree.tasks.iter().filter(|c| c.ppid == pid && pid != 0) {
                if let Some((h, mode)) = helper_for(set, c).filter(|_| !c.state.is_zombie()) {
                    // A helper with the gone leader's pid creates the child in
                    // its session or group, then exits.
                    let off = next_helper_ctl;
                    next_helper_ctl += 1;
                    helpers.push((Pid::from_raw(h), off));
                    let ha = HelperArgs {
                        magic: RESTORE_MAGIC,
                        session: mode,
                        root_pid: c.pid,
                        root_args: args_at[&c.pid],
                        stack_top: proc_stack_top,
                        ctl: base + off as u64 * CONTROL_SIZE,
                    };
                    let addr = a.bytes(pod::bytes_of(&ha), 16)?;
                    children.push(BlobChild { kind: CHILD_HELPER, pid: h, args: addr, ..BlobChild::default() });
                    continue;
                }
                let (_, parent_sets) = session_mode(c, Some((t.sid, t.pgid)));
                children.push(BlobChild {
                    kind: if c.state.is_zombie() { CHILD_ZOMBIE } else { CHILD_PROCESS },
                    pid: c.pid,
                    args: args_at.get(&c.pid).copied().unwrap_or(0),
                    status: match c.state {
                        Saved::Zombie { status } => status,
                        _ => 0,
                    },
                    sid: c.sid,
                    pgid: c.pgid,
                    parent_sets_pgid: parent_sets as u32,
                });
            }
            let children_addr = a.slice(&children)?;
            // Its parent is its saved one, rckpt (the root), or a helper leading
            // its session or group.
            let inherited_ids = match (helper_for(set, t), parent) {
                (Some((h, 1)), _) => Some((h, h)),
                (Some((h, _)), Some(p)) => Some((p.sid, h)),
                (Some((h, _)), None) => Some((t.sid, h)),
                (None, Some(p)) => Some((p.sid, p.pgid)),
                (None, None) => None,
            };
            let (session, _) = session_mode(t, inherited_ids);
            let mut mm_map = mm::mm_map(mm);
            mm_map.auxv = auxv_addr;
            mm_map.auxv_size = (mm.auxv.len() * 8) as u32;
            let mut rl = [KRlimit { cur: u64::MAX, max: u64::MAX }; 16];
            for r in &core.rlimits {
                rl[r.resource as usize] = KRlimit { cur: r.cur, max: r.max };
            }
            let mut acts = [KSigAction::default(); 64];
            for (i, s) in core.sigactions.iter().enumerate() {
                acts[i] = KSigAction { handler: s.handler, flags: s.flags, restorer: s.restorer, mask: s.mask };
            }
            let it = |i: usize| {
                let t = &core.itimers[i];
                [
                    (t.interval_us / 1_000_000) as i64,
                    (t.interval_us % 1_000_000) as i64,
                    (t.value_us / 1_000_000) as i64,
                    (t.value_us % 1_000_000) as i64,
                ]
            };
            let is_root = pid == root;
            let args = RestoreArgs {
                magic: RESTORE_MAGIC,
                wait_go: is_root as u32,
                leader_exited: leader_exited as u32,
                parent_pid: match helper {
                    Some((h, _)) if pid == root => h,
                    // The init of a PID namespace sees no parent.
                    _ if set.inventory.namespaces.pid => 0,
                    _ => std::process::id() as i32,
                },
                pid,
                nr_unmap: unmap.len() as u64,
                unmap: unmap_addr,
                nr_discard: discard.len() as u64,
                discard: discard_addr,
                session,
                pgid: t.pgid,
                close_inherited: (!is_root) as u32,
                _pad2: 0,
                fd_base,
                nr_keep: keep.len() as u32,
                keep: if is_root { keep_addr } else { 0 },
                nr_install: tf.install.len() as u64,
                install: install_addr,
                nr_epoll: tf.epoll.len() as u64,
                epoll: epoll_addr,
                nr_locks: tf.locks.len() as u64,
                locks: locks_addr,
                tty_op: tf.tty_op,
                tty_keep: tf.tty_keep,
                pages_keep: tf.pages,
                // A child running its parent's executable inherits the exe link;
                // setting it again would fail while inherited VMAs map the file.
                exe_keep: if same_exe(set, parent.map(|p| p.pid), pid) { -1 } else { tf.exe },
                cwd_keep: tf.cwd,
                prev_pages_keep: tf.prev_pages,
                nr_vmas: bvmas.len() as u64,
                vmas: vmas_addr,
                nr_extents: exts.len() as u64,
                extents: ext_addr,
                vdso_at: mm.vdso.as_ref().map(|d| d.vvar_start).unwrap_or(0),
                mm_map,
                personality: core.personality,
                umask: core.umask,
                mdwe: core.prctl.mdwe,
                child_subreaper: core.prctl.child_subreaper as u32,
                thp_disable: core.prctl.thp_disable as u32,
                _pad1: 0,
                rlimits: rl,
                sigactions: acts,
                nr_siginfo: shared.len() as u64,
                siginfo: shared_addr,
                itimers: [it(0), it(1), it(2)],
                nr_timers: timers.len() as u64,
                timers: timers_addr,
                nr_children: children.len() as u64,
                children: children_addr,
                nr_threads: bthreads.len() as u64,
                threads: threads_addr,
                nr_seccomp: shared_filters.len() as u64,
                seccomp: shared_filters_addr,
            };
            a.put_at(args_at[&pid], &args);

            let d = mm
                .vdso
                .as_ref()
                .ok_or_else(|| RestoreError::Invalid(format!("task {pid} has no vDSO to release it through")))?;
            let insn = crate::parasite::find_syscall_insn(&d.vdso_bytes).map(|o| d.vdso_start + o as u64).ok_or_else(
                || RestoreError::Invalid(format!("task {pid}: the saved vDSO has no syscall instruction")),
            )?;
            plans.push(TaskPlan {
                pid,
                mm,
                files: &set.files,
                runner_ctl,
                threads: tplans,
                leader_exited,
                stopped: matches!(t.state, Saved::Stopped { .. }),
                insn,
                extents: exts,
            });
        }
        root_args = args_at[&root];
        helper_args = match helper {
            Some((_, mode)) => {
                let h = HelperArgs {
                    magic: RESTORE_MAGIC,
                    session: mode,
                    root_pid: root,
                    root_args,
                    stack_top: proc_stack_top,
                    ctl: base + helper_ctl as u64 * CONTROL_SIZE,
                };
                a.bytes(pod::bytes_of(&h), 16)?
            }
            None => 0,
        };
    }
    body.protect(0, blob.exec_end(), libc::PROT_READ | libc::PROT_EXEC)?;
    let pages: u64 = mms.iter().map(|m| m.pages_len()).sum();
    let park_timeout = PARK_TIMEOUT_BASE + Duration::from_secs(pages / (100 << 20) + live.len() as u64 / 10);
    let entry = match helper {
        Some(_) => BlobEntry {
            entry: blob_base + blob.symbol("helper_start").expect("the restorer has a helper entry"),
            stack_top: proc_stack_top,
            arg: helper_args,
        },
        None => BlobEntry { entry: blob_base + blob.entry(), stack_top: proc_stack_top, arg: root_args },
    };
    Ok(Prepared {
        root: Pid::from_raw(root),
        helper: helper.map(|(h, _)| (Pid::from_raw(h), helper_ctl)),
        helpers,
        ctl,
        _body: body,
        area: (base, total),
        entry,
        fds: Some(fds),
        tasks: plans,
        park_timeout,
        suspend_seccomp: set.cores.values().any(|c| !c.seccomp_filters.is_empty()),
        pid_ns: set.inventory.namespaces.pid,
    })
}

/// The tasks rckpt created: killed and reaped on drop unless released.
struct Created {
    /// As rckpt sees it (in a PID namespace of the tree's: its init, whose
    /// death takes every task of the namespace with it).
    root: Pid,
    /// Image pids, and the pids rckpt sees for them.
    pids: Vec<i32>,
    host: HostPids,
    /// By image tid; each Tracee holds the pid rckpt sees.
    tracees: BTreeMap<i32, Tracee>,
}

impl Drop for Created {
    fn drop(&mut self) {
        if !self.host.ns {
            // Only what this restore made: every task a trampoline creates is
            // traced by this thread from its first instruction (TRACEFORK and
            // TRACECLONE), and a traced task keeps its pid until its tracer reaps
            // it. A pid of the image held by anything else (why a restore fails
            // with EEXIST) is left alone.
            let me = nix::unistd::gettid().as_raw();
            for &p in self.pids.iter().rev() {
                let pid = Pid::from_raw(p);
                if crate::proc::thread_status(pid, pid).is_ok_and(|s| s.tracerpid == me) {
                    let _ = kill(pid, Signal::SIGKILL);
                }
            }
        }
        let _ = kill(self.root, Signal::SIGKILL);
        // Collect what the kernel reports to the tracer, so nothing lingers.
        let deadline = Instant::now() + Duration::from_secs(5);
        for (_, t) in std::mem::take(&mut self.tracees) {
            let tid = t.pid();
            while Instant::now() < deadline {
                match crate::sys::wait::try_wait_pid(tid) {
                    Ok(Some(s)) if Stop::from_status(s).is_gone() => break,
                    Ok(Some(_)) => {
                        let _ = nix::sys::ptrace::cont(tid, None);
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(1)),
                    Err(_) => break,
                }
            }
            t.forget();
        }
        let _ = nix::sys::wait::waitpid(self.root, Some(nix::sys::wait::WaitPidFlag::__WALL));
    }
}

fn ctl_state(ctl: &LocalMapping, off: usize) -> Control {
    pod::read(&ctl.read_bytes(off * CONTROL_SIZE as usize, std::mem::size_of::<Control>())).unwrap_or_default()
}

fn step_error(pid: i32, st: &Control) -> RestoreError {
    if matches!(st.step, STEP_CHILDREN | STEP_THREADS) && st.error == -(libc::EEXIST as i64) {
        return RestoreError::PidTaken { pid: st.detail as i32 };
    }
    if st.step == STEP_CHECK_PAGES {
        return RestoreError::PagesCorrupt { file: rckpt_images::pages::file_name(pid), addr: st.detail, pid };
    }
    RestoreError::Step {
        pid,
        step: step_name(st.step),
        detail: st.detail,
        errno: nix::errno::Errno::from_raw((-st.error) as i32),
    }
}

/// `checker`: the thread that checks long page extents (given to `prepare` as
/// `rckpt_checks`).
pub fn create_and_release(mut p: Prepared<'_>, checker: Option<&check::Worker>) -> Result<Pid> {
    let root = p.root;
    // rckpt creates the root, or the helper that creates the root inside the
    // session or group it leads. The root is rckpt's child again once the helper
    // has exited, as rckpt is a subreaper then.
    let first = p.helper.map(|(h, _)| h).unwrap_or(root);
    if p.helper.is_some() {
        crate::sys::task::set_child_subreaper()?;
    }
    let child = {
        // The child inherits this mask: nothing may run in it before rt_sigreturn.
        let _blocked = BlockAll::new()?;
        clone3_into_blob(first, p.entry).map_err(|e| match e {
            SysError::Task { errno: nix::errno::Errno::EEXIST, .. } => RestoreError::PidTaken { pid: first.as_raw() },
            e => e.into(),
        })?
    };
    let mut created = Created {
        root: child,
        pids: p.tasks.iter().map(|t| t.pid).collect(),
        host: HostPids::new(p.pid_ns, child),
        tracees: BTreeMap::new(),
    };
    if p.pid_ns {
        created.host.map.insert(first.as_raw(), child.as_raw());
    } else if child != first {
        return Err(RestoreError::Invalid(format!("clone3 gave pid {child} instead of {first}")));
    }
    // Seccomp filters are installed while the trampoline still runs, and the
    // restored tasks make syscalls after that: rckpt's remote munmap of the
    // trampoline and the watched rt_sigreturn. PTRACE_O_SUSPEND_SECCOMP keeps
    // every filter from applying until the last detach; the tasks the
    // trampolines create inherit it with the other options (ptrace_init_task).
    let suspend = if p.suspend_seccomp { opts::SUSPEND_SECCOMP } else { 0 };
    let mut t = Tracee::seize(
        child,
        opts::EXITKILL | opts::TRACESYSGOOD | opts::TRACECLONE | opts::TRACEFORK | opts::TRACEVFORK | suspend,
    )?;
    // The rseq area rckpt's thread registered is inherited; the trampoline must
    // unregister it with the exact registration the kernel holds.
    t.interrupt_and_wait(Duration::from_secs(5))?;
    let rseq = t.rseq_config()?;
    let root_ctl = p.tasks[0].runner_ctl;
    let mut c = Control::default();
    if let Some(r) = rseq {
        c.rseq_addr = r.rseq_abi_pointer;
        c.rseq_len = r.rseq_abi_size;
        c.rseq_sig = r.signature;
    }
    p.ctl.write_bytes(root_ctl * CONTROL_SIZE as usize, pod::bytes_of(&c));
    t.resume(Resume::Cont, 0)?;
    created.tracees.insert(first.as_raw(), t);
    fault::point("restore.created")?;
    p.ctl.store_and_wake(root_ctl * CONTROL_SIZE as usize, 1);
    drop(p.fds.take());

    // Long extents are checked in place from another thread while the tasks read.
    let jobs: Vec<(usize, check::Job)> = p
        .tasks
        .iter()
        .enumerate()
        .filter(|(_, t)| check::Job::wanted(&t.extents))
        .map(|(i, t)| (i, check::Job { pid: t.pid, ctl: t.runner_ctl, extents: t.extents.clone() }))
        .collect();
    let (job_of_task, jobs): (Vec<usize>, Vec<check::Job>) = jobs.into_iter().unzip();
    let abort = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (seen_tx, seen_rx) = std::sync::mpsc::channel();
    let told = vec![false; jobs.len()];
    let checked = match checker {
        Some(w) if !jobs.is_empty() => {
            let (ctl, abort) = (p.ctl.clone(), abort.clone());
            Some(w.run(move || check::run(&jobs, &ctl, seen_rx, &abort)))
        }
        _ if jobs.is_empty() => None,
        _ => return Err(RestoreError::Invalid("long page extents left to a page checker that does not exist".into())),
    };
    let mut seen = Seen { tx: seen_tx, job_of_task: &job_of_task, told };
    let parked = park_all(&p, &mut created, &mut seen);
    drop(seen);
    if parked.is_err() {
        abort.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let checked = match checked.map(|r| r.recv()) {
        None => Ok(()),
        Some(Ok(r)) => r,
        Some(Err(_)) => Err(RestoreError::Invalid("the page checker thread panicked".into())),
    };
    // A damaged extent is the cause of its task's failure: named first.
    checked.and(parked)?;
    fault::point("restore.parked")?;

    // Take the trampoline out of every address space, from a syscall in the
    // restored vDSO, then check each layout against the image.
    for task in &p.tasks {
        let tid = task.threads[0].tid;
        // ARCH_MAP_VDSO_64 takes its address as a hint: check the instruction is
        // where the image says before running anything on it.
        let mut code = [0u8; 2];
        let host = created.tracees.get(&tid).expect("parked").pid();
        crate::sys::mem::ProcMem::open(host, false)?.read_exact(RemoteAddr(task.insn), &mut code)?;
        if code != [0x0f, 0x05] {
            return Err(RestoreError::Layout {
                pid: task.pid,
                what: format!("no syscall instruction at {:#x}: the vDSO is not where it was", task.insn),
            });
        }
        let t = created.tracees.get_mut(&tid).expect("parked");
        let at = t.regs()?;
        let mut sigs = Vec::new();
        let r = remote::syscall(
            t,
            RemoteAddr(task.insn),
            &at,
            libc::SYS_munmap,
            [p.area.0, p.area.1, 0, 0, 0, 0],
            &mut sigs,
        )?;
        if r != 0 {
            return Err(RestoreError::Step {
                pid: task.pid,
                step: "unmap the restorer",
                detail: p.area.0,
                errno: nix::errno::Errno::from_raw(-r as i32),
            });
        }
        mm::check_layout(host, task.mm, task.files)?;
    }
    fault::point("restore.unmapped")?;

    for task in &p.tasks {
        for th in &task.threads {
            let t = created.tracees.get_mut(&th.tid).expect("parked");
            sigreturn(t, task, th)?;
        }
        if task.stopped {
            // Queued now, taken by get_signal as soon as the task leaves its stop.
            let host = created.tracees.get(&task.threads[0].tid).expect("parked").pid();
            let _ = kill(host, Signal::SIGSTOP);
        }
    }

    // Released in saved order: from here on the tasks run their own code.
    for task in &p.tasks {
        for th in &task.threads {
            if let Some(t) = created.tracees.remove(&th.tid) {
                t.detach(0)?;
            }
        }
    }
    for (_, t) in std::mem::take(&mut created.tracees) {
        let _ = t.detach(0);
    }
    let host_root = created.root;
    std::mem::forget(created);
    Ok(if p.pid_ns { host_root } else { root })
}

/// Tells the page checker (`check::run`) which processes exist, and as which pid.
struct Seen<'a> {
    tx: std::sync::mpsc::Sender<(usize, Pid)>,
    /// Task indexes (into `Prepared::tasks`) of the checker's jobs, in job order.
    job_of_task: &'a [usize],
    told: Vec<bool>,
}

impl Seen<'_> {
    fn task(&mut self, task: usize, host: Pid) {
        if let Some(j) = self.job_of_task.iter().position(|&t| t == task)
            && !self.told[j]
        {
            self.told[j] = true;
            let _ = self.tx.send((j, host));
        }
    }
}

/// Waits until every thread of the tree is parked at its int3, letting the
/// tasks the trampolines create through their first stops.
fn park_all(p: &Prepared<'_>, created: &mut Created, seen: &mut Seen<'_>) -> Result<()> {
    // tid -> (task index, Control offset)
    let mut waiting: BTreeMap<i32, (usize, usize)> = BTreeMap::new();
    // Exited leaders, which create their threads (their clone events need a
    // resume) and then exit, unreported while the threads live.
    let mut runners: BTreeMap<i32, (usize, usize)> = BTreeMap::new();
    // Helpers create a task and exit (their exit is reported to rckpt first).
    let mut helpers: Vec<(Pid, usize)> = p.helper.iter().chain(p.helpers.iter()).copied().collect();
    for (i, task) in p.tasks.iter().enumerate() {
        for th in &task.threads {
            waiting.insert(th.tid, (i, th.ctl_off));
        }
        if task.leader_exited {
            runners.insert(task.pid, (i, task.runner_ctl));
        }
    }
    let deadline = Instant::now() + p.park_timeout;
    let mut idle = 0u32;
    while !waiting.is_empty() {
        crate::fault::check_interrupted("waiting for tasks to park")?;
        let mut progressed = false;
        created.host.next_round();
        for (h, off) in helpers.clone() {
            let Some(hh) = created.host.get(h.as_raw()) else { continue };
            let Ok(Some(s)) = crate::sys::wait::try_wait_pid(hh) else { continue };
            progressed = true;
            let stop = Stop::from_status(s);
            let t = created.tracees.entry(h.as_raw()).or_insert_with(|| Tracee::adopt(hh));
            t.note_stopped(stop);
            match stop {
                Stop::Exited(0) => {
                    created.tracees.remove(&h.as_raw()).map(|t| t.forget());
                    helpers.retain(|x| x.0 != h);
                }
                s if s.is_gone() => {
                    created.tracees.remove(&h.as_raw()).map(|t| t.forget());
                    let st = ctl_state(&p.ctl, off);
                    return Err(if st.error != 0 {
                        step_error(h.as_raw(), &st)
                    } else {
                        RestoreError::Crashed { pid: h.as_raw(), step: "helper", stop: s.to_string() }
                    });
                }
                _ => t.resume(Resume::Cont, 0)?,
            }
        }
        for tid in runners.keys().copied().collect::<Vec<_>>() {
            let (ti, off) = runners[&tid];
            if ctl_state(&p.ctl, off).step == STEP_LEADER_EXITS {
                runners.remove(&tid);
                continue;
            }
            let Some(host) = created.host.get(tid) else { continue };
            let status = crate::sys::wait::try_wait_pid(host);
            if status.is_ok() {
                // It reads the process's pages.
                seen.task(ti, host);
            }
            if let Ok(Some(s)) = status {
                progressed = true;
                let t = created.tracees.entry(tid).or_insert_with(|| Tracee::adopt(host));
                let stop = Stop::from_status(s);
                t.note_stopped(stop);
                if !stop.is_gone() {
                    t.resume(Resume::Cont, 0)?;
                }
            }
        }
        for tid in waiting.keys().copied().collect::<Vec<_>>() {
            let (ti, off) = waiting[&tid];
            let task = &p.tasks[ti];
            let Some(host) = created.host.get(tid) else {
                // Not created yet by its parent's trampoline.
                let st = ctl_state(&p.ctl, task.runner_ctl);
                if st.error != 0 {
                    return Err(step_error(task.pid, &st));
                }
                continue;
            };
            let status = crate::sys::wait::try_wait_pid(host);
            if status.is_ok() {
                seen.task(ti, host);
            }
            let status = match status {
                Ok(Some(s)) => s,
                Ok(None) => continue,
                // Not created yet by its parent's trampoline.
                Err(SysError::TraceeDied(_)) => {
                    let st = ctl_state(&p.ctl, task.runner_ctl);
                    if st.error != 0 {
                        return Err(step_error(task.pid, &st));
                    }
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            progressed = true;
            let stop = Stop::from_status(status);
            if !created.tracees.contains_key(&tid) {
                created.tracees.insert(tid, Tracee::adopt(host));
            }
            let t = created.tracees.get_mut(&tid).unwrap();
            t.note_stopped(stop);
            let st = ctl_state(&p.ctl, off);
            match stop {
                Stop::Signal(libc::SIGTRAP) if st.step == STEP_PARKED => {
                    waiting.remove(&tid);
                    // Its last thread parked: the task's memory is in place.
                    if !waiting.values().any(|&(i, _)| i == ti) {
                        crate::progress::bytes(task.mm.pages_len());
                        crate::progress::task_done(task.pid, task.mm.pages_len());
                    }
                }
                // The first stop of a task a trampoline created (auto-attached
                // with PTRACE_EVENT_STOP), and its creator's fork/clone event.
                Stop::Event(PTRACE_EVENT_FORK | PTRACE_EVENT_VFORK | PTRACE_EVENT_CLONE)
                | Stop::Interrupt
                | Stop::GroupStop(_)
                | Stop::Syscall => {
                    t.resume(Resume::Cont, 0)?;
                }
                Stop::Exited(_) | Stop::Killed { .. } => {
                    created.tracees.remove(&tid).map(|t| t.forget());
                    let runner = ctl_state(&p.ctl, task.runner_ctl);
                    let failed = if st.error != 0 { st } else { runner };
                    if failed.error != 0 {
                        return Err(step_error(task.pid, &failed));
                    }
                    return Err(RestoreError::Crashed { pid: tid, step: step_name(st.step), stop: stop.to_string() });
                }
                s => return Err(RestoreError::Crashed { pid: tid, step: step_name(st.step), stop: s.to_string() }),
            }
        }
        // An exited leader's own failure shows only in its Control.
        for task in p.tasks.iter().filter(|t| t.leader_exited) {
            let st = ctl_state(&p.ctl, task.runner_ctl);
            if st.error != 0 {
                return Err(step_error(task.pid, &st));
            }
        }
        if Instant::now() >= deadline {
            let list: Vec<String> = waiting
                .iter()
                .map(|(tid, (_, off))| format!("{tid} at '{}'", step_name(ctl_state(&p.ctl, *off).step)))
                .collect();
            return Err(RestoreError::Sys(SysError::Timeout {
                what: "threads to park",
                pid: p.root,
                secs: p.park_timeout.as_secs_f64(),
            }))
            .map_err(|e| {
                eprintln!("rckpt: still waiting for {}", list.join(", "));
                e
            });
        }
        if progressed {
            idle = 0;
        } else {
            idle += 1;
            std::thread::sleep(Duration::from_micros((20u64 << idle.min(6)).min(1000)));
        }
    }
    Ok(())
}

/// The final rt_sigreturn of a parked thread, watched: the frame's registers are
/// checked once the kernel has taken them, a thread stopped in a restartable
/// syscall gets its syscall number back, and the thread is left at an interrupt
/// stop inside get_signal. Leaving that stop, the kernel itself chooses between
/// restarting the syscall and EINTR (if a signal with a handler is pending), as
/// for a task that was never checkpointed.
fn sigreturn(t: &mut Tracee, task: &TaskPlan<'_>, th: &ThreadPlan) -> Result<()> {
    let pid = th.tid;
    let mut r = t.regs()?;
    r.rip = task.insn;
    r.rax = arch::NR_RT_SIGRETURN;
    r.rsp = th.frame_rsp;
    r.orig_rax = u64::MAX;
    r.fs_base = th.regs.fs_base;
    r.gs_base = th.regs.gs_base;
    r.eflags &= !0x100;
    t.set_regs(&r)?;
    for phase in ["rt_sigreturn entry", "rt_sigreturn exit"] {
        t.resume(Resume::Syscall, 0)?;
        match t.wait(Duration::from_secs(10), "rt_sigreturn")? {
            Stop::Syscall => {}
            s => return Err(RestoreError::Crashed { pid, step: phase, stop: s.to_string() }),
        }
    }
    let mut now = t.regs()?;
    if now.rip != th.frame_regs.rip || now.rsp != th.frame_regs.rsp || now.rax != th.frame_regs.rax {
        return Err(RestoreError::Crashed {
            pid,
            step: "rt_sigreturn",
            stop: format!("resumed at {:#x}, not {:#x}", now.rip, th.frame_regs.rip),
        });
    }
    if arch::restart_kind(&th.regs) == arch::Restart::Again {
        now.orig_rax = th.regs.orig_rax;
        t.set_regs(&now)?;
    }
    t.interrupt()?;
    t.resume(Resume::Cont, 0)?;
    match t.wait(Duration::from_secs(10), "the parked task")? {
        Stop::Interrupt => Ok(()),
        s => Err(RestoreError::Crashed { pid, step: "park after rt_sigreturn", stop: s.to_string() }),
    }
}

/// Waits for the restored root and returns its status for rckpt's own exit.
pub fn wait_exit(pid: Pid) -> Result<Outcome> {
    use nix::sys::wait::{WaitStatus, waitpid};
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(Outcome::Exited(code as u8)),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(Outcome::Exited(128 + sig as u8)),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => return Err(SysError::Task { op: "wait for the restored task", pid, errno }.into()),
        }
    }
}
