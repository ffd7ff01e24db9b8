//! `ImageSet::validate` and the per-file checks it runs: starting from a valid
//! image, each test breaks one thing and expects a refusal that names it.

mod common;

use common::*;
use rckpt_images::core::{RLIMIT_COUNT, SigInfo, TaskCore, XSTATE_MAX, XSTATE_MIN};
use rckpt_images::fdinfo::{FD_MAX, FdEntry, FdTable};
use rckpt_images::files::{FileDesc, FileKind, FilesImage};
use rckpt_images::inventory::{External, ExternalKind, ImageFile};
use rckpt_images::mm::{
    MmImage, PAGE_SIZE, PROT_READ, PROT_WRITE, PageExtent, TASK_SIZE_MAX, VSYSCALL_START, Vma, VmaKind, vmflags,
};
use rckpt_images::pstree::{PID_MAX_LIMIT, PsTree, TaskEntry, TaskState};
use rckpt_images::{ImageError, ImageSet, Kind, pages};

/// Validates a copy of the valid image after `f` changed it.
fn validate_with(f: impl FnOnce(&mut ImageSet)) -> Result<(), ImageError> {
    let mut s = valid_set();
    f(&mut s);
    s.validate()
}

#[track_caller]
fn refused(fragments: &[&str], f: impl FnOnce(&mut ImageSet)) {
    assert_invalid(validate_with(f), fragments);
}

#[track_caller]
fn accepted(f: impl FnOnce(&mut ImageSet)) {
    if let Err(e) = validate_with(f) {
        panic!("a valid variation was refused: {e}");
    }
}

fn root_core(s: &mut ImageSet) -> &mut TaskCore {
    s.cores.get_mut(&ROOT).unwrap()
}

fn root_mm(s: &mut ImageSet) -> &mut MmImage {
    s.mms.get_mut(&ROOT).unwrap()
}

fn root_fds(s: &mut ImageSet) -> &mut FdTable {
    s.fdtables.get_mut(&ROOT).unwrap()
}

fn task(s: &mut ImageSet, pid: i32) -> &mut TaskEntry {
    s.pstree.tasks.iter_mut().find(|t| t.pid == pid).unwrap()
}

fn vma_index(m: &MmImage, kind: &VmaKind) -> usize {
    m.vmas.iter().position(|v| &v.kind == kind).unwrap()
}

/// Lays the extents of `m` out back to back again (what the writer does).
fn relayout(m: &mut MmImage) {
    let mut off = pages::HEADER_LEN;
    for e in &mut m.extents {
        e.offset = off;
        off += e.len();
    }
}

#[test]
fn the_valid_image_validates() {
    let s = valid_set();
    s.validate().unwrap();
    // And so does every file on its own.
    for img in samples(&s) {
        img.validate_alone(&s).unwrap_or_else(|e| panic!("{}: {e}", img.kind()));
    }
    for m in s.mms.values() {
        m.validate(pages_size(m)).unwrap();
    }
}

// ---------------------------------------------------------------------------
// Inventory

#[test]
fn inventory_root_pid_not_positive() {
    for pid in [0, -1, i32::MIN] {
        refused(&[&format!("root pid {pid} is not positive")], |s| s.inventory.root_pid = pid);
    }
}

#[test]
fn inventory_root_is_not_the_first_task() {
    refused(&["inventory root 1002 is not the first task 1000"], |s| s.inventory.root_pid = CHILD);
    refused(&["inventory root 4242"], |s| s.inventory.root_pid = 4242);
}

#[test]
fn inventory_lists_a_file_twice() {
    refused(&["listed twice"], |s| {
        let dup = s.inventory.images[3].clone();
        s.inventory.images.push(dup);
    });
    // Same name, different kind and size: still the same file.
    refused(&["listed twice"], |s| {
        s.inventory.images.push(ImageFile { name: "pstree.img".into(), kind: Kind::Files, size: 1 })
    });
}

#[test]
fn inventory_bad_file_names() {
    let long = "x".repeat(256);
    for name in ["", "a/b", "/etc/passwd", "../pages-1000.img", "a\0b", ".", "..", &long] {
        refused(&["bad image file name"], |s| {
            s.inventory.images.push(ImageFile { name: name.into(), kind: Kind::Core, size: 0 })
        });
        // Also in place of a real file.
        refused(&["bad image file name"], |s| s.inventory.images[2].name = name.into());
    }
    // 255 bytes is a legal name (the inventory alone accepts it).
    let mut inv = valid_set().inventory;
    inv.images.push(ImageFile { name: "x".repeat(255), kind: Kind::Core, size: 0 });
    inv.validate().unwrap();
}

#[test]
fn inventory_lists_an_inventory() {
    refused(&["inventory.img is listed as an inventory"], |s| {
        s.inventory.images.push(ImageFile { name: "inventory.img".into(), kind: Kind::Inventory, size: 100 })
    });
    refused(&["core-1000.img is listed as an inventory"], |s| s.inventory.images[2].kind = Kind::Inventory);
}

#[test]
fn inventory_external_key_length() {
    refused(&["external key length"], |s| s.inventory.externals[0].key.clear());
    refused(&["external key length"], |s| {
        s.inventory.externals.push(External { key: "k".repeat(4096), kind: ExternalKind::Session })
    });
    accepted(|s| s.inventory.externals.push(External { key: "k".repeat(4095), kind: ExternalKind::ProcessGroup }));
}

#[test]
fn inventory_missing_a_file() {
    let names: Vec<String> = valid_set().inventory.images.iter().map(|f| f.name.clone()).collect();
    assert_eq!(names.len(), 10);
    for name in &names {
        refused(&[&format!("the inventory does not list {name}")], |s| s.inventory.images.retain(|f| &f.name != name));
    }
}

#[test]
fn inventory_lists_a_file_as_the_wrong_kind() {
    refused(&["mm-1000.img is listed as core, not mm"], |s| {
        s.inventory.images.iter_mut().find(|f| f.name == "mm-1000.img").unwrap().kind = Kind::Core
    });
    refused(&["pages-1002.img is listed as mm, not pages"], |s| {
        s.inventory.images.iter_mut().find(|f| f.name == "pages-1002.img").unwrap().kind = Kind::Mm
    });
}

#[test]
fn inventory_lists_an_extra_file() {
    for (name, kind) in [("core-4242.img", Kind::Core), ("pages-4242.img", Kind::Pages), ("notes.img", Kind::Files)] {
        refused(&["the inventory lists files of no task"], |s| {
            s.inventory.images.push(ImageFile { name: name.into(), kind, size: 64 })
        });
    }
}

// ---------------------------------------------------------------------------
// Pid array

#[test]
fn pstree_empty() {
    refused(&["the pid array is empty"], |s| s.pstree.tasks.clear());
}

#[test]
fn pstree_ids_out_of_range() {
    for bad in [0, -1, i32::MIN, PID_MAX_LIMIT + 1, i32::MAX] {
        let msg = format!("id {bad} out of range");
        refused(&[&msg], |s| task(s, CHILD).pid = bad);
        refused(&["task 1002", &msg], |s| task(s, CHILD).pgid = bad);
        refused(&["task 1000", &msg], |s| task(s, ROOT).sid = bad);
    }
    // PID_MAX_LIMIT itself is a legal id.
    let mut t = pstree();
    t.tasks[0].pgid = PID_MAX_LIMIT;
    t.tasks[1].sid = PID_MAX_LIMIT;
    t.validate().unwrap();
}

