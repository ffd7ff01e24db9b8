//! Named fault points: a test makes a dump or restore step fail, or kills rckpt
//! there with SIGKILL, to show that every path leaves the tree unharmed and
//! nothing behind.
//!
//! `RCKPT_FAULT=<point>` fails at that point, `RCKPT_FAULT=<point>:kill` kills rckpt
//! there. Honoured only in debug builds (which the tests use); release builds
//! ignore the variable.

#[derive(Debug, thiserror::Error)]
#[error("fault injected at {0}")]
pub struct Fault(pub &'static str);

/// Every fault point, for tests that walk them all.
pub const POINTS: &[&str] = &[
    "dump.freeze",
    "dump.collect",
    "dump.infected",
    "dump.pages",
    "dump.cured",
    "dump.before-inventory",
    "restore.validated",
    "restore.created",
    "restore.parked",
    "restore.unmapped",
];

pub fn point(name: &'static str) -> Result<(), Fault> {
    if !cfg!(debug_assertions) {
        return Ok(());
    }
    debug_assert!(POINTS.contains(&name), "unknown fault point {name}");
    let Ok(spec) = std::env::var("RCKPT_FAULT") else {
        return Ok(());
    };
    let (at, action) = spec.split_once(':').unwrap_or((spec.as_str(), "fail"));
    if at != name {
        return Ok(());
    }
    if action == "kill" {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
    Err(Fault(name))
}
