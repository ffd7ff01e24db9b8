//! Per-thread filesystem credentials, so files named by an image are opened with the
//! rights of the task that had them open, never as root (ARCHITECTURE rule 7).
//!
//! setfsuid, setfsgid and setgroups are per thread in the kernel; glibc broadcasts
//! setgroups to every thread, so the raw syscalls are used here.

use nix::errno::Errno;

use super::{Result, os_err};

pub struct FsCreds {
    /// Per-thread state: the guard must drop on the thread that switched.
    _not_send: std::marker::PhantomData<*const ()>,
    old_uid: u32,
    old_gid: u32,
    /// The groups to put back, when they were changed.
    old_groups: Option<Vec<libc::gid_t>>,
}

fn raw_setfsuid(uid: u32) -> u32 {
    // SAFETY: integer in, previous fsuid out.
    unsafe { libc::syscall(libc::SYS_setfsuid, uid) as u32 }
}

fn raw_setfsgid(gid: u32) -> u32 {
    // SAFETY: integer in, previous fsgid out.
    unsafe { libc::syscall(libc::SYS_setfsgid, gid) as u32 }
}

fn raw_setgroups(groups: &[libc::gid_t]) -> std::result::Result<(), Errno> {
    // SAFETY: the pointer and length describe a live slice.
    let r = unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) };
    if r < 0 { Err(Errno::last()) } else { Ok(()) }
}

fn current_groups() -> std::result::Result<Vec<libc::gid_t>, Errno> {
    // SAFETY: size 0 only asks for the count.
    let n = unsafe { libc::syscall(libc::SYS_getgroups, 0, std::ptr::null_mut::<libc::gid_t>()) };
    if n < 0 {
        return Err(Errno::last());
    }
    let mut v = vec![0; n as usize];
    // SAFETY: the buffer holds `n` entries.
    let n = unsafe { libc::syscall(libc::SYS_getgroups, v.len(), v.as_mut_ptr()) };
    if n < 0 {
        return Err(Errno::last());
    }
    v.truncate(n as usize);
    Ok(v)
}

impl FsCreds {
    /// Switches this thread's fsuid, fsgid and groups until the guard drops.
    /// setgroups needs CAP_SETGID even to set the same groups again: it is
    /// left out when they are the thread's already (an unprivileged restore of
    /// the invoker's own tasks).
    pub fn switch(uid: u32, gid: u32, groups: &[u32]) -> Result<FsCreds> {
        let current = current_groups().map_err(os_err("read groups"))?;
        let (mut a, mut b) = (current.clone(), groups.to_vec());
        a.sort_unstable();
        a.dedup();
        b.sort_unstable();
        b.dedup();
        let old_groups = if a == b {
            None
        } else {
            raw_setgroups(groups).map_err(os_err("set groups for opening files"))?;
            Some(current)
        };
        let old_gid = raw_setfsgid(gid);
        let old_uid = raw_setfsuid(uid);
        // setfs*id report no error: read back to check it took.
        if raw_setfsuid(u32::MAX) != uid || raw_setfsgid(u32::MAX) != gid {
            let guard = FsCreds { _not_send: std::marker::PhantomData, old_uid, old_gid, old_groups };
            drop(guard);
            return Err(os_err("switch filesystem credentials")(Errno::EPERM));
        }
        Ok(FsCreds { _not_send: std::marker::PhantomData, old_uid, old_gid, old_groups })
    }
}

impl Drop for FsCreds {
    fn drop(&mut self) {
        raw_setfsuid(self.old_uid);
        raw_setfsgid(self.old_gid);
        if let Some(g) = &self.old_groups {
            let _ = raw_setgroups(g);
        }
    }
}
