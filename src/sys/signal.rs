//! Signal masks of rckpt's own threads.

use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};

use super::{Result, os_err};

/// Blocks every signal in the calling thread until dropped.
pub struct BlockAll {
    old: SigSet,
}

impl BlockAll {
    pub fn new() -> Result<BlockAll> {
        let mut old = SigSet::empty();
        pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::all()), Some(&mut old))
            .map_err(os_err("block signals"))?;
        Ok(BlockAll { old })
    }
}

impl Drop for BlockAll {
    fn drop(&mut self) {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.old), None);
    }
}

static INTERRUPTED: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn on_interrupt(sig: libc::c_int) {
    INTERRUPTED.store(sig, std::sync::atomic::Ordering::SeqCst);
}

/// From now on SIGINT, SIGTERM and SIGHUP only mark rckpt interrupted; the
/// dump or restore sees it at its next step and rolls back as on a failure.
pub fn catch_interrupts() -> Result<()> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, Signal, sigaction};
    let act = SigAction::new(SigHandler::Handler(on_interrupt), SaFlags::SA_RESTART, SigSet::empty());
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { sigaction(sig, &act) }.map_err(os_err("catch interrupting signals"))?;
    }
    Ok(())
}

/// The interrupting signal received, if any.
pub fn interrupted() -> Option<i32> {
    match INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}
