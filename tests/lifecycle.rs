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

// ---- Faults at every step, interruptions, concurrent dumps.

/// rckpt started in the background, stderr captured.
fn spawn_rckpt(args: &[&str], env: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = std::process::Command::new(RCKPT);
    cmd.args(args).stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null());
    cmd.stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

fn finish_rckpt(mut c: std::process::Child) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    let mut err = String::new();
    let mut e = c.stderr.take().unwrap();
    let t = std::thread::spawn(move || {
        let _ = e.read_to_string(&mut err);
        err
    });
    let st = wait_child(&mut c, Duration::from_secs(60)).expect("rckpt did not end");
    (st, t.join().unwrap())
}

/// Waits until `pid` is in a job-control stop (rckpt paused at a fault point).
fn wait_stopped(pid: i32) {
    wait_state(pid, 'T');
}

/// None of `pids` is left alive (zombies waiting for init count as gone).
fn none_alive(pids: &[i32], what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|p| alive(*p)) {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: left alive: {:?}",
            pids.iter().filter(|p| alive(**p)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn rckpt_killed_at_any_dump_step_leaves_the_tree_running() {
    let mut w = Workload::spawn("blocking", &["pause", "running"]);
    wait_blocked(w.pid);
    let mut before = snapshot_of(&w);
    for point in rckpt::fault::POINTS.iter().filter(|p| p.starts_with("dump.")) {
        let img = TempDir::new("killed-dump");
        let spec = format!("{point}:kill");
        let (st, _, err) =
            rckpt(&["dump", "-t", &w.pid.to_string(), "-D", img.path().to_str().unwrap()], &[("RCKPT_FAULT", &spec)]);
        assert_eq!(st.code(), None, "{point}: rckpt was not killed: {err}");
        // The kernel detaches the tracees of a dead tracer; the parasite, if it
        // was in, cured itself.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let s = std::fs::read_to_string(format!("/proc/{}/status", w.pid)).unwrap();
            if s.contains("TracerPid:\t0") && !maps(w.pid).contains("rckpt") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{point}: still traced or infected");
            std::thread::sleep(Duration::from_millis(10));
        }
        wait_blocked(w.pid);
        if matches!(*point, "dump.infected" | "dump.pages") {
            // The window README names: the parasite cured itself (registers,
            // mask, memory), but its own code mapping stays.
            let named = |m: &str| {
                m.lines().filter(|l| l.contains('/') || l.contains('[')).map(String::from).collect::<Vec<_>>()
            };
            assert_eq!(named(&before.0), named(&maps(w.pid)), "{point}: named mappings changed");
            before = snapshot_of(&w);
        } else {
            assert_same(&w, &before, point);
        }
    }
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}

#[test]
fn a_restore_failing_or_killed_at_any_step_leaves_nothing_of_the_image() {
    let mut w = Workload::spawn("tree", &[]);
    let pids = tree_pids(w.pid);
    let img = TempDir::new("restore-faults");
    dump_ok(w.pid, img.path(), &[]);
    w.wait_gone();
    none_alive(&pids, "after the dump");
    let files_before: Vec<_> = std::fs::read_dir(img.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    for point in rckpt::fault::POINTS.iter().filter(|p| p.starts_with("restore.")) {
        for action in ["fail", "kill"] {
            let spec = format!("{point}:{action}");
            let dir = img.path().to_str().unwrap();
            let (st, _, err) =
                rckpt(&["restore", "-D", dir, "--inherit-fd", &w.inherit_stdout()], &[("RCKPT_FAULT", &spec)]);
            match action {
                "kill" => assert_eq!(st.code(), None, "{spec}: rckpt was not killed: {err}"),
                _ => {
                    assert_eq!(st.code(), Some(70), "{spec}: {err}");
                    assert!(err.contains(point), "{spec}: {err}");
                }
            }
            none_alive(&pids, &spec);
            let files: Vec<_> = std::fs::read_dir(img.path()).unwrap().flatten().map(|e| e.file_name()).collect();
            assert_eq!(files, files_before, "{spec}: the image directory changed");
        }
    }
    // And the image still restores.
    let mut r = Restore::spawn(img.path(), &["--inherit-fd", &w.inherit_stdout()]);
    trigger_tree(r.pid);
    let (st, lines) = r.finish();
    assert_passed(st, &lines);
}

#[test]
fn sigterm_during_a_dump_rolls_it_back() {
    let mut w = Workload::spawn("blocking", &["pause", "running"]);
    wait_blocked(w.pid);
    let before = snapshot_of(&w);
    for (point, sig) in [("dump.infected", libc::SIGTERM), ("dump.pages", libc::SIGINT)] {
        let img = TempDir::new("sigterm-dump");
        let c = spawn_rckpt(
            &["dump", "-t", &w.pid.to_string(), "-D", img.path().to_str().unwrap()],
            &[("RCKPT_FAULT", &format!("{point}:pause"))],
        );
        let r = c.id() as i32;
        wait_stopped(r);
        signal(r, sig);
        signal(r, libc::SIGCONT);
        let (st, err) = finish_rckpt(c);
        assert_eq!(st.code(), Some(70), "{point}: {err}");
        assert!(err.contains("interrupted") && err.contains("rolled back"), "{point}: {err}");
        assert!(!img.file("inventory.img").exists(), "{point}: an image was written");
        wait_blocked(w.pid);
        assert_same(&w, &before, point);
    }
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}

#[test]
fn sigint_during_a_restore_rolls_it_back() {
    let mut w = Workload::spawn("tree", &[]);
    let pids = tree_pids(w.pid);
    let img = TempDir::new("sigint-restore");
    dump_ok(w.pid, img.path(), &[]);
    w.wait_gone();
    none_alive(&pids, "after the dump");
    let c = spawn_rckpt(
        &["restore", "-D", img.path().to_str().unwrap(), "--inherit-fd", &w.inherit_stdout()],
        &[("RCKPT_FAULT", "restore.parked:pause")],
    );
    let r = c.id() as i32;
    wait_stopped(r);
    signal(r, libc::SIGINT);
    signal(r, libc::SIGCONT);
    let (st, err) = finish_rckpt(c);
    assert_eq!(st.code(), Some(70), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    none_alive(&pids, "after an interrupted restore");
}

#[test]
fn a_second_rckpt_dumping_the_same_tree_is_refused() {
    let mut w = Workload::spawn("blocking", &["pause", "running"]);
    wait_blocked(w.pid);
    let first_img = TempDir::new("first");
    let first = spawn_rckpt(
        &["dump", "-t", &w.pid.to_string(), "-D", first_img.path().to_str().unwrap(), "-R"],
        &[("RCKPT_FAULT", "dump.pages:pause")],
    );
    let r = first.id() as i32;
    wait_stopped(r);
    let second = TempDir::new("second");
    let (st, err) = dump(w.pid, second.path(), &[]);
    assert_eq!(st.code(), Some(69), "{err}");
    assert!(err.contains(&format!("traced by pid {r} (rckpt)")), "{err}");
    signal(r, libc::SIGCONT);
    let (st, err) = finish_rckpt(first);
    assert!(st.success(), "the first dump failed: {err}");
    assert!(first_img.file("inventory.img").exists());
    wait_blocked(w.pid);
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}

/// Runs rckpt to completion and returns its status, peak RSS (KiB) and stderr.
fn rckpt_measured(args: &[&str]) -> (i32, i64, String) {
    use std::io::Read;
    let mut c = std::process::Command::new(RCKPT)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = String::new();
    c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let mut status = 0;
    // SAFETY: a zeroed rusage is valid; wait4 fills it for our own child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(c.id() as i32, &mut status, 0, &mut ru) };
    assert_eq!(r, c.id() as i32);
    std::mem::forget(c);
    (status, ru.ru_maxrss, err)
}

/// fds, mappings and resident KiB of every process of a tree.
fn footprint(root: i32) -> (usize, usize, u64) {
    let pids = tree_pids(root);
    let fds = pids.iter().map(|p| std::fs::read_dir(format!("/proc/{p}/fd")).map(|d| d.count()).unwrap_or(0)).sum();
    let maps = pids.iter().map(|p| maps(*p).lines().count()).sum();
    let rss = pids
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
        .filter_map(|s| s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    (fds, maps, rss)
}

#[test]
fn a_hundred_cycles_leak_nothing() {
    // In its own namespaces: each restore has fresh pids, so no cycle waits for
    // the previous tree's zombies to be reaped.
    let bin = workload_bin("soak");
    let mut cmd = std::process::Command::new(RCKPT);
    cmd.args(["run", "--", bin.to_str().unwrap()]);
    let mut w = Workload::command(cmd);
    let run = w.child_pid();
    let root: i32 = std::fs::read_to_string(format!("/proc/{run}/task/{run}/children"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    w.pid = root;
    wait_blocked(root);
    // Every process up with its three extra threads (and their stacks mapped).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let pids = tree_pids(root);
        let threads = |p: &i32| std::fs::read_dir(format!("/proc/{p}/task")).map(|d| d.count()).unwrap_or(0);
        if pids.len() == 3 && pids.iter().all(|p| threads(p) == 4) && {
            let (a, b) = (footprint(root), footprint(root));
            (a.0, a.1) == (b.0, b.1)
        } {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the soak tree did not settle");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (mut pid, mut key) = (root, w.inherit_stdout());
    let first = footprint(pid);
    let mut peaks = Vec::new();
    let mut last: Option<Restore> = None;
    for cycle in 0..100 {
        let img = TempDir::new("soak");
        let dir = img.path().to_str().unwrap();
        let (st, dump_rss, err) = rckpt_measured(&["dump", "-t", &pid.to_string(), "-D", dir]);
        assert_eq!(st, 0, "cycle {cycle}: dump failed: {err}");
        let r = Restore::spawn(img.path(), &["--detach", "--inherit-fd", &key]);
        pid = r.pid;
        key = r.inherit_stdout();
        last = Some(r);
        peaks.push(dump_rss);
        let now = footprint(pid);
        assert_eq!((now.0, now.1), (first.0, first.1), "cycle {cycle}: fds or mappings changed");
        assert!(
            now.2 <= first.2 + first.2 / 5 + 256,
            "cycle {cycle}: resident memory grew from {} to {} KiB",
            first.2,
            now.2
        );
    }
    let early = *peaks[..10].iter().max().unwrap();
    let late = *peaks[90..].iter().max().unwrap();
    assert!(late <= early + early / 5, "rckpt's peak memory grew from {early} to {late} KiB");
    trigger_tree(pid);
    let mut r = last.unwrap();
    let (_, lines) = r.finish();
    assert!(lines.iter().all(|l| !l.starts_with("FAIL")), "{lines:?}");
    assert_eq!(lines.iter().filter(|l| l.starts_with("PASSED")).count(), 1, "{lines:?}");
    let _ = w.wait_gone();
}

#[test]
fn a_pid_taken_while_the_restore_runs_fails_it_and_its_holder_is_not_touched() {
    let mut w = Workload::spawn("tree", &[]);
    let pids = tree_pids(w.pid);
    let img = TempDir::new("taken-late");
    dump_ok(w.pid, img.path(), &[]);
    w.wait_gone();
    none_alive(&pids, "after the dump");
    // rckpt stops once the root exists, before it creates the rest.
    let c = spawn_rckpt(
        &["restore", "-D", img.path().to_str().unwrap(), "--inherit-fd", &w.inherit_stdout()],
        &[("RCKPT_FAULT", "restore.created:pause")],
    );
    let r = c.id() as i32;
    wait_stopped(r);
    // Meanwhile something else takes a pid of the image.
    let victim = *pids.last().unwrap();
    let mut holder = std::process::Command::new(workload_bin("hold_pid"))
        .arg(victim.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = Lines::new(holder.stdout.take().unwrap());
    let l = out.wait_for("", Duration::from_secs(5));
    assert!(l.starts_with("HELD"), "{l}");
    signal(r, libc::SIGCONT);
    let (st, err) = finish_rckpt(c);
    // The rollback killed what it made, not the process holding the pid.
    let victim_alive = alive(victim);
    holder.kill().ok();
    holder.wait().ok();
    assert!(!st.success(), "{err}");
    assert!(err.contains(&format!("pid {victim}")), "{err}");
    assert!(victim_alive, "the process holding pid {victim} was killed by the rollback: {err}");
    let others: Vec<i32> = pids.iter().copied().filter(|&p| p != victim).collect();
    none_alive(&others, "after the failed restore");
}
