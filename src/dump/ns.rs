//! Trees that own their namespaces (as `rckpt run` makes them): the PID
//! namespace whose init is the root, a network namespace with only loopback,
//! UTS and IPC namespaces. rckpt dumps such a tree from inside them: a child
//! enters them (and, for a PID namespace, a grandchild lives in it with a /proc
//! of its own), so every pid, socket and name the dump sees is the tree's own.
//! The namespace's init can only be killed from outside it: the outer rckpt
//! does that once the inner one has written the image.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;
use rckpt_images::inventory::{External, Namespaces, Uts};
use serde::{Deserialize, Serialize};

use super::{DumpError, DumpOptions, DumpReport, Result};
use crate::sys::{Pid, SysError, ns};

fn refuse(pid: Pid, what: String) -> DumpError {
    DumpError::Unsupported { pid, what }
}

/// Network interfaces of `pid`'s network namespace.
fn interfaces(pid: Pid) -> Result<Vec<String>> {
    let p = ns::live_dir(pid).join("net/dev");
    let s = std::fs::read_to_string(&p).map_err(|source| DumpError::Io { op: "read", path: p.into(), source })?;
    Ok(s.lines().skip(2).filter_map(|l| Some(l.split(':').next()?.trim().to_string())).collect())
}

/// The namespaces the tree rooted at `root` has of its own, or None when it
/// shares all of rckpt's. What cannot be made again refuses the dump.
pub fn owned(root: Pid) -> Result<Option<Namespaces>> {
    let mine = ns::ids(None)?;
    let its = match ns::ids(Some(root)) {
        Ok(i) => i,
        // Not rckpt's to look at: the freeze says why, naming the capability.
        Err(SysError::Os { errno: nix::errno::Errno::EACCES | nix::errno::Errno::EPERM, .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    for (differs, what) in [
        (its.mnt != mine.mnt, "a mount namespace"),
        (its.user != mine.user, "a user namespace"),
        (its.cgroup != mine.cgroup, "a cgroup namespace"),
    ] {
        if differs {
            return Err(refuse(root, format!("it runs in {what} of its own, which rckpt does not save")));
        }
    }
    let mut n = Namespaces::default();
    if its.pid != mine.pid {
        let tid = ns::live_dir(root).file_name().and_then(|n| n.to_str()?.parse().ok()).unwrap_or(root.as_raw());
        let nspid = ns::nspids(root, Pid::from_raw(tid)).unwrap_or_default();
        if nspid.last() != Some(&1) {
            return Err(refuse(
                root,
                format!("it is pid {:?} of a PID namespace; dump the namespace's init instead", nspid.last()),
            ));
        }
        n.pid = true;
    }
    if its.net != mine.net {
        let others: Vec<String> = interfaces(root)?.into_iter().filter(|i| i != "lo").collect();
        if !others.is_empty() {
            return Err(refuse(
                root,
                format!("its network namespace has interfaces besides lo: {}", others.join(", ")),
            ));
        }
        n.net = true;
    }
    if its.uts != mine.uts {
        let (hostname, domainname) = ns::uts_names(root)?;
        n.uts = Some(Uts { hostname, domainname });
    }
    n.ipc = its.ipc != mine.ipc;
    Ok((n != Namespaces::default()).then_some(n))
}

/// What the inner rckpt tells the outer one.
#[derive(Serialize, Deserialize)]
enum Outcome {
    Done {
        pids: Vec<i32>,
        pages_bytes: u64,
        image_bytes: u64,
        frozen_ns: u64,
        total_ns: u64,
        externals: Vec<External>,
        /// The tree waits, frozen, for the outer rckpt to kill its init.
        kill: bool,
    },
    Failed {
        code: u8,
        message: String,
    },
}

fn send(w: &OwnedFd, o: &Outcome) {
    let body = postcard::to_allocvec(o).unwrap_or_default();
    let mut f = std::fs::File::from(w.try_clone().expect("dup"));
    let _ = f.write_all(&(body.len() as u32).to_le_bytes());
    let _ = f.write_all(&body);
}

fn inner(opts: &DumpOptions, n: &Namespaces, w: &OwnedFd) -> i32 {
    let r = (|| -> Result<DumpReport> {
        if n.pid {
            ns::private_proc()?;
        }
        let mut o = opts.clone();
        if n.pid {
            o.pid = Pid::from_raw(1);
        }
        super::dump_here(&o, n, !n.pid)
    })();
    match r {
        Ok(rep) => {
            let kill = n.pid && !opts.leave_running;
            send(
                w,
                &Outcome::Done {
                    pids: rep.pids.iter().map(|p| p.as_raw()).collect(),
                    pages_bytes: rep.pages_bytes,
                    image_bytes: rep.image_bytes,
                    frozen_ns: rep.frozen.as_nanos() as u64,
                    total_ns: rep.total.as_nanos() as u64,
                    externals: rep.externals,
                    kill,
                },
            );
            if kill {
                // Killed with the namespace.
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
            0
        }
        Err(e) => {
            let code = crate::exit::Exit::of_dump(&e).code();
            send(w, &Outcome::Failed { code, message: e.to_string() });
            code as i32
        }
    }
}

/// Dumps the tree from inside its namespaces `n` (rckpt must be single-threaded).
pub fn dump_inside(opts: &DumpOptions, n: Namespaces) -> Result<DumpReport> {
    let root = opts.pid;
    let (r, w) = nix::unistd::pipe().map_err(|errno| SysError::Os { op: "make a pipe", errno })?;
    let mut kinds = Vec::new();
    if n.net {
        kinds.push(("net", CloneFlags::CLONE_NEWNET));
    }
    if n.uts.is_some() {
        kinds.push(("uts", CloneFlags::CLONE_NEWUTS));
    }
    if n.ipc {
        kinds.push(("ipc", CloneFlags::CLONE_NEWIPC));
    }
    if n.pid {
        kinds.push(("pid", CloneFlags::CLONE_NEWPID));
    }
    crate::progress::quiesce();
    let child = ns::fork_run(|| {
        if let Err(e) = ns::enter(root, &kinds) {
            send(&w, &Outcome::Failed { code: 70, message: format!("cannot enter the tree's namespaces: {e}") });
            return 70;
        }
        if !n.pid {
            return inner(opts, &n, &w);
        }
        // Only children enter a PID namespace.
        match ns::fork_run(|| inner(opts, &n, &w)) {
            Ok(c) => match nix::sys::wait::waitpid(c, None) {
                Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => code,
                _ => 70,
            },
            Err(e) => {
                send(&w, &Outcome::Failed { code: 70, message: e.to_string() });
                70
            }
        }
    })?;
    drop(w);
    let mut f = std::fs::File::from(r);
    let mut len = [0u8; 4];
    let outcome = f
        .read_exact(&mut len)
        .ok()
        .and_then(|_| {
            let mut body = vec![0u8; u32::from_le_bytes(len) as usize];
            f.read_exact(&mut body).ok()?;
            postcard::from_bytes::<Outcome>(&body).ok()
        })
        .unwrap_or(Outcome::Failed { code: 70, message: "the dump inside the namespaces ended without a word".into() });
    let result = match outcome {
        Outcome::Failed { code, message } => Err(DumpError::Inside { code, message }),
        Outcome::Done { pids, pages_bytes, image_bytes, frozen_ns, total_ns, externals, kill } => {
            if kill {
                // Killing the init takes the whole namespace down, the inner
                // rckpt with it.
                let _ = nix::sys::signal::kill(root, nix::sys::signal::Signal::SIGKILL);
                let deadline = Instant::now() + Duration::from_secs(10);
                while std::path::Path::new(&format!("/proc/{root}")).exists()
                    && crate::proc::stat(root).is_ok_and(|s| s.state != 'Z')
                    && Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            Ok(DumpReport {
                pids: pids.into_iter().map(Pid::from_raw).collect(),
                pages_bytes,
                image_bytes,
                frozen: Duration::from_nanos(frozen_ns),
                total: Duration::from_nanos(total_ns),
                externals,
            })
        }
    };
    let _ = nix::sys::wait::waitpid(child, None);
    result
}
