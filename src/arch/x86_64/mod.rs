//! x86_64: registers, the XSAVE area, the signal frame.

pub mod cpu;
pub mod regs;
pub mod sigframe;
pub mod xstate;

pub use regs::*;
