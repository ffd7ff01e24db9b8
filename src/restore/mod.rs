//! Restore: read and validate every image file, check this machine against the
//! image, then create the task with its saved pid, run the trampoline in it, and
//! release it when it is parked at its final rt_sigreturn. Any failure kills what
//! was created (and PTRACE_O_EXITKILL covers a dying rckpt).

pub mod abi;
pub mod check;
pub mod files;
pub mod mm;
pub mod read;
pub mod task;
pub mod validate;

use std::os::fd::RawFd;
use std::path::PathBuf;

use nix::errno::Errno;
use rckpt_images::ImageError;

use crate::fault;
use crate::sys::{Pid, SysError};

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("no image in {dir}")]
    NoImage { dir: PathBuf },
    #[error("{dir} holds an incomplete checkpoint (no inventory.img: the dump did not finish)")]
    Incomplete { dir: PathBuf },
    #[error("image file {file}: {source}")]
    Image { file: String, source: ImageError },
    #[error("the image is inconsistent: {0}")]
    Invalid(String),
    #[error("the image uses resources from outside the tree that were not bound: {}; bind each with --inherit-fd 'fd[N]:KEY' (or --shell-job for terminals, sessions and groups)", .missing.join(", "))]
    Unbound { missing: Vec<String> },
    #[error("this machine does not match the image: {0}")]
    Mismatch(String),
    #[error("not permitted: {0}")]
    Privilege(String),
    #[error("{0}")]
    Usage(String),
    #[error("pid {pid} is in use by a running process")]
    PidTaken { pid: i32 },
    #[error("failed to {op} {path}: {source}")]
    Io { op: &'static str, path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Sys(#[from] SysError),
    #[error("task {pid} failed at step '{step}' ({detail:#x}): {errno}")]
    Step { pid: i32, step: &'static str, detail: u64, errno: Errno },
    #[error(
        "{file}: the page extent at {addr:#x} fails its checksum (the pages file is damaged); task {pid} was not released"
    )]
    PagesCorrupt { file: String, addr: u64, pid: i32 },
    #[error("task {pid} stopped unexpectedly during restore ({stop}) at step '{step}'")]
    Crashed { pid: i32, step: &'static str, stop: String },
    #[error("task {pid}: restored memory layout differs from the image: {what}")]
    Layout { pid: i32, what: String },
    #[error(transparent)]
    Fault(#[from] fault::Fault),
}

pub type Result<T> = std::result::Result<T, RestoreError>;

/// `--inherit-fd fd[N]:KEY`: rckpt's fd N serves the external KEY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InheritFd {
    pub fd: RawFd,
    pub key: String,
}

impl InheritFd {
    pub fn parse(s: &str) -> Result<InheritFd> {
        let bad = || RestoreError::Usage(format!("--inherit-fd takes fd[N]:KEY, not {s:?}"));
        let rest = s.strip_prefix("fd[").ok_or_else(bad)?;
        let (n, key) = rest.split_once("]:").ok_or_else(bad)?;
        let fd: RawFd = n.parse().map_err(|_| bad())?;
        if fd < 0 || key.is_empty() {
            return Err(bad());
        }
        Ok(InheritFd { fd, key: key.to_string() })
    }
}

#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub dir: PathBuf,
    pub detach: bool,
    pub inherit: Vec<InheritFd>,
    pub shell_job: bool,
}

impl RestoreOptions {
    pub fn new(dir: PathBuf, detach: bool, inherit: &[String], shell_job: bool) -> Result<RestoreOptions> {
        let inherit = inherit.iter().map(|s| InheritFd::parse(s)).collect::<Result<_>>()?;
        Ok(RestoreOptions { dir, detach, inherit, shell_job })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Released and left running (`--detach`).
    Detached(Pid),
    /// The restored root ended with this status (exit code, or 128 + signal).
    Exited(u8),
}

/// Restores the image in `opts.dir` and returns the released root, which is a
/// child of this process.
pub fn restore(opts: &RestoreOptions) -> Result<Pid> {
    crate::sys::signal::catch_interrupts()?;
    let set = read::read(&opts.dir)?;
    crate::progress::phase(
        "restoring",
        set.pstree.tasks.iter().filter(|t| !t.state.is_zombie()).count() as u64,
        set.mms.values().map(|m| m.pages_len()).sum(),
    );
    validate::check_host(&set, opts)?;
    fault::point("restore.validated")?;
    // Before any PID namespace for children: the kernel refuses threads after.
    let checker = check::Worker::start();
    let n = &set.inventory.namespaces;
    if *n != rckpt_images::inventory::Namespaces::default() {
        fresh_namespaces(n)?;
    }
    if !n.pid {
        for h in task::helper_pids(&set) {
            validate::wait_pid_free(h)?;
        }
        for t in &set.pstree.tasks {
            validate::wait_pid_free(t.pid)?;
            for &tid in &t.threads {
                validate::wait_pid_free(tid)?;
            }
        }
    }
    let prev = read::read_prev(&set)?;
    let prepared = task::prepare(&set, opts, prev.as_ref(), checker.is_some())?;
    let root = task::create_and_release(prepared, checker.as_ref())?;
    // The tree runs with its connections: let their peers' packets through.
    // The tree is released already, so a failure here is only reported.
    if let Err(e) = files::unlock_tcp(&set.files) {
        eprintln!("rckpt: warning: restored TCP connections are still blocked: {e}");
    }
    Ok(root)
}

/// Makes the tree's namespaces afresh: rckpt enters new network, UTS and IPC
/// namespaces itself (so the sockets it makes are the tree's), and a new PID
/// namespace for its children, whose first is the tree's init.
fn fresh_namespaces(n: &rckpt_images::inventory::Namespaces) -> Result<()> {
    use nix::sched::CloneFlags as F;
    let mut flags = F::empty();
    for (on, f) in [
        (n.net, F::CLONE_NEWNET),
        (n.uts.is_some(), F::CLONE_NEWUTS),
        (n.ipc, F::CLONE_NEWIPC),
        (n.pid, F::CLONE_NEWPID),
    ] {
        if on {
            flags |= f;
        }
    }
    crate::sys::ns::unshare(flags)?;
    if n.net {
        crate::sys::ns::loopback_up()?;
    }
    if let Some(u) = &n.uts {
        crate::sys::ns::set_names(&u.hostname, &u.domainname)?;
    }
    Ok(())
}

/// Waits for a restored root and returns its status (exit code, or 128 + signal).
pub fn wait_exit(pid: Pid) -> Result<Outcome> {
    task::wait_exit(pid)
}
