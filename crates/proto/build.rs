//! Compiles `proto/milvus/*.proto` (Milvus-compatible wire protocol) and `proto/quiver/*.proto`
//! (Quiver's internal and admin services) with tonic-prost-build.
//! protoc comes from `protoc-bin-vendored` unless `PROTOC` is already set.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PROTOC").is_none() {
        // SAFETY: build scripts are single-threaded at this point; nothing else reads the
        // environment concurrently.
        unsafe { std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) }
    }

    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_dir = manifest_dir.join("../../proto/milvus");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    let files = [
        "common.proto",
        "schema.proto",
        "msg.proto",
        "rg.proto",
        "milvus.proto",
    ];
    let paths: Vec<PathBuf> = files.iter().map(|f| proto_dir.join(f)).collect();
    for p in &paths {
        println!("cargo:rerun-if-changed={}", p.display());
    }

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // The RPC `Connect` becomes `MilvusServiceClient::connect(&mut self, ..)`, which would
        // clash with the transport constructor `connect(dst)`: build clients from a channel
        // with `MilvusServiceClient::new(channel)` instead.
        .build_transport(false)
        .file_descriptor_set_path(out_dir.join("milvus_descriptor.bin"))
        .compile_protos(&paths, &[proto_dir])?;

    // Quiver's own protocols (`proto/quiver/*.proto`: internal and admin
    // services), each file its own package; transport clients are fine here.
    let quiver_dir = manifest_dir.join("../../proto/quiver");
    println!("cargo:rerun-if-changed={}", quiver_dir.display());
    let mut quiver: Vec<PathBuf> = match std::fs::read_dir(&quiver_dir) {
        Ok(dir) => dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "proto"))
            .collect(),
        Err(_) => Vec::new(),
    };
    quiver.sort();
    for p in &quiver {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    if !quiver.is_empty() {
        tonic_prost_build::configure()
            .build_server(true)
            .build_client(true)
            .file_descriptor_set_path(out_dir.join("quiver_descriptor.bin"))
            .compile_protos(&quiver, &[quiver_dir])?;
    }
    Ok(())
}