#[test]
fn pstree_ppid_out_of_range() {
    for bad in [-1, i32::MIN, PID_MAX_LIMIT + 1] {
        refused(&[&format!("task 1000: ppid {bad} out of range")], |s| task(s, ROOT).ppid = bad);
    }
    // A root whose parent is outside the tree, or unknown (0), is fine.
    accepted(|s| task(s, ROOT).ppid = 0);
    accepted(|s| task(s, ROOT).ppid = PID_MAX_LIMIT);
}

#[test]
fn pstree_first_thread_is_not_the_leader() {
    refused(&["task 1000: the first thread is not the leader"], |s| task(s, ROOT).threads = vec![ROOT_THREAD, ROOT]);
    refused(&["task 1002: the first thread is not the leader"], |s| task(s, CHILD).threads.clear());
}

#[test]
fn pstree_too_many_threads() {
    refused(&["task 1000: too many threads"], |s| {
        let t = task(s, ROOT);
        t.threads = std::iter::once(ROOT).chain(200_000..200_000 + 65_536).collect();
    });
    // 65536 is the limit, checked by the pid array alone.
    let mut t = pstree();
    t.tasks[0].threads = std::iter::once(ROOT).chain(200_000..200_000 + 65_535).collect();
    t.validate().unwrap();
}

#[test]
fn pstree_tid_out_of_range() {
    for bad in [0, -5, PID_MAX_LIMIT + 1] {
        refused(&[&format!("task 1000: tid {bad} out of range")], |s| task(s, ROOT).threads.push(bad));
    }
}

#[test]
fn pstree_duplicated_tid() {
    // Within a task.
    refused(&["id 1001 appears twice"], |s| task(s, ROOT).threads.push(ROOT_THREAD));
    // Across tasks: a thread of the child that is also a thread of the root.
    refused(&["id 1001 appears twice"], |s| task(s, CHILD).threads.push(ROOT_THREAD));
    // Two tasks with the same pid.
    refused(&["id 1000 appears twice"], |s| {
        let t = task(s, CHILD);
        t.pid = ROOT;
        t.threads = vec![ROOT];
    });
}

#[test]
fn pstree_root_parent_inside_the_tree() {
    refused(&["the root's parent is inside the tree"], |s| task(s, ROOT).ppid = CHILD);
    refused(&["the root's parent is inside the tree"], |s| task(s, ROOT).ppid = ROOT);
}

#[test]
fn pstree_parent_not_saved_before_its_child() {
    refused(&["task 1002: parent 777 is not saved before it"], |s| task(s, CHILD).ppid = 777);
    refused(&["task 1002: parent 1002 is not saved before it"], |s| task(s, CHILD).ppid = CHILD);
    // A grandchild saved before its parent.
    let entry = |pid, ppid| TaskEntry { pid, ppid, pgid: 10, sid: 10, threads: vec![pid], state: TaskState::Running };
    let ok = PsTree { tasks: vec![entry(10, 1), entry(11, 10), entry(12, 11)] };
    ok.validate().unwrap();
    let bad = PsTree { tasks: vec![entry(10, 1), entry(12, 11), entry(11, 10)] };
    assert_invalid(bad.validate(), &["task 12: parent 11 is not saved before it"]);
    // The root listed after its child.
    let bad = PsTree { tasks: vec![entry(11, 10), entry(10, 1)] };
    assert_invalid(bad.validate(), &["the root's parent is inside the tree"]);
}

#[test]
fn pstree_stop_signal() {
    for sig in [0, -1, 65, i32::MAX] {
        refused(&[&format!("task 1002: stop signal {sig}")], |s| {
            task(s, CHILD).state = TaskState::Stopped { signal: sig }
        });
    }
    for sig in [1, 19, 64] {
        accepted(|s| task(s, CHILD).state = TaskState::Stopped { signal: sig });
    }
}

// ---------------------------------------------------------------------------
// Per-task files against the pid array

#[test]
fn task_files_missing_or_extra() {
    refused(&["core images do not match the pid array"], |s| {
        s.cores.remove(&CHILD);
    });
    refused(&["mm images do not match the pid array"], |s| {
        s.mms.remove(&CHILD);
    });
    refused(&["fdinfo images do not match the pid array"], |s| {
        s.fdtables.remove(&CHILD);
    });
    refused(&["core images do not match the pid array"], |s| {
        let c = task_core(4242, &[4242]);
        s.cores.insert(4242, c);
    });
    refused(&["mm images do not match the pid array"], |s| {
        s.mms.insert(4242, mm_image(4242));
    });
    refused(&["fdinfo images do not match the pid array"], |s| {
        s.fdtables.insert(4242, fd_table(4242));
    });
}

#[test]
fn task_files_of_the_wrong_task() {
    // As many files as tasks, but one is another task's.
    refused(&["no core image for task 1002"], |s| {
        let c = s.cores.remove(&CHILD).unwrap();
        s.cores.insert(4242, c);
    });
    refused(&["no mm image for task 1002"], |s| {
        let m = s.mms.remove(&CHILD).unwrap();
        s.mms.insert(4242, m);
    });
    refused(&["no fdinfo image for task 1002"], |s| {
        let f = s.fdtables.remove(&CHILD).unwrap();
        s.fdtables.insert(4242, f);
    });
    // Files whose own pid disagrees with where they are.
    refused(&["core image of task 1002 says 4242"], |s| s.cores.get_mut(&CHILD).unwrap().pid = 4242);
    refused(&["mm image of task 1002 says 4242"], |s| s.mms.get_mut(&CHILD).unwrap().pid = 4242);
    refused(&["fdinfo image of task 1002 says 4242"], |s| s.fdtables.get_mut(&CHILD).unwrap().pid = 4242);
}

#[test]
fn threads_differ_between_pstree_and_core() {
    refused(&["task 1000: threads in core and pstree differ"], |s| {
        root_core(s).threads.pop();
    });
    refused(&["task 1000: threads in core and pstree differ"], |s| task(s, ROOT).threads.push(1005));
    refused(&["task 1002: threads in core and pstree differ"], |s| {
        let c = s.cores.get_mut(&CHILD).unwrap();
        let mut t = c.threads[0].clone();
        t.tid = 1003;
        c.threads.push(t);
    });
    refused(&["task 1000: threads in core and pstree differ"], |s| root_core(s).threads[1].tid = 1009);
    // Same set, other order.
    refused(&["task 1000: threads in core and pstree differ"], |s| {
        let mut t = root_core(s).threads[1].clone();
        t.tid = 1003;
        root_core(s).threads.push(t);
        task(s, ROOT).threads = vec![ROOT, 1003, ROOT_THREAD];
    });
}

#[test]
fn mm_names_another_pages_file() {
    refused(&["task 1000: pages file pages-1002.img"], |s| root_mm(s).pages_file = pages::file_name(CHILD));
    refused(&["task 1000: pages file pages.img"], |s| root_mm(s).pages_file = "pages.img".into());
}

