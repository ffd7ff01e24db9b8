//! Queries about other tasks that need raw syscalls.

use nix::errno::Errno;

use super::{Pid, Result, check, task_err};

/// get_robust_list(2) of thread `tid`: (head, len).
pub fn robust_list(tid: Pid) -> Result<(u64, u64)> {
    let mut head: u64 = 0;
    let mut len: usize = 0;
    // SAFETY: both out-pointers are valid for the call.
    check(unsafe { libc::syscall(libc::SYS_get_robust_list, tid.as_raw(), &mut head, &mut len) })
        .map_err(task_err("read robust list", tid))?;
    Ok((head, len as u64))
}

/// sched_getaffinity(2) of thread `tid`, as 64-bit words.
pub fn affinity(tid: Pid) -> Result<Vec<u64>> {
    let mut words = vec![0u64; 16];
    // SAFETY: the buffer is words.len()*8 bytes long.
    let n =
        check(unsafe { libc::syscall(libc::SYS_sched_getaffinity, tid.as_raw(), words.len() * 8, words.as_mut_ptr()) })
            .map_err(task_err("read CPU affinity", tid))?;
    words.truncate((n as usize).div_ceil(8));
    Ok(words)
}

/// sched_setaffinity(2) of this thread (or `tid`).
pub fn set_affinity(tid: Pid, words: &[u64]) -> Result<()> {
    // SAFETY: the buffer is words.len()*8 bytes long.
    check(unsafe { libc::syscall(libc::SYS_sched_setaffinity, tid.as_raw(), words.len() * 8, words.as_ptr()) })
        .map_err(task_err("set CPU affinity", tid))?;
    Ok(())
}

/// The nice value of thread `tid`.
pub fn nice(tid: Pid) -> Result<i32> {
    // getpriority returns 20 - nice through the raw syscall (never negative).
    // SAFETY: integers only.
    let r = check(unsafe { libc::syscall(libc::SYS_getpriority, libc::PRIO_PROCESS, tid.as_raw()) })
        .map_err(task_err("read nice value", tid))?;
    Ok(20 - r as i32)
}

/// The calling thread's securebits (PR_GET_SECUREBITS).
pub fn securebits() -> u32 {
    // SAFETY: integers only; it cannot fail.
    unsafe { libc::prctl(libc::PR_GET_SECUREBITS, 0, 0, 0, 0) as u32 }
}

pub fn tgkill(tgid: Pid, tid: Pid, sig: i32) -> Result<()> {
    // SAFETY: integers only.
    check(unsafe { libc::syscall(libc::SYS_tgkill, tgid.as_raw(), tid.as_raw(), sig) })
        .map_err(task_err("send a signal", tid))?;
    Ok(())
}

/// Queues `info` (a raw siginfo) to `pid` with rt_sigqueueinfo.
pub fn sigqueueinfo(pid: Pid, sig: i32, info: &[u8; 128]) -> Result<()> {
    // SAFETY: `info` is a full 128-byte siginfo.
    check(unsafe { libc::syscall(libc::SYS_rt_sigqueueinfo, pid.as_raw(), sig, info.as_ptr()) })
        .map_err(task_err("queue a signal", pid))?;
    Ok(())
}

pub fn errno_of(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// kcmp(KCMP_FILE): whether fd `a` of `pa` and fd `b` of `pb` are one open file
/// description (Linux 3.5).
pub fn kcmp_file(pa: Pid, a: i32, pb: Pid, b: i32) -> Result<bool> {
    const KCMP_FILE: i32 = 0;
    // SAFETY: integers only.
    let r = check(unsafe { libc::syscall(libc::SYS_kcmp, pa.as_raw(), pb.as_raw(), KCMP_FILE, a, b) })
        .map_err(task_err("compare files", pa))?;
    Ok(r == 0)
}

pub const KCMP_VM: i32 = 1;
pub const KCMP_FILES: i32 = 2;
pub const KCMP_FS: i32 = 3;
pub const KCMP_SIGHAND: i32 = 4;

/// kcmp(2) of a per-task resource (KCMP_VM, KCMP_FILES, ...): whether `a` and
/// `b` share it.
pub fn kcmp(a: Pid, b: Pid, kind: i32) -> Result<bool> {
    // SAFETY: integers only.
    let r = check(unsafe { libc::syscall(libc::SYS_kcmp, a.as_raw(), b.as_raw(), kind, 0, 0) })
        .map_err(task_err("compare tasks", a))?;
    Ok(r == 0)
}

/// Makes this process a child subreaper (Linux 3.4): orphans below it come
/// back to it, not to init.
pub fn set_child_subreaper() -> Result<()> {
    // SAFETY: integers only.
    check(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } as libc::c_long)
        .map_err(super::os_err("become a child subreaper"))?;
    Ok(())
}
