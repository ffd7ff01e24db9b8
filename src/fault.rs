//! Named fault points: a test makes a dump or restore step fail, or kills rckpt
//! there with SIGKILL, to show that every path leaves the tree unharmed and
//! nothing behind. The same points are where an interrupted rckpt (SIGINT,
//! SIGTERM, SIGHUP) stops and rolls back, in every build.
//!
//! `RCKPT_FAULT=<point>` fails at that point, `RCKPT_FAULT=<point>:kill` kills rckpt
//! there, `RCKPT_FAULT=<point>:pause` stops rckpt there (SIGSTOP) until it is
//! continued. Honoured only in debug builds (which the tests use); release
//! builds ignore the variable.

#[derive(Debug, thiserror::Error)]
pub enum Fault {
    #[error("fault injected at {0}")]
    Injected(&'static str),
    #[error("interrupted by signal {signal} (at {at}): rolled back")]
    Interrupted { signal: i32, at: &'static str },
}

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
    let r = injected(name);
    if let Some(signal) = crate::sys::signal::interrupted() {
        return Err(Fault::Interrupted { signal, at: name });
    }
    r
}

/// Between points (long waits): only the interruption.
pub fn check_interrupted(at: &'static str) -> Result<(), Fault> {
    match crate::sys::signal::interrupted() {
        Some(signal) => Err(Fault::Interrupted { signal, at }),
        None => Ok(()),
    }
}

fn injected(name: &'static str) -> Result<(), Fault> {
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
    match action {
        "kill" => {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
            Err(Fault::Injected(name))
        }
        "pause" => {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
            Ok(())
        }
        _ => Err(Fault::Injected(name)),
    }
}
