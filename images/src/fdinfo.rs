//! `fdinfo-PID.img`: a task's descriptor table.

use serde::{Deserialize, Serialize};

use crate::{ImageError, check};

pub fn file_name(pid: i32) -> String {
    format!("fdinfo-{pid}.img")
}

/// NR_OPEN: no fd number can reach it.
pub const FD_MAX: i32 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdTable {
    pub pid: i32,
    /// Sorted by fd.
    pub fds: Vec<FdEntry>,
    /// A pty of the tree that is the task's controlling terminal, where the
    /// task is the one to set it up again.
    pub tty: Option<TaskTty>,
}

/// What a task does with its controlling terminal, a pty of the tree
/// (`pty` indexes the files image's `ptys`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskTty {
    pub pty: u32,
    /// The session leader: makes it its controlling terminal (TIOCSCTTY).
    pub leader: bool,
    /// The leader of the foreground process group: makes its group the
    /// foreground one (TIOCSPGRP).
    pub foreground: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdEntry {
    pub fd: i32,
    /// Id of the description in files.img.
    pub file: u32,
    pub cloexec: bool,
}

impl FdTable {
    pub fn validate(&self, nr_files: usize) -> Result<(), ImageError> {
        let mut prev = -1;
        for e in &self.fds {
            check(e.fd > prev && e.fd < FD_MAX, || format!("task {}: fd {} out of order or range", self.pid, e.fd))?;
            prev = e.fd;
            check((e.file as usize) < nr_files, || format!("task {}: fd {} names file {}", self.pid, e.fd, e.file))?;
        }
        Ok(())
    }
}
