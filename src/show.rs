//! `rckpt show`: what an image holds, for people.

use std::fmt::Write;
use std::path::Path;

use rckpt_images::files::FileKind;
use rckpt_images::mm::VmaKind;

use crate::restore::{Result, read};

pub fn show(dir: &Path) -> Result<String> {
    let set = read::read(dir)?;
    let mut s = String::new();
    let inv = &set.inventory;
    let _ = writeln!(s, "image {}: written by {} on kernel {}", dir.display(), inv.tool, inv.kernel_release);
    for t in &set.pstree.tasks {
        let core = &set.cores[&t.pid];
        let mm = &set.mms[&t.pid];
        let _ = writeln!(
            s,
            "task {} (ppid {}, pgid {}, sid {}, {:?}): {} thread(s), comm {:?}",
            t.pid,
            t.ppid,
            t.pgid,
            t.sid,
            t.state,
            t.threads.len(),
            core.threads[0].comm
        );
        let _ = writeln!(
            s,
            "  memory: {} VMAs, {} KiB of saved pages in {} extents",
            mm.vmas.len(),
            mm.pages_len() >> 10,
            mm.extents.len()
        );
        for v in &mm.vmas {
            let what = match &v.kind {
                VmaKind::File { file, offset } => {
                    format!("{} @{offset:#x}", mm.files[*file as usize].path)
                }
                k => format!("{k:?}"),
            };
            let _ = writeln!(
                s,
                "    {:#014x}-{:#014x} prot {} {} {}",
                v.start,
                v.end,
                v.prot,
                if v.shared { "shared" } else { "private" },
                what
            );
        }
        for th in &core.threads {
            let x = &th.xstate;
            let _ = writeln!(
                s,
                "  thread {} {:?}: rip {:#x} rsp {:#x}, xstate {} bytes (components {:#x}, mxcsr {:#x})",
                th.tid,
                th.comm,
                th.regs.rip,
                th.regs.rsp,
                x.len(),
                crate::arch::xstate::xstate_bv(x),
                crate::arch::xstate::mxcsr(x)
            );
        }
        let handled: Vec<String> = core
            .sigactions
            .iter()
            .enumerate()
            .filter(|(_, a)| a.handler > 1)
            .map(|(i, _)| (i + 1).to_string())
            .collect();
        let _ = writeln!(
            s,
            "  signals: blocked {:#x}, handlers for [{}], {} pending",
            core.threads[0].blocked,
            handled.join(" "),
            core.shared_pending.len() + core.threads[0].pending.len()
        );
        for f in &set.fdtables[&t.pid].fds {
            let d = &set.files.files[f.file as usize];
            let what = match &d.kind {
                FileKind::Path(p) => format!("{} (pos {}, flags {:#o})", p.path, p.pos, d.flags),
                FileKind::External { key } => format!("external {key}"),
                FileKind::Pipe { pipe } => {
                    format!(
                        "pipe {pipe} ({} bytes queued, flags {:#o})",
                        set.files.pipes[*pipe as usize].data.len(),
                        d.flags
                    )
                }
                FileKind::Fifo { path, pipe } => {
                    format!("FIFO {path} ({} bytes queued)", set.files.pipes[*pipe as usize].data.len())
                }
                FileKind::Unix(u) => {
                    let name =
                        u.name.as_ref().map(|n| String::from_utf8_lossy(n).replace('\0', "@")).unwrap_or_default();
                    let state = if u.listening {
                        "listening"
                    } else if u.peer.is_some() {
                        "connected"
                    } else {
                        "unconnected"
                    };
                    let queued: usize = u.queue.iter().map(|m| m.len()).sum();
                    format!("unix {:?} socket {name} {state}, {queued} bytes queued", u.stype)
                }
                FileKind::Inet(i) => {
                    let state = if i.listening {
                        "listening"
                    } else if i.tcp.is_some() {
                        "established"
                    } else {
                        "bound"
                    };
                    format!("inet{} {:?} socket port {} {state}", if i.family == 2 { "" } else { "6" }, i.stype, i.port)
                }
                FileKind::Pty { pty, master } => {
                    let p = &set.files.ptys[*pty as usize];
                    format!("pty {} ({}, was /dev/pts/{})", pty, if *master { "master" } else { "slave" }, p.index)
                }
                FileKind::EventFd { count, .. } => format!("eventfd (count {count})"),
                FileKind::Epoll { items, .. } => format!("epoll ({} fds)", items.len()),
                FileKind::SignalFd { mask } => format!("signalfd (mask {mask:#x})"),
                FileKind::TimerFd(t) => format!("timerfd (clock {}, {} ns left)", t.clock, t.value_ns),
                FileKind::Inotify { watches } => format!("inotify ({} watches)", watches.len()),
                FileKind::Memfd { content, .. } | FileKind::Deleted { content, .. } => {
                    let c = &set.files.contents[*content as usize];
                    format!("{:?} ({} bytes, {} saved)", c.origin, c.size, c.data_len)
                }
            };
            let _ = writeln!(s, "  fd {}: {what}", f.fd);
        }
    }
    for e in &inv.externals {
        let _ = writeln!(s, "external {} ({:?})", e.key, e.kind);
    }
    Ok(s)
}
