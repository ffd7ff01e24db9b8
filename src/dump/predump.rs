//! Incremental checkpoints. `rckpt pre-dump` freezes the tree only to arm a
//! write tracker in each process (userfaultfd write-protect in asynchronous
//! mode, made in the task by the parasite, armed by rckpt), lets the tree run,
//! and copies its memory while it runs. `rckpt dump --prev-images-dir` then
//! freezes it and saves only the pages written since (PAGEMAP_SCAN's
//! PAGE_IS_WRITTEN), taking the others from the pre-dump at restore.
//!
//! How tracking survives in between: a uffd lives as long as a descriptor of it
//! does. The trackers' descriptors are moved out of the tasks into a small
//! holder process (`rckpt pre-dump` forks it; it listens on `tracker.sock` in
//! the pre-dump's directory), so the tree holds no new fd. The dump asks the
//! holder which tasks it still tracks, and tells it to go once the dump is
//! written: with its descriptors closed, the kernel unregisters and unprotects
//! everything, and the tree is left without a trace. A holder that is gone (or
//! a task it no longer tracks) means a full save of that task: pages whose
//! protection is gone read as written.
//!
//! What the tracker cannot see is saved in full: VMAs it could not register
//! (file-backed private mappings, PROT_NONE), VMAs mapped or moved since
//! (not registered, so their pages read as written), processes created since.
//! Pages gone since the pre-dump are simply not present any more.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rckpt_images::mm::{MmImage, PAGE_SIZE, PageExtent, PageRange, VmaKind};
use rckpt_images::{Image, inventory, pages};

use super::{DumpError, Result, core, files, freeze, mm, write};
use crate::parasite::Infected;
use crate::sys::pagemap::{Pagemap, Query};
use crate::sys::{Pid, RemoteAddr, mem::ProcMem, pidfd, uffd};

pub const TRACKER_SOCKET: &str = "tracker.sock";

