//! A task's descriptors: the link target of /proc/PID/fd/N and its fdinfo.

use nix::unistd::Pid;

use super::{ProcError, Result, path, read_link, read_string};

#[derive(Debug, Clone)]
pub struct FdInfo {
    pub fd: i32,
    /// readlink of /proc/PID/fd/N: a path, "pipe:[ino]", "socket:[ino]", "anon_inode:...".
    pub link: String,
    pub pos: u64,
    /// open(2) flags, O_CLOEXEC included when set on this fd.
    pub flags: u32,
    pub mnt_id: u64,
    /// Other lines of fdinfo (kind specific: eventfd-count, tfd, inotify ...).
    pub extra: Vec<(String, String)>,
}

pub fn list(pid: Pid) -> Result<Vec<i32>> {
    let p = path(pid, "fd");
    let rd = std::fs::read_dir(&p).map_err(|source| ProcError::Io { path: p.clone(), source })?;
    let mut v: Vec<i32> = rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    v.sort_unstable();
    Ok(v)
}

pub fn info(pid: Pid, fd: i32) -> Result<FdInfo> {
    let link = read_link(path(pid, &format!("fd/{fd}")))?;
    let p = path(pid, &format!("fdinfo/{fd}"));
    let text = read_string(p.clone())?;
    let mut out = FdInfo { fd, link, pos: 0, flags: 0, mnt_id: 0, extra: Vec::new() };
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        let bad = |what: &str| ProcError::Parse { path: p.clone(), what: format!("{what}: {v:?}") };
        match k {
            "pos" => out.pos = v.parse().map_err(|_| bad("pos"))?,
            "flags" => out.flags = u32::from_str_radix(v, 8).map_err(|_| bad("flags"))?,
            "mnt_id" => out.mnt_id = v.parse().map_err(|_| bad("mnt_id"))?,
            _ => out.extra.push((k.to_string(), v.to_string())),
        }
    }
    Ok(out)
}
