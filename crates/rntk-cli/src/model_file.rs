//! Model files of either kind: rntk's own format (a safetensors container) or a CNTK
//! 2.x model (a bare protobuf Dictionary), told apart by their first bytes.

use crate::fail::{Fail, Result};
use rntk::Function;
use std::path::Path;

/// Which format a model file is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Rntk,
    Cntk,
}

/// The model file's bytes: a directory or an endless stream is an error, not a hang.
fn read(path: &Path) -> Result<Vec<u8>> {
    Ok(rntk::files::read_whole(path, "a model file")?)
}

/// The kind of the model file at `path`.
pub fn kind(path: &Path) -> Result<Kind> {
    let bytes = read(path)?;
    Ok(if rntk::import::is_cntk_model(&bytes) {
        Kind::Cntk
    } else {
        Kind::Rntk
    })
}

/// Load a model of either kind.
pub fn load(path: &Path) -> Result<(Function, Kind)> {
    let bytes = read(path)?;
    if rntk::import::is_cntk_model(&bytes) {
        let file = path.display().to_string();
        Ok((rntk::import::load_cntk_bytes(&file, &bytes)?, Kind::Cntk))
    } else {
        let file = path.display().to_string();
        Ok((
            rntk::persist::model_from_bytes_named(&file, &bytes)?,
            Kind::Rntk,
        ))
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
