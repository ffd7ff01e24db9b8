//! File locks, from the "lock:" lines of fdinfo: flock and OFD locks belong to
//! the description, POSIX locks to the process holding them.

use rckpt_images::files::{Lock, LockKind};

use super::Desc;
use crate::dump::{DumpError, Result};

/// "1: FLOCK  ADVISORY  WRITE 10324 fe:00:10011802 0 EOF"
fn parse(line: &str) -> Option<Lock> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let kind = match *f.get(1)? {
        "FLOCK" => LockKind::Flock,
        "POSIX" => LockKind::Posix,
        "OFDLCK" => LockKind::Ofd,
        _ => return None,
    };
    if *f.get(2)? != "ADVISORY" {
        return None;
    }
    let write = match *f.get(3)? {
        "WRITE" => true,
        "READ" => false,
        _ => return None,
    };
    let owner = f.get(4)?.parse().ok()?;
    let start: u64 = f.get(6)?.parse().ok()?;
    let len = match *f.get(7)? {
        "EOF" => 0,
        end => end.parse::<u64>().ok()?.checked_sub(start)? + 1,
    };
    Some(Lock { kind, write, owner, start, len })
}

/// The locks held through description `d`; any refuses the dump unless
/// `save` (--file-locks).
pub fn of(d: &Desc, save: bool) -> Result<Vec<Lock>> {
    let mut out = Vec::new();
    for (k, v) in &d.info.extra {
        if k != "lock" {
            continue;
        }
        let (pid, _, fd) = d.first();
        let l = parse(v).ok_or_else(|| DumpError::Unsupported {
            pid,
            what: format!("fd {fd} holds a lock rckpt cannot restore ({v})"),
        })?;
        if !save {
            return Err(DumpError::Unsupported {
                pid,
                what: format!("fd {fd} holds a file lock ({}); dump with --file-locks to save it", v.trim()),
            });
        }
        if !out.contains(&l) {
            out.push(l);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lock_lines() {
        let l = parse("1: FLOCK  ADVISORY  WRITE 10324 fe:00:10011802 0 EOF").unwrap();
        assert_eq!((l.kind, l.write, l.owner, l.start, l.len), (LockKind::Flock, true, 10324, 0, 0));
        let l = parse("1: POSIX  ADVISORY  READ 77 fe:00:1 10 14").unwrap();
        assert_eq!((l.kind, l.write, l.start, l.len), (LockKind::Posix, false, 10, 5));
        assert!(parse("1: POSIX  MANDATORY  READ 77 fe:00:1 10 14").is_none());
    }
}
