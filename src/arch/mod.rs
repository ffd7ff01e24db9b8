//! Architecture-specific layouts. Only x86_64 for now; aarch64 can follow.

pub mod x86_64;
pub use x86_64::*;
