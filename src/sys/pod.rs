//! Plain-old-data views of the `#[repr(C)]` structs exchanged with the blobs.

/// # Safety
/// Implementors are `#[repr(C)]`, have no implicit padding (every byte is a field),
/// and every bit pattern is a valid value.
pub unsafe trait Pod: Copy + 'static {}

pub fn bytes_of<T: Pod>(t: &T) -> &[u8] {
    // SAFETY: T is Pod: all of its bytes are initialised fields.
    unsafe { std::slice::from_raw_parts((t as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
}

pub fn slice_bytes<T: Pod>(t: &[T]) -> &[u8] {
    // SAFETY: as above, for a contiguous slice.
    unsafe { std::slice::from_raw_parts(t.as_ptr().cast::<u8>(), std::mem::size_of_val(t)) }
}

/// Reads a T from the start of `b` (any alignment); None if `b` is too short.
pub fn read<T: Pod>(b: &[u8]) -> Option<T> {
    if b.len() < std::mem::size_of::<T>() {
        return None;
    }
    // SAFETY: the length is checked and any bit pattern is a valid T.
    Some(unsafe { std::ptr::read_unaligned(b.as_ptr().cast::<T>()) })
}

/// An all-zero T.
pub fn zeroed<T: Pod>() -> T {
    // SAFETY: any bit pattern, zero included, is a valid T.
    unsafe { std::mem::zeroed() }
}

mod impls {
    use super::Pod;
    use crate::parasite::abi as p;
    use crate::restore::abi as r;

    macro_rules! pod {
        ($($t:ty),* $(,)?) => { $(
            // SAFETY: each of these is #[repr(C)] with explicit padding fields and
            // only integer (or integer array) fields.
            unsafe impl Pod for $t {}
        )* };
    }
    pod!(
        u8,
        u32,
        i32,
        u64,
        i64,
        p::ParasiteArgs,
        p::MsgHeader,
        p::Hello,
        p::KSigAction,
        p::KStack,
        p::KTimeval,
        p::KItimerval,
        p::KTimespec,
        p::KItimerspec,
        p::KRlimit,
        p::MiscReply,
        p::TimerState,
        p::DrainRange,
        p::ThreadArgs,
        p::ThreadReply,
        r::Control,
        r::KeepFd,
        r::InstallFd,
        r::BlobEpoll,
        r::BlobLock,
        r::BlobVma,
        r::BlobExtent,
        r::PrctlMmMap,
        r::KSigAction,
        r::KRlimit,
        r::BlobTimer,
        r::BlobCreds,
        r::BlobFilter,
        r::BlobSiginfo,
        r::BlobThread,
        r::BlobChild,
        r::BlobRange,
        r::HelperArgs,
        r::RestoreArgs,
    );
}
