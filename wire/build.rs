//! Generates the Rust types and tonic services from `proto/shaobing/v1/*.proto`
//! with the vendored `protoc` (no system protoc needed).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY-free: build scripts are single-threaded; this only affects the protoc lookup below.
    unsafe_env_set(&protoc);
    tonic_prost_build::configure()
        .type_attribute(".", "#[derive(serde::Serialize, serde::Deserialize)]")
        .compile_protos(
            &[
                "proto/shaobing/v1/event.proto",
                "proto/shaobing/v1/service.proto",
            ],
            &["proto"],
        )?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}

#[allow(unsafe_code)]
fn unsafe_env_set(protoc: &std::path::Path) {
    // `set_var` is unsafe in edition 2024 because of other threads; build scripts have none.
    unsafe { std::env::set_var("PROTOC", protoc) };
}