// ---------------------------------------------------------------------------
// Open files

#[test]
fn files_too_many() {
    refused(&["too many open files"], |s| {
        let n = (1 << 20) + 1;
        s.files.files = (0..n)
            .map(|i| FileDesc { id: i, flags: 0, kind: FileKind::External { key: String::new() }, locks: vec![] })
            .collect();
    });
}

#[test]
fn files_id_not_its_index() {
    refused(&["file id 7 at index 2"], |s| s.files.files[2].id = 7);
    refused(&["file id 1 at index 0"], |s| s.files.files.swap(0, 1));
    refused(&["file id 1 at index 0"], |s| {
        // Removing a description shifts the ids of the ones after it.
        s.files.files.remove(0);
    });
}

#[test]
fn files_bad_path() {
    let long = format!("/{}", "p".repeat(4095));
    for path in ["dev/null", "", "./log", "/home/user\0/log", &long] {
        refused(&["bad path"], |s| {
            if let FileKind::Path(p) = &mut s.files.files[2].kind {
                p.path = path.into();
            } else {
                unreachable!()
            }
        });
    }
    // 4095 bytes is fine.
    let mut f = files_image();
    if let FileKind::Path(p) = &mut f.files[0].kind {
        p.path = format!("/{}", "p".repeat(4094));
    }
    f.validate().unwrap();
}

#[test]
fn files_external_key_length() {
    refused(&["file 1: external key"], |s| s.files.files[1].kind = FileKind::External { key: String::new() });
    refused(&["file 4: external key"], |s| s.files.files[4].kind = FileKind::External { key: "k".repeat(4096) });
}

#[test]
fn files_external_unknown_to_the_inventory() {
    refused(&["file 1 names unknown external pipe:[99]"], |s| {
        s.files.files[1].kind = FileKind::External { key: "pipe:[99]".into() }
    });
    refused(&["file 4 names unknown external tty:[136:3]"], |s| s.inventory.externals.retain(|e| e.key != TTY_KEY));
    // An external the inventory lists but no file uses is fine.
    accepted(|s| s.inventory.externals.push(External { key: "session:[900]".into(), kind: ExternalKind::Session }));
}

// ---------------------------------------------------------------------------
// Descriptor tables

#[test]
fn fdtable_out_of_order() {
    refused(&["task 1000: fd 1 out of order or range"], |s| root_fds(s).fds.swap(1, 2));
    refused(&["task 1000: fd 1 out of order or range"], |s| root_fds(s).fds[2].fd = 1);
    refused(&["task 1002: fd 1 out of order or range"], |s| {
        let t = s.fdtables.get_mut(&CHILD).unwrap();
        t.fds.reverse();
    });
}

#[test]
fn fdtable_fd_out_of_range() {
    refused(&["task 1000: fd -1 out of order or range"], |s| root_fds(s).fds[0].fd = -1);
    refused(&[&format!("task 1000: fd {FD_MAX} out of order or range")], |s| {
        root_fds(s).fds.push(FdEntry { fd: FD_MAX, file: 0, cloexec: false })
    });
    accepted(|s| root_fds(s).fds.push(FdEntry { fd: FD_MAX - 1, file: 0, cloexec: false }));
}

#[test]
fn fdtable_references_an_unknown_file() {
    refused(&["task 1000: fd 3 names file 5"], |s| root_fds(s).fds[3].file = 5);
    refused(&["task 1002: fd 2 names file 4294967295"], |s| s.fdtables.get_mut(&CHILD).unwrap().fds[2].file = u32::MAX);
    // Removing the last description leaves fd 2 and fd 255 of the root dangling.
    refused(&["task 1000: fd 2 names file 4"], |s| {
        s.files.files.pop();
    });
}

// ---------------------------------------------------------------------------
// Task core

#[test]
fn core_without_threads() {
    refused(&["task 1000: no threads"], |s| root_core(s).threads.clear());
}

