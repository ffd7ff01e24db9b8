//! Pseudo-terminals whose master the tree holds: saved as a pair with the
//! slave's settings and made again at restore (with the index the kernel gives).
//! A slave whose master is outside the tree is a terminal of the outside world
//! (an external). Bytes still queued in a pair cannot be read without taking
//! them: such a pair refuses the dump.

use std::collections::HashMap;
use std::os::fd::AsFd;

use rckpt_images::files::{FileKind, PtyData};

use super::{Ctx, Desc, FileTable, refuse};
use crate::dump::Result;
use crate::sys::pty;

/// Major of every devpts slave (its minor is the index).
pub const SLAVE_MAJOR: u32 = 136;

/// The masters the tree holds, by pty index: their descriptions.
pub struct Ptys {
    masters: HashMap<u32, Vec<usize>>,
}

fn master_index(d: &Desc) -> Option<u32> {
    if d.info.link != "/dev/ptmx" && d.info.link != "/dev/pts/ptmx" {
        return None;
    }
    d.info.extra.iter().find(|(k, _)| k == "tty-index").and_then(|(_, v)| v.trim().parse().ok())
}

impl Ptys {
    pub fn survey(descs: &[Desc]) -> Ptys {
        let mut masters: HashMap<u32, Vec<usize>> = HashMap::new();
        for (i, d) in descs.iter().enumerate() {
            if let Some(index) = master_index(d) {
                masters.entry(index).or_default().push(i);
            }
        }
        Ptys { masters }
    }
}

/// A pty side of the tree, or None for a terminal from outside.
pub fn classify(
    table: &mut FileTable,
    i: usize,
    major: u32,
    minor: u32,
    ptys: &Ptys,
    ctx: &mut Ctx,
) -> Result<Option<FileKind>> {
    let (pid, _, fd) = table.descs[i].first();
    if (major, minor) == (5, 2) {
        let index = master_index(&table.descs[i])
            .ok_or_else(|| refuse(pid, fd, "a pty master whose index cannot be read (no tty-index in fdinfo)"))?;
        return Ok(Some(FileKind::Pty { pty: pair(table, index, ptys, ctx)?, master: true }));
    }
    if major == SLAVE_MAJOR && ptys.masters.contains_key(&minor) {
        return Ok(Some(FileKind::Pty { pty: pair(table, minor, ptys, ctx)?, master: false }));
    }
    Ok(None)
}

/// The pair with `index`, saved the first time.
fn pair(table: &mut FileTable, index: u32, ptys: &Ptys, ctx: &mut Ctx) -> Result<u32> {
    if let Some(p) = ctx.pty_index.get(&index) {
        return Ok(*p);
    }
    let descs = &ptys.masters[&index];
    let (pid, at, fd) = table.descs[descs[0]].first();
    if descs.len() > 1 {
        return Err(refuse(pid, fd, format_args!("the master of /dev/pts/{index}, opened more than once")));
    }
    let master = table.dup(at, fd)?;
    let slave = pty::peer(master.as_fd(), libc::O_RDWR)?;
    let (to_master, to_slave) = (pty::pending(master.as_fd())?, pty::pending(slave.as_fd())?);
    if to_master > 0 || to_slave > 0 {
        return Err(refuse(
            pid,
            fd,
            format_args!("the master of /dev/pts/{index}, holding {} unread bytes", to_master + to_slave),
        ));
    }
    let data = PtyData {
        index,
        termios: pty::termios(slave.as_fd())?,
        winsize: pty::winsize(slave.as_fd())?,
        packet: pty::packet_mode(master.as_fd())?,
    };
    ctx.ptys.push(data);
    let p = ctx.ptys.len() as u32 - 1;
    ctx.pty_index.insert(index, p);
    Ok(p)
}