#[derive(Debug, Clone)]
pub struct PreDumpOptions {
    pub pid: Pid,
    pub dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct PreDumpReport {
    pub pids: Vec<Pid>,
    pub pages_bytes: u64,
    pub frozen: Duration,
    pub total: Duration,
    /// The holder of the trackers.
    pub holder: Pid,
}

/// One process's tracker and what the copy needs.
struct Tracked {
    pid: Pid,
    at: Pid,
    /// Held: while it is open, writes are tracked.
    _tracker: OwnedFd,
    plan: mm::MmPlan,
    state: core::TaskState,
    ranges: Vec<PageRange>,
}

const PRESENT: Query = Query {
    required: 0,
    excluded: crate::sys::pagemap::PAGE_IS_PFNZERO | crate::sys::pagemap::PAGE_IS_FILE,
    any_of: crate::sys::pagemap::PAGE_IS_PRESENT | crate::sys::pagemap::PAGE_IS_SWAPPED,
};

fn trackable(v: &rckpt_images::mm::Vma, readable: bool) -> bool {
    readable && !v.shared && matches!(v.kind, VmaKind::Anon | VmaKind::Heap | VmaKind::Stack)
}

pub fn pre_dump(opts: &PreDumpOptions) -> Result<PreDumpReport> {
    crate::sys::signal::catch_interrupts()?;
    let t0 = Instant::now();
    let pid = opts.pid;
    if !Path::new(&format!("/proc/{pid}")).exists() {
        return Err(DumpError::NoTask(pid));
    }
    if pid.as_raw() <= 1 || super::ns::owned(pid)?.is_some() {
        return Err(DumpError::Refused {
            pid,
            why: "pre-dump of init or of a tree with namespaces of its own is not supported".into(),
        });
    }
    if !uffd::supported() {
        return Err(DumpError::Refused {
            pid,
            why: "this kernel has no asynchronous userfaultfd write-protect (UFFD_FEATURE_WP_ASYNC, Linux 6.7)".into(),
        });
    }
    mm::forget_known_files();
    let mut writer = write::ImageWriter::create(&opts.dir)?;
    let mut frozen = freeze::freeze(pid)?;
    let frozen_at = Instant::now();
    let mut deferred = Vec::new();
    let armed = arm(&mut frozen, &mut deferred);
    frozen.release(&deferred);
    let frozen_for = frozen_at.elapsed();
    let tracked = armed?;

    // The tree runs again; what it writes from here on is tracked.
    let mut pages_bytes = 0;
    for t in &tracked {
        let (image, bytes) = copy(t, &mut writer)?;
        pages_bytes += bytes;
        writer.write_image(&rckpt_images::mm::file_name(t.pid.as_raw()), &image)?;
    }
    let inv = inventory::Inventory { pre_dump: true, ..super::inventory_here(pid) };
    writer.finish(inv)?;
    let pids = tracked.iter().map(|t| t.pid).collect();
    let holder = hold(&opts.dir, tracked)?;
    Ok(PreDumpReport { pids, pages_bytes, frozen: frozen_for, total: t0.elapsed(), holder })
}

/// While the tree is frozen: a tracker in each process, armed over every VMA
/// it can watch. Anything that fails leaves the tree as it was (the trackers
/// made so far are dropped, which disarms them).
fn arm(frozen: &mut freeze::Frozen, deferred: &mut Vec<(Pid, i32)>) -> Result<Vec<Tracked>> {
    let tasks = frozen.tasks.clone();
    let mut out = Vec::new();
    let mut shm = files::FileTable::new(Default::default());
    for t in tasks.iter().filter(|t| !t.is_zombie()) {
        let at = t.threads[0];
        let plan = mm::collect(t.pid, at, &mut shm)?;
        let mut state = core::collect(frozen, t)?;
        let mut tracee = frozen.tracees.remove(&at.as_raw()).expect("seized");
        let r = (|| -> Result<OwnedFd> {
            let mut inf = Infected::infect(&mut tracee, RemoteAddr(plan.syscall_insn), state.orig[0].clone())?;
            // The mm image wants the program break, which only the task knows.
            state.brk = inf.misc()?.brk;
            let remote = inf.userfaultfd(uffd::USER_MODE_ONLY | uffd::O_CLOEXEC | uffd::O_NONBLOCK)?;
            let local = pidfd::getfd(&pidfd::open(at)?, at, remote);
            inf.close_remote(remote)?;
            for s in inf.cure()? {
                deferred.push((at, s));
            }
            Ok(local?)
        })();
        frozen.tracees.insert(at.as_raw(), tracee);
        let fd = r?;
        uffd::enable_wp_async(fd.as_fd())?;
        let mut ranges = Vec::new();
        for p in plan.vmas.iter().filter(|p| trackable(&p.vma, p.readable)) {
            if uffd::track(fd.as_fd(), p.vma.start, p.vma.end - p.vma.start).is_ok() {
                ranges.push(PageRange { start: p.vma.start, nr_pages: (p.vma.end - p.vma.start) / PAGE_SIZE });
            }
        }
        out.push(Tracked { pid: t.pid, at, _tracker: fd, plan, state, ranges });
        crate::fault::check_interrupted("arming write trackers")?;
    }
    Ok(out)
}

/// Copies the tracked VMAs' present pages while the task runs (through
/// /proc/PID/mem, no pinning). A page written during the copy is tracked as
/// written, and the dump saves it again.
fn copy(t: &Tracked, writer: &mut write::ImageWriter) -> Result<(MmImage, u64)> {
    let name = pages::file_name(t.pid.as_raw());
    let file = writer.create_file(&name, rckpt_images::Kind::Pages)?;
    let path = PathBuf::from(&name);
    let io = |op: &'static str| {
        let path = path.clone();
        move |source| DumpError::Io { op, path, source }
    };
    file.write_all_at(&pages::header(t.pid.as_raw()), 0).map_err(io("write pages header"))?;
    let pm = Pagemap::open(t.at)?;
    let mem = ProcMem::open(t.at, false)?;
    let mut extents: Vec<PageExtent> = Vec::new();
    let mut off = pages::HEADER_LEN;
    let mut regions = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    for r in &t.ranges {
        regions.clear();
        pm.scan(r.start, r.start + r.nr_pages * PAGE_SIZE, PRESENT, &mut regions)?;
        for g in &regions {
            let mut crc = 0u32;
            let len = g.end - g.start;
            let mut done = 0u64;
            while done < len {
                let n = (buf.len() as u64).min(len - done) as usize;
                // The task may unmap it meanwhile: then it is not saved.
                if mem.read_exact(RemoteAddr(g.start + done), &mut buf[..n]).is_err() {
                    break;
                }
                crc = crc32c::crc32c_append(crc, &buf[..n]);
                file.write_all_at(&buf[..n], off + done).map_err(io("write pages"))?;
                done += n as u64;
            }
            let done = done / PAGE_SIZE * PAGE_SIZE;
            if done > 0 {
                extents.push(PageExtent { start: g.start, nr_pages: done / PAGE_SIZE, offset: off, crc32c: crc });
                off += done;
            }
            crate::progress::bytes(done);
        }
    }
    file.set_len(off).map_err(io("size pages file"))?;
    let mut image = mm::image(t.pid, &t.state, &t.plan, extents, Vec::new(), Vec::new())?;
    image.tracked = t.ranges.clone();
    Ok((image, off - pages::HEADER_LEN))
}

/// Forks the holder of the trackers; it answers on DIR/tracker.sock until
/// told to go or until every tracked process is gone.
fn hold(dir: &Path, tracked: Vec<Tracked>) -> Result<Pid> {
    let path = dir.join(TRACKER_SOCKET);
    let _ = std::fs::remove_file(&path);
    let listener =
        UnixListener::bind(&path).map_err(|source| DumpError::Io { op: "listen", path: path.clone(), source })?;
    crate::progress::quiesce();
    let pids: Vec<i32> = tracked.iter().map(|t| t.pid.as_raw()).collect();
    let watch: Vec<OwnedFd> = tracked.iter().filter_map(|t| pidfd::open(t.pid).ok()).collect();
    let child = crate::sys::ns::fork_run(move || {
        let _ = nix::unistd::setsid();
        crate::sys::stdio_to_null();
        serve(listener, &pids, &watch, tracked);
        let _ = std::fs::remove_file(&path);
        0
    })?;
    Ok(child)
}

