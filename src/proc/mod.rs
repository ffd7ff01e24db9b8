//! /proc readers: procfs for stat and status, and what it lacks here (smaps with
//! VmFlags as the kernel prints them, fd links and fdinfo, timers, auxv).

pub mod fds;
pub mod maps;
pub mod timers;

use std::path::PathBuf;

use nix::unistd::Pid;

#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("failed to read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("failed to parse {path}: {what}")]
    Parse { path: PathBuf, what: String },
    #[error("failed to read /proc for task {pid}: {source}")]
    Procfs { pid: Pid, source: procfs::ProcError },
}

pub type Result<T> = std::result::Result<T, ProcError>;

pub fn path(pid: Pid, rest: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/{rest}"))
}

pub fn read_string(p: PathBuf) -> Result<String> {
    std::fs::read_to_string(&p).map_err(|source| ProcError::Io { path: p, source })
}

pub fn read_bytes(p: PathBuf) -> Result<Vec<u8>> {
    std::fs::read(&p).map_err(|source| ProcError::Io { path: p, source })
}

pub fn read_link(p: PathBuf) -> Result<String> {
    std::fs::read_link(&p).map(|l| l.to_string_lossy().into_owned()).map_err(|source| ProcError::Io { path: p, source })
}

pub fn stat(pid: Pid) -> Result<procfs::process::Stat> {
    procfs::process::Process::new(pid.as_raw())
        .and_then(|p| p.stat())
        .map_err(|source| ProcError::Procfs { pid, source })
}

/// Status of one thread (credentials and masks are per thread).
pub fn thread_status(pid: Pid, tid: Pid) -> Result<procfs::process::Status> {
    procfs::process::Process::new(pid.as_raw())
        .and_then(|p| p.task_from_tid(tid.as_raw()))
        .and_then(|t| t.status())
        .map_err(|source| ProcError::Procfs { pid, source })
}

pub fn thread_stat(pid: Pid, tid: Pid) -> Result<procfs::process::Stat> {
    procfs::process::Process::new(pid.as_raw())
        .and_then(|p| p.task_from_tid(tid.as_raw()))
        .and_then(|t| t.stat())
        .map_err(|source| ProcError::Procfs { pid, source })
}

/// Thread ids of a task, leader first.
pub fn threads(pid: Pid) -> Result<Vec<Pid>> {
    let p = path(pid, "task");
    let rd = std::fs::read_dir(&p).map_err(|source| ProcError::Io { path: p.clone(), source })?;
    let mut v: Vec<i32> = rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    v.sort_unstable();
    if let Some(i) = v.iter().position(|t| *t == pid.as_raw()) {
        v.remove(i);
        v.insert(0, pid.as_raw());
    }
    Ok(v.into_iter().map(Pid::from_raw).collect())
}

/// Children of every thread of a task (/proc/PID/task/TID/children).
pub fn children(pid: Pid) -> Result<Vec<Pid>> {
    let mut out = Vec::new();
    for tid in threads(pid)? {
        let s = read_string(path(pid, &format!("task/{tid}/children")))?;
        out.extend(s.split_whitespace().filter_map(|w| w.parse().ok()).map(Pid::from_raw));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The saved auxv as (type, value) words, AT_NULL included.
pub fn auxv(pid: Pid) -> Result<Vec<u64>> {
    let b = read_bytes(path(pid, "auxv"))?;
    let mut v: Vec<u64> = b.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect();
    if let Some(end) = v.chunks_exact(2).position(|p| p[0] == 0) {
        v.truncate(end * 2 + 2);
    }
    Ok(v)
}

pub fn personality(pid: Pid) -> Result<u32> {
    let p = path(pid, "personality");
    let s = read_string(p.clone())?;
    u32::from_str_radix(s.trim(), 16).map_err(|e| ProcError::Parse { path: p, what: e.to_string() })
}

pub fn cap_last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(40)
}
