//! Blocking a TCP connection's packets with nftables while it is down between
//! dump and restore, as CRIU does: a peer's segment to a socket that no longer
//! exists would be answered with a reset, and the connection lost.
//!
//! One table, `inet rckpt`, holds a set of 4-tuples (saddr . sport . daddr .
//! dport) per address family, and input and output rules dropping every TCP
//! packet that matches. A connection is locked by adding both directions of its
//! 4-tuple to the set, unlocked by deleting them; each change is one `nft -f`
//! transaction (the `nft` binary, Debian package nftables), idempotent, so
//! concurrent dumps and restores do not disturb each other. The table stays
//! (empty) after the last unlock.

use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::{Command, Stdio};

const TABLE: &str = "inet rckpt";

#[derive(Debug, thiserror::Error)]
pub enum NetfilterError {
    #[error("the nft binary (package nftables) is not installed")]
    Missing,
    #[error("failed to run nft: {0}")]
    Run(#[source] std::io::Error),
    #[error("nft failed to {op}: {stderr}")]
    Failed { op: &'static str, stderr: String },
    #[error("a connection with mixed or odd address lengths ({0} and {1} bytes)")]
    Address(usize, usize),
}

pub type Result<T> = std::result::Result<T, NetfilterError>;

/// One TCP connection: local and peer address (4 or 16 bytes) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conn {
    pub local: Vec<u8>,
    pub local_port: u16,
    pub peer: Vec<u8>,
    pub peer_port: u16,
}

enum Ip {
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

/// An address as the packets carry it: an IPv4-mapped IPv6 address of a dual
/// stack socket travels as IPv4.
fn ip(b: &[u8]) -> Option<Ip> {
    match b.len() {
        4 => Some(Ip::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
        16 => {
            let a = Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?);
            Some(a.to_ipv4_mapped().map(Ip::V4).unwrap_or(Ip::V6(a)))
        }
        _ => None,
    }
}

/// The set a connection goes in, and its two directions as set elements.
fn elements(c: &Conn) -> Result<(&'static str, [String; 2])> {
    let bad = || NetfilterError::Address(c.local.len(), c.peer.len());
    let (set, l, p) = match (ip(&c.local).ok_or_else(bad)?, ip(&c.peer).ok_or_else(bad)?) {
        (Ip::V4(l), Ip::V4(p)) => ("conn4", l.to_string(), p.to_string()),
        (Ip::V6(l), Ip::V6(p)) => ("conn6", l.to_string(), p.to_string()),
        _ => return Err(bad()),
    };
    let (lp, pp) = (c.local_port, c.peer_port);
    Ok((set, [format!("{l} . {lp} . {p} . {pp}"), format!("{p} . {pp} . {l} . {lp}")]))
}

/// The nft binary, from PATH or the usual sbin directories.
fn nft() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join("nft"))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

pub fn available() -> bool {
    nft().is_some()
}

/// The table and its sets, made if missing (`add` of what exists is a no-op).
fn sets() -> String {
    format!(
        "add table {TABLE}\n\
         add set {TABLE} conn4 {{ type ipv4_addr . inet_service . ipv4_addr . inet_service ; }}\n\
         add set {TABLE} conn6 {{ type ipv6_addr . inet_service . ipv6_addr . inet_service ; }}\n"
    )
}

/// Runs one nft transaction.
fn run(script: &str, op: &'static str) -> Result<()> {
    let bin = nft().ok_or(NetfilterError::Missing)?;
    let mut child = Command::new(bin)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(NetfilterError::Run)?;
    let written = child.stdin.take().expect("piped").write_all(script.as_bytes());
    let out = child.wait_with_output().map_err(NetfilterError::Run)?;
    written.map_err(NetfilterError::Run)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(NetfilterError::Failed { op, stderr });
    }
    Ok(())
}

/// Drops every packet of `c`, both ways, until `unlock`.
pub fn lock(c: &Conn) -> Result<()> {
    let (set, [a, b]) = elements(c)?;
    let mut s = sets();
    // The rules are flushed and added again in the same transaction, so they
    // exist exactly once whoever made the table.
    for (chain, hook) in [("input", "input"), ("output", "output")] {
        s += &format!(
            "add chain {TABLE} {chain} {{ type filter hook {hook} priority filter ; policy accept ; }}\n\
             flush chain {TABLE} {chain}\n\
             add rule {TABLE} {chain} ip saddr . tcp sport . ip daddr . tcp dport @conn4 drop\n\
             add rule {TABLE} {chain} ip6 saddr . tcp sport . ip6 daddr . tcp dport @conn6 drop\n"
        );
    }
    s += &format!("add element {TABLE} {set} {{ {a}, {b} }}\n");
    run(&s, "block a TCP connection")
}

/// Lets the packets of every connection in `conns` through again. Deleting a
/// missing element fails, so each is added first, in the same transaction.
pub fn unlock(conns: &[Conn]) -> Result<()> {
    let mut elems: Vec<(&'static str, String)> = Vec::new();
    for c in conns {
        let (set, pair) = elements(c)?;
        for e in pair {
            if !elems.iter().any(|(s, x)| *s == set && *x == e) {
                elems.push((set, e));
            }
        }
    }
    if elems.is_empty() {
        return Ok(());
    }
    let mut s = sets();
    for (set, e) in &elems {
        s += &format!("add element {TABLE} {set} {{ {e} }}\ndelete element {TABLE} {set} {{ {e} }}\n");
    }
    run(&s, "unblock TCP connections")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_take_both_directions_and_mapped_addresses_as_ipv4() {
        let c = Conn { local: vec![127, 0, 0, 1], local_port: 40000, peer: vec![127, 0, 0, 2], peer_port: 80 };
        let (set, e) = elements(&c).unwrap();
        assert_eq!(set, "conn4");
        assert_eq!(e, ["127.0.0.1 . 40000 . 127.0.0.2 . 80".to_string(), "127.0.0.2 . 80 . 127.0.0.1 . 40000".into()]);
        let mapped = |a: [u8; 4]| {
            let mut v = vec![0u8; 10];
            v.extend_from_slice(&[0xff, 0xff]);
            v.extend_from_slice(&a);
            v
        };
        let c = Conn { local: mapped([10, 0, 0, 1]), local_port: 1, peer: mapped([10, 0, 0, 2]), peer_port: 2 };
        assert_eq!(elements(&c).unwrap().0, "conn4");
        let c = Conn { local: Ipv6Addr::LOCALHOST.octets().to_vec(), local_port: 1, peer: vec![0; 16], peer_port: 2 };
        assert_eq!(elements(&c).unwrap().1[0], "::1 . 1 . :: . 2");
        let c = Conn { local: vec![1, 2, 3, 4], local_port: 1, peer: vec![0; 16], peer_port: 2 };
        assert!(elements(&c).is_err());
    }
}
