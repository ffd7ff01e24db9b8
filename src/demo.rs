//! `rckpt demo`: a built-in workload, checkpointed, killed, restored, continuing.

use crate::exit::Exit;

pub fn run() -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}

pub fn workload() -> Exit {
    Exit::Ok
}
