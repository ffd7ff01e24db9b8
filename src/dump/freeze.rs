//! Freezing a tree: PTRACE_SEIZE and PTRACE_INTERRUPT on every thread, then
//! listing /proc/PID/task and every thread's children again, until a pass finds
//! nothing new. A task that is stopped cannot fork or clone, so when a pass finds
//! nothing new, the tree is complete and frozen. Zombies are recorded, not seized.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::{DumpError, Result};
use crate::proc;
use crate::sys::ptrace::{Stop, Tracee, opts};
use crate::sys::{Pid, SysError};

/// How long one task may take to reach its interrupt stop, and how many times a
/// task that does not (a vfork parent waits uninterruptibly for its child) is
/// given again before the dump is refused.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);
const STOP_RETRIES: u32 = 3;
const MAX_PASSES: usize = 100;

#[derive(Debug, Clone)]
pub struct FrozenTask {
    pub pid: Pid,
    /// Parent inside the tree (None for the root).
    pub ppid: Option<Pid>,
    /// Live threads, the leader first when it is alive.
    pub threads: Vec<Pid>,
    pub leader_exited: bool,
    /// wait(2) status of a zombie.
    pub zombie: Option<i32>,
    /// The stop signal of a job-control stop.
    pub stop_signal: Option<i32>,
}

impl FrozenTask {
    pub fn is_zombie(&self) -> bool {
        self.zombie.is_some()
    }
}

pub struct Frozen {
    /// Saved order: depth first from the root, children by pid.
    pub tasks: Vec<FrozenTask>,
    pub tracees: BTreeMap<i32, Tracee>,
}

impl Frozen {
    pub fn tracee(&mut self, tid: Pid) -> &mut Tracee {
        self.tracees.get_mut(&tid.as_raw()).expect("every live thread is seized")
    }

    pub fn live(&self) -> impl Iterator<Item = &FrozenTask> {
        self.tasks.iter().filter(|t| !t.is_zombie())
    }
}

fn is_zombie_state(state: char) -> bool {
    state == 'Z' || state == 'X'
}

/// The options every thread is seized with; collecting a thread under seccomp
/// adds PTRACE_O_SUSPEND_SECCOMP to them (see [`super::seccomp`]).
pub const SEIZE_OPTIONS: u32 = opts::TRACESYSGOOD;

