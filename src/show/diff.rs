//! `rckpt show --diff A B`: what differs between two images: tasks added and
//! removed, and per task its place in the tree, state, threads, memory (sizes,
//! VMAs, and page contents compared by their extents' checksums), descriptors
//! and signal dispositions. Registers are not compared: they differ between any
//! two dumps of a running task.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use rckpt_images::ImageSet;
use serde::Serialize;
use serde_json::{Value, json};

use super::{Fd, ImageInfo, Summary, Task, Thread, Vma, signal_names, task_title, utc};
use crate::progress::human_bytes;

#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    pub schema: u32,
    pub a: ImageInfo,
    pub b: ImageInfo,
    /// Nothing below differs.
    pub identical: bool,
    pub tasks_added: Vec<TaskRef>,
    pub tasks_removed: Vec<TaskRef>,
    /// Tasks in both images that differ, in the second image's order.
    pub tasks_changed: Vec<TaskDiff>,
    pub externals_added: Vec<String>,
    pub externals_removed: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskRef {
    pub pid: i32,
    pub comm: Option<String>,
    pub state: &'static str,
    /// For people: "task 1234 "name" (ppid ...), running".
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskDiff {
    pub pid: i32,
    pub comm: Option<String>,
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// "state", "ppid", "pgid", "sid", "comm", "exe", "cwd", "uid", "gid",
    /// "thread", "memory", "pages", "vma", "fd", "signals".
    pub what: &'static str,
    /// Which one: the tid of a thread, the start of a VMA, the number of an fd
    /// (null for what the task has once).
    pub key: Option<String>,
    /// The value in the first and in the second image (null: not there): a
    /// number or string, or the thread, VMA or fd object as `show --json` has
    /// it. For "state", `{state, stop_signal, exit_status}`; for "memory", the
    /// sizes of `mm`; for "pages", the bytes and extents of each image whose
    /// content the other does not have (same address, same checksum).
    pub before: Value,
    pub after: Value,
    /// The change, for people.
    pub text: String,
}

fn task_ref(t: &Task) -> TaskRef {
    TaskRef { pid: t.pid, comm: t.comm.clone(), state: t.state, text: task_title(t) }
}

/// Compares two images, summarized, with their sets (for page checksums).
pub fn diff(a: (&Summary, &ImageSet), b: (&Summary, &ImageSet)) -> Diff {
    let (sa, seta) = a;
    let (sb, setb) = b;
    let pids_a: BTreeSet<i32> = sa.tasks.iter().map(|t| t.pid).collect();
    let pids_b: BTreeSet<i32> = sb.tasks.iter().map(|t| t.pid).collect();
    let tasks_added: Vec<TaskRef> = sb.tasks.iter().filter(|t| !pids_a.contains(&t.pid)).map(task_ref).collect();
    let tasks_removed: Vec<TaskRef> = sa.tasks.iter().filter(|t| !pids_b.contains(&t.pid)).map(task_ref).collect();
    let mut tasks_changed = Vec::new();
    for tb in &sb.tasks {
        let Some(ta) = sa.tasks.iter().find(|t| t.pid == tb.pid) else { continue };
        let changes = task_changes(ta, tb, seta, setb);
        if !changes.is_empty() {
            tasks_changed.push(TaskDiff { pid: tb.pid, comm: tb.comm.clone(), changes });
        }
    }
    let keys = |s: &Summary| s.externals.iter().map(|e| e.key.clone()).collect::<BTreeSet<_>>();
    let (ka, kb) = (keys(sa), keys(sb));
    let externals_added: Vec<String> = kb.difference(&ka).cloned().collect();
    let externals_removed: Vec<String> = ka.difference(&kb).cloned().collect();
    let identical = tasks_added.is_empty()
        && tasks_removed.is_empty()
        && tasks_changed.is_empty()
        && externals_added.is_empty()
        && externals_removed.is_empty();
    Diff {
        schema: super::SCHEMA,
        a: sa.image.clone(),
        b: sb.image.clone(),
        identical,
        tasks_added,
        tasks_removed,
        tasks_changed,
        externals_added,
        externals_removed,
    }
}

fn scalar<T: PartialEq + Serialize + std::fmt::Debug>(
    out: &mut Vec<Change>,
    what: &'static str,
    a: &T,
    b: &T,
    show: impl Fn(&T) -> String,
) {
    if a != b {
        out.push(Change {
            what,
            key: None,
            before: json!(a),
            after: json!(b),
            text: format!("{what}: {} -> {}", show(a), show(b)),
        });
    }
}

fn opt_str(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "none".into())
}

