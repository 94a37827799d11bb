//! Compiles the CNTK model schema (proto/cntk.proto) and the ONNX schema
//! (proto/onnx.proto, from the ONNX project) with protox, a pure-Rust protobuf
//! compiler, so building rntk needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/cntk.proto");
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    let fds = protox::compile(["proto/cntk.proto", "proto/onnx.proto"], ["proto"])?;
    prost_build::Config::new()
        // BTreeMap: a deterministic order when walking a dictionary's entries.
        .btree_map(["."])
        .compile_fds(fds)?;
    Ok(())
}
