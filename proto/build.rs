fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A vendored protoc keeps a fresh clone buildable without system packages.
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: a build script is single-threaded here; prost-build reads PROTOC.
    unsafe { std::env::set_var("PROTOC", protoc) };
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        // The descriptors let tests list every API method from the .proto
        // itself, so a new method cannot go unchecked.
        .file_descriptor_set_path(out_dir.join("outpost_descriptor.bin"))
        .build_server(true)
        .build_client(true)
        // The generated `connect` constructor would clash with the `Connect` RPC;
        // clients are built from a channel anyway.
        .build_transport(false)
        // Tunnel bytes pass from one stream to another without a copy.
        .bytes(".outpost.agent.v1.TunnelFrame.data")
        .bytes(".outpost.api.v1.TunnelRequest.data")
        .bytes(".outpost.api.v1.TunnelReply.data")
        .compile_protos(
            &["proto/outpost/agent/v1/agent.proto", "proto/outpost/api/v1/api.proto"],
            &["proto"],
        )?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