#[test]
fn core_first_thread_not_the_leader() {
    // Caught by the core alone or, since the pid array puts the leader first, by
    // the comparison of the two thread lists.
    let r = validate_with(|s| root_core(s).threads.swap(0, 1));
    match r {
        Err(ImageError::Invalid(msg)) => assert!(
            msg.contains("task 1000")
                && (msg.contains("not the leader") || msg.contains("threads in core and pstree differ")),
            "{msg}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn core_signal_action_count() {
    for n in [0usize, 1, 63, 65, 128] {
        refused(&[&format!("task 1000: {n} signal actions, not 64")], |s| {
            root_core(s).sigactions.resize(n, Default::default())
        });
    }
}

#[test]
fn core_thread_tid() {
    for tid in [0, -1] {
        refused(&[&format!("task 1000: tid {tid}")], |s| root_core(s).threads[1].tid = tid);
    }
}

#[test]
fn core_thread_comm() {
    refused(&["thread 1001: comm too long"], |s| {
        root_core(s).threads[1].comm = "a-very-long-name".into() // 16 bytes
    });
    refused(&["thread 1000: comm too long"], |s| root_core(s).threads[0].comm = "sle\0per".into());
    accepted(|s| root_core(s).threads[1].comm = "fifteen-bytes-x".into());
    accepted(|s| root_core(s).threads[1].comm = String::new());
}

#[test]
fn core_xstate_length() {
    for len in [0, 512, XSTATE_MIN - 64, XSTATE_MIN + 1, 600, 2700, XSTATE_MAX + 64] {
        refused(&[&format!("thread 1001: xstate of {len} bytes")], |s| root_core(s).threads[1].xstate.resize(len, 0));
    }
    for len in [XSTATE_MIN, 832, 2688, XSTATE_MAX] {
        accepted(|s| root_core(s).threads[1].xstate.resize(len, 0));
    }
}

#[test]
fn core_thread_pending_signals() {
    for len in [0usize, 4, 127, 129, 256] {
        refused(&[&format!("task 1000: siginfo of {len} bytes")], |s| {
            root_core(s).threads[1].pending[0].0.resize(len, 0)
        });
    }
    for signo in [0, -1, 65, 1 << 20] {
        refused(&[&format!("task 1000: pending signal {signo}")], |s| {
            root_core(s).threads[0].pending.push(siginfo(signo, 0, 1))
        });
    }
    refused(&["thread 1000: too many pending signals"], |s| {
        root_core(s).threads[0].pending = vec![siginfo(10, 0, 1); (1 << 16) + 1];
    });
    accepted(|s| root_core(s).threads[0].pending = vec![siginfo(64, 0, 1); 1 << 16]);
}

#[test]
fn core_shared_pending_signals() {
    refused(&["task 1000: siginfo of 127 bytes"], |s| {
        root_core(s).shared_pending[0].0.pop();
    });
    refused(&["task 1000: siginfo of 0 bytes"], |s| root_core(s).shared_pending.push(SigInfo(Vec::new())));
    refused(&["task 1000: pending signal 65"], |s| root_core(s).shared_pending.push(siginfo(65, 0, 1)));
    refused(&["task 1000: pending signal 0"], |s| root_core(s).shared_pending[0].0[0] = 0);
    refused(&["task 1000: too many pending signals"], |s| {
        root_core(s).shared_pending = vec![siginfo(17, 1, CHILD); (1 << 16) + 1];
    });
}

#[test]
fn core_thread_groups_affinity_nice_rseq() {
    refused(&["thread 1001: too many groups"], |s| root_core(s).threads[1].creds.groups = vec![100; 65_537]);
    accepted(|s| root_core(s).threads[1].creds.groups = vec![100; 65_536]);
    refused(&["thread 1001: affinity mask too long"], |s| root_core(s).threads[1].sched.affinity = vec![!0; 129]);
    accepted(|s| root_core(s).threads[1].sched.affinity = vec![!0; 128]);
    for nice in [-21, 20, i32::MIN] {
        refused(&[&format!("thread 1001: nice {nice}")], |s| root_core(s).threads[1].sched.nice = nice);
    }
    for nice in [-20, 19] {
        accepted(|s| root_core(s).threads[1].sched.nice = nice);
    }
    for len in [0u32, 31, 4097] {
        refused(&[&format!("thread 1000: rseq length {len}")], |s| {
            root_core(s).threads[0].rseq.as_mut().unwrap().len = len
        });
    }
    accepted(|s| root_core(s).threads[0].rseq = None);
    accepted(|s| root_core(s).threads[0].rseq.as_mut().unwrap().len = 4096);
}

#[test]
fn core_rlimits() {
    for r in [RLIMIT_COUNT, 31, 32, u32::MAX] {
        refused(&[&format!("task 1000: rlimit resource {r}")], |s| root_core(s).rlimits[0].resource = r);
    }
    refused(&["task 1000: rlimit 3 twice"], |s| {
        let dup = root_core(s).rlimits[3];
        root_core(s).rlimits.push(dup);
    });
    refused(&["task 1000: rlimit 7 soft above hard"], |s| {
        let r = &mut root_core(s).rlimits[7];
        r.cur = r.max + 1;
    });
    refused(&["task 1000: rlimit 4 soft above hard"], |s| {
        let r = &mut root_core(s).rlimits[4];
        r.cur = u64::MAX;
        r.max = 0;
    });
    // All 16 must be there, in any order.
    refused(&["task 1000: not all 16 rlimits are saved"], |s| {
        root_core(s).rlimits.truncate(8);
    });
    refused(&["task 1000: not all 16 rlimits are saved"], |s| {
        root_core(s).rlimits.clear();
    });
    refused(&["task 1000: not all 16 rlimits are saved"], |s| {
        root_core(s).rlimits.retain(|r| r.resource != 7);
    });
    accepted(|s| root_core(s).rlimits.reverse());
}

#[test]
fn core_seccomp_modes_and_references() {
    use rckpt_images::seccomp::{MODE_DISABLED, MODE_FILTER, MODE_STRICT, Seccomp};
    // Strict mode is refused at dump, so no image holds it.
    refused(&["thread 1001: seccomp mode 1"], |s| {
        root_core(s).threads[1].seccomp = Seccomp { mode: MODE_STRICT, filter: None }
    });
    refused(&["thread 1000: seccomp mode 2 with filter None"], |s| root_core(s).threads[0].seccomp.filter = None);
    refused(&["thread 1000: seccomp mode 0 with filter Some(0)"], |s| {
        root_core(s).threads[0].seccomp.mode = MODE_DISABLED
    });
    refused(&["thread 1001: seccomp filter 2"], |s| root_core(s).threads[1].seccomp.filter = Some(2));
    refused(&["thread 1001: seccomp mode 3"], |s| root_core(s).threads[1].seccomp.mode = 3);
    // A thread without filters next to one with them (created before they were installed).
    accepted(|s| root_core(s).threads[0].seccomp = Seccomp::default());
    accepted(|s| {
        let c = root_core(s);
        c.seccomp_filters.clear();
        for t in &mut c.threads {
            t.seccomp = Seccomp::default();
        }
    });
    // Two chains that share nothing.
    accepted(|s| {
        let c = root_core(s);
        c.seccomp_filters[1].prev = None;
        c.threads[1].seccomp = Seccomp { mode: MODE_FILTER, filter: Some(1) };
    });
}

#[test]
fn core_seccomp_filters() {
    use rckpt_images::seccomp::{BPF_MAXINSNS, MAX_FILTERS, MAX_INSNS_PER_PATH, SeccompFilter, SockFilter};
    let allow = SockFilter { code: 0x06, jt: 0, jf: 0, k: 0x7fff_0000 };
    // prev must name an older filter: no cycles, no forward links.
    refused(&["task 1000: seccomp filter 1: previous filter 1 is not an older one"], |s| {
        root_core(s).seccomp_filters[1].prev = Some(1)
    });
    refused(&["task 1000: seccomp filter 0: previous filter 1 is not an older one"], |s| {
        root_core(s).seccomp_filters[0].prev = Some(1)
    });
    refused(&["task 1000: seccomp filter 1: flags 0x1"], |s| root_core(s).seccomp_filters[1].flags = 1);
    // Program length: 1..=BPF_MAXINSNS.
    refused(&["task 1000: seccomp filter 0: 0 instructions"], |s| root_core(s).seccomp_filters[0].insns.clear());
    refused(&[&format!("task 1000: seccomp filter 0: {} instructions", BPF_MAXINSNS + 1)], |s| {
        root_core(s).seccomp_filters[0].insns = vec![allow; BPF_MAXINSNS + 1]
    });
    accepted(|s| root_core(s).seccomp_filters[0].insns = vec![allow; BPF_MAXINSNS]);
    // The program's structure: jumps inside it, a return last, loads inside seccomp_data.
    refused(&["seccomp filter 0: instruction 1: jump past the end"], |s| {
        root_core(s).seccomp_filters[0].insns[1].jt = 5
    });
    refused(&["seccomp filter 0: instruction 4: jump past the end"], |s| {
        root_core(s).seccomp_filters[0].insns[4] = SockFilter { code: 0x05, jt: 0, jf: 0, k: 2 }
    });
    refused(&["seccomp filter 0: the last instruction is not a return"], |s| {
        root_core(s).seccomp_filters[0].insns.push(SockFilter { code: 0x20, jt: 0, jf: 0, k: 0 })
    });
    for k in [64u32, 2, u32::MAX] {
        refused(&["seccomp filter 1: instruction 0: load outside seccomp_data"], |s| {
            root_core(s).seccomp_filters[1].insns[0].k = k
        });
    }
    refused(&["seccomp filter 0: instruction 0: scratch memory slot"], |s| {
        root_core(s).seccomp_filters[0].insns.insert(0, SockFilter { code: 0x02, jt: 0, jf: 0, k: 16 })
    });
    // The kernel's MAX_INSNS_PER_PATH: a chain of 8 full programs (8 * 4096 + 7 * 4)
    // is one too long; a chain of 7 fits, and filters on other chains do not count.
    refused(&["task 1000: seccomp filter 7: its chain is too long"], |s| {
        let c = root_core(s);
        c.seccomp_filters = (0..8u32)
            .map(|i| SeccompFilter { prev: i.checked_sub(1), flags: 0, insns: vec![allow; BPF_MAXINSNS] })
            .collect();
        c.threads[1].seccomp.filter = Some(7);
    });
    const { assert!(8 * BPF_MAXINSNS + 7 * 4 > MAX_INSNS_PER_PATH && 7 * BPF_MAXINSNS + 6 * 4 <= MAX_INSNS_PER_PATH) };
    accepted(|s| {
        let c = root_core(s);
        c.seccomp_filters = (0..8u32)
            .map(|i| SeccompFilter { prev: i.checked_sub(1).filter(|_| i != 7), flags: 0, insns: vec![allow; 4096] })
            .collect();
        c.threads[1].seccomp.filter = Some(7);
    });
    // Bounds of the whole process.
    refused(&[&format!("task 1000: {} seccomp filters", MAX_FILTERS + 1)], |s| {
        root_core(s).seccomp_filters = vec![SeccompFilter { prev: None, flags: 0, insns: vec![allow] }; MAX_FILTERS + 1]
    });
    refused(&["task 1000: 266240 seccomp instructions"], |s| {
        root_core(s).seccomp_filters = vec![SeccompFilter { prev: None, flags: 0, insns: vec![allow; 4096] }; 65]
    });
}

#[test]
fn core_dumpable() {
    for d in [-1, 2, 3, i32::MAX] {
        refused(&[&format!("task 1000: dumpable {d}")], |s| root_core(s).prctl.dumpable = d);
    }
    accepted(|s| root_core(s).prctl.dumpable = 0);
}

#[test]
fn core_posix_timers() {
    refused(&["task 1000: timer id -1"], |s| root_core(s).posix_timers[0].id = -1);
    for signo in [-1, 65] {
        refused(&[&format!("task 1000: timer signal {signo}")], |s| root_core(s).posix_timers[0].signo = signo);
    }
    refused(&["task 1000: too many timers"], |s| {
        let t = root_core(s).posix_timers[0];
        root_core(s).posix_timers = vec![t; (1 << 16) + 1];
    });
    accepted(|s| root_core(s).posix_timers[0].signo = 0);
}

#[test]
fn core_umask() {
    refused(&["task 1000: umask 1000"], |s| root_core(s).umask = 0o1000);
    refused(&["task 1000: umask"], |s| root_core(s).umask = u32::MAX);
    accepted(|s| root_core(s).umask = 0o777);
}

#[test]
fn core_bad_paths() {
    for p in ["", "home/user", "./x", "/home/\0user", &format!("/{}", "d".repeat(4095))] {
        refused(&["bad path"], |s| root_core(s).cwd = p.into());
        refused(&["bad path"], |s| root_core(s).root = p.into());
    }
}

#[test]
fn core_pdeath_signal() {
    for sig in [-1, 65] {
        refused(&["task 1000: pdeath signal"], |s| root_core(s).prctl.pdeath_signal = sig);
    }
    accepted(|s| root_core(s).prctl.pdeath_signal = 64);
}

// ---------------------------------------------------------------------------
// Address space

#[test]
fn mm_too_many_vmas_or_files() {
    refused(&["task 1000: too many VMAs"], |s| {
        let v = root_mm(s).vmas[3].clone();
        root_mm(s).vmas = vec![v; (1 << 20) + 1];
    });
    refused(&["task 1000: too many mapped files"], |s| {
        let mut f = root_mm(s).files[0].clone();
        f.path = String::new();
        f.build_id = None;
        root_mm(s).files = vec![f; (1 << 20) + 1];
    });
}

#[test]
fn mm_auxv_length() {
    refused(&["task 1000: auxv length 9"], |s| {
        root_mm(s).auxv.pop();
    });
    refused(&["task 1000: auxv length 1026"], |s| root_mm(s).auxv = vec![0; 1026]);
    accepted(|s| root_mm(s).auxv = vec![0; 1024]);
    accepted(|s| root_mm(s).auxv.clear());
}

#[test]
fn mm_mapped_files() {
    refused(&["bad path"], |s| root_mm(s).files[1].path = "libc.so.6".into());
    refused(&["bad path"], |s| root_mm(s).files[0].path = "/usr/\0bin".into());
    refused(&["task 1000: build-id too long"], |s| root_mm(s).files[0].build_id = Some(vec![1; 65]));
    accepted(|s| root_mm(s).files[0].build_id = Some(vec![1; 64]));
    accepted(|s| root_mm(s).files[0].build_id = None);
}

#[test]
fn mm_exe_index_out_of_range() {
    refused(&["task 1000: exe file index 2"], |s| root_mm(s).exe = Some(2));
    refused(&["task 1000: exe file index 4294967295"], |s| root_mm(s).exe = Some(u32::MAX));
    accepted(|s| root_mm(s).exe = None);
}

#[test]
fn mm_unaligned_vma() {
    refused(&["VMA 0x426001-0x7f0000000000", "is not page aligned"], |s| {
        // The gap after the heap, so that only the alignment is wrong.
        root_mm(s).vmas.insert(
            4,
            Vma {
                start: 0x42_6001,
                end: 0x7f00_0000_0000,
                prot: 0,
                shared: false,
                flags: 0,
                kind: VmaKind::Anon,
                anon_name: None,
            },
        );
    });
    refused(&["VMA 0x405000-0x426800", "is not page aligned"], |s| root_mm(s).vmas[3].end = 0x42_6800);
    // Empty and inverted VMAs.
    refused(&["VMA 0x405000-0x405000", "is not page aligned"], |s| root_mm(s).vmas[3].end = 0x40_5000);
    refused(&["VMA 0x405000-0x404000", "is not page aligned"], |s| root_mm(s).vmas[3].end = 0x40_4000);
}

#[test]
fn mm_overlapping_vmas() {
    refused(&["VMA 0x401000-0x403000", "overlaps or is out of order"], |s| root_mm(s).vmas[0].end = 0x40_2000);
    refused(&["overlaps or is out of order"], |s| root_mm(s).vmas.swap(2, 3));
    refused(&["overlaps or is out of order"], |s| {
        let dup = root_mm(s).vmas[5].clone();
        root_mm(s).vmas.insert(5, dup);
    });
    // Adjacent VMAs are fine (the sample has several).
    let m = mm_image(ROOT);
    assert!(m.vmas.windows(2).any(|w| w[0].end == w[1].start));
}

#[test]
fn mm_vma_above_the_user_address_space() {
    let user =
        |start, end| Vma { start, end, prot: PROT_READ, shared: false, flags: 0, kind: VmaKind::Anon, anon_name: None };
    let before_vsyscall = |m: &MmImage| vma_index(m, &VmaKind::Vsyscall);
    refused(&["is above the user address space"], |s| {
        let m = root_mm(s);
        let i = before_vsyscall(m);
        m.vmas.insert(i, user(TASK_SIZE_MAX, TASK_SIZE_MAX + PAGE_SIZE));
    });
    refused(&["is above the user address space"], |s| {
        let m = root_mm(s);
        let i = before_vsyscall(m);
        m.vmas.insert(i, user(TASK_SIZE_MAX - PAGE_SIZE, TASK_SIZE_MAX + PAGE_SIZE));
    });
    // A kernel address that is not the vsyscall page.
    refused(&["is above the user address space"], |s| {
        let m = root_mm(s);
        m.vmas.push(user(VSYSCALL_START + 0x10_0000, VSYSCALL_START + 0x10_1000));
    });
    // Up to TASK_SIZE_MAX is user space.
    accepted(|s| {
        let m = root_mm(s);
        let i = before_vsyscall(m);
        m.vmas.insert(i, user(TASK_SIZE_MAX - PAGE_SIZE, TASK_SIZE_MAX));
    });
}

#[test]
fn mm_vsyscall_at_the_wrong_place() {
    for start in [VSYSCALL_START + PAGE_SIZE, 0x7fff_0000_0000] {
        refused(&["vsyscall at the wrong place"], |s| {
            let m = root_mm(s);
            let i = vma_index(m, &VmaKind::Vsyscall);
            let mut v = m.vmas.remove(i);
            v.start = start;
            v.end = start + PAGE_SIZE;
            let at = m.vmas.iter().position(|o| o.start > start).unwrap_or(m.vmas.len());
            m.vmas.insert(at, v);
        });
    }
    // No vsyscall page at all is fine (vsyscall=none).
    accepted(|s| root_mm(s).vmas.retain(|v| v.kind != VmaKind::Vsyscall));
}

#[test]
fn mm_vma_protection_and_flags() {
    for prot in [8u8, 0x10, 0xff] {
        refused(&["VMA 0x405000-0x426000: protection bits"], |s| root_mm(s).vmas[3].prot = prot);
    }
    accepted(|s| root_mm(s).vmas[3].prot = 0);
    accepted(|s| root_mm(s).vmas[3].prot = 7);
    for flags in [1u32 << 13, 1 << 31, u32::MAX] {
        refused(&["VMA 0x405000-0x426000: unknown flags"], |s| root_mm(s).vmas[3].flags = flags);
    }
    accepted(|s| root_mm(s).vmas[3].flags = vmflags::ALL);
}

#[test]
fn mm_vma_anon_name() {
    refused(&["anon name"], |s| root_mm(s).vmas[6].anon_name = Some("n".repeat(80)));
    refused(&["anon name"], |s| root_mm(s).vmas[6].anon_name = Some("a\0b".into()));
    accepted(|s| root_mm(s).vmas[6].anon_name = Some("n".repeat(79)));
}

#[test]
fn mm_vma_file_index_and_offset() {
    refused(&["VMA 0x401000-0x403000: file index 2"], |s| {
        root_mm(s).vmas[1].kind = VmaKind::File { file: 2, offset: 0x1000 }
    });
    refused(&["VMA 0x401000-0x403000: file offset not aligned"], |s| {
        root_mm(s).vmas[1].kind = VmaKind::File { file: 0, offset: 0x1001 }
    });
}

#[test]
fn mm_vdso_data() {
    refused(&["task 1000: vDSO VMAs without vDSO data"], |s| root_mm(s).vdso = None);
    for len in [4097usize, 100, 65 * 4096] {
        refused(&[&format!("task 1000: vDSO of {len} bytes")], |s| {
            root_mm(s).vdso.as_mut().unwrap().vdso_bytes.resize(len, 0)
        });
    }
    refused(&["task 1000: vDSO block is not contiguous"], |s| {
        root_mm(s).vdso.as_mut().unwrap().vdso_start += PAGE_SIZE
    });
    refused(&["task 1000: vDSO block is not contiguous"], |s| root_mm(s).vdso.as_mut().unwrap().vvar_vclock_size = 0);
    // Without vDSO VMAs, no vDSO data is needed.
    accepted(|s| {
        let m = root_mm(s);
        m.vmas.retain(|v| !matches!(v.kind, VmaKind::Vvar | VmaKind::VvarVclock | VmaKind::Vdso));
        m.vdso = None;
    });
}

#[test]

fn mm_vdso_block_arithmetic_overflow() {
    // images/src/mm.rs: `d.vvar_start + d.vvar_size + d.vvar_vclock_size == d.vdso_start`
    // on untrusted u64s. In a debug build this panics ("attempt to add with
    // overflow"); in a release build it wraps, so the block below is "contiguous".
    let mut s = valid_set();
    let d = root_mm(&mut s).vdso.as_mut().unwrap();
    d.vvar_start = u64::MAX - 0xfff;
    d.vvar_size = 0x2000;
    d.vvar_vclock_size = 0;
    d.vdso_start = 0x1000 - 1; // what the wrapped sum gives
    let r = std::panic::catch_unwind(move || s.validate());
    match r {
        Ok(Err(ImageError::Invalid(msg))) => assert!(msg.contains("vDSO"), "{msg}"),
        Ok(other) => panic!("an impossible vDSO block was not refused: {other:?}"),
        Err(_) => panic!("validate() panicked on an overflowing vDSO block"),
    }
}

#[test]

fn mm_vdso_block_disagrees_with_its_vmas() {
    // The restorer places the vDSO block at `vvar_start` and runs syscalls at
    // `vdso_start + offset`; neither is checked to be where the vDSO VMAs are.
    type Case = (&'static str, fn(&mut ImageSet));
    let cases: [Case; 4] = [
        ("block moved away from its VMAs", |s| {
            let d = root_mm(s).vdso.as_mut().unwrap();
            d.vvar_start += 0x10_0000;
            d.vdso_start += 0x10_0000;
        }),
        ("unaligned block", |s| {
            let d = root_mm(s).vdso.as_mut().unwrap();
            d.vvar_start += 1;
            d.vdso_start += 1;
        }),
        ("vvar size differs from the [vvar] VMA", |s| {
            let d = root_mm(s).vdso.as_mut().unwrap();
            d.vvar_size += PAGE_SIZE;
            d.vdso_start += PAGE_SIZE;
        }),
        ("vDSO bytes longer than the [vdso] VMA", |s| {
            let d = root_mm(s).vdso.as_mut().unwrap();
            d.vdso_bytes.resize(d.vdso_bytes.len() + 4096, 0);
        }),
    ];
    let mut accepted = Vec::new();
    for (what, f) in cases {
        if validate_with(f).is_ok() {
            accepted.push(what);
        }
    }
    assert!(accepted.is_empty(), "accepted: {accepted:?}");
}

#[test]
fn mm_bad_pages_file_name() {
    // The set checks the exact name first; the mm image alone checks it is a name.
    let m = mm_image(ROOT);
    let size = pages_size(&m);
    for name in ["", "../pages-1000.img", "/tmp/pages-1000.img", ".", "a\0b"] {
        let mut m = m.clone();
        m.pages_file = name.into();
        assert_invalid(m.validate(size), &["bad image file name"]);
    }
}

#[test]
fn mm_extent_malformed() {
    refused(&["task 1000: page extent at 0x405800 is malformed"], |s| root_mm(s).extents[1].start = 0x40_5800);
    refused(&["task 1000: page extent at 0x405000 is malformed"], |s| root_mm(s).extents[1].nr_pages = 0);
    for n in [TASK_SIZE_MAX / PAGE_SIZE + 1, u64::MAX / PAGE_SIZE + 1, u64::MAX] {
        refused(&["task 1000: page extent at 0x405000 is malformed"], |s| root_mm(s).extents[1].nr_pages = n);
    }
}

#[test]
fn mm_extent_overflows() {
    refused(&["task 1000: page extent at 0xfffffffffffff000 overflows"], |s| {
        root_mm(s).extents.push(PageExtent { start: 0xffff_ffff_ffff_f000, nr_pages: 2, offset: 0, crc32c: 0 })
    });
}

#[test]
fn mm_extents_overlapping_or_out_of_order() {
    refused(&["page extent at 0x404000 overlaps or is out of order"], |s| {
        // .data is 0x403000..0x405000: an extent starting inside it.
        root_mm(s).extents[1].start = 0x40_4000
    });
    refused(&["page extent at 0x405000 overlaps or is out of order"], |s| {
        // Out of order, with offsets that agree with the (wrong) order.
        let m = root_mm(s);
        m.extents.swap(1, 2);
        relayout(m);
    });
    refused(&["page extent at 0x405000 overlaps or is out of order"], |s| {
        let dup = root_mm(s).extents[1];
        root_mm(s).extents.insert(2, dup);
    });
}

#[test]
fn mm_extent_outside_any_vma() {
    // After the last VMA.
    refused(&["page extent at 0xffffffffff700000 is outside every VMA"], |s| {
        root_mm(s).extents.push(PageExtent { start: 0xffff_ffff_ff70_0000, nr_pages: 1, offset: 0, crc32c: 0 })
    });
    refused(&["is outside every VMA"], |s| {
        let m = root_mm(s);
        m.vmas.truncate(3);
    });
    // In a hole between VMAs.
    refused(&["page extent at 0x426000 is not inside one VMA"], |s| {
        root_mm(s).extents.insert(3, PageExtent { start: 0x42_6000, nr_pages: 1, offset: 0, crc32c: 0 })
    });
    // Across the end of its VMA, into the next one or into a hole.
    refused(&["page extent at 0x404000 is not inside one VMA"], |s| {
        let e = &mut root_mm(s).extents[0];
        e.start = 0x40_4000;
        e.nr_pages = 2;
    });
    refused(&["page extent at 0x7f0000022000 is not inside one VMA"], |s| {
        let e = &mut root_mm(s).extents[3];
        e.start = 0x7f00_0002_2000;
        e.nr_pages = 2;
    });
}

#[test]
fn mm_extent_in_a_vma_whose_pages_are_not_saved() {
    let ext = |start| PageExtent { start, nr_pages: 1, offset: 0, crc32c: 0 };
    // The shared anonymous mapping.
    refused(&["page extent at 0x7f0000010000 is in a VMA whose pages are not saved"], |s| {
        root_mm(s).extents.insert(3, ext(0x7f00_0001_0000))
    });
    // A private VMA made shared.
    refused(&["page extent at 0x405000 is in a VMA whose pages are not saved"], |s| root_mm(s).vmas[3].shared = true);
    refused(&["page extent at 0x403000 is in a VMA whose pages are not saved"], |s| root_mm(s).vmas[2].shared = true);
    // The vDSO block.
    for start in [VVAR_START, VDSO_START] {
        refused(&["is in a VMA whose pages are not saved"], |s| root_mm(s).extents.push(ext(start)));
    }
    // The vsyscall page.
    refused(&["is in a VMA whose pages are not saved"], |s| root_mm(s).extents.push(ext(VSYSCALL_START)));
}

#[test]
fn mm_extent_offsets_inconsistent() {
    refused(&["page extent at 0x408000: offset 20480 where 16384 was expected"], |s| {
        root_mm(s).extents[2].offset += PAGE_SIZE
    });
    // Into the header page.
    refused(&["page extent at 0x403000: offset 0 where 4096 was expected"], |s| root_mm(s).extents[0].offset = 0);
    // Two extents at the same place in the file.
    refused(&["page extent at 0x405000: offset 4096 where 12288 was expected"], |s| {
        root_mm(s).extents[1].offset = pages::HEADER_LEN
    });
    // An extent removed without moving the later ones.
    refused(&["offset", "was expected"], |s| {
        root_mm(s).extents.remove(1);
    });
}

#[test]
fn mm_pages_file_size_inconsistent() {
    let set_pages_size = |s: &mut ImageSet, f: &dyn Fn(u64) -> u64| {
        let e = s.inventory.images.iter_mut().find(|i| i.name == "pages-1000.img").unwrap();
        e.size = f(e.size);
    };
    let want = pages::HEADER_LEN + 9 * PAGE_SIZE;
    assert_eq!(pages_size(&mm_image(ROOT)), want);
    for (got, how) in [
        (want + PAGE_SIZE, &(|n| n + PAGE_SIZE) as &dyn Fn(u64) -> u64),
        (want - 1, &|n| n - 1),
        (0, &|_| 0),
        (pages::HEADER_LEN, &|_| pages::HEADER_LEN),
        (u64::MAX, &|_| u64::MAX),
    ] {
        refused(&[&format!("task 1000: pages file holds {got} bytes, extents need {want}")], |s| {
            set_pages_size(s, how)
        });
    }
    // The last extent dropped (its offset needs no change): the file is too long.
    refused(&["pages file holds", "extents need"], |s| {
        root_mm(s).extents.pop();
    });
    // Consistent again once the inventory is rewritten.
    accepted(|s| {
        root_mm(s).extents.remove(1);
        relayout(root_mm(s));
        relist(s);
    });
    // No extents at all: a pages file of just its header page.
    accepted(|s| {
        root_mm(s).extents.clear();
        relist(s);
        assert_eq!(s.inventory.file("pages-1000.img").unwrap().size, pages::HEADER_LEN);
    });
}

#[test]
fn mm_fields_out_of_order() {
    refused(&["task 1000: mm fields out of order"], |s| {
        let f = &mut root_mm(s).fields;
        f.end_code = f.start_code - 1;
    });
    refused(&["task 1000: mm fields out of order"], |s| {
        let f = &mut root_mm(s).fields;
        f.end_data = f.start_data - 1;
    });
    refused(&["task 1000: mm fields out of order"], |s| {
        let f = &mut root_mm(s).fields;
        f.brk = f.start_brk - PAGE_SIZE;
    });
    refused(&["task 1000: arg/env bounds"], |s| {
        let f = &mut root_mm(s).fields;
        f.arg_end = f.arg_start - 1;
    });
    refused(&["task 1000: arg/env bounds"], |s| {
        let f = &mut root_mm(s).fields;
        f.env_start = f.env_end + 1;
    });
}

#[test]
fn mm_checks_apply_to_every_task() {
    // The child's images are checked as thoroughly as the root's.
    refused(&["task 1002: VMA", "overlaps or is out of order"], |s| s.mms.get_mut(&CHILD).unwrap().vmas.swap(0, 1));
    refused(&["task 1002: 63 signal actions"], |s| {
        s.cores.get_mut(&CHILD).unwrap().sigactions.pop();
    });
    refused(&["task 1002: pages file holds"], |s| {
        let e = s.inventory.images.iter_mut().find(|i| i.name == "pages-1002.img").unwrap();
        e.size += PAGE_SIZE;
    });
}

#[test]
fn a_writable_private_mapping_with_no_saved_pages_is_fine() {
    // Extents are optional: untouched private pages need not be saved.
    accepted(|s| {
        let m = root_mm(s);
        m.extents.retain(|e| e.start < 0x7f00_0000_0000);
        relayout(m);
        relist(s);
    });
    // A new private VMA without extents, and one with.
    accepted(|s| {
        let m = root_mm(s);
        m.vmas.insert(
            5,
            Vma {
                start: 0x7f00_0000_4000,
                end: 0x7f00_0000_8000,
                prot: PROT_READ | PROT_WRITE,
                shared: false,
                flags: 0,
                kind: VmaKind::File { file: 1, offset: 0x1000 },
                anon_name: None,
            },
        );
        m.extents.insert(3, PageExtent { start: 0x7f00_0000_5000, nr_pages: 3, offset: 0, crc32c: 0 });
        relayout(m);
        relist(s);
    });
}

#[test]
fn a_single_task_image_validates() {
    let mut s = valid_set();
    s.pstree.tasks.truncate(1);
    s.cores.remove(&CHILD);
    s.mms.remove(&CHILD);
    s.fdtables.remove(&CHILD);
    relist(&mut s);
    s.validate().unwrap();
    assert_eq!(s.inventory.images.len(), 6);
    // ... and its inventory must not list the child's files any more.
    let mut stale = s.clone();
    stale.inventory = valid_set().inventory;
    assert_invalid(stale.validate(), &["the inventory lists files of no task"]);
}

#[test]
fn files_image_alone() {
    // FilesImage::validate on its own: empty is fine, ids must count up.
    FilesImage { files: vec![], pipes: vec![], contents: vec![], ptys: vec![] }.validate().unwrap();
    let mut f = files_image();
    f.files[4].id = 3;
    assert_invalid(f.validate(), &["file id 3 at index 4"]);
}

// ---------------------------------------------------------------------------
// Zombies and exited leaders

const ZOMBIE: i32 = 1003;

/// Adds a zombie child of the root (exit status `status`) and relists the files.
fn with_zombie(s: &mut ImageSet, status: i32) {
    s.pstree.tasks.push(TaskEntry {
        pid: ZOMBIE,
        ppid: ROOT,
        pgid: ROOT,
        sid: SID,
        threads: vec![],
        state: TaskState::Zombie { status },
    });
    relist(s);
}

/// Makes the root's leader thread exit, its second thread running on.
fn with_exited_leader(s: &mut ImageSet) {
    let t = task(s, ROOT);
    t.threads = vec![ROOT_THREAD];
    t.state = TaskState::LeaderExited;
    root_core(s).threads.remove(0);
    relist(s);
}

#[test]
fn a_zombie_has_no_task_files() {
    for status in [0, 0x0300, 0xff00, 0x0009, 0x008b, 0x000f] {
        accepted(|s| with_zombie(s, status));
    }
    let mut s = valid_set();
    with_zombie(&mut s, 0x0100);
    assert!(!s.inventory.images.iter().any(|f| f.name.contains("1003")));
    assert!(TaskState::Zombie { status: 0 }.is_zombie());
    assert!(!TaskState::LeaderExited.is_zombie());
    // Files for it are files of no task.
    refused(&["the inventory lists files of no task"], |s| {
        with_zombie(s, 0);
        s.inventory.images.push(ImageFile { name: "core-1003.img".into(), kind: Kind::Core, size: 100 });
    });
    refused(&["core images do not match the pid array"], |s| {
        with_zombie(s, 0);
        s.cores.insert(ZOMBIE, task_core(ZOMBIE, &[ZOMBIE]));
    });
    refused(&["mm images do not match the pid array"], |s| {
        with_zombie(s, 0);
        s.mms.insert(ZOMBIE, mm_image(ZOMBIE));
    });
}

#[test]
fn a_zombie_with_threads() {
    refused(&["zombie 1003 has threads"], |s| {
        with_zombie(s, 0);
        task(s, ZOMBIE).threads = vec![ZOMBIE];
    });
}

#[test]
fn a_zombie_with_an_impossible_status() {
    // Stopped (0x7f in the low bits), continued (0xffff), or beyond 16 bits.
    for status in [0x7f, 0x137f, 0xffff, 0x1_0000, -1, i32::MIN] {
        refused(&[&format!("zombie 1003: status {status:#x}")], |s| with_zombie(s, status));
    }
}

#[test]
fn the_root_is_a_zombie() {
    refused(&["the root is a zombie"], |s| {
        let t = task(s, ROOT);
        t.threads.clear();
        t.state = TaskState::Zombie { status: 0 };
    });
}

#[test]
fn a_zombie_pid_twice() {
    refused(&["id 1001 appears twice"], |s| {
        with_zombie(s, 0);
        task(s, ZOMBIE).pid = ROOT_THREAD;
    });
    refused(&["id 1000 appears twice"], |s| {
        with_zombie(s, 0);
        task(s, ZOMBIE).pid = ROOT;
    });
}

#[test]
fn a_zombie_checks_like_any_task() {
    refused(&["task 1003: parent 777 is not saved before it"], |s| {
        with_zombie(s, 0);
        task(s, ZOMBIE).ppid = 777;
    });
    refused(&["task 1003: id 0 out of range"], |s| {
        with_zombie(s, 0);
        task(s, ZOMBIE).sid = 0;
    });
}

#[test]

fn a_zombie_killed_by_a_signal_that_does_not_exist() {
    // wait(2) status: low 7 bits are the signal (0 = exited, 0x7f = stopped); the
    // check refuses 0x7f but not 65..=126, which are no signal at all.
    let mut accepted = Vec::new();
    for status in [0x41, 0x7e, 0xc1] {
        if validate_with(|s| with_zombie(s, status)).is_ok() {
            accepted.push(format!("{status:#x}"));
        }
    }
    assert!(accepted.is_empty(), "accepted zombie statuses {accepted:?}");
}

#[test]

fn a_task_whose_parent_is_a_zombie() {
    let r = validate_with(|s| {
        with_zombie(s, 0);
        // The zombie becomes the child's parent.
        s.pstree.tasks.swap(1, 2);
        task(s, CHILD).ppid = ZOMBIE;
    });
    assert!(r.is_err(), "a child of a zombie was accepted");
}

#[test]
fn an_exited_leader() {
    accepted(with_exited_leader);
    // Its threads must not include the leader, and there must be some.
    refused(&["task 1000: an exited leader needs other threads"], |s| {
        with_exited_leader(s);
        task(s, ROOT).threads = vec![ROOT, ROOT_THREAD];
    });
    refused(&["task 1000: an exited leader needs other threads"], |s| {
        with_exited_leader(s);
        task(s, ROOT).threads.clear();
    });
    // Its pid stays taken.
    refused(&["id 1000 appears twice"], |s| {
        with_exited_leader(s);
        task(s, CHILD).threads.push(ROOT);
    });
    // And its core still has to match the pid array.
    refused(&["task 1000: threads in core and pstree differ"], |s| {
        with_exited_leader(s);
        let t = thread(ROOT, "sleeper", 0x1000, 0x2000);
        root_core(s).threads.insert(0, t);
    });
}
