//! Dump: freeze the tree, collect every task's state (/proc, ptrace, the parasite),
//! write pages and image files, fsync, write the inventory last, then kill the tree
//! or let it run on. Any failure cures and resumes the tree, unharmed, and removes
//! what was written.

pub mod core;
pub mod files;
pub mod freeze;
pub mod mm;
pub mod pages;
pub mod signals;
pub mod write;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use rckpt_images::{ImageError, fdinfo, files as ifiles, inventory, pstree};

use crate::fault;
use crate::parasite::{self, Infected, OrigState, ParasiteError};
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
    #[error("image directory {dir}: {why}")]
    BadImageDir { dir: PathBuf, why: &'static str },
    #[error("failed to {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
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
}

pub type Result<T> = std::result::Result<T, DumpError>;

#[derive(Debug, Clone)]
pub struct DumpOptions {
    pub pid: Pid,
    pub dir: PathBuf,
    /// Resume the tree after the dump instead of killing it.
    pub leave_running: bool,
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

/// Dumps the tree rooted at `opts.pid`.
pub fn dump(opts: &DumpOptions) -> Result<DumpReport> {
    let t0 = Instant::now();
    let pid = opts.pid;
    if pid.as_raw() <= 1 || pid == nix::unistd::getpid() {
        return Err(DumpError::Refused {
            pid,
            why: "it is init or rckpt itself".into(),
        });
    }
    if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
        return Err(DumpError::NoTask(pid));
    }
    let mut writer = write::ImageWriter::create(&opts.dir)?;
    fault::point("dump.freeze")?;
    let mut frozen = freeze::freeze(pid)?;
    let frozen_at = Instant::now();

    // Everything that can refuse, before anything is injected.
    let mut task = core::collect(&mut frozen.tracee, frozen.stop_signal)?;
    let mm_plan = mm::collect(pid, &task)?;
    let fd_plan = files::collect(pid)?;
    fault::point("dump.collect")?;

    let orig = OrigState {
        regs: task.regs_raw,
        xstate: task.xstate.clone(),
        sigmask: task.blocked,
    };
    let insn = RemoteAddr(mm_plan.syscall_insn);
    let mut infected = Infected::infect(&mut frozen.tracee, insn, orig)?;
    fault::point("dump.infected")?;
    let misc = infected.misc()?;
    let timer_ids: Vec<i32> = task.proc_timers.iter().map(|t| t.id).collect();
    let timers = infected.timers(&timer_ids)?;
    signals::apply_misc(&mut task, &misc, &timers)?;
    let mut pages_file = writer.create_file(
        &rckpt_images::pages::file_name(pid.as_raw()),
        rckpt_images::Kind::Pages,
    )?;
    let extents = pages::dump(&mut infected, &mm_plan, &mut pages_file)?;
    fault::point("dump.pages")?;
    let deferred = infected.cure()?;
    fault::point("dump.cured")?;

    let leave = frozen;
    let result = (|| -> Result<u64> {
        let mm_image = mm::image(pid, &task, &mm_plan, extents)?;
        let pages_bytes = mm_image.pages_len();
        let core_image = core::image(&task);
        let (files_image, fd_table) = files::images(pid, &fd_plan);
        let tree = pstree::PsTree {
            tasks: vec![pstree::TaskEntry {
                pid: pid.as_raw(),
                ppid: 0,
                pgid: task.pgid,
                sid: task.sid,
                threads: vec![pid.as_raw()],
                state: match task.stop_signal {
                    Some(signal) => pstree::TaskState::Stopped { signal },
                    None => pstree::TaskState::Running,
                },
            }],
        };
        writer.write_image(pstree::FILE_NAME, &tree)?;
        writer.write_image(&rckpt_images::core::file_name(pid.as_raw()), &core_image)?;
        writer.write_image(&rckpt_images::mm::file_name(pid.as_raw()), &mm_image)?;
        writer.write_image(ifiles::FILE_NAME, &files_image)?;
        writer.write_image(&fdinfo::file_name(pid.as_raw()), &fd_table)?;
        Ok(pages_bytes)
    })();
    let pages_bytes = match result {
        Ok(b) => b,
        Err(e) => {
            leave.release(&deferred);
            return Err(e);
        }
    };
    let externals = files::externals(&fd_plan, &task);
    let inv = inventory::Inventory {
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
        externals: externals.clone(),
    };
    if let Err(e) = fault::point("dump.before-inventory") {
        leave.release(&deferred);
        return Err(e.into());
    }
    let image_bytes = match writer.finish(inv) {
        Ok(b) => b,
        Err(e) => {
            leave.release(&deferred);
            return Err(e);
        }
    };
    let frozen_for;
    if opts.leave_running {
        leave.release(&deferred);
        frozen_for = frozen_at.elapsed();
    } else {
        frozen_for = frozen_at.elapsed();
        leave.kill()?;
    }
    Ok(DumpReport {
        pids: vec![pid],
        pages_bytes,
        image_bytes,
        frozen: frozen_for,
        total: t0.elapsed(),
        externals,
    })
}

impl freeze::Frozen {
    /// Lets the tree run on: detach, and send again the stop signals that arrived
    /// while it was frozen.
    fn release(self, deferred: &[i32]) {
        let pid = self.tracee.pid();
        let _ = self.tracee.detach(0);
        for &s in deferred {
            if let Ok(sig) = Signal::try_from(s) {
                let _ = kill(pid, sig);
            }
        }
    }

    /// Kills the dumped tree (it is saved and fsynced) and waits for it to die.
    fn kill(self) -> Result<()> {
        let pid = self.tracee.pid();
        kill(pid, Signal::SIGKILL).map_err(|errno| SysError::Task {
            op: "kill the dumped task",
            pid,
            errno,
        })?;
        let mut t = self.tracee;
        loop {
            match t.wait(Duration::from_secs(10), "exit after SIGKILL") {
                Ok(s) if s.is_gone() => break,
                Ok(_) => {
                    let _ = t.resume(crate::sys::ptrace::Resume::Cont, 0);
                }
                Err(SysError::TraceeDied(_)) => break,
                Err(e) => return Err(e.into()),
            }
        }
        t.forget();
        Ok(())
    }
}

/// Finds the `syscall` instruction that remote syscalls run on in `pid`.
pub(crate) fn syscall_insn(vdso_start: u64, vdso: &[u8]) -> Option<u64> {
    parasite::find_syscall_insn(vdso).map(|off| vdso_start + off as u64)
}