/// The holder's loop. `tracked` is only held: its descriptors keep tracking on.
/// It sleeps in poll() on the socket and the processes' pidfds, so a dump's
/// question is answered at once (the dump waits for it while the tree is frozen).
fn serve(listener: UnixListener, pids: &[i32], watch: &[OwnedFd], tracked: Vec<Tracked>) {
    use std::os::fd::AsRawFd;
    let _keep = tracked;
    let _ = listener.set_nonblocking(true);
    // A pidfd is readable once its process has exited: those leave the poll set.
    let mut gone = vec![false; watch.len()];
    loop {
        let live: Vec<usize> = (0..watch.len()).filter(|&i| !gone[i]).collect();
        if !watch.is_empty() && live.is_empty() {
            return;
        }
        let fds: Vec<_> =
            std::iter::once(listener.as_raw_fd()).chain(live.iter().map(|&i| watch[i].as_raw_fd())).collect();
        let Ok(ready) = crate::sys::poll_readable_many(&fds, -1) else { return };
        for (k, &i) in live.iter().enumerate() {
            if ready[k + 1] {
                gone[i] = true;
            }
        }
        match listener.accept() {
            Ok((s, _)) => {
                let _ = s.set_nonblocking(false);
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut line = String::new();
                let _ = BufReader::new(&s).read_line(&mut line);
                let alive: Vec<String> = pids
                    .iter()
                    .zip(watch)
                    .filter(|(_, p)| !crate::sys::poll_readable(std::os::fd::AsRawFd::as_raw_fd(*p), 0).unwrap_or(true))
                    .map(|(p, _)| p.to_string())
                    .collect();
                let mut w = &s;
                match line.trim() {
                    "release" => {
                        let _ = writeln!(w, "released {}", alive.join(" "));
                        return;
                    }
                    _ => {
                        let _ = writeln!(w, "tracking {}", alive.join(" "));
                    }
                }
            }
            Err(_) => {}
        }
    }
}

/// Asks the holder of a pre-dump which processes it still tracks (None: it is
/// gone), or tells it to go.
fn tell(dir: &Path, what: &str) -> Option<Vec<i32>> {
    let s = UnixStream::connect(dir.join(TRACKER_SOCKET)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut w = &s;
    writeln!(w, "{what}").ok()?;
    let mut line = String::new();
    BufReader::new(&s).read_line(&mut line).ok()?;
    let mut words = line.split_whitespace();
    words.next()?;
    Some(words.filter_map(|p| p.parse().ok()).collect())
}

/// A pre-dump a dump builds on: its directory, and per process it still
/// tracks, the extents it saved.
pub struct Prev {
    pub dir: PathBuf,
    pub extents: BTreeMap<i32, Vec<PageExtent>>,
}

impl Prev {
    /// Reads the pre-dump in `dir` (refusing what is not one) and asks its
    /// holder what is still tracked.
    pub fn load(dir: &Path) -> Result<Prev> {
        let bad = |why: String| DumpError::Refused { pid: Pid::from_raw(0), why };
        let dir = dir.canonicalize().map_err(|source| DumpError::Io { op: "open", path: dir.into(), source })?;
        let inv = read_image::<inventory::Inventory>(&dir, inventory::FILE_NAME)?;
        if !inv.pre_dump {
            return Err(bad(format!("{} is not a pre-dump", dir.display())));
        }
        let tracked = tell(&dir, "status").unwrap_or_default();
        if tracked.is_empty() {
            eprintln!("rckpt: the pre-dump in {} tracks nothing any more: saving everything", dir.display());
        }
        let mut extents = BTreeMap::new();
        for pid in tracked {
            if let Ok(mm) = read_image::<MmImage>(&dir, &rckpt_images::mm::file_name(pid)) {
                extents.insert(pid, mm.extents);
            }
        }
        Ok(Prev { dir, extents })
    }

    /// Ends tracking: the holder closes the trackers and goes.
    pub fn release(&self) {
        let _ = tell(&self.dir, "release");
    }
}

/// One image of the pre-dump, through restore's reader (O_NOFOLLOW, a size cap
/// per kind, the frame checked): the directory is the user's to name.
fn read_image<T: Image>(dir: &Path, name: &str) -> Result<T> {
    crate::restore::read::read_framed(dir, name, None).map_err(|e| DumpError::Refused {
        pid: Pid::from_raw(0),
        why: format!("the pre-dump in {}: {e}", dir.display()),
    })
}
