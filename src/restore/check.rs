//! Long page extents checked in place, while the tasks still read the rest.
//!
//! A process's trampoline reads its extents in order and counts the bytes it has
//! placed in its Control (`placed`). Extents of `mm::CHECKED_BY_RCKPT_FROM` bytes
//! or more it does not checksum itself: this thread reads what is placed through
//! /proc/PID/mem (which reaches memory of any protection, so the trampoline may
//! protect its VMAs meanwhile) and computes their crc32c on another CPU. On a
//! restore of 1 GiB that is about 15% of the task's own time taken off it.
//!
//! The rule holds as before: every page is checked after it is read into place and
//! before any task runs its own code. The process waits for the verdict (its
//! Control's `checked`) before anything else writes into its memory (the frames
//! of its threads, the tids the kernel stores for its children), and
//! `task::create_and_release` waits for its verdict before the final rt_sigreturns.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use super::abi::{BlobExtent, CHECKED_BAD, CHECKED_OK, CONTROL_SIZE, Control, EXTENT_RCKPT_CHECKS};
use super::{RestoreError, Result};
use crate::sys::blobmap::LocalMapping;
use crate::sys::mem::ProcMem;
use crate::sys::{Pid, RemoteAddr};

/// The thread the checks run on, started before rckpt enters a PID namespace for
/// its children (the restore into a fresh one): from then on the kernel refuses
/// it new threads (clone(CLONE_THREAD) is EINVAL).
pub struct Worker {
    tx: Option<Sender<Box<dyn FnOnce() + Send>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    /// None if no thread can be had: the tasks then check their pages themselves.
    pub fn start() -> Option<Worker> {
        let (tx, rx) = std::sync::mpsc::channel::<Box<dyn FnOnce() + Send>>();
        let thread = std::thread::Builder::new()
            .name("page checker".into())
            .spawn(move || {
                for work in rx {
                    work();
                }
            })
            .ok()?;
        Some(Worker { tx: Some(tx), thread: Some(thread) })
    }

    /// Runs `f` on the worker; its result arrives on the returned channel (which
    /// reports a disconnection if `f` panicked).
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Receiver<T> {
        let (done, result) = std::sync::mpsc::channel();
        if let Some(tx) = &self.tx {
            let _ = tx.send(Box::new(move || {
                let _ = done.send(f());
            }));
        }
        result
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One process whose long extents rckpt checks.
pub struct Job {
    /// The image's pid (named in errors).
    pub pid: i32,
    /// Offset (in Controls) of the Control of the task that reads its pages.
    pub ctl: usize,
    /// Its extents, in the order the trampoline reads them.
    pub extents: Vec<BlobExtent>,
}

impl Job {
    pub fn wanted(extents: &[BlobExtent]) -> bool {
        extents.iter().any(|e| e.flags & EXTENT_RCKPT_CHECKS != 0)
    }
}

const PLACED_OFF: usize = std::mem::offset_of!(Control, placed);
const ERROR_OFF: usize = std::mem::offset_of!(Control, error);
const CHECKED_OFF: usize = std::mem::offset_of!(Control, checked);
const BUF: usize = 1 << 20;

/// Checks every job's long extents. `seen` brings (job index, the pid rckpt sees
/// for the process) as the process appears; `abort` ends the work early (the
/// restore failed elsewhere: the caller reports that). Returns once every job is
/// checked, or with the first damaged extent.
pub fn run(jobs: &[Job], ctl: &LocalMapping, seen: Receiver<(usize, Pid)>, abort: &AtomicBool) -> Result<()> {
    if jobs.is_empty() {
        return Ok(());
    }
    let mut ready: Vec<(usize, Pid)> = Vec::new();
    let mut done = 0;
    let mut buf = vec![0u8; BUF];
    while done < jobs.len() {
        if abort.load(Ordering::Relaxed) {
            return Ok(());
        }
        if ready.is_empty() {
            match seen.recv_timeout(Duration::from_millis(20)) {
                Ok(x) => ready.push(x),
                Err(RecvTimeoutError::Timeout) => continue,
                // No more processes will appear: what is left was never created,
                // which the caller reports.
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        }
        let (i, host) = ready.remove(0);
        // The process waits for the verdict before anything else writes into its memory.
        let base = jobs[i].ctl * CONTROL_SIZE as usize;
        match check_job(&jobs[i], host, ctl, abort, &mut buf) {
            Ok(true) => ctl.store_and_wake(base + CHECKED_OFF, CHECKED_OK),
            // Gave up (the restore failed elsewhere): no verdict; the task is killed
            // with the rest.
            Ok(false) => return Ok(()),
            Err(e) => {
                ctl.store_and_wake(base + CHECKED_OFF, CHECKED_BAD);
                return Err(e);
            }
        }
        done += 1;
        ready.extend(seen.try_iter());
    }
    Ok(())
}

/// Whether every long extent of the job was checked (false: gave up, as the
/// restore failed elsewhere); a damaged one is an error.
fn check_job(job: &Job, host: Pid, ctl: &LocalMapping, abort: &AtomicBool, buf: &mut [u8]) -> Result<bool> {
    let base = job.ctl * CONTROL_SIZE as usize;
    let mem = ProcMem::open(host, false)?;
    // Byte offset of each extent in the task's count of placed bytes.
    let mut at = 0u64;
    for e in &job.extents {
        let first = at;
        at += e.len;
        if e.flags & EXTENT_RCKPT_CHECKS == 0 {
            continue;
        }
        let mut crc = 0u32;
        let mut off = 0u64;
        let mut idle = 0u32;
        while off < e.len {
            let placed = ctl.load_u64(base + PLACED_OFF).saturating_sub(first).min(e.len);
            if placed <= off {
                if abort.load(Ordering::Relaxed) || ctl.load_u64(base + ERROR_OFF) != 0 {
                    // The task failed: the restore reports that, not this.
                    return Ok(false);
                }
                idle += 1;
                std::thread::sleep(Duration::from_micros((10u64 << idle.min(6)).min(500)));
                continue;
            }
            idle = 0;
            let n = (placed - off).min(buf.len() as u64) as usize;
            mem.read_exact(RemoteAddr(e.start + off), &mut buf[..n])?;
            crc = crc32c::crc32c_append(crc, &buf[..n]);
            off += n as u64;
        }
        if crc != e.crc {
            return Err(RestoreError::PagesCorrupt {
                file: rckpt_images::pages::file_name(job.pid),
                addr: e.start,
                pid: job.pid,
            });
        }
    }
    Ok(true)
}
