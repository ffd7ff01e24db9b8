//! `rckpt show`: what an image holds, for people (text) and for programs (`--json`),
//! and `rckpt show --diff`: what differs between two images (in [`diff`]).
//!
//! Both outputs come from one [`Summary`], so they say the same things. The JSON
//! document is stable: every key is always present (null where it does not
//! apply), new keys may be added, and `schema` changes if a key ever changes
//! meaning. Addresses and masks are hex strings ("0x7f..."), as JSON numbers
//! lose precision above 2^53; sizes are numbers of bytes.

pub mod diff;
mod files;

use std::fmt::Write;
use std::path::Path;

use rckpt_images::ImageSet;
use rckpt_images::core::TaskCore;
use rckpt_images::files::{ContentOrigin, FilesImage};
use rckpt_images::inventory::ExternalKind;
use rckpt_images::mm::{MmImage, PAGE_SIZE, Vma as ImgVma, VmaKind};
use rckpt_images::pstree::{TaskEntry, TaskState};
use serde::Serialize;

use crate::progress::human_bytes;
use crate::restore::{Result, read};

/// Version of the JSON documents of `show --json` and `show --diff --json`.
pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub schema: u32,
    pub image: ImageInfo,
    /// In saved order: the root first, each task after its parent.
    pub tasks: Vec<Task>,
    pub externals: Vec<External>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageInfo {
    pub dir: String,
    /// Who wrote it: "rckpt 0.1.0".
    pub tool: String,
    /// The version of rckpt that wrote it: "0.1.0".
    pub rckpt_version: String,
    /// `uname -r` of the machine it was dumped on.
    pub kernel_release: String,
    pub created_unix: u64,
    pub root_pid: i32,
    /// Files of the image (the inventory included) and their total size.
    pub files: usize,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Task {
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
    /// "running", "stopped", "zombie" or "leader-exited".
    pub state: &'static str,
    /// The signal of a job-control stop.
    pub stop_signal: Option<i32>,
    /// A zombie's status as wait(2) reports it.
    pub exit_status: Option<i32>,
    /// The first thread's name (null for a zombie).
    pub comm: Option<String>,
    pub threads: Vec<Thread>,
    pub exe: Option<String>,
    pub cwd: Option<String>,
    /// Effective uid and gid of the first thread.
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub mm: Option<Mm>,
    pub fds: Vec<Fd>,
    pub signals: Option<Signals>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Thread {
    pub tid: i32,
    pub comm: String,
    pub rip: String,
    pub rsp: String,
    /// Blocked signals, by number.
    pub blocked: Vec<i32>,
    /// Signals pending for this thread alone, in queue order.
    pub pending: Vec<i32>,
    pub xstate_bytes: usize,
    pub sigaltstack: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mm {
    pub vmas: usize,
    pub private_vmas: usize,
    pub shared_vmas: usize,
    /// Size of every VMA, and of the private and the shared ones.
    pub mapped_bytes: u64,
    pub private_bytes: u64,
    pub shared_bytes: u64,
    /// Resident private pages saved in the pages file, in this many extents.
    pub saved_bytes: u64,
    pub saved_extents: usize,
    /// Resident pages still shared with the parent (saved once, in the parent).
    pub parent_shared_bytes: u64,
    pub brk: String,
    pub vma_list: Vec<Vma>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Vma {
    pub start: String,
    pub end: String,
    pub size: u64,
    /// As /proc/PID/maps: "r-xp", "rw-s".
    pub prot: String,
    /// "anon", "heap", "stack", "file", "shared", "vvar", "vvar_vclock", "vdso", "vsyscall".
    pub kind: &'static str,
    /// The mapped file, or the memfd or shared memory it maps.
    pub path: Option<String>,
    pub offset: u64,
    /// PR_SET_VMA_ANON_NAME of an anonymous VMA.
    pub name: Option<String>,
    pub saved_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fd {
    pub fd: i32,
    /// The open file description (shared by dup and fork: the same id).
    pub file: u32,
    /// "path", "external", "pipe", "fifo", "unix", "inet", "eventfd", "epoll",
    /// "signalfd", "timerfd", "inotify", "memfd", "pty", "deleted".
    pub kind: &'static str,
    /// "r", "w" or "rw".
    pub access: &'static str,
    pub flags: u32,
    pub cloexec: bool,
    /// The file's path, where it has one.
    pub path: Option<String>,
    /// What it is, for people.
    pub desc: String,
    pub locks: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Signals {
    /// Signals with a handler, and ignored ones.
    pub handled: Vec<i32>,
    pub ignored: Vec<i32>,
    /// Pending for the whole process, in queue order.
    pub shared_pending: Vec<i32>,
    /// ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF that are armed.
    pub itimers: Vec<&'static str>,
    pub posix_timers: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct External {
    pub key: String,
    /// "pipe", "tty", "session", "process-group".
    pub kind: &'static str,
    /// The descriptors that use it: "task 1234 fd 1".
    pub used_by: Vec<String>,
}

/// Reads the image in `dir` and summarizes it.
pub fn summary(dir: &Path) -> Result<Summary> {
    let set = read::read(dir)?;
    Ok(summarize(dir, &set))
}

pub fn summarize(dir: &Path, set: &ImageSet) -> Summary {
    let inv = &set.inventory;
    let inv_size =
        std::fs::symlink_metadata(dir.join(rckpt_images::inventory::FILE_NAME)).map(|m| m.len()).unwrap_or(0);
    let image = ImageInfo {
        dir: dir.display().to_string(),
        tool: inv.tool.clone(),
        rckpt_version: inv.tool.strip_prefix("rckpt ").unwrap_or(&inv.tool).to_string(),
        kernel_release: inv.kernel_release.clone(),
        created_unix: inv.created_unix,
        root_pid: inv.root_pid,
        files: inv.images.len() + 1,
        bytes: inv.images.iter().map(|f| f.size).sum::<u64>() + inv_size,
    };
    let tasks: Vec<Task> = set.pstree.tasks.iter().map(|t| task(set, t)).collect();
    let externals = inv
        .externals
        .iter()
        .map(|e| External {
            key: e.key.clone(),
            kind: match e.kind {
                ExternalKind::Pipe => "pipe",
                ExternalKind::Tty => "tty",
                ExternalKind::Session => "session",
                ExternalKind::ProcessGroup => "process-group",
            },
            used_by: tasks
                .iter()
                .flat_map(|t| {
                    t.fds
                        .iter()
                        .filter(|f| f.kind == "external" && f.path.as_deref() == Some(&e.key))
                        .map(move |f| format!("task {} fd {}", t.pid, f.fd))
                })
                .collect(),
        })
        .collect();
    Summary { schema: SCHEMA, image, tasks, externals }
}

fn task(set: &ImageSet, t: &TaskEntry) -> Task {
    let (state, stop_signal, exit_status) = match t.state {
        TaskState::Running => ("running", None, None),
        TaskState::Stopped { signal } => ("stopped", Some(signal), None),
        TaskState::Zombie { status } => ("zombie", None, Some(status)),
        TaskState::LeaderExited => ("leader-exited", None, None),
    };
    let mut out = Task {
        pid: t.pid,
        ppid: t.ppid,
        pgid: t.pgid,
        sid: t.sid,
        state,
        stop_signal,
        exit_status,
        comm: None,
        threads: Vec::new(),
        exe: None,
        cwd: None,
        uid: None,
        gid: None,
        mm: None,
        fds: Vec::new(),
        signals: None,
    };
    // A zombie has only its place in the tree.
    let (Some(core), Some(mm)) = (set.cores.get(&t.pid), set.mms.get(&t.pid)) else {
        return out;
    };
    out.comm = core.threads.first().map(|th| th.comm.clone());
    out.threads = core.threads.iter().map(thread).collect();
    out.exe = mm.exe.and_then(|i| mm.files.get(i as usize)).map(|f| f.path.clone());
    out.cwd = Some(core.cwd.clone());
    out.uid = core.threads.first().map(|th| th.creds.uid[1]);
    out.gid = core.threads.first().map(|th| th.creds.gid[1]);
    out.mm = Some(memory(mm, &set.files));
    out.signals = Some(signals(core));
    if let Some(table) = set.fdtables.get(&t.pid) {
        out.fds = table
            .fds
            .iter()
            .filter_map(|e| {
                let d = set.files.files.get(e.file as usize)?;
                Some(files::fd(e.fd, e.cloexec, d, &set.files))
            })
            .collect();
    }
    out
}

pub(crate) fn sig_list(mask: u64) -> Vec<i32> {
    (1..=64).filter(|s| mask & (1u64 << (s - 1)) != 0).collect()
}

fn thread(th: &rckpt_images::core::ThreadCore) -> Thread {
    Thread {
        tid: th.tid,
        comm: th.comm.clone(),
        rip: format!("{:#x}", th.regs.rip),
        rsp: format!("{:#x}", th.regs.rsp),
        blocked: sig_list(th.blocked),
        pending: th.pending.iter().map(|s| s.signo()).collect(),
        xstate_bytes: th.xstate.len(),
        sigaltstack: th.sigaltstack.size > 0 && th.sigaltstack.flags & libc::SS_DISABLE == 0,
    }
}

fn signals(core: &TaskCore) -> Signals {
    let with = |f: fn(u64) -> bool| -> Vec<i32> {
        core.sigactions.iter().enumerate().filter(|(_, a)| f(a.handler)).map(|(i, _)| i as i32 + 1).collect()
    };
    Signals {
        handled: with(|h| h > 1),
        ignored: with(|h| h == 1),
        shared_pending: core.shared_pending.iter().map(|s| s.signo()).collect(),
        itimers: ["real", "virtual", "prof"]
            .into_iter()
            .zip(&core.itimers)
            .filter(|(_, t)| t.value_us > 0 || t.interval_us > 0)
            .map(|(n, _)| n)
            .collect(),
        posix_timers: core.posix_timers.len(),
    }
}

pub(crate) fn content_path(files: &FilesImage, content: u32) -> Option<String> {
    files.contents.get(content as usize).map(|c| match &c.origin {
        ContentOrigin::Memfd { name, .. } => format!("memfd:{name}"),
        ContentOrigin::SharedAnon => "/dev/zero (shared)".to_string(),
        ContentOrigin::Deleted { path, .. } => format!("{path} (deleted)"),
    })
}

fn vma(mm: &MmImage, files: &FilesImage, v: &ImgVma) -> Vma {
    let (kind, path, offset) = match &v.kind {
        VmaKind::Anon => ("anon", None, 0),
        VmaKind::Heap => ("heap", None, 0),
        VmaKind::Stack => ("stack", None, 0),
        VmaKind::File { file, offset } => ("file", mm.files.get(*file as usize).map(|f| f.path.clone()), *offset),
        VmaKind::Shared { content, offset } => ("shared", content_path(files, *content), *offset),
        VmaKind::Vvar => ("vvar", None, 0),
        VmaKind::VvarVclock => ("vvar_vclock", None, 0),
        VmaKind::Vdso => ("vdso", None, 0),
        VmaKind::Vsyscall => ("vsyscall", None, 0),
    };
    let r = |bit: u8, c: char| if v.prot & bit != 0 { c } else { '-' };
    let prot = [
        r(rckpt_images::mm::PROT_READ, 'r'),
        r(rckpt_images::mm::PROT_WRITE, 'w'),
        r(rckpt_images::mm::PROT_EXEC, 'x'),
        if v.shared { 's' } else { 'p' },
    ]
    .iter()
    .collect();
    let saved_bytes = mm.extents.iter().filter(|e| e.start >= v.start && e.end() <= v.end).map(|e| e.len()).sum();
    Vma {
        start: format!("{:#x}", v.start),
        end: format!("{:#x}", v.end),
        size: v.end - v.start,
        prot,
        kind,
        path,
        offset,
        name: v.anon_name.clone(),
        saved_bytes,
    }
}

fn memory(mm: &MmImage, files: &FilesImage) -> Mm {
    let size = |v: &&ImgVma| v.end - v.start;
    Mm {
        vmas: mm.vmas.len(),
        private_vmas: mm.vmas.iter().filter(|v| !v.shared).count(),
        shared_vmas: mm.vmas.iter().filter(|v| v.shared).count(),
        mapped_bytes: mm.vmas.iter().map(|v| size(&v)).sum(),
        private_bytes: mm.vmas.iter().filter(|v| !v.shared).map(|v| size(&v)).sum(),
        shared_bytes: mm.vmas.iter().filter(|v| v.shared).map(|v| size(&v)).sum(),
        saved_bytes: mm.pages_len(),
        saved_extents: mm.extents.len(),
        parent_shared_bytes: mm.parent_pages.iter().map(|r| r.nr_pages * PAGE_SIZE).sum(),
        brk: format!("{:#x}", mm.fields.brk),
        vma_list: mm.vmas.iter().map(|v| vma(mm, files, v)).collect(),
    }
}

/// "SIGUSR1", "SIGRTMIN+2" (as `kill -l` names them).
pub fn signal_name(n: i32) -> String {
    match n {
        34 => "SIGRTMIN".into(),
        64 => "SIGRTMAX".into(),
        35..=63 => format!("SIGRTMIN+{}", n - 34),
        _ => nix::sys::signal::Signal::try_from(n).map_or_else(|_| format!("signal {n}"), |s| s.as_str().to_string()),
    }
}

fn signal_names(v: &[i32]) -> String {
    if v.is_empty() { "none".into() } else { v.iter().map(|&s| signal_name(s)).collect::<Vec<_>>().join(" ") }
}

/// "2026-05-01 12:00:00 UTC" (civil from days, Howard Hinnant's algorithm).
pub fn utc(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The text for people.
pub fn render(s: &Summary) -> String {
    let mut o = String::new();
    let i = &s.image;
    let _ = writeln!(o, "image {}", i.dir);
    let _ = writeln!(o, "  written by {} on kernel {}, {}", i.tool, i.kernel_release, utc(i.created_unix));
    let _ = writeln!(
        o,
        "  root task {}, {} task(s), {} file(s) of {}",
        i.root_pid,
        s.tasks.len(),
        i.files,
        human_bytes(i.bytes)
    );
    for e in &s.externals {
        let users = if e.used_by.is_empty() { String::new() } else { format!(", used by {}", e.used_by.join(", ")) };
        let _ = writeln!(o, "  external {} ({}{users})", e.key, e.kind);
    }
    // Descriptions that several fds share (dup, fork) are marked by their id.
    let mut users = std::collections::BTreeMap::<u32, usize>::new();
    for f in s.tasks.iter().flat_map(|t| &t.fds) {
        *users.entry(f.file).or_default() += 1;
    }
    for t in &s.tasks {
        let _ = writeln!(o);
        render_task(&mut o, t, &users);
    }
    o
}

/// "running", "stopped by SIGTSTP", "zombie, exit code 3".
pub fn state_text(t: &Task) -> String {
    match (t.stop_signal, t.exit_status) {
        (Some(sig), _) => format!("stopped by {}", signal_name(sig)),
        (_, Some(st)) if st & 0x7f == 0 => format!("zombie, exit code {}", (st >> 8) & 0xff),
        (_, Some(st)) => format!("zombie, killed by {}", signal_name(st & 0x7f)),
        _ => t.state.to_string(),
    }
}

/// "task 1234 "name" (ppid 1, pgid 1234, sid 1234), running".
pub fn task_title(t: &Task) -> String {
    let comm = t.comm.as_ref().map(|c| format!(" {c:?}")).unwrap_or_default();
    format!("task {}{comm} (ppid {}, pgid {}, sid {}), {}", t.pid, t.ppid, t.pgid, t.sid, state_text(t))
}

fn render_task(o: &mut String, t: &Task, users: &std::collections::BTreeMap<u32, usize>) {
    let _ = writeln!(o, "{}", task_title(t));
    if let Some(exe) = &t.exe {
        let _ = writeln!(
            o,
            "  exe {exe}, cwd {}, uid {} gid {}",
            t.cwd.as_deref().unwrap_or("?"),
            t.uid.unwrap_or(0),
            t.gid.unwrap_or(0)
        );
    }
    if !t.threads.is_empty() {
        let _ = writeln!(o, "  threads: {}", t.threads.len());
    }
    for th in &t.threads {
        let pending =
            if th.pending.is_empty() { String::new() } else { format!(", pending {}", signal_names(&th.pending)) };
        let _ = writeln!(
            o,
            "    {} {:?}: rip {} rsp {}, blocked {}{pending}{}",
            th.tid,
            th.comm,
            th.rip,
            th.rsp,
            signal_names(&th.blocked),
            if th.sigaltstack { ", on an altstack" } else { "" }
        );
    }
    if let Some(m) = &t.mm {
        let _ = writeln!(
            o,
            "  memory: {} VMAs ({} private, {} shared), {} mapped ({} private, {} shared)",
            m.vmas,
            m.private_vmas,
            m.shared_vmas,
            human_bytes(m.mapped_bytes),
            human_bytes(m.private_bytes),
            human_bytes(m.shared_bytes)
        );
        let parent = if m.parent_shared_bytes > 0 {
            format!(", {} shared with the parent", human_bytes(m.parent_shared_bytes))
        } else {
            String::new()
        };
        let _ = writeln!(
            o,
            "          {} of resident pages saved in {} extent(s){parent}",
            human_bytes(m.saved_bytes),
            m.saved_extents
        );
        for v in &m.vma_list {
            let what = match (&v.path, &v.name) {
                (Some(p), _) if v.offset > 0 => format!("{p} @{:#x}", v.offset),
                (Some(p), _) => p.clone(),
                (None, Some(n)) => format!("[anon:{n}]"),
                (None, None) => format!("[{}]", v.kind),
            };
            let saved = if v.saved_bytes > 0 { format!("{} saved", human_bytes(v.saved_bytes)) } else { String::new() };
            let _ = writeln!(
                o,
                "    {:>14}-{:<14} {} {:>9} {saved:>14}  {what}",
                v.start,
                v.end,
                v.prot,
                human_bytes(v.size)
            );
        }
    }
    if let Some(s) = &t.signals {
        let _ = writeln!(o, "  signals: handled {}; ignored {}", signal_names(&s.handled), signal_names(&s.ignored));
        let mut timers = Vec::new();
        if !s.itimers.is_empty() {
            timers.push(format!("itimers {}", s.itimers.join(" ")));
        }
        if s.posix_timers > 0 {
            timers.push(format!("{} POSIX timer(s)", s.posix_timers));
        }
        let timers = if timers.is_empty() { String::new() } else { format!("; {}", timers.join(", ")) };
        let _ = writeln!(o, "           pending for the process {}{timers}", signal_names(&s.shared_pending));
    }
    if !t.fds.is_empty() {
        let _ = writeln!(o, "  files:");
    }
    for f in &t.fds {
        let shared = match users.get(&f.file) {
            Some(&n) if n > 1 => format!(" [description #{}, {n} fds]", f.file),
            _ => String::new(),
        };
        let cloexec = if f.cloexec { " [cloexec]" } else { "" };
        let _ = writeln!(o, "    fd {:<3} {:<2} {}{cloexec}{shared}", f.fd, f.access, f.desc);
    }
}

pub fn to_json<T: Serialize>(v: &T) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("a summary serializes");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_signals_read_as_usual() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400 + 3661), "2000-02-29 01:01:01 UTC");
        assert_eq!(signal_name(10), "SIGUSR1");
        assert_eq!(signal_name(34), "SIGRTMIN");
        assert_eq!(signal_name(36), "SIGRTMIN+2");
        assert_eq!(sig_list(0b101), vec![1, 3]);
    }
}
