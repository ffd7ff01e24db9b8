//! Mappings in rckpt's own address space at chosen addresses, for the restorer blob
//! that its clone3 child runs. Unmapped on drop.

use nix::errno::Errno;

use super::{Result, os_err};

pub struct LocalMapping {
    addr: usize,
    len: usize,
}

impl LocalMapping {
    /// Maps `len` bytes of fresh anonymous memory exactly at `addr`, failing with
    /// EEXIST if anything is there (MAP_FIXED_NOREPLACE, Linux 4.17).
    pub fn anon_at(addr: u64, len: u64, shared: bool) -> Result<LocalMapping> {
        let flags =
            libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE | if shared { libc::MAP_SHARED } else { libc::MAP_PRIVATE };
        // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping, so no
        // memory that Rust code references can be affected.
        let p = unsafe {
            libc::mmap(addr as *mut libc::c_void, len as usize, libc::PROT_READ | libc::PROT_WRITE, flags, -1, 0)
        };
        if p == libc::MAP_FAILED {
            return Err(os_err("map the restorer blob")(Errno::last()));
        }
        if p as u64 != addr {
            // Kernels before 4.17 ignore the flag and map elsewhere.
            // SAFETY: `p` is the mapping we just created and nothing refers to it.
            unsafe { libc::munmap(p, len as usize) };
            return Err(os_err("map the restorer blob")(Errno::EEXIST));
        }
        Ok(LocalMapping { addr: addr as usize, len: len as usize })
    }

    pub fn addr(&self) -> u64 {
        self.addr as u64
    }

    pub fn len(&self) -> u64 {
        self.len as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is readable and writable until `protect` is called
        // (which takes `&mut self`, so no slice outlives it) and lives as long as self.
        unsafe { std::slice::from_raw_parts_mut(self.addr as *mut u8, self.len) }
    }

    /// Changes the protection of [off, off+len) of this mapping.
    pub fn protect(&mut self, off: u64, len: u64, prot: i32) -> Result<()> {
        assert!(off + len <= self.len as u64);
        // SAFETY: the range lies inside our own mapping and no reference into it is live.
        let r = unsafe { libc::mprotect((self.addr + off as usize) as *mut libc::c_void, len as usize, prot) };
        if r < 0 {
            return Err(os_err("protect the restorer blob")(Errno::last()));
        }
        Ok(())
    }
}

impl Drop for LocalMapping {
    fn drop(&mut self) {
        // SAFETY: this guard owns the mapping; slices into it cannot outlive `self`.
        unsafe { libc::munmap(self.addr as *mut libc::c_void, self.len) };
    }
}

impl LocalMapping {
    /// Stores `v` at byte offset `off` and wakes every waiter on that word. The
    /// mapping is MAP_SHARED with the blob's task, so a non-private futex is used.
    pub fn store_and_wake(&self, off: usize, v: u32) {
        assert!(off + 4 <= self.len && off % 4 == 0);
        let p = (self.addr + off) as *mut u32;
        // SAFETY: in bounds and aligned (checked); another process may access the
        // word concurrently, hence the atomic view.
        unsafe {
            std::sync::atomic::AtomicU32::from_ptr(p).store(v, std::sync::atomic::Ordering::SeqCst);
            libc::syscall(libc::SYS_futex, p, libc::FUTEX_WAKE, i32::MAX, 0, 0, 0);
        }
    }

    /// The u64 at byte offset `off`, loaded whole (the blob's task may be
    /// storing it at the same time).
    pub fn load_u64(&self, off: usize) -> u64 {
        assert!(off + 8 <= self.len && off % 8 == 0);
        // SAFETY: in bounds and aligned (checked); the atomic view makes a
        // concurrent store from the other process never seen half done.
        unsafe {
            std::sync::atomic::AtomicU64::from_ptr((self.addr + off) as *mut u64)
                .load(std::sync::atomic::Ordering::Acquire)
        }
    }

    /// A copy of the bytes at [off, off+len) (the blob writes into shared pages
    /// concurrently, so no reference into them is handed out).
    pub fn read_bytes(&self, off: usize, len: usize) -> Vec<u8> {
        assert!(off + len <= self.len);
        let mut v = vec![0u8; len];
        // SAFETY: in bounds; a volatile byte copy tolerates concurrent writers.
        unsafe {
            for (i, b) in v.iter_mut().enumerate() {
                *b = std::ptr::read_volatile((self.addr + off + i) as *const u8);
            }
        }
        v
    }

    /// Writes `bytes` at `off` (before the blob's task exists or while it waits).
    pub fn write_bytes(&self, off: usize, bytes: &[u8]) {
        assert!(off + bytes.len() <= self.len);
        // SAFETY: in bounds; the mapping is ours and writable.
        unsafe {
            for (i, b) in bytes.iter().enumerate() {
                std::ptr::write_volatile((self.addr + off + i) as *mut u8, *b);
            }
        }
    }
}
