//! Support code shared by the freestanding blobs (parasite and restorer): raw
//! syscalls, the mem* functions the compiler may call, crc32c. No allocation, no
//! TLS, no std. Also compiled into the host library for tests (crc32c).

pub mod crc;
#[cfg(blob)]
pub mod rt;
#[cfg(blob)]
pub mod sys;