/// Seizes and interrupts `tid` unless it has gone.
fn seize(tid: Pid) -> Result<Option<Tracee>> {
    match Tracee::seize(tid, SEIZE_OPTIONS) {
        Ok(t) => {
            t.interrupt()?;
            Ok(Some(t))
        }
        Err(SysError::TraceeDied(_)) => Ok(None),
        Err(SysError::Task { errno: Errno::EPERM, .. }) => {
            // A thread that became a zombie since it was listed, or one traced
            // by someone else.
            let st = proc::stat(tid).map(|s| s.state).unwrap_or('X');
            if is_zombie_state(st) {
                return Ok(None);
            }
            let tracer =
                procfs::process::Process::new(tid.as_raw()).and_then(|p| p.status()).map(|s| s.tracerpid).unwrap_or(0);
            if tracer != 0 {
                let comm = std::fs::read_to_string(format!("/proc/{tracer}/comm")).unwrap_or_default();
                return Err(DumpError::Refused {
                    pid: tid,
                    why: format!(
                        "it is traced by pid {tracer} ({}): another rckpt dumping it, or a debugger",
                        comm.trim()
                    ),
                });
            }
            // ptrace_may_access(): another user's task, or one that is not
            // dumpable (PR_SET_DUMPABLE 0, a setuid program), needs CAP_SYS_PTRACE.
            Err(DumpError::Privilege {
                pid: tid,
                cap: "CAP_SYS_PTRACE",
                why: "it is not rckpt's to trace: it runs as another user or is not dumpable".into(),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Waits for an interrupted thread to stop. A signal that arrives during the
/// freeze is delivered (it arrived before the freeze, as far as the task can
/// tell), never swallowed; a stop signal leaves the task in a job-control stop.
fn wait_stopped(t: &mut Tracee) -> Result<Option<Stop>> {
    let tid = t.pid();
    for attempt in 0..=STOP_RETRIES {
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match t.wait(left, "interrupt stop") {
                Ok(Stop::Signal(sig)) => t.resume(crate::sys::ptrace::Resume::Cont, sig)?,
                Ok(s @ (Stop::Interrupt | Stop::GroupStop(_))) => return Ok(Some(s)),
                Ok(Stop::Syscall | Stop::Event(_)) => t.resume(crate::sys::ptrace::Resume::Cont, 0)?,
                Ok(_) => return Ok(None),
                Err(SysError::Timeout { .. }) if attempt < STOP_RETRIES => break,
                Err(SysError::Timeout { .. }) => {
                    let wchan = proc::read_string(proc::path(tid, "wchan")).unwrap_or_default();
                    let why = if wchan.contains("vfork") {
                        "it is a vfork parent waiting for its child to exec or exit".to_string()
                    } else {
                        format!(
                            "it did not stop within {}s (waiting in {wchan:?})",
                            (STOP_RETRIES + 1) as u64 * STOP_TIMEOUT.as_secs()
                        )
                    };
                    return Err(DumpError::Refused { pid: tid, why });
                }
                Err(SysError::TraceeDied(_)) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
    }
    unreachable!()
}

/// The tree rooted at `root`, frozen.
pub fn freeze(root: Pid) -> Result<Frozen> {
    let st = proc::stat(root).map_err(|_| DumpError::NoTask(root))?;
    if is_zombie_state(st.state) && proc::threads(root).map(|t| t.len()).unwrap_or(0) <= 1 {
        return Err(DumpError::Refused { pid: root, why: "it is a zombie".into() });
    }
    let mut tracees: BTreeMap<i32, Tracee> = BTreeMap::new();
    let mut stops: BTreeMap<i32, Stop> = BTreeMap::new();
    // Processes found, with their parent; zombies aside.
    let mut procs: Vec<(Pid, Option<Pid>)> = vec![(root, None)];
    let mut zombies: BTreeMap<i32, (Pid, i32)> = BTreeMap::new();
    let mut gone: BTreeSet<i32> = BTreeSet::new();
    for pass in 0.. {
        if pass == MAX_PASSES {
            return Err(DumpError::Refused {
                pid: root,
                why: format!("the tree kept changing through {MAX_PASSES} freeze passes"),
            });
        }
        crate::fault::check_interrupted("freezing the tree")?;
        // Threads seized in this pass, and whether anything new was found.
        let mut fresh: Vec<Pid> = Vec::new();
        let mut found = false;
        let mut i = 0;
        while i < procs.len() {
            let (pid, _) = procs[i];
            i += 1;
            if gone.contains(&pid.as_raw()) {
                continue;
            }
            let threads = match proc::threads(pid) {
                Ok(t) => t,
                Err(_) => {
                    gone.insert(pid.as_raw());
                    continue;
                }
            };
            for tid in &threads {
                if tracees.contains_key(&tid.as_raw()) || gone.contains(&tid.as_raw()) {
                    continue;
                }
                let st = proc::thread_stat(pid, *tid).map(|s| s.state).unwrap_or('X');
                if is_zombie_state(st) {
                    continue;
                }
                found = true;
                match seize(*tid)? {
                    Some(t) => {
                        tracees.insert(tid.as_raw(), t);
                        fresh.push(*tid);
                    }
                    None => {
                        gone.insert(tid.as_raw());
                    }
                }
            }
            for child in proc::children(pid).unwrap_or_default() {
                if procs.iter().any(|(p, _)| *p == child) || zombies.contains_key(&child.as_raw()) {
                    continue;
                }
                match proc::stat(child) {
                    Ok(s) if is_zombie_state(s.state) && proc::threads(child).map(|t| t.len()).unwrap_or(0) <= 1 => {
                        zombies.insert(child.as_raw(), (pid, s.exit_code.unwrap_or(0)));
                    }
                    // Its threads are seized when the loop reaches it, in this pass.
                    Ok(_) => procs.push((child, Some(pid))),
                    Err(_) => continue,
                }
                found = true;
            }
        }
        // Wait for this pass's threads to stop: only stopped tasks have final
        // children lists, so another pass looks at them again.
        for tid in fresh {
            if let Some(t) = tracees.get_mut(&tid.as_raw()) {
                match wait_stopped(t)? {
                    Some(s) => {
                        stops.insert(tid.as_raw(), s);
                    }
                    None => {
                        tracees.remove(&tid.as_raw()).map(|t| t.forget());
                        gone.insert(tid.as_raw());
                    }
                }
            }
        }
        if !found {
            break;
        }
    }

    // A process that ended while the tree was being frozen is a zombie of its
    // (frozen) parent now, and saved as one: its parent has yet to reap it.
    procs.retain(|&(pid, parent)| {
        let Some(pp) = parent else { return true };
        let has_live =
            proc::threads(pid).map(|ts| ts.iter().any(|t| tracees.contains_key(&t.as_raw()))).unwrap_or(false);
        if has_live {
            return true;
        }
        if let Ok(s) = proc::stat(pid)
            && is_zombie_state(s.state)
        {
            zombies.insert(pid.as_raw(), (pp, s.exit_code.unwrap_or(0)));
        }
        false
    });

    // Depth-first from the root, children by pid: each task after its parent.
    let mut order = Vec::new();
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        order.push(p);
        let mut kids: Vec<Pid> = procs.iter().filter(|(_, pp)| *pp == Some(p)).map(|(c, _)| *c).collect();
        kids.extend(zombies.iter().filter(|(_, (pp, _))| *pp == p).map(|(z, _)| Pid::from_raw(*z)));
        kids.sort_unstable();
        kids.retain(|k| !gone.contains(&k.as_raw()) || zombies.contains_key(&k.as_raw()));
        stack.extend(kids.into_iter().rev());
    }
    let mut tasks = Vec::new();
    for pid in order {
        if let Some((parent, status)) = zombies.get(&pid.as_raw()) {
            tasks.push(FrozenTask {
                pid,
                ppid: Some(*parent),
                threads: vec![],
                leader_exited: false,
                zombie: Some(*status),
                stop_signal: None,
            });
            continue;
        }
        let ppid = procs.iter().find(|(p, _)| *p == pid).and_then(|(_, pp)| *pp);
        let mut threads: Vec<Pid> =
            proc::threads(pid).unwrap_or_default().into_iter().filter(|t| tracees.contains_key(&t.as_raw())).collect();
        threads.sort_by_key(|t| (*t != pid, t.as_raw()));
        if threads.is_empty() {
            // Exited while the tree was frozen around it: it is a zombie now.
            let status = proc::stat(pid).ok().and_then(|s| s.exit_code).unwrap_or(0);
            if let Some(pp) = ppid {
                tasks.push(FrozenTask {
                    pid,
                    ppid: Some(pp),
                    threads: vec![],
                    leader_exited: false,
                    zombie: Some(status),
                    stop_signal: None,
                });
                continue;
            }
            return Err(DumpError::NoTask(pid));
        }
        let leader_exited = threads[0] != pid;
        let stop_signal = threads.iter().find_map(|t| match stops.get(&t.as_raw()) {
            Some(Stop::GroupStop(s)) => Some(*s),
            _ => None,
        });
        tasks.push(FrozenTask { pid, ppid, threads, leader_exited, zombie: None, stop_signal });
    }
    Ok(Frozen { tasks, tracees })
}
