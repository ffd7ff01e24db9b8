//! /proc/PID/smaps: every VMA with its backing and its VmFlags.

use nix::unistd::Pid;

use super::{ProcError, Result, path, read_string};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub read: bool,
    pub write: bool,
    pub exec: bool,
    pub shared: bool,
    pub offset: u64,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub inode: u64,
    /// The name column as the kernel prints it ("" for plain anonymous memory).
    pub name: String,
    /// VmFlags mnemonics ("gd", "lo", "dc", ...).
    pub flags: Vec<String>,
}

impl Vma {
    pub fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub fn perms(&self) -> String {
        format!(
            "{}{}{}{}",
            if self.read { 'r' } else { '-' },
            if self.write { 'w' } else { '-' },
            if self.exec { 'x' } else { '-' },
            if self.shared { 's' } else { 'p' }
        )
    }
}

fn parse_header(line: &str) -> Option<Vma> {
    let mut it = line.splitn(6, ' ');
    let range = it.next()?;
    let perms = it.next()?.as_bytes();
    let offset = u64::from_str_radix(it.next()?, 16).ok()?;
    let dev = it.next()?;
    let inode = it.next()?.parse().ok()?;
    let name = it.next().unwrap_or("").trim_start().to_string();
    let (s, e) = range.split_once('-')?;
    let (maj, min) = dev.split_once(':')?;
    if perms.len() != 4 {
        return None;
    }
    Some(Vma {
        start: u64::from_str_radix(s, 16).ok()?,
        end: u64::from_str_radix(e, 16).ok()?,
        read: perms[0] == b'r',
        write: perms[1] == b'w',
        exec: perms[2] == b'x',
        shared: perms[3] == b's',
        offset,
        dev_major: u32::from_str_radix(maj, 16).ok()?,
        dev_minor: u32::from_str_radix(min, 16).ok()?,
        inode,
        name,
        flags: Vec::new(),
    })
}

/// Parses smaps (or maps, which lacks VmFlags) text.
pub fn parse(text: &str) -> std::result::Result<Vec<Vma>, String> {
    let mut out: Vec<Vma> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("VmFlags:") {
            let v = out.last_mut().ok_or("VmFlags before any VMA")?;
            v.flags = rest.split_whitespace().map(str::to_string).collect();
        } else if line.as_bytes().first().is_some_and(|b| b.is_ascii_hexdigit()) && line.contains('-') {
            // Key lines ("Size:", "Rss:") start with a capital letter, which is not
            // a lower-case hex digit; VMA lines start with a lower-case hex address.
            let first = line.split(' ').next().unwrap_or("");
            if first.contains(':') {
                continue;
            }
            out.push(parse_header(line).ok_or_else(|| format!("bad VMA line {line:?}"))?);
        }
    }
    Ok(out)
}

pub fn smaps(pid: Pid) -> Result<Vec<Vma>> {
    let p = path(pid, "smaps");
    let text = read_string(p.clone())?;
    parse(&text).map_err(|what| ProcError::Parse { path: p, what })
}

pub fn maps(pid: Pid) -> Result<Vec<Vma>> {
    let p = path(pid, "maps");
    let text = read_string(p.clone())?;
    parse(&text).map_err(|what| ProcError::Parse { path: p, what })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_smaps() {
        let t = "\
55d0c000-55d0d000 r-xp 00001000 fe:00 247030                     /usr/bin/my prog
Size:                  4 kB
VmFlags: rd ex mr mw me sd
7ffd1000-7ffd2000 rw-p 00000000 00:00 0                          [stack]
Rss:                   4 kB
VmFlags: rd wr mr mw me gd ac
7f00-8f00 rw-s 00000000 00:01 12                         /dev/zero (deleted)
";
        let v = parse(t).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].name, "/usr/bin/my prog");
        assert_eq!(v[0].offset, 0x1000);
        assert!(v[0].exec && !v[0].write);
        assert!(v[1].has("gd"));
        assert!(v[2].shared);
        assert_eq!((v[0].dev_major, v[0].dev_minor), (0xfe, 0));
    }
}
