//! Generates code for every `.proto` under the workspace's `proto/` directory.
//!
//! protoc comes from `protoc-bin-vendored`, so a fresh machine (or the Docker build) needs no
//! system package.

use std::path::{Path, PathBuf};

fn main() -> anyhow::Result<()> {
    // Read when the script runs, not baked in when it is compiled: Cargo reuses a compiled
    // build script across checkouts that share a target directory.
    let root = Path::new(&std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let root = root.canonicalize()?;
    let mut files = Vec::new();
    collect_protos(&root, &mut files)?;
    files.sort();

    // Cargo re-runs this script when any contract changes or a new one appears.
    println!("cargo:rerun-if-changed={}", root.display());
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    // `prost::Name` on every message, so events can be packed into `Any` by type name.
    config.enable_type_names();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("tailor_descriptor.bin"))
        // Printed above for the whole tree instead, so new files are picked up too.
        .emit_rerun_if_changed(false)
        .compile_with_config(config, &files, &[root])?;
    Ok(())
}

fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
