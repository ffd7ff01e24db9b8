//! Least privilege: seccomp filters saved and restored, a restore that never
//! gives the tree more than the invoker holds, and what an unprivileged user
//! with CAP_CHECKPOINT_RESTORE can dump and restore of their own processes.
//!
//! Unprivileged runs use setpriv(1) (util-linux): uid and gid 65534, no
//! supplementary groups, and the capabilities named as ambient ones (which an
//! unprivileged rckpt then holds in its permitted and effective sets).

mod common;
use common::*;

use std::os::unix::fs::chown;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use rckpt_images::Image;
use rckpt_images::core::TaskCore;
use rckpt_images::inventory::{self, Inventory};

const NOBODY: u32 = 65534;
const CR: &[&str] = &["checkpoint_restore"];

// ---------------------------------------------------------------------------
// Seccomp

#[test]
fn seccomp_filters_survive() {
    // Filters installed with CAP_SYS_ADMIN or under no_new_privs, by threads
    // that keep CAP_SYS_ADMIN or drop it afterwards.
    for args in [&[][..], &["nnp"], &["dropcap"], &["nnp", "dropcap"]] {
        let mut w = Workload::spawn("seccomp", args);
        let img = TempDir::new("seccomp");
        let (st, lines) = cycle(&mut w, &img);
        assert_passed(st, &lines);
    }
}

#[test]
fn seccomp_filters_survive_leave_running() {
    let mut w = Workload::spawn("seccomp", &[]);
    let img = TempDir::new("seccomp-lr");
    dump_ok(w.pid, img.path(), &["--leave-running"]);
    // The parasite ran under suspended filters, which are back in force.
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}

#[test]
fn seccomp_filters_are_shared_in_the_image() {
    let mut w = Workload::spawn("seccomp", &[]);
    let img = TempDir::new("seccomp-image");
    dump_ok(w.pid, img.path(), &[]);
    w.wait_gone();
    let core = read_core(img.path(), w.pid);
    // A and C once, shared by both threads; B on top of them for the second.
    assert_eq!(core.seccomp_filters.len(), 3, "{:#?}", core.seccomp_filters);
    let chains: Vec<Vec<u32>> = core
        .threads
        .iter()
        .map(|t| {
            assert_eq!(t.seccomp.mode, 2);
            rckpt_images::seccomp::chain(&core.seccomp_filters, t.seccomp.filter)
        })
        .collect();
    assert_eq!(chains, vec![vec![0, 1], vec![0, 1, 2]]);
    assert_eq!(core.seccomp_filters[2].flags, rckpt_images::seccomp::FILTER_FLAG_LOG);
}

// ---------------------------------------------------------------------------
// Helpers

/// The core image of `pid`, decoded.
fn read_core(dir: &Path, pid: i32) -> TaskCore {
    let name = rckpt_images::core::file_name(pid);
    TaskCore::decode(&std::fs::read(dir.join(name)).unwrap()).unwrap()
}

/// Writes a changed core image back, with its new size in the inventory: the
/// image stays consistent, and only the changed field is what a restore refuses.
fn write_core(dir: &Path, core: &TaskCore) {
    let name = rckpt_images::core::file_name(core.pid);
    let bytes = core.encode().unwrap();
    std::fs::write(dir.join(&name), &bytes).unwrap();
    let inv_path = dir.join(inventory::FILE_NAME);
    let mut inv = Inventory::decode(&std::fs::read(&inv_path).unwrap()).unwrap();
    inv.images.iter_mut().find(|f| f.name == name).unwrap().size = bytes.len() as u64;
    std::fs::write(&inv_path, inv.encode().unwrap()).unwrap();
}

/// Gives `dir` and everything in it to uid and gid 65534.
fn give_to_nobody(dir: &Path) {
    chown(dir, Some(NOBODY), Some(NOBODY)).unwrap();
    for e in std::fs::read_dir(dir).unwrap() {
        chown(e.unwrap().path(), Some(NOBODY), Some(NOBODY)).unwrap();
    }
}

