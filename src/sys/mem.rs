//! Another task's memory through /proc/PID/mem: pread does not pin pages (so shared
//! copy-on-write pages stay shared) and reads PROT_NONE areas too.

use std::fs::File;
use std::os::unix::fs::FileExt;

use nix::errno::Errno;

use super::{Pid, RemoteAddr, Result, SysError};

pub struct ProcMem {
    pid: Pid,
    file: File,
}

impl ProcMem {
    pub fn open(pid: Pid, write: bool) -> Result<ProcMem> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(write)
            .open(format!("/proc/{pid}/mem"))
            .map_err(|e| io_err("open /proc/PID/mem", pid, e))?;
        Ok(ProcMem { pid, file })
    }

    pub fn read_exact(&self, addr: RemoteAddr, buf: &mut [u8]) -> Result<()> {
        self.file.read_exact_at(buf, addr.get()).map_err(|e| io_err("read task memory", self.pid, e))
    }

    pub fn read_u64(&self, addr: RemoteAddr) -> Result<u64> {
        let mut b = [0u8; 8];
        self.read_exact(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    pub fn write_all(&self, addr: RemoteAddr, buf: &[u8]) -> Result<()> {
        self.file.write_all_at(buf, addr.get()).map_err(|e| io_err("write task memory", self.pid, e))
    }

    pub fn file(&self) -> &File {
        &self.file
    }
}

fn io_err(op: &'static str, pid: Pid, e: std::io::Error) -> SysError {
    let errno = Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
    if errno == Errno::ESRCH { SysError::TraceeDied(pid) } else { SysError::Task { op, pid, errno } }
}
