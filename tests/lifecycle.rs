//! The life of a dumped task: a job-control stop, --leave-running leaving no
//! trace, refused and failed dumps leaving it untouched, and many cycles.

mod common;
use common::*;
use std::time::Duration;

fn state(pid: i32) -> char {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    s.rsplit(')').next().unwrap().split_whitespace().next().unwrap().chars().next().unwrap()
}

fn wait_state(pid: i32, want: char) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while state(pid) != want {
        assert!(std::time::Instant::now() < deadline, "task {pid} is {} not {want}", state(pid));
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_stopped_task_comes_back_stopped() {
    let mut w = Workload::spawn("blocking", &["pause", "restored"]);
    wait_blocked(w.pid);
    signal(w.pid, libc::SIGSTOP);
    wait_state(w.pid, 'T');
    let img = TempDir::new("stopped");
    dump_ok(w.pid, img.path(), &[]);
    w.wait_gone();
    let mut r = Restore::spawn(img.path(), &["--inherit-fd", &w.inherit_stdout()]);
    wait_state(r.pid, 'T');
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(state(r.pid), 'T', "the restored task left its stop by itself");
    signal(r.pid, libc::SIGCONT);
    let (st, lines) = r.trigger_and_finish();
    assert_passed(st, &lines);
}

#[test]
fn a_stopped_task_stays_stopped_with_leave_running() {
    let mut w = Workload::spawn("blocking", &["pause", "running"]);
    wait_blocked(w.pid);
    signal(w.pid, libc::SIGSTOP);
    wait_state(w.pid, 'T');
    let img = TempDir::new("stopped-lr");
    dump_ok(w.pid, img.path(), &["--leave-running"]);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(state(w.pid), 'T');
    signal(w.pid, libc::SIGCONT);
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}

/// Every readable byte of a task's private memory, by VMA, read without
/// disturbing it (pread of /proc/PID/mem).
fn memory(pid: i32) -> Vec<(String, Vec<u8>)> {
    use std::os::unix::fs::FileExt;
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut out = Vec::new();
    for line in maps(pid).lines() {
        let mut f = line.split_whitespace();
        let range = f.next().unwrap();
        let perms = f.next().unwrap();
        let name = line.split_whitespace().nth(5).unwrap_or("");
        if !perms.starts_with('r') || name.starts_with("[v") {
            continue;
        }
        let (s, e) = range.split_once('-').unwrap();
        let (s, e) = (u64::from_str_radix(s, 16).unwrap(), u64::from_str_radix(e, 16).unwrap());
        let mut buf = vec![0u8; (e - s) as usize];
        mem.read_exact_at(&mut buf, s).unwrap();
        out.push((line.to_string(), buf));
    }
    out
}

fn fds(pid: i32) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            format!("{} -> {}", e.file_name().to_string_lossy(), std::fs::read_link(e.path()).unwrap().display())
        })
        .collect();
    v.sort();
    v
}

/// The task's rseq area (which the kernel rewrites when the task changes CPU)
/// is zeroed in memory snapshots.
fn snapshot_of(w: &Workload) -> (String, Vec<(String, Vec<u8>)>, Vec<String>, String) {
    let mut s = snapshot(w.pid);
    if let Some(rseq) = w.line_value("RSEQ") {
        for (line, bytes) in s.1.iter_mut() {
            let (a, b) = line.split_whitespace().next().unwrap().split_once('-').unwrap();
            let (a, b) = (u64::from_str_radix(a, 16).unwrap(), u64::from_str_radix(b, 16).unwrap());
            if (a..b).contains(&rseq) {
                let off = (rseq - a) as usize;
                let end = (off + 32).min(bytes.len());
                bytes[off..end].fill(0);
            }
        }
    }
    s
}

fn snapshot(pid: i32) -> (String, Vec<(String, Vec<u8>)>, Vec<String>, String) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let sig: String =
        // SigQ counts the signals queued to every process of the user: not this one's.
        status
            .lines()
            .filter(|l| (l.starts_with("Sig") || l.starts_with("Shd")) && !l.starts_with("SigQ"))
            .collect::<Vec<_>>()
            .join("\n");
    (maps(pid), memory(pid), fds(pid), sig)
}

fn assert_same(w: &Workload, before: &(String, Vec<(String, Vec<u8>)>, Vec<String>, String), what: &str) {
    let pid = w.pid;
    let after = snapshot_of(w);
    assert_eq!(before.0, after.0, "{what}: /proc/{pid}/maps changed");
    assert_eq!(before.2, after.2, "{what}: fds changed");
    assert_eq!(before.3, after.3, "{what}: signal state changed");
    for (b, a) in before.1.iter().zip(after.1.iter()) {
        let diff: Vec<usize> =
            b.1.iter().zip(a.1.iter()).enumerate().filter(|(_, (x, y))| x != y).map(|(i, _)| i).collect();
        assert!(diff.is_empty(), "{what}: memory of {} changed at offsets {:x?}", b.0, &diff[..diff.len().min(16)]);
    }
}