/// A copy of image `from`, given to uid 65534, after `f` changed the root's core.
fn crafted(from: &Path, pid: i32, tag: &str, f: impl FnOnce(&mut TaskCore)) -> TempDir {
    let t = TempDir::new(tag);
    std::fs::create_dir_all(t.path()).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), t.path().join(e.file_name())).unwrap();
    }
    let mut core = read_core(t.path(), pid);
    f(&mut core);
    write_core(t.path(), &core);
    give_to_nobody(t.path());
    t
}

/// `program` run as uid and gid 65534 without groups, keeping `caps` (setpriv's
/// names) as ambient capabilities.
fn as_nobody(program: &Path, caps: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
    if !caps.is_empty() {
        let list = caps.iter().map(|c| format!("+{c}")).collect::<Vec<_>>().join(",");
        c.arg(format!("--inh-caps={list}")).arg(format!("--ambient-caps={list}"));
    }
    c.arg(program);
    c
}

/// A workload started as uid 65534.
fn nobody_workload(name: &str, args: &[&str]) -> Workload {
    let mut c = as_nobody(&workload_bin(name), &[]);
    c.args(args);
    Workload::command(c)
}

/// rckpt run to completion as uid 65534 with `caps`: (status, stderr).
fn nobody_rckpt(caps: &[&str], args: &[&str]) -> (ExitStatus, String) {
    let mut c = as_nobody(Path::new(RCKPT), caps);
    c.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut err = Lines::new(child.stderr.take().unwrap());
    let st = wait_child(&mut child, Duration::from_secs(120)).expect("rckpt timed out");
    (st, err.drain(Duration::from_secs(2)).join("\n"))
}

/// An empty image directory owned by uid 65534, for its dumps.
fn nobody_image_dir(tag: &str) -> TempDir {
    let t = TempDir::new(tag);
    std::fs::create_dir_all(t.path()).unwrap();
    give_to_nobody(t.path());
    t
}

