//! PAGEMAP_SCAN (Linux 6.7): the kernel walks the page tables and returns only the
//! runs of pages in the asked categories, so the cost follows resident memory, not
//! the size of the address space (reading /proc/PID/pagemap costs 8 bytes a page).

use std::fs::File;
use std::os::fd::AsRawFd;

use nix::errno::Errno;

use super::{Pid, Result, SysError};

pub const PAGE_IS_WPALLOWED: u64 = 1 << 0;
pub const PAGE_IS_WRITTEN: u64 = 1 << 1;
pub const PAGE_IS_FILE: u64 = 1 << 2;
pub const PAGE_IS_PRESENT: u64 = 1 << 3;
pub const PAGE_IS_SWAPPED: u64 = 1 << 4;
pub const PAGE_IS_PFNZERO: u64 = 1 << 5;
pub const PAGE_IS_HUGE: u64 = 1 << 6;

#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct PageRegion {
    pub start: u64,
    pub end: u64,
    pub categories: u64,
}

#[repr(C)]
#[derive(Default)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

// _IOWR('f', 16, struct pm_scan_arg)
const PAGEMAP_SCAN: libc::c_ulong =
    (3 << 30) | ((std::mem::size_of::<PmScanArg>() as libc::c_ulong) << 16) | ((b'f' as libc::c_ulong) << 8) | 16;

/// What to look for: pages in every category of `required`, in none of
/// `excluded`, and in at least one of `any_of`.
#[derive(Debug, Clone, Copy)]
pub struct Query {
    pub required: u64,
    pub excluded: u64,
    pub any_of: u64,
}

pub struct Pagemap {
    pid: Pid,
    file: File,
}

impl Pagemap {
    pub fn open(pid: Pid) -> Result<Pagemap> {
        let file = File::open(format!("/proc/{pid}/pagemap")).map_err(|e| SysError::Task {
            op: "open pagemap",
            pid,
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?;
        Ok(Pagemap { pid, file })
    }

    /// The raw /proc/PID/pagemap entries of `n` pages from `start` (bit 63:
    /// present, bits 0-54: the page frame number, zero without CAP_SYS_ADMIN).
    /// For pages already known present only: the cost is 8 bytes per page read.
    pub fn entries(&self, start: u64, n: usize) -> Result<Vec<u64>> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; n * 8];
        self.file.read_exact_at(&mut buf, start / 4096 * 8).map_err(|e| SysError::Task {
            op: "read pagemap",
            pid: self.pid,
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?;
        Ok(buf.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect())
    }

    /// Appends to `out` the runs of matching pages in [start, end).
    pub fn scan(&self, start: u64, end: u64, q: Query, out: &mut Vec<PageRegion>) -> Result<()> {
        let mut buf = vec![PageRegion::default(); 512];
        let mut at = start;
        while at < end {
            let mut arg = PmScanArg {
                size: std::mem::size_of::<PmScanArg>() as u64,
                start: at,
                end,
                vec: buf.as_mut_ptr() as u64,
                vec_len: buf.len() as u64,
                category_inverted: q.excluded,
                category_mask: q.required | q.excluded,
                category_anyof_mask: q.any_of,
                return_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_FILE | PAGE_IS_PFNZERO | PAGE_IS_HUGE,
                ..Default::default()
            };
            // SAFETY: `arg` describes `buf` (vec, vec_len) which outlives the call; the
            // kernel writes at most vec_len regions and updates walk_end.
            let n = unsafe { libc::ioctl(self.file.as_raw_fd(), PAGEMAP_SCAN, &mut arg) };
            if n < 0 {
                return Err(super::task_err("scan pagemap", self.pid)(Errno::last()));
            }
            for r in &buf[..n as usize] {
                match out.last_mut() {
                    Some(last) if last.end == r.start => last.end = r.end,
                    _ => out.push(*r),
                }
            }
            if arg.walk_end <= at {
                // The walk made no progress: pages would be silently missed.
                return Err(super::task_err("scan pagemap", self.pid)(Errno::EIO));
            }
            at = arg.walk_end;
        }
        Ok(())
    }
}
