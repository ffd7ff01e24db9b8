//! Addresses in another process: never dereferenced here, only computed with checks.

use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RemoteAddr(pub u64);

impl RemoteAddr {
    pub fn add(self, off: u64) -> Option<RemoteAddr> {
        self.0.checked_add(off).map(RemoteAddr)
    }

    pub fn sub(self, off: u64) -> Option<RemoteAddr> {
        self.0.checked_sub(off).map(RemoteAddr)
    }

    pub fn align_down(self, align: u64) -> RemoteAddr {
        debug_assert!(align.is_power_of_two());
        RemoteAddr(self.0 & !(align - 1))
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for RemoteAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl fmt::Display for RemoteAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}
