fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A vendored protoc keeps a fresh clone buildable without system packages.
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: a build script is single-threaded here; prost-build reads PROTOC.
    unsafe { std::env::set_var("PROTOC", protoc) };
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // The generated `connect` constructor would clash with the `Connect` RPC;
        // clients are built from a channel anyway.
        .build_transport(false)
        .compile_protos(
            &["proto/outpost/agent/v1/agent.proto", "proto/outpost/api/v1/api.proto"],
            &["proto"],
        )?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
