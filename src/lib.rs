//! rckpt: checkpoint and restore of Linux process trees from user space.
//!
//! See ARCHITECTURE.md (in ../shared) for the data flow and the rules the design
//! keeps. Raw syscalls and `unsafe` live only in `sys` (and the blobs).

#![deny(unsafe_code)]

pub mod arch;
pub mod archive;
pub mod blob;
pub mod check;
pub mod demo;
pub mod dump;
pub mod elf;
pub mod exit;
pub mod fault;
pub mod parasite;
pub mod proc;
pub mod progress;
pub mod restore;
pub mod run;
pub mod show;
#[allow(unsafe_code)]
pub mod sys;

/// The blobs' crc32c, compiled here too so tests can hold it to the host's.
#[path = "blob_common/crc.rs"]
#[allow(unsafe_code)]
pub mod blob_crc;
