//! Builds the freestanding blobs (the parasite and the restorer trampoline) for the
//! host target: no bare-metal target can be installed, but a `#![no_std]`
//! `#![no_main]` static-pie built with these flags needs nothing from the system.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `entries` are entry points only rckpt refers to: they must survive
/// --gc-sections.
fn build_blob(name: &str, src: &str, entries: &[&str], out_dir: &Path) {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = out_dir.join(format!("{name}.elf"));
    let status = Command::new(&rustc)
        // The blob must not inherit flags meant for the host crates.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .args(["--edition", "2024", "--crate-type", "bin", "--crate-name", name])
        .args([
            "-C",
            "panic=abort",
            "-C",
            "opt-level=2",
            "-C",
            "relocation-model=pie",
            "-C",
            "debuginfo=0",
            "-C",
            "strip=debuginfo",
        ])
        .args(["-C", "link-arg=-nostartfiles", "-C", "link-arg=-nostdlib", "-C", "link-arg=-static-pie"])
        .args(entries.iter().flat_map(|e| ["-C".to_string(), format!("link-arg=-Wl,--undefined={e}")]))
        .args(["-C", "link-arg=-Wl,--build-id=none", "-C", "link-arg=-Wl,-z,norelro"])
        .args(["--cfg", "blob"])
        .arg("-o")
        .arg(&out)
        .arg(src)
        .status()
        .expect("failed to run rustc for a blob");
    assert!(status.success(), "building the {name} blob failed");
}

fn main() {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed=src/blob_common");
    println!("cargo:rerun-if-changed=src/parasite/blob");
    println!("cargo:rerun-if-changed=src/parasite/abi.rs");
    println!("cargo:rerun-if-changed=src/restore/blob");
    println!("cargo:rerun-if-changed=src/restore/abi.rs");
    println!("cargo::rustc-check-cfg=cfg(blob)");
    build_blob("parasite", "src/parasite/blob/main.rs", &["thread_start"], &out_dir);
    build_blob("restorer", "src/restore/blob/main.rs", &["helper_start"], &out_dir);
}
