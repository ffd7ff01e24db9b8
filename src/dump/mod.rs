//! Dump: freeze the tree, collect every task's state (/proc, ptrace, the parasite),
//! write pages and image files, fsync, write the inventory last, then kill the tree
//! or let it run on. Any failure cures and resumes the tree, unharmed, and removes
//! what was written.

pub mod core;
pub mod files;
pub mod freeze;
pub mod mm;
mod ns;
pub mod pages;
pub mod predump;
pub mod seccomp;
pub mod signals;
pub mod write;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use rckpt_images::{ImageError, fdinfo, files as ifiles, inventory, pstree};

use crate::fault;
use crate::parasite::{self, Infected, ParasiteError};
use crate::proc::ProcError;
use crate::sys::{Pid, RemoteAddr, SysError};

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("task {pid}: {what}: not supported")]
    Unsupported { pid: Pid, what: String },
    #[error("no task {0} to dump")]
    NoTask(Pid),
    #[error("task {pid} cannot be dumped: {why}")]
    Refused { pid: Pid, why: String },
    /// The dump needs a capability rckpt does not hold.
    #[error("task {pid} cannot be dumped without {cap}: {why}")]
    Privilege { pid: Pid, cap: &'static str, why: String },
    #[error("image directory {dir}: {why}")]
    BadImageDir { dir: PathBuf, why: &'static str },
    #[error("failed to {op} {path}: {source}")]
    Io { op: &'static str, path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Sys(#[from] SysError),
    #[error(transparent)]
    Parasite(#[from] ParasiteError),
    #[error(transparent)]
    Proc(#[from] ProcError),
    #[error("failed to encode an image: {0}")]
    Image(#[from] ImageError),
    #[error(transparent)]
    Fault(#[from] fault::Fault),
    #[error(transparent)]
    Netfilter(#[from] crate::sys::netfilter::NetfilterError),
    /// The dump inside the tree's namespaces failed (its message, exit code).
    #[error("{message}")]
    Inside { code: u8, message: String },
}

pub type Result<T> = std::result::Result<T, DumpError>;

pub use files::FileOptions;

#[derive(Debug, Clone)]
pub struct DumpOptions {
    pub pid: Pid,
    pub dir: PathBuf,
    /// Resume the tree after the dump instead of killing it.
    pub leave_running: bool,
    /// What to save of files, sockets and locks.
    pub files: FileOptions,
    /// A pre-dump to build on: only pages written since are saved.
    pub prev: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct DumpReport {
    pub pids: Vec<Pid>,
    /// Bytes of page data saved.
    pub pages_bytes: u64,
    /// Bytes of all image files.
    pub image_bytes: u64,
    /// How long the tree was stopped.
    pub frozen: Duration,
    pub total: Duration,
    pub externals: Vec<inventory::External>,
}

/// Dumps the tree rooted at `opts.pid`. A tree with namespaces of its own is
/// dumped from inside them (rckpt must be single-threaded then: it forks).
pub fn dump(opts: &DumpOptions) -> Result<DumpReport> {
    crate::sys::signal::catch_interrupts()?;
    if !std::path::Path::new(&format!("/proc/{}", opts.pid)).exists() {
        return Err(DumpError::NoTask(opts.pid));
    }
    if opts.pid.as_raw() > 1
        && let Some(n) = ns::owned(opts.pid)?
    {
        return ns::dump_inside(opts, n);
    }
    dump_here(opts, &inventory::Namespaces::default(), true)
}

/// Dumps from where rckpt stands. `kill`: kill the tree after a dump without
/// --leave-running (false: leave it frozen, for the outer rckpt to kill a PID
/// namespace's init).
fn dump_here(opts: &DumpOptions, namespaces: &inventory::Namespaces, kill: bool) -> Result<DumpReport> {
    let t0 = Instant::now();
    let pid = opts.pid;
    let init_ok = namespaces.pid && pid.as_raw() == 1;
    if (pid.as_raw() <= 1 && !init_ok) || pid == nix::unistd::getpid() {
        return Err(DumpError::Refused { pid, why: "it is init or rckpt itself".into() });
    }
    if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
        return Err(DumpError::NoTask(pid));
    }
    mm::forget_known_files();
    if opts.prev.is_some() && (namespaces.pid || namespaces.net) {
        return Err(DumpError::Refused {
            pid,
            why: "--prev-images-dir with namespaces of the tree's own is not supported".into(),
        });
    }
    let prev = opts.prev.as_deref().map(predump::Prev::load).transpose()?;
    let mut writer = write::ImageWriter::create(&opts.dir)?;
    fault::point("dump.freeze")?;
    let mut frozen = freeze::freeze(pid)?;
    crate::progress::phase("dumping", frozen.tasks.iter().filter(|t| !t.is_zombie()).count() as u64, 0);
    let frozen_at = Instant::now();
    let mut deferred = Vec::new();
    let file_opts = opts.files;
    let saved = match save(&mut frozen, &mut writer, &mut deferred, file_opts, opts.leave_running, prev.as_ref()) {
        Ok(s) => s,
        Err(e) => {
            frozen.release(&deferred);
            return Err(e);
        }
    };
    let inv = inventory::Inventory {
        externals: saved.externals.clone(),
        namespaces: namespaces.clone(),
        prev: prev.as_ref().map(|p| p.dir.to_string_lossy().into_owned()),
        ..inventory_here(pid)
    };
    // The rules blocking TCP connections go (dropping `tcp`) wherever the tree
    // runs on.
    let tcp = saved.tcp;
    if let Err(e) = fault::point("dump.before-inventory") {
        drop(tcp);
        frozen.release(&deferred);
        return Err(e.into());
    }
    let image_bytes = match writer.finish(inv) {
        Ok(b) => b,
        Err(e) => {
            drop(tcp);
            frozen.release(&deferred);
            return Err(e);
        }
    };
    let pids = frozen.tasks.iter().map(|t| t.pid).collect();
    let frozen_for = frozen_at.elapsed();
    if opts.leave_running {
        let r = tcp.resume();
        frozen.release(&deferred);
        r?;
    } else {
        // Killed in repair mode, the connections close without a word to
        // their peers; the rules blocking them stay until restore.
        if let Err(e) = tcp.keep() {
            frozen.release(&deferred);
            return Err(e);
        }
        if kill {
            frozen.kill()?;
        } else {
            // Stays frozen and traced until its namespace is killed from outside.
            std::mem::forget(frozen);
        }
    }
    // The image is whole: the pre-dump's trackers go, and the tree keeps no
    // trace of them (after it runs again: tracking costs it nothing meanwhile).
    if let Some(p) = &prev {
        p.release();
    }
    Ok(DumpReport {
        pids,
        pages_bytes: saved.pages_bytes,
        image_bytes,
        frozen: frozen_for,
        total: t0.elapsed(),
        externals: saved.externals,
    })
}

/// The inventory of a dump of the tree rooted at `pid` made here and now (this
/// rckpt, kernel and CPU), with nothing else in it yet.
fn inventory_here(pid: Pid) -> inventory::Inventory {
    inventory::Inventory {
        tool: format!("rckpt {}", env!("CARGO_PKG_VERSION")),
        created_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        kernel_release: nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
        root_pid: pid.as_raw(),
        images: Vec::new(),
        externals: Vec::new(),
        namespaces: Default::default(),
        pre_dump: false,
        prev: None,
        cpu: crate::arch::cpu::this_cpu(),
    }
}

struct Saved {
    pages_bytes: u64,
    externals: Vec<inventory::External>,
    tcp: files::TcpRepair,
}

/// Processes sharing what only threads share (an address space, the fd table,
/// fs state, signal handlers: CLONE_VM, CLONE_FILES, CLONE_FS, CLONE_SIGHAND
/// without CLONE_THREAD) would come back unshared: refuse them by name.
fn check_sharing(task: &freeze::FrozenTask, parent: &freeze::FrozenTask) -> Result<()> {
    let (a, b) = (task.threads[0], parent.threads[0]);
    for (kind, what) in [
        (crate::sys::task::KCMP_VM, "its address space (CLONE_VM)"),
        (crate::sys::task::KCMP_FILES, "its fd table (CLONE_FILES)"),
        (crate::sys::task::KCMP_FS, "its root, cwd and umask (CLONE_FS)"),
        (crate::sys::task::KCMP_SIGHAND, "its signal handlers (CLONE_SIGHAND)"),
    ] {
        if crate::sys::task::kcmp(a, b, kind)? {
            return Err(DumpError::Unsupported {
                pid: task.pid,
                what: format!("it shares {what} with its parent {}", parent.pid),
            });
        }
    }
    Ok(())
}

fn save(
    frozen: &mut freeze::Frozen,
    writer: &mut write::ImageWriter,
    deferred: &mut Vec<(Pid, i32)>,
    file_opts: files::FileOptions,
    leave_running: bool,
    prev: Option<&predump::Prev>,
) -> Result<Saved> {
    let tasks = frozen.tasks.clone();
    let all_pids: Vec<i32> = tasks.iter().map(|t| t.pid.as_raw()).collect();

    // Everything that can refuse, before anything is injected.
    let mut states = Vec::new();
    let mut plans = Vec::new();
    let mut file_table = files::FileTable::new(file_opts);
    file_table.leave_running = leave_running;
    for t in tasks.iter().filter(|t| !t.is_zombie()) {
        if let Some(pp) = t.ppid
            && let Some(parent) = tasks.iter().find(|p| p.pid == pp)
        {
            check_sharing(t, parent)?;
        }
        let state = core::collect(frozen, t)?;
        plans.push(mm::collect(t.pid, t.threads[0], &mut file_table)?);
        file_table.add_process(t.pid, t.threads[0])?;
        states.push(state);
    }
    let mut files_saved = file_table.finish()?;
    let tcp = std::mem::take(&mut files_saved.tcp);
    // Controlling terminals that are ptys of the tree: set up again by the
    // session leader and the foreground group's leader.
    let live_pids: Vec<i32> = states.iter().map(|s| s.pid.as_raw()).collect();
    for (st, t) in states.iter().zip(tasks.iter().filter(|t| !t.is_zombie())) {
        let s = crate::proc::stat(t.threads[0])?;
        let tty = files_saved.controlling_tty(st.pid, (st.sid, st.pgid), s.tty_nr, s.tpgid, &live_pids)?;
        if let Some(table) = files_saved.fdtables.iter_mut().find(|f| f.pid == st.pid.as_raw()) {
            table.tty = tty;
        }
    }
    // A session or group whose leader is gone is rebuilt at restore by a helper
    // task with the leader's pid, which creates the root inside it. Below the
    // root, tasks must be in their parent's session (or lead their own).
    // A session or group whose leader is gone, which a task does not inherit
    // from its parent, is rebuilt at restore by one helper per task, with the
    // leader's pid, created by the task's parent; what one helper cannot rebuild
    // is refused.
    let gone = |id: i32| !all_pids.contains(&id) && !files::leader_alive(id);
    let mut helpers: Vec<i32> = Vec::new();
    for (i, st) in states.iter().enumerate() {
        let parent = tasks.iter().find(|t| t.pid == st.pid).and_then(|t| t.ppid);
        let (psid, ppgid) = match parent.and_then(|pp| states.iter().find(|s| s.pid == pp)) {
            Some(p) => (p.sid, p.pgid),
            None if i == 0 => (0, 0),
            None => continue,
        };
        let sid_gone = st.sid != st.pid.as_raw() && st.sid != psid && gone(st.sid);
        let pgid_gone = st.pgid != st.pid.as_raw() && st.pgid != ppgid && gone(st.pgid);
        let refuse = |what: String| DumpError::Unsupported { pid: st.pid, what };
        if sid_gone && st.pgid != st.sid && st.pgid != st.pid.as_raw() {
            return Err(refuse(format!(
                "its session {} lost its leader, and its group {} is another",
                st.sid, st.pgid
            )));
        }
        let helper = if sid_gone {
            Some(st.sid)
        } else if pgid_gone {
            Some(st.pgid)
        } else {
            None
        };
        if let Some(h) = helper {
            if helpers.contains(&h) {
                return Err(refuse(format!("more than one task of the tree needs the gone leader {h} rebuilt")));
            }
            if i > 0 && st.sid != psid && !sid_gone {
                return Err(refuse(format!("its session {} is not its parent's", st.sid)));
            }
            helpers.push(h);
        }
    }
    fault::point("dump.collect")?;

    // Pages each child still shares with its parent: saved once, in the parent.
    let live: Vec<&freeze::FrozenTask> = tasks.iter().filter(|t| !t.is_zombie()).collect();
    let mut shared: Vec<Vec<rckpt_images::mm::PageRange>> = Vec::new();
    for t in &live {
        let parent = t.ppid.and_then(|pp| live.iter().position(|p| p.pid == pp));
        shared.push(match parent {
            Some(pi) => pages::shared_with_parent(t.threads[0], &plans[shared.len()], live[pi].threads[0], &plans[pi])?,
            None => Vec::new(),
        });
    }

    let mut pages_bytes = 0;
    let pipes = pages::Pipes::new()?;
    for (i, t) in tasks.iter().filter(|t| !t.is_zombie()).enumerate() {
        let state = &mut states[i];
        let plan = &plans[i];
        let daemon = t.threads[0];
        let mut tracee = frozen.tracees.remove(&daemon.as_raw()).expect("seized");
        let r = (|| -> Result<(Vec<rckpt_images::mm::PageExtent>, Vec<rckpt_images::mm::PageRange>)> {
            let mut inf = Infected::infect(&mut tracee, RemoteAddr(plan.syscall_insn), state.orig[0].clone())?;
            fault::point("dump.infected")?;
            let misc = inf.misc()?;
            let ids: Vec<i32> = state.proc_timers.iter().map(|t| t.id).collect();
            let timers = inf.timers(&ids)?;
            signals::apply_misc(state, &misc, &timers)?;
            for (j, &tid) in t.threads.iter().enumerate().skip(1) {
                let reply = inf.thread_info(frozen.tracee(tid), &state.orig[j])?;
                signals::apply_thread(state, &reply);
            }
            let name = rckpt_images::pages::file_name(t.pid.as_raw());
            let mut file = writer.create_file(&name, rckpt_images::Kind::Pages)?;
            let from = prev.and_then(|p| p.extents.get(&t.pid.as_raw())).map(|v| v.as_slice());
            let extents = pages::dump(&mut inf, t.pid, plan, &shared[i], from, &mut file, &pipes)?;
            fault::point("dump.pages")?;
            for s in inf.cure()? {
                deferred.push((daemon, s));
            }
            fault::point("dump.cured")?;
            Ok(extents)
        })();
        frozen.tracees.insert(daemon.as_raw(), tracee);
        let (extents, from_prev) = r?;
        let image = mm::image(t.pid, state, plan, extents, std::mem::take(&mut shared[i]), from_prev)?;
        pages_bytes += image.pages_len();
        writer.write_image(&rckpt_images::mm::file_name(t.pid.as_raw()), &image)?;
        writer.write_image(&rckpt_images::core::file_name(t.pid.as_raw()), &core::image(state))?;
        crate::progress::task_done(t.pid.as_raw(), image.pages_len());
    }

    let mut entries = Vec::new();
    for t in &tasks {
        let ppid = t.ppid.map(|p| p.as_raw()).unwrap_or(0);
        let entry = match t.zombie {
            Some(status) => {
                let s = crate::proc::stat(t.pid)?;
                pstree::TaskEntry {
                    pid: t.pid.as_raw(),
                    ppid,
                    pgid: s.pgrp,
                    sid: s.session,
                    threads: vec![],
                    state: pstree::TaskState::Zombie { status },
                }
            }
            None => {
                let st = states.iter().find(|s| s.pid == t.pid).expect("collected");
                let state = match (t.stop_signal, t.leader_exited) {
                    (_, true) => pstree::TaskState::LeaderExited,
                    (Some(signal), false) => pstree::TaskState::Stopped { signal },
                    (None, false) => pstree::TaskState::Running,
                };
                pstree::TaskEntry {
                    pid: t.pid.as_raw(),
                    ppid,
                    pgid: st.pgid,
                    sid: st.sid,
                    threads: t.threads.iter().map(|t| t.as_raw()).collect(),
                    state,
                }
            }
        };
        entries.push(entry);
    }
    writer.write_image(pstree::FILE_NAME, &pstree::PsTree { tasks: entries })?;
    writer.write_image(ifiles::FILE_NAME, &files_saved.image)?;
    for table in &files_saved.fdtables {
        writer.write_image(&fdinfo::file_name(table.pid), table)?;
    }
    for (i, data) in files_saved.contents.iter().enumerate() {
        use std::io::Write;
        let name = ifiles::content_file_name(i);
        let mut f = writer.create_file(&name, rckpt_images::Kind::Pages)?;
        f.write_all(data).map_err(|source| DumpError::Io { op: "write", path: name.into(), source })?;
    }
    Ok(Saved { pages_bytes, externals: files::externals(files_saved.externals, &states, &all_pids), tcp })
}

impl freeze::Frozen {
    /// Lets the tree run on: detach in saved order, and send again the stop
    /// signals that arrived while it was frozen.
    fn release(self, deferred: &[(Pid, i32)]) {
        let mut tracees = self.tracees;
        for t in &self.tasks {
            for tid in &t.threads {
                if let Some(tr) = tracees.remove(&tid.as_raw()) {
                    let _ = tr.detach(0);
                }
            }
        }
        for (_, tr) in tracees {
            let _ = tr.detach(0);
        }
        for &(pid, s) in deferred {
            if let Ok(sig) = Signal::try_from(s) {
                let _ = kill(pid, sig);
            }
        }
    }

    /// Kills the dumped tree (it is saved and fsynced) and waits for every
    /// thread to be gone.
    fn kill(self) -> Result<()> {
        for t in self.tasks.iter().filter(|t| !t.is_zombie()) {
            kill(t.pid, Signal::SIGKILL).map_err(|errno| SysError::Task {
                op: "kill the dumped task",
                pid: t.pid,
                errno,
            })?;
        }
        // A leader's exit is reported only once its other threads are reaped:
        // collect every thread's end as it comes.
        let mut left = self.tracees;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !left.is_empty() {
            let mut progressed = false;
            for tid in left.keys().copied().collect::<Vec<_>>() {
                match crate::sys::wait::try_wait_pid(Pid::from_raw(tid)) {
                    Ok(Some(s)) if crate::sys::ptrace::Stop::from_status(s).is_gone() => {
                        left.remove(&tid).map(|t| t.forget());
                        progressed = true;
                    }
                    Ok(Some(_)) => {
                        let _ = nix::sys::ptrace::cont(Pid::from_raw(tid), None);
                        progressed = true;
                    }
                    Ok(None) => {}
                    Err(_) => {
                        left.remove(&tid).map(|t| t.forget());
                        progressed = true;
                    }
                }
            }
            if Instant::now() >= deadline {
                let pid = Pid::from_raw(*left.keys().next().unwrap());
                return Err(SysError::Timeout { what: "exit after SIGKILL", pid, secs: 10.0 }.into());
            }
            if !progressed {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        Ok(())
    }
}

/// Finds the `syscall` instruction that remote syscalls run on in `pid`.
pub(crate) fn syscall_insn(vdso_start: u64, vdso: &[u8]) -> Option<u64> {
    parasite::find_syscall_insn(vdso).map(|off| vdso_start + off as u64)
}
