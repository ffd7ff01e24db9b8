//! The injection layer on its own: a remote syscall on the victim's vDSO, the
//! parasite in and out, and the victim unchanged afterwards (it checks its own
//! registers; the test compares its maps and fds). Also: rckpt killed while the
//! parasite runs leaves a running task (the parasite cures itself).

mod common;
use common::*;
use std::time::Duration;

use rckpt::parasite::{Infected, OrigState, find_syscall_insn};
use rckpt::sys::mem::ProcMem;
use rckpt::sys::ptrace::{Stop, Tracee, opts};
use rckpt::sys::{Pid, RemoteAddr, remote};

fn vdso_insn(pid: Pid) -> RemoteAddr {
    let maps = maps(pid.as_raw());
    let line = maps.lines().find(|l| l.ends_with("[vdso]")).unwrap();
    let (s, e) = line.split_whitespace().next().unwrap().split_once('-').unwrap();
    let (s, e) = (u64::from_str_radix(s, 16).unwrap(), u64::from_str_radix(e, 16).unwrap());
    let mut code = vec![0u8; (e - s) as usize];
    ProcMem::open(pid, false).unwrap().read_exact(RemoteAddr(s), &mut code).unwrap();
    RemoteAddr(s + find_syscall_insn(&code).unwrap() as u64)
}

fn fds(pid: i32) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| format!("{:?}", std::fs::read_link(e.unwrap().path()).unwrap()))
        .collect();
    v.sort();
    v
}

#[test]
fn remote_getpid_then_parasite_then_cure_leave_the_victim_unchanged() {
    // The victim spins with live vector and general registers, and checks them.
    let mut w = Workload::spawn("regs", &[]);
    std::thread::sleep(Duration::from_millis(50));
    let pid = Pid::from_raw(w.pid);
    let maps_before = maps(w.pid);
    let fds_before = fds(w.pid);
    {
        let mut t = Tracee::seize(pid, opts::TRACESYSGOOD).unwrap();
        assert_eq!(t.interrupt_and_wait(Duration::from_secs(5)).unwrap(), Stop::Interrupt);
        let orig = OrigState { regs: t.regs().unwrap(), xstate: t.xstate().unwrap(), sigmask: t.sigmask().unwrap() };
        let insn = vdso_insn(pid);

        let mut sigs = Vec::new();
        let r = remote::syscall(&mut t, insn, &orig.regs, libc::SYS_getpid, [0; 6], &mut sigs).unwrap();
        assert_eq!(r, w.pid as i64, "remote getpid");
        let r = remote::syscall(&mut t, insn, &orig.regs, libc::SYS_gettid, [0; 6], &mut sigs).unwrap();
        assert_eq!(r, w.pid as i64, "remote gettid");

        let mut inf = Infected::infect(&mut t, insn, orig.clone()).unwrap();
        let misc = inf.misc().unwrap();
        // The victim's SIGUSR2 handler, as the parasite sees it from inside.
        assert!(misc.sigactions[libc::SIGUSR2 as usize - 1].handler > 1);
        assert!(misc.brk > 0);
        assert_eq!(misc.rlimits[libc::RLIMIT_NOFILE as usize].cur, rlimit_nofile());
        let deferred = inf.cure().unwrap();
        assert!(deferred.is_empty());
        assert_eq!(t.regs().unwrap().rip, orig.regs.rip);
        t.detach(0).unwrap();
    }
    assert_eq!(maps(w.pid), maps_before, "maps changed");
    assert_eq!(fds(w.pid), fds_before, "fds changed");
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}

fn rlimit_nofile() -> u64 {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit fills the struct.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    // The victim closed nothing of ours but inherits our limits.
    r.rlim_cur
}

#[test]
fn rckpt_killed_while_the_parasite_runs_leaves_a_running_task() {
    let mut w = Workload::spawn("regs", &[]);
    std::thread::sleep(Duration::from_millis(50));
    let img = TempDir::new("killed");
    let pid = w.pid.to_string();
    let (st, _, _) =
        rckpt(&["dump", "-t", &pid, "-D", img.path().to_str().unwrap()], &[("RCKPT_FAULT", "dump.infected:kill")]);
    assert_eq!(st.code(), None, "rckpt was not killed");
    std::thread::sleep(Duration::from_millis(200));
    assert!(alive(w.pid), "the task died with rckpt");
    let status = std::fs::read_to_string(format!("/proc/{}/status", w.pid)).unwrap();
    assert!(status.contains("TracerPid:\t0"), "still traced");
    // Its registers came back through the parasite's own rt_sigreturn.
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}
