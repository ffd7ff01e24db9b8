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
