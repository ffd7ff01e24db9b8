//! Anonymous-inode files, from their fdinfo: eventfd, epoll, signalfd, timerfd,
//! inotify. Anything else (io_uring, userfaultfd, pidfd, bpf, perf, ...) is
//! refused by name.

use std::os::unix::fs::MetadataExt;

use rckpt_images::files::{EpollItem, FileKind, InotifyWatch, TimerFd};

use super::{FileTable, refuse};
use crate::dump::Result;

fn extra<'a>(table: &'a FileTable, i: usize, key: &str) -> Option<&'a str> {
    table.descs[i].info.extra.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn num(s: &str) -> Option<u64> {
    s.trim().parse().ok()
}

/// "(sec, nsec)" as fdinfo prints a timespec.
fn timespec(s: &str) -> Option<u64> {
    let s = s.trim().trim_start_matches('(').trim_end_matches(')');
    let (a, b) = s.split_once(',')?;
    Some(num(a)? * 1_000_000_000 + num(b)?)
}

pub fn classify(table: &mut FileTable, i: usize, what: &str) -> Result<FileKind> {
    let (pid, _, fd) = table.descs[i].first();
    let bad = |what: &str| refuse(pid, fd, format_args!("{what} whose state rckpt cannot read"));
    match what {
        "eventfd" => {
            let count = extra(table, i, "eventfd-count")
                .and_then(|s| u64::from_str_radix(s.trim(), 16).ok())
                .ok_or_else(|| bad("an eventfd"))?;
            let semaphore = extra(table, i, "eventfd-semaphore").and_then(num).unwrap_or(0) != 0;
            Ok(FileKind::EventFd { count, semaphore })
        }
        "signalfd" => {
            let mask = extra(table, i, "sigmask")
                .and_then(|s| u64::from_str_radix(s.trim(), 16).ok())
                .ok_or_else(|| bad("a signalfd"))?;
            Ok(FileKind::SignalFd { mask })
        }
        "timerfd" => {
            let t = TimerFd {
                clock: extra(table, i, "clockid").and_then(num).ok_or_else(|| bad("a timerfd"))? as i32,
                settime_flags: extra(table, i, "settime flags")
                    .and_then(|s| u32::from_str_radix(s.trim(), 8).ok())
                    .unwrap_or(0),
                interval_ns: extra(table, i, "it_interval").and_then(timespec).ok_or_else(|| bad("a timerfd"))?,
                value_ns: extra(table, i, "it_value").and_then(timespec).ok_or_else(|| bad("a timerfd"))?,
                ticks: extra(table, i, "ticks").and_then(num).unwrap_or(0),
            };
            Ok(FileKind::TimerFd(t))
        }
        "eventpoll" => {
            // "tfd:        3 events: 80000019 data:             1234  pos:0 ino:40e sdev:10"
            let at = table.descs[i].first().1;
            let mut items = Vec::new();
            for (k, v) in &table.descs[i].info.extra {
                if k != "tfd" {
                    continue;
                }
                let f: Vec<&str> = v.split_whitespace().collect();
                let tfd = f.first().and_then(|x| x.parse().ok()).ok_or_else(|| bad("an epoll"))?;
                let events = f.get(2).and_then(|x| u32::from_str_radix(x, 16).ok()).ok_or_else(|| bad("an epoll"))?;
                let data = f.get(4).and_then(|x| u64::from_str_radix(x, 16).ok()).ok_or_else(|| bad("an epoll"))?;
                // Registrations are remade with the owner's fd numbers: its fd
                // `tfd` must still be the registered file.
                let ino = f.iter().find_map(|x| x.strip_prefix("ino:")).and_then(|x| u64::from_str_radix(x, 16).ok());
                let held = std::fs::metadata(crate::proc::path(at, &format!("fd/{tfd}"))).map(|m| m.ino()).ok();
                if ino.is_none() || held != ino {
                    return Err(refuse(
                        pid,
                        fd,
                        format_args!("an epoll watching a file no longer open at fd {tfd} of this process"),
                    ));
                }
                items.push(EpollItem { tfd, events, data });
            }
            Ok(FileKind::Epoll { owner: pid.as_raw(), items })
        }
        "inotify" => {
            let mut watches = Vec::new();
            for (k, v) in &table.descs[i].info.extra {
                if k != "inotify wd" {
                    continue;
                }
                let w = inotify_watch(v).ok_or_else(|| bad("an inotify watch"))?;
                watches.push(w.map_err(|(wd, e)| match e.errno() {
                    // open_by_handle_at(2) needs CAP_DAC_READ_SEARCH.
                    Some(nix::errno::Errno::EPERM) => crate::dump::DumpError::Privilege {
                        pid,
                        cap: "CAP_DAC_READ_SEARCH",
                        why: format!(
                            "fd {fd} is an inotify watch {wd}, whose path is found from its file handle (open_by_handle_at needs CAP_DAC_READ_SEARCH)"
                        ),
                    },
                    _ => refuse(pid, fd, format_args!("an inotify watch {wd} whose path cannot be found ({e})")),
                })?);
            }
            watches.sort_by_key(|w| w.wd);
            Ok(FileKind::Inotify { watches })
        }
        other => Err(refuse(pid, fd, format_args!("a {other} (anon_inode:{other})"))),
    }
}

/// One "inotify wd:1 ino:3c4a7 sdev:fe00000 mask:300 ... f_handle:a7c4..." line
/// (after "inotify wd:"), its path found from the file handle.
fn inotify_watch(v: &str) -> Option<std::result::Result<InotifyWatch, (i32, crate::sys::SysError)>> {
    let mut wd = None;
    let mut mask = None;
    let mut sdev = None;
    let mut htype = None;
    let mut handle = None;
    let mut first = true;
    for tok in v.split_whitespace() {
        if first {
            wd = tok.parse::<i32>().ok();
            first = false;
            continue;
        }
        let (k, val) = tok.split_once(':')?;
        match k {
            "mask" => mask = u32::from_str_radix(val, 16).ok(),
            "sdev" => sdev = u64::from_str_radix(val, 16).ok(),
            "fhandle-type" => htype = i32::from_str_radix(val, 16).ok(),
            "f_handle" => {
                handle = (0..val.len() / 2)
                    .map(|i| u8::from_str_radix(&val[2 * i..2 * i + 2], 16).ok())
                    .collect::<Option<Vec<u8>>>()
            }
            _ => {}
        }
    }
    let (wd, mask, sdev, htype, handle) = (wd?, mask?, sdev?, htype?, handle?);
    // The kernel's dev_t: major in the bits above 20.
    let dev = nix::sys::stat::makedev(sdev >> 20, sdev & 0xfffff);
    Some(
        crate::sys::handle::path_of(dev, htype, &handle)
            .map(|path| InotifyWatch { wd, mask, path })
            .map_err(|e| (wd, e)),
    )
}
