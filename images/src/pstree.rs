//! `pstree.img`: the pid array in saved order (the seed's contract), each task with
//! its place in the tree, its session, group and threads.

use serde::{Deserialize, Serialize};

use crate::{ImageError, check};

pub const FILE_NAME: &str = "pstree.img";
/// PID_MAX_LIMIT on 64-bit kernels.
pub const PID_MAX_LIMIT: i32 = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PsTree {
    /// Saved order: the root first, then each task after its parent.
    pub tasks: Vec<TaskEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskEntry {
    pub pid: i32,
    /// 0 when the parent is outside the tree (only for the root).
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
    /// Ids of the live threads; the leader (== pid) first unless it has exited.
    /// Empty for a zombie.
    pub threads: Vec<i32>,
    pub state: TaskState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskState {
    Running,
    /// In a job-control stop with this signal: restored stopped.
    Stopped {
        signal: i32,
    },
    /// Exited, not yet reaped by its parent: `status` as wait(2) reports it.
    Zombie {
        status: i32,
    },
    /// The thread-group leader exited while other threads run on.
    LeaderExited,
}

impl TaskState {
    pub fn is_zombie(&self) -> bool {
        matches!(self, TaskState::Zombie { .. })
    }
}

impl PsTree {
    pub fn validate(&self) -> Result<(), ImageError> {
        check(!self.tasks.is_empty(), || "the pid array is empty".into())?;
        let mut seen = std::collections::BTreeSet::new();
        // pid -> position of its first entry (checked unique below).
        let mut index: std::collections::HashMap<i32, usize> = std::collections::HashMap::new();
        for (i, t) in self.tasks.iter().enumerate() {
            index.entry(t.pid).or_insert(i);
        }
        for (i, t) in self.tasks.iter().enumerate() {
            for id in [t.pid, t.pgid, t.sid] {
                check(id > 0 && id <= PID_MAX_LIMIT, || format!("task {}: id {id} out of range", t.pid))?;
            }
            check(t.ppid >= 0 && t.ppid <= PID_MAX_LIMIT, || format!("task {}: ppid {} out of range", t.pid, t.ppid))?;
            match t.state {
                TaskState::Zombie { status } => {
                    check(t.threads.is_empty(), || format!("zombie {} has threads", t.pid))?;
                    // Exited (low 7 bits zero, the code above) or killed by a real
                    // signal (1..=64, with the core bit allowed).
                    let sig = status & 0x7f;
                    check(status & !0xffff == 0 && sig <= 64 && (sig == 0 || status & 0xff00 == 0), || {
                        format!("zombie {}: status {status:#x}", t.pid)
                    })?;
                    check(i > 0, || "the root is a zombie".into())?;
                    check(seen.insert(t.pid), || format!("id {} appears twice in the pid array", t.pid))?;
                }
                TaskState::LeaderExited => {
                    check(!t.threads.is_empty() && !t.threads.contains(&t.pid), || {
                        format!("task {}: an exited leader needs other threads", t.pid)
                    })?;
                    check(seen.insert(t.pid), || format!("id {} appears twice in the pid array", t.pid))?;
                }
                _ => check(!t.threads.is_empty() && t.threads[0] == t.pid, || {
                    format!("task {}: the first thread is not the leader", t.pid)
                })?,
            }
            check(t.threads.len() <= 65536, || format!("task {}: too many threads", t.pid))?;
            for &tid in &t.threads {
                check(tid > 0 && tid <= PID_MAX_LIMIT, || format!("task {}: tid {tid} out of range", t.pid))?;
                check(seen.insert(tid), || format!("id {tid} appears twice in the pid array"))?;
            }
            if i == 0 {
                check(t.ppid == 0 || !index.contains_key(&t.ppid), || "the root's parent is inside the tree".into())?;
            } else {
                let parent = index.get(&t.ppid).copied().filter(|&j| j < i);
                check(parent.is_some(), || format!("task {}: parent {} is not saved before it", t.pid, t.ppid))?;
                // The kernel hands an exiting task's children to a reaper: a
                // zombie has none.
                check(!parent.is_some_and(|j| self.tasks[j].state.is_zombie()), || {
                    format!("task {}: its parent {} is a zombie", t.pid, t.ppid)
                })?;
            }
            if let TaskState::Stopped { signal } = t.state {
                check((1..=64).contains(&signal), || format!("task {}: stop signal {signal}", t.pid))?;
            }
        }
        Ok(())
    }

    pub fn root(&self) -> &TaskEntry {
        &self.tasks[0]
    }

    pub fn find(&self, pid: i32) -> Option<&TaskEntry> {
        self.tasks.iter().find(|t| t.pid == pid)
    }
}