/// Changes of keyed things (threads, VMAs, fds): added, removed, or different.
fn keyed<K: Ord + Copy + std::fmt::Display, T: Serialize>(
    out: &mut Vec<Change>,
    what: &'static str,
    a: BTreeMap<K, &T>,
    b: BTreeMap<K, &T>,
    same: impl Fn(&T, &T) -> bool,
    show: impl Fn(&T) -> String,
) {
    let keys: BTreeSet<K> = a.keys().chain(b.keys()).copied().collect();
    for k in keys {
        let text = match (a.get(&k), b.get(&k)) {
            (Some(x), Some(y)) if same(x, y) => continue,
            (Some(x), Some(y)) => format!("{what} {k}: {} -> {}", show(x), show(y)),
            (None, Some(y)) => format!("{what} {k}: added: {}", show(y)),
            (Some(x), None) => format!("{what} {k}: removed: {}", show(x)),
            (None, None) => continue,
        };
        out.push(Change {
            what,
            key: Some(k.to_string()),
            before: a.get(&k).map_or(Value::Null, |x| json!(x)),
            after: b.get(&k).map_or(Value::Null, |y| json!(y)),
            text,
        });
    }
}

/// A VMA's start, shown in hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Addr(u64);

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

fn addr(v: &Vma) -> Addr {
    Addr(u64::from_str_radix(v.start.trim_start_matches("0x"), 16).unwrap_or(0))
}

fn show_thread(t: &Thread) -> String {
    format!("{:?}, blocked {}, pending {}", t.comm, signal_names(&t.blocked), signal_names(&t.pending))
}

fn show_vma(v: &Vma) -> String {
    let what = match (&v.path, &v.name) {
        (Some(p), _) => p.clone(),
        (None, Some(n)) => format!("[anon:{n}]"),
        (None, None) => format!("[{}]", v.kind),
    };
    format!("{} {} {what}", v.prot, human_bytes(v.size))
}

fn show_fd(f: &Fd) -> String {
    format!("{} {}", f.access, f.desc)
}

/// Bytes and count of the saved extents of `a` that `b` has not, the same
/// pages with the same checksum.
fn extents_not_in(a: &rckpt_images::mm::MmImage, b: &rckpt_images::mm::MmImage) -> (u64, usize) {
    let have: BTreeSet<(u64, u64, u32)> = b.extents.iter().map(|e| (e.start, e.nr_pages, e.crc32c)).collect();
    let differ: Vec<_> = a.extents.iter().filter(|e| !have.contains(&(e.start, e.nr_pages, e.crc32c))).collect();
    (differ.iter().map(|e| e.len()).sum(), differ.len())
}