#[test]
fn leave_running_leaves_maps_memory_and_fds_identical() {
    // Blocked in pause(): nothing in it changes its memory on its own.
    let mut w = Workload::spawn("blocking", &["pause", "running"]);
    std::thread::sleep(Duration::from_millis(50));
    let before = snapshot_of(&w);
    let img = TempDir::new("lr-identical");
    dump_ok(w.pid, img.path(), &["--leave-running"]);
    assert_same(&w, &before, "after --leave-running");
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}

#[test]
fn failed_dumps_leave_the_task_untouched() {
    let mut w = Workload::spawn("blocking", &["pause", "running"]);
    std::thread::sleep(Duration::from_millis(50));
    let before = snapshot_of(&w);
    for point in ["dump.freeze", "dump.collect", "dump.infected", "dump.pages", "dump.cured", "dump.before-inventory"] {
        let img = TempDir::new("faulted");
        let pid = w.pid.to_string();
        let (st, _, err) = rckpt(&["dump", "-t", &pid, "-D", img.path().to_str().unwrap()], &[("RCKPT_FAULT", point)]);
        assert!(!st.success(), "{point}: the dump did not fail");
        assert!(err.contains(point), "{point}: {err}");
        assert!(!img.file("inventory.img").exists(), "{point}: an inventory was written");
        let left: Vec<_> = std::fs::read_dir(img.path()).map(|d| d.flatten().collect()).unwrap_or_default();
        assert!(left.is_empty(), "{point}: files left behind: {left:?}");
        assert_same(&w, &before, point);
    }
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}

/// Dumps a task holding something unsupported: refused with exit 69, a message
/// naming the task, where, and `what`; the task unchanged and still running.
fn refused(kind: &str, place: &str, what: &str) {
    let mut w = Workload::spawn("unsupported", &[kind]);
    // Asleep in its wait (lazy binding writes the GOT on its first call).
    wait_blocked(w.pid);
    let before = snapshot_of(&w);
    let img = TempDir::new(&format!("refused-{kind}"));
    let (st, err) = dump(w.pid, img.path(), &[]);
    assert_eq!(st.code(), Some(69), "{kind}: {err}");
    let named = format!("task {}: {place}", w.pid);
    assert!(err.contains(&named) && err.contains(what), "{kind}: want {named:?} and {what:?} in: {err}");
    assert_same(&w, &before, &format!("{kind}: after a refused dump"));
    assert!(alive(w.pid));
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}

#[test]
fn unsupported_fds_refuse_the_dump_naming_them() {
    for (kind, what) in [
        ("io_uring", "io_uring"),
        ("userfaultfd", "userfaultfd"),
        ("pidfd", "pidfd"),
        ("perf", "perf_event"),
        ("bpf", "bpf-map"),
        ("netlink", "a netlink socket"),
        ("scm_rights", "SCM_RIGHTS"),
        ("ext_unix", "--ext-unix-sk"),
    ] {
        refused(kind, "fd 5 is ", what);
    }
}

#[test]
fn unsupported_memory_refuses_the_dump_naming_the_mapping() {
    for (kind, what) in [("sysv", "SysV shared memory"), ("deleted", "a mapped file that was deleted")] {
        refused(kind, "mapping 0x", what);
    }
}

#[test]
fn twenty_cycles_without_accumulating_mappings() {
    let mut w = Workload::spawn("counter", &[]);
    let original = maps(w.pid).lines().count();
    let img0 = TempDir::new("cycle");
    dump_ok(w.pid, img0.path(), &[]);
    w.wait_gone();
    let mut r = Restore::spawn(img0.path(), &["--inherit-fd", &w.inherit_stdout()]);
    let mut keep = vec![img0];
    for i in 1..20 {
        assert_eq!(maps(r.pid).lines().count(), original, "cycle {i}: mappings accumulate:\n{}", maps(r.pid));
        let img = TempDir::new("cycle");
        dump_ok(r.pid, img.path(), &[]);
        let key = r.inherit_stdout();
        let (st, _) = r.finish();
        assert_eq!(st.code(), Some(128 + 9), "cycle {i}: the dumped task did not die by SIGKILL");
        r = Restore::spawn(img.path(), &["--inherit-fd", &key]);
        assert_eq!(r.pid, w.pid);
        keep.push(img);
        if keep.len() > 2 {
            keep.remove(0);
        }
    }
    let (st, lines) = r.trigger_and_finish();
    assert_passed(st, &lines);
    let ticks = lines.iter().find_map(|l| l.strip_prefix("TICKS ")).unwrap().parse::<u64>().unwrap();
    assert!(ticks > 0);
}