fn dump_as_nobody(caps: &[&str], pid: i32, dir: &Path, extra: &[&str]) -> (ExitStatus, String) {
    let pid = pid.to_string();
    let mut args = vec!["dump", "-v", "-t", &pid, "-D", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    nobody_rckpt(caps, &args)
}

/// A restore of `w`'s image that must be refused for lack of privilege (exit 77),
/// with a message holding `needles`, leaving no process of the image behind.
#[track_caller]
fn refused_as_nobody(caps: &[&str], dir: &Path, w: &Workload, needles: &[&str]) {
    let key = w.inherit_stdout();
    let (st, err) = nobody_rckpt(caps, &["restore", "-D", dir.to_str().unwrap(), "--inherit-fd", &key]);
    assert_eq!(st.code(), Some(77), "expected exit 77: {err}");
    for n in needles {
        assert!(err.contains(n), "message lacks {n:?}: {err}");
    }
    assert!(!alive(w.pid), "a process of the image is left: {err}");
}

/// A foreground restore as uid 65534 with `caps`, stdout carrying the restored
/// workload's; waits until rckpt releases the tree.
struct NobodyRestore {
    child: std::process::Child,
    out: Lines,
    err: Lines,
    pid: i32,
}

impl NobodyRestore {
    fn spawn(caps: &[&str], dir: &Path, w: &Workload) -> NobodyRestore {
        let mut c = as_nobody(Path::new(RCKPT), caps);
        // The workload's stdout was a pipe: this restore's stdout serves it.
        let mut child = c
            .args(["restore", "-v", "-D", dir.to_str().unwrap(), "--inherit-fd", &w.inherit_stdout()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = Lines::new(child.stdout.take().unwrap());
        let mut err = Lines::new(child.stderr.take().unwrap());
        let l = err.wait_for("rckpt: restored ", Duration::from_secs(60));
        let pid = l.trim_start_matches("rckpt: restored ").trim().parse().unwrap();
        NobodyRestore { child, out, err, pid }
    }

    fn finish(&mut self) -> (ExitStatus, Vec<String>) {
        let st = wait_child(&mut self.child, Duration::from_secs(60)).expect("restored workload did not finish");
        let mut lines = self.out.drain(Duration::from_secs(2)).to_vec();
        lines.extend(self.err.drain(Duration::from_millis(100)).iter().map(|l| format!("(rckpt) {l}")));
        (st, lines)
    }
}

impl Drop for NobodyRestore {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            signal(self.pid, libc::SIGKILL);
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A field of /proc/PID/status (the thread group leader's).
fn status_field(pid: i32, name: &str) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).unwrap_or("").trim().to_string()
}

/// rckpt's own effective capabilities (this test runs as root; root here may
/// lack some, CAP_SYS_RESOURCE for one).
fn own_capeff() -> u64 {
    u64::from_str_radix(&status_field(std::process::id() as i32, "CapEff"), 16).unwrap()
}

/// The hard limit of `resource` (a /proc/PID/limits row) of `pid`.
fn hard_limit(pid: i32, row: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let l = s.lines().find(|l| l.starts_with(row)).unwrap();
    let v = l[row.len()..].split_whitespace().nth(1).unwrap();
    if v == "unlimited" { u64::MAX } else { v.parse().unwrap() }
}

const RLIMIT_NOFILE: u32 = 7;
const CAP_NET_ADMIN: u64 = 1 << 12;
const CAP_SYS_RESOURCE: u64 = 1 << 24;

// ---------------------------------------------------------------------------
// A restore gives the tree nothing beyond the invoker's

#[test]
fn an_unprivileged_restore_of_a_root_image_is_refused() {
    let mut w = Workload::spawn("counter", &[]);
    let img = TempDir::new("priv-root-image");
    dump_ok(w.pid, img.path(), &[]);
    w.wait_gone();
    give_to_nobody(img.path());
    // Without CAP_CHECKPOINT_RESTORE no task gets its saved pid.
    refused_as_nobody(&[], img.path(), &w, &["CAP_CHECKPOINT_RESTORE"]);
    // With it, root's capabilities are still not the invoker's to give.
    let who = format!("task {} thread {}", w.pid, w.pid);
    refused_as_nobody(CR, img.path(), &w, &[&who, "permitted capabilities", "that rckpt does not hold"]);
}

#[test]
fn a_crafted_image_asking_for_more_than_the_invoker_holds_is_refused() {
    let mut w = nobody_workload("counter", &[]);
    let img = nobody_image_dir("priv-crafted");
    let (st, err) = dump_as_nobody(CR, w.pid, img.path(), &[]);
    assert!(st.success(), "unprivileged dump failed: {err}");
    w.wait_gone();
    let pid = w.pid;
    let who = format!("task {pid} thread {pid}");
    let own_hard = hard_limit(std::process::id() as i32, "Max open files");
    type Change = Box<dyn Fn(&mut TaskCore)>;
    let cases: Vec<(&str, Change, Vec<String>)> = vec![
        (
            "cap-permitted",
            Box::new(|c| {
                c.threads[0].creds.cap_permitted |= CAP_NET_ADMIN;
                c.threads[0].creds.cap_effective |= CAP_NET_ADMIN;
            }),
            vec![who.clone(), "permitted capabilities".into(), "0x1000 that rckpt does not hold".into()],
        ),
        (
            "cap-inheritable",
            Box::new(|c| c.threads[0].creds.cap_inheritable |= CAP_NET_ADMIN),
            vec![who.clone(), "inheritable capabilities".into()],
        ),
        (
            "cap-ambient",
            Box::new(|c| c.threads[0].creds.cap_ambient |= CAP_NET_ADMIN),
            vec![who.clone(), "ambient capabilities".into()],
        ),
        (
            // Not in the bounding set of anything here: root lacks it.
            "cap-bounding",
            Box::new(|c| c.threads[0].creds.cap_bounding |= CAP_SYS_RESOURCE),
            vec![who.clone(), "bounding capabilities".into()],
        ),
        (
            "cap-bounding-drop",
            Box::new(|c| c.threads[0].creds.cap_bounding &= !CAP_NET_ADMIN),
            vec![who.clone(), "bounding set".into(), "CAP_SETPCAP".into()],
        ),
        (
            "uid",
            Box::new(|c| c.threads[0].creds.uid = [0; 4]),
            vec![who.clone(), "uids [0, 0, 0, 0]".into(), "CAP_SETUID".into()],
        ),
        ("gid", Box::new(|c| c.threads[0].creds.gid[2] = 0), vec![who.clone(), "gids".into(), "CAP_SETGID".into()]),
        (
            "groups",
            Box::new(|c| c.threads[0].creds.groups = vec![0]),
            vec![who.clone(), "supplementary groups [0]".into(), "CAP_SETGID".into()],
        ),
        (
            // SECBIT_KEEP_CAPS.
            "securebits",
            Box::new(|c| c.threads[0].creds.securebits = 1 << 4),
            vec![who.clone(), "securebits 0x10".into(), "CAP_SETPCAP".into()],
        ),
        (
            "rlimit",
            Box::new(move |c| {
                let r = c.rlimits.iter_mut().find(|r| r.resource == RLIMIT_NOFILE).unwrap();
                r.max = own_hard + 1;
            }),
            vec![format!("task {pid}: rlimit NOFILE hard limit {}", own_hard + 1), "CAP_SYS_RESOURCE".into()],
        ),
        (
            "nice",
            Box::new(|c| c.threads[0].sched.nice = -5),
            vec![who.clone(), "nice -5".into(), "CAP_SYS_NICE".into()],
        ),
    ];
    for (tag, change, needles) in cases {
        let t = crafted(img.path(), pid, &format!("priv-{tag}"), change);
        let needles: Vec<&str> = needles.iter().map(|s| s.as_str()).collect();
        refused_as_nobody(CR, t.path(), &w, &needles);
    }

    // Less is always given: a lowered hard limit, a capability dropped from the
    // bounding set by an invoker that may (CAP_SETPCAP comes with it here).
    let lowered = crafted(img.path(), pid, "priv-lowered", |c| {
        let r = c.rlimits.iter_mut().find(|r| r.resource == RLIMIT_NOFILE).unwrap();
        (r.cur, r.max) = (100, 200);
    });
    let mut r = NobodyRestore::spawn(CR, lowered.path(), &w);
    assert_eq!(hard_limit(r.pid, "Max open files"), 200);
    signal(r.pid, libc::SIGUSR2);
    let (st, lines) = r.finish();
    assert_passed(st, &lines);
    let dropped = crafted(img.path(), pid, "priv-dropped", |c| c.threads[0].creds.cap_bounding &= !CAP_NET_ADMIN);
    let mut r = NobodyRestore::spawn(&["checkpoint_restore", "setpcap"], dropped.path(), &w);
    let bnd = u64::from_str_radix(&status_field(r.pid, "CapBnd"), 16).unwrap();
    assert_eq!(bnd & CAP_NET_ADMIN, 0, "CapBnd {bnd:#x}");
    signal(r.pid, libc::SIGUSR2);
    let (st, lines) = r.finish();
    assert_passed(st, &lines);
}

#[test]
fn root_without_cap_sys_resource_does_not_raise_a_hard_limit() {
    if own_capeff() & CAP_SYS_RESOURCE != 0 {
        eprintln!("skipped: this root holds CAP_SYS_RESOURCE, so it may raise hard limits");
        return;
    }
    let mut w = Workload::spawn("counter", &[]);
    let img = TempDir::new("priv-root-rlimit");
    dump_ok(w.pid, img.path(), &[]);
    w.wait_gone();
    let own_hard = hard_limit(std::process::id() as i32, "Max open files");
    let t = crafted(img.path(), w.pid, "priv-root-rlimit2", |c| {
        c.rlimits.iter_mut().find(|r| r.resource == RLIMIT_NOFILE).unwrap().max = own_hard * 2;
    });
    let (st, _, err) = rckpt(&["restore", "-D", t.path().to_str().unwrap(), "--inherit-fd", &w.inherit_stdout()], &[]);
    assert_eq!(st.code(), Some(77), "{err}");
    assert!(err.contains(&format!("task {}: rlimit NOFILE hard limit {}", w.pid, own_hard * 2)), "{err}");
    assert!(err.contains("CAP_SYS_RESOURCE"), "{err}");
    assert!(!alive(w.pid));
}

// ---------------------------------------------------------------------------
// Unprivileged checkpoint/restore of one's own processes

/// Dump as uid 65534 with CAP_CHECKPOINT_RESTORE, restore the same way, and
/// check the restored tree holds nothing of rckpt's capability.
fn nobody_cycle(name: &str, args: &[&str], dump_args: &[&str]) {
    let mut w = nobody_workload(name, args);
    let img = nobody_image_dir(&format!("nobody-{name}"));
    let (st, err) = dump_as_nobody(CR, w.pid, img.path(), dump_args);
    assert!(st.success(), "unprivileged dump of {name} failed: {err}");
    w.wait_gone();
    let mut r = NobodyRestore::spawn(CR, img.path(), &w);
    assert_eq!(r.pid, w.pid);
    for p in tree_pids(r.pid) {
        assert_eq!(status_field(p, "Uid"), "65534\t65534\t65534\t65534", "task {p}");
        for set in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
            assert_eq!(status_field(p, set), "0000000000000000", "task {p}: {set}");
        }
    }
    trigger_tree(r.pid);
    let (st, lines) = r.finish();
    assert_passed(st, &lines);
}

#[test]
fn an_unprivileged_user_checkpoints_and_restores_own_processes() {
    nobody_cycle("threads", &["4"], &[]);
    nobody_cycle("memory", &[], &[]);
    nobody_cycle("tree", &[], &[]);
    let data = TempDir::new("nobody-ipc-data");
    std::fs::create_dir_all(data.path()).unwrap();
    give_to_nobody(data.path());
    nobody_cycle("ipc", &[data.path().to_str().unwrap()], &[]);
}

/// Kills a workload with all its children (dropping it kills only its root).
fn kill_tree(w: Workload) {
    for p in tree_pids(w.pid).into_iter().rev() {
        signal(p, libc::SIGKILL);
    }
    drop(w);
}

/// A dump as uid 65534 refused for lack of privilege: exit 77 naming `cap`,
/// and the tree goes on unharmed.
#[track_caller]
fn dump_refused_as_nobody(caps: &[&str], w: &Workload, dump_args: &[&str], needles: &[&str]) {
    let img = nobody_image_dir("nobody-refused");
    let (st, err) = dump_as_nobody(caps, w.pid, img.path(), dump_args);
    assert_eq!(st.code(), Some(77), "expected exit 77: {err}");
    for n in needles {
        assert!(err.contains(n), "message lacks {n:?}: {err}");
    }
    assert!(alive(w.pid), "the tree was harmed: {err}");
    assert!(!img.path().join(inventory::FILE_NAME).exists());
}

#[test]
fn what_needs_more_than_checkpoint_restore_is_refused_by_name() {
    // Seccomp filters: suspending and reading them needs CAP_SYS_ADMIN.
    let mut w = nobody_workload("seccomp", &["nnp"]);
    dump_refused_as_nobody(CR, &w, &[], &["CAP_SYS_ADMIN", "seccomp", &format!("thread {}", w.pid)]);
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);

    // Shared memory is read through /proc/PID/map_files: CAP_CHECKPOINT_RESTORE.
    // An inotify watch's path comes from its file handle: CAP_DAC_READ_SEARCH.
    let data = TempDir::new("nobody-events-data");
    std::fs::create_dir_all(data.path()).unwrap();
    give_to_nobody(data.path());
    let w = nobody_workload("events", &[data.path().to_str().unwrap()]);
    dump_refused_as_nobody(&[], &w, &["--file-locks"], &["CAP_CHECKPOINT_RESTORE", "map_files"]);
    dump_refused_as_nobody(CR, &w, &["--file-locks"], &["CAP_DAC_READ_SEARCH", "inotify"]);
    kill_tree(w);

    // An established TCP connection goes through repair mode: CAP_NET_ADMIN.
    let w = nobody_workload("tcp_pair", &["4"]);
    dump_refused_as_nobody(CR, &w, &["--tcp-established"], &["CAP_NET_ADMIN", "TCP repair mode"]);
    kill_tree(w);

    // Another user's task is not ptrace's to seize: CAP_SYS_PTRACE.
    let w = Workload::spawn("counter", &[]);
    dump_refused_as_nobody(CR, &w, &[], &["CAP_SYS_PTRACE", "another user"]);
}