fn task_changes(a: &Task, b: &Task, seta: &ImageSet, setb: &ImageSet) -> Vec<Change> {
    let mut out = Vec::new();
    let state = super::state_text;
    if state(a) != state(b) {
        out.push(Change {
            what: "state",
            key: None,
            before: json!({ "state": a.state, "stop_signal": a.stop_signal, "exit_status": a.exit_status }),
            after: json!({ "state": b.state, "stop_signal": b.stop_signal, "exit_status": b.exit_status }),
            text: format!("state: {} -> {}", state(a), state(b)),
        });
    }
    let num = |v: &i32| v.to_string();
    scalar(&mut out, "ppid", &a.ppid, &b.ppid, num);
    scalar(&mut out, "pgid", &a.pgid, &b.pgid, num);
    scalar(&mut out, "sid", &a.sid, &b.sid, num);
    scalar(&mut out, "comm", &a.comm, &b.comm, opt_str);
    scalar(&mut out, "exe", &a.exe, &b.exe, opt_str);
    scalar(&mut out, "cwd", &a.cwd, &b.cwd, opt_str);
    let id = |v: &Option<u32>| v.map_or("none".into(), |v| v.to_string());
    scalar(&mut out, "uid", &a.uid, &b.uid, id);
    scalar(&mut out, "gid", &a.gid, &b.gid, id);
    keyed(
        &mut out,
        "thread",
        a.threads.iter().map(|t| (t.tid, t)).collect(),
        b.threads.iter().map(|t| (t.tid, t)).collect(),
        |x, y| x.comm == y.comm && x.blocked == y.blocked && x.pending == y.pending && x.sigaltstack == y.sigaltstack,
        show_thread,
    );
    if let (Some(ma), Some(mb)) = (&a.mm, &b.mm) {
        let counts = |m: &super::Mm| {
            json!({
                "vmas": m.vmas,
                "mapped_bytes": m.mapped_bytes,
                "private_bytes": m.private_bytes,
                "shared_bytes": m.shared_bytes,
                "saved_bytes": m.saved_bytes,
                "saved_extents": m.saved_extents,
                "parent_shared_bytes": m.parent_shared_bytes,
            })
        };
        let (ca, cb) = (counts(ma), counts(mb));
        if ca != cb {
            let mut parts = Vec::new();
            if ma.vmas != mb.vmas {
                parts.push(format!("{} -> {} VMAs", ma.vmas, mb.vmas));
            }
            if ma.mapped_bytes != mb.mapped_bytes {
                parts.push(format!("mapped {} -> {}", human_bytes(ma.mapped_bytes), human_bytes(mb.mapped_bytes)));
            }
            if ma.saved_bytes != mb.saved_bytes || ma.saved_extents != mb.saved_extents {
                parts.push(format!(
                    "saved {} in {} extent(s) -> {} in {}",
                    human_bytes(ma.saved_bytes),
                    ma.saved_extents,
                    human_bytes(mb.saved_bytes),
                    mb.saved_extents
                ));
            }
            if ma.parent_shared_bytes != mb.parent_shared_bytes {
                parts.push(format!(
                    "shared with the parent {} -> {}",
                    human_bytes(ma.parent_shared_bytes),
                    human_bytes(mb.parent_shared_bytes)
                ));
            }
            if parts.is_empty() {
                parts.push("private and shared sizes changed".into());
            }
            out.push(Change {
                what: "memory",
                key: None,
                before: ca,
                after: cb,
                text: format!("memory: {}", parts.join(", ")),
            });
        }
        if let (Some(ia), Some(ib)) = (seta.mms.get(&a.pid), setb.mms.get(&b.pid)) {
            let (da, na) = extents_not_in(ia, ib);
            let (db, nb) = extents_not_in(ib, ia);
            if na > 0 || nb > 0 {
                out.push(Change {
                    what: "pages",
                    key: None,
                    before: json!({ "bytes": da, "extents": na }),
                    after: json!({ "bytes": db, "extents": nb }),
                    text: format!(
                        "pages: content differs: {} in {na} extent(s) of {} saved before, {} in {nb} of {} after",
                        human_bytes(da),
                        human_bytes(ma.saved_bytes),
                        human_bytes(db),
                        human_bytes(mb.saved_bytes)
                    ),
                });
            }
        }
        keyed(
            &mut out,
            "vma",
            ma.vma_list.iter().map(|v| (addr(v), v)).collect(),
            mb.vma_list.iter().map(|v| (addr(v), v)).collect(),
            |x, y| {
                (&x.end, &x.prot, x.kind, &x.path, x.offset, &x.name)
                    == (&y.end, &y.prot, y.kind, &y.path, y.offset, &y.name)
            },
            show_vma,
        );
    }
    keyed(
        &mut out,
        "fd",
        a.fds.iter().map(|f| (f.fd, f)).collect(),
        b.fds.iter().map(|f| (f.fd, f)).collect(),
        |x, y| x == y,
        show_fd,
    );
    if a.signals != b.signals {
        let show = |s: &Option<super::Signals>| match s {
            Some(s) => format!(
                "handled {}, ignored {}, pending {}",
                signal_names(&s.handled),
                signal_names(&s.ignored),
                signal_names(&s.shared_pending)
            ),
            None => "none".into(),
        };
        out.push(Change {
            what: "signals",
            key: None,
            before: json!(a.signals),
            after: json!(b.signals),
            text: format!("signals: {} -> {}", show(&a.signals), show(&b.signals)),
        });
    }
    out
}

/// The text for people.
pub fn render(d: &Diff) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "--- {} ({})", d.a.dir, utc(d.a.created_unix));
    let _ = writeln!(o, "+++ {} ({})", d.b.dir, utc(d.b.created_unix));
    if d.identical {
        let _ = writeln!(o, "no differences");
        return o;
    }
    for t in &d.tasks_removed {
        let _ = writeln!(o, "- {}", t.text);
    }
    for t in &d.tasks_added {
        let _ = writeln!(o, "+ {}", t.text);
    }
    for e in &d.externals_removed {
        let _ = writeln!(o, "- external {e}");
    }
    for e in &d.externals_added {
        let _ = writeln!(o, "+ external {e}");
    }
    for t in &d.tasks_changed {
        let comm = t.comm.as_ref().map(|c| format!(" {c:?}")).unwrap_or_default();
        let _ = writeln!(o, "task {}{comm}:", t.pid);
        for c in &t.changes {
            let _ = writeln!(o, "  {}", c.text);
        }
    }
    o
}
