//! rckpt's exit codes. `rckpt restore` in the foreground passes the restored
//! root's own status through (its exit code, or 128 + the signal that killed it),
//! so rckpt's own failures use codes from the BSD sysexits range, which programs
//! rarely use.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Done (dump written; restored tree released with --detach; check passed).
    Ok = 0,
    /// Wrong command line (EX_USAGE).
    Usage = 64,
    /// The image is damaged, truncated, inconsistent or of an unknown version (EX_DATAERR).
    BadImage = 65,
    /// No image there, or an incomplete one (no inventory) (EX_NOINPUT).
    NoImage = 66,
    /// The task to dump does not exist (EX_NOUSER).
    NoTask = 67,
    /// The tree holds state rckpt does not support, or needs an external resource
    /// that was not bound; the tree was left untouched (EX_UNAVAILABLE).
    Unsupported = 69,
    /// rckpt failed during the operation; the tree was left running (dump) or
    /// nothing was left behind (restore) (EX_SOFTWARE).
    Failed = 70,
    /// A wait on a task or the kernel timed out (EX_TEMPFAIL).
    Timeout = 75,
    /// Not permitted: privileges, or an image asking for more than the invoker holds (EX_NOPERM).
    Permission = 77,
    /// This machine differs from the image's: vDSO, files, CPU (EX_CONFIG).
    Mismatch = 78,
}

impl Exit {
    pub const ALL: [Exit; 10] = [
        Exit::Ok,
        Exit::Usage,
        Exit::BadImage,
        Exit::NoImage,
        Exit::NoTask,
        Exit::Unsupported,
        Exit::Failed,
        Exit::Timeout,
        Exit::Permission,
        Exit::Mismatch,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }
}

impl Exit {
    pub fn of_dump(e: &crate::dump::DumpError) -> Exit {
        use crate::dump::DumpError as E;
        use crate::sys::SysError;
        match e {
            E::Unsupported { .. } | E::Refused { .. } => Exit::Unsupported,
            E::NoTask(_) => Exit::NoTask,
            E::Privilege { .. } => Exit::Permission,
            E::Inside { code, .. } => Exit::ALL.into_iter().find(|x| x.code() == *code).unwrap_or(Exit::Failed),
            E::BadImageDir { .. } => Exit::Usage,
            E::Sys(SysError::Timeout { .. }) => Exit::Timeout,
            E::Sys(SysError::Task { errno: nix::errno::Errno::EPERM, .. }) => Exit::Permission,
            _ => Exit::Failed,
        }
    }

    pub fn of_restore(e: &crate::restore::RestoreError) -> Exit {
        use crate::restore::RestoreError as E;
        use crate::sys::SysError;
        match e {
            E::Image { .. } | E::Invalid(_) | E::PagesCorrupt { .. } => Exit::BadImage,
            E::NoImage { .. } | E::Incomplete { .. } => Exit::NoImage,
            E::Unbound { .. } | E::PidTaken { .. } => Exit::Unsupported,
            E::Mismatch(_) => Exit::Mismatch,
            E::Privilege(_) => Exit::Permission,
            E::Sys(SysError::Timeout { .. }) => Exit::Timeout,
            E::Usage(_) => Exit::Usage,
            _ => Exit::Failed,
        }
    }
}
