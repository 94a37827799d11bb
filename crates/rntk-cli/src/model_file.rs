//! Model files of any kind: rntk's own format (a safetensors container), a CNTK 2.x
//! model (a bare protobuf Dictionary) or an ONNX model (a protobuf ModelProto), told
//! apart by their content.

use crate::fail::{Fail, Result};
use rntk::Function;
use std::path::Path;

/// Which format a model file is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Rntk,
    Cntk,
    Onnx,
}

/// The model file's bytes: a directory or an endless stream is an error, not a hang.
fn read(path: &Path) -> Result<Vec<u8>> {
    Ok(rntk::files::read_whole(path, "a model file")?)
}

/// The kind of the model file at `path`.
pub fn kind(path: &Path) -> Result<Kind> {
    let bytes = read(path)?;
    Ok(kind_of(&bytes))
}

fn kind_of(bytes: &[u8]) -> Kind {
    // ONNX first: a ModelProto may start with the same bytes as a CNTK Dictionary.
    if rntk::onnx::is_onnx_model(bytes) {
        Kind::Onnx
    } else if rntk::import::is_cntk_model(bytes) {
        Kind::Cntk
    } else {
        Kind::Rntk
    }
}

/// Load a model of either kind.
pub fn load(path: &Path) -> Result<(Function, Kind)> {
    let bytes = read(path)?;
    let file = path.display().to_string();
    match kind_of(&bytes) {
        Kind::Onnx => {
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
            let dir = dir.unwrap_or(Path::new("."));
            Ok((
                rntk::onnx::load_onnx_bytes(&file, &bytes, Some(dir))?,
                Kind::Onnx,
            ))
        }
        Kind::Cntk => Ok((rntk::import::load_cntk_bytes(&file, &bytes)?, Kind::Cntk)),
        Kind::Rntk => Ok((
            rntk::persist::model_from_bytes_named(&file, &bytes)?,
            Kind::Rntk,
        )),
    }
}

/// `rntk import-cntk MODEL -o OUT`: load a CNTK model and save it in rntk's format.
pub fn import(model: &Path, out: &Path) -> Result<()> {
    let f = rntk::load_cntk(model)?;
    let bytes = rntk::persist::model_to_bytes(&f)?;
    // Write only a file that loads back: some graphs (new sequence axes from
    // sequence.where / gather / slice) are beyond what rntk's format can reload today.
    rntk::persist::model_from_bytes(&bytes).map_err(|e| {
        Fail::new(format!(
            "{}: loaded, but rntk's model format cannot store it yet ({e}); nothing written",
            model.display()
        ))
    })?;
    rntk::persist::write_atomic(out, &bytes)?;
    let params = f.parameters();
    println!(
        "Imported {} -> {} ({} parameter tensors, {} values)",
        model.display(),
        out.display(),
        params.len(),
        params.iter().map(|p| p.shape().numel()).sum::<usize>()
    );
    Ok(())
}

/// `rntk export-onnx MODEL -o OUT [--opset N]`: any model the CLI loads, as ONNX.
pub fn export_onnx(model: &Path, out: &Path, opset: i64) -> Result<()> {
    let (f, _) = load(model)?;
    let options = rntk::onnx::OnnxOptions::default().opset(opset);
    f.save_onnx(out, &options)?;
    let args: Vec<String> = f.arguments().iter().map(|a| a.label()).collect();
    println!(
        "Exported {} -> {} (ONNX opset {opset}; inputs {})",
        model.display(),
        out.display(),
        args.join(", ")
    );
    Ok(())
}
