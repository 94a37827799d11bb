//! Saving and loading models: rntk's versioned native model format.
//!
//! A model file is one [safetensors] container (see `docs/model-format.md`):
//!
//! * its tensors are the values of the model's parameters and constants, keyed by the
//!   variable's uid at save time, stored as `F32` / `F64` exactly as held;
//! * its `__metadata__` holds one entry, `"rntk-model"`: the JSON graph description
//!   ([`graph_format::GraphDesc`]), which starts with `"format": "rntk-model"` and
//!   `"version": 1` and lists every variable, every function with its op and
//!   attributes, block bodies and argument mappings, placeholder replacements
//!   (recurrent loops), sequence axes and the model's outputs. (One entry, because
//!   safetensors writes metadata in hash order: with one, the same model always gives
//!   the same bytes.)
//!
//! Loading rebuilds the graph through the ordinary constructors, so shape inference
//! checks it again, and requires the re-inferred shapes to equal the stored ones. The
//! loaded model is a new graph: its parameters are new variables holding copies of
//! the saved values (training it leaves the original alone), and it evaluates and
//! trains bit-identically to the model that was saved.
//!
//! Every defect of a file (truncation, another format or version, malformed JSON,
//! dangling references, shapes that disagree with the weights or with inference,
//! cycles without a delay) is an [`Error::Format`] naming the file and saying what
//! was expected and what was found; nothing in a file can make loading panic or
//! allocate much more than the file's size.
//!
//! Saving is atomic ([`write_atomic`]): a crash while saving leaves the previous file.
//!
//! [safetensors]: https://huggingface.co/docs/safetensors

mod atomic;
pub mod graph_format;
mod load;
mod save;
pub mod weights;

pub use atomic::{parse_temp_name, remove_stale_temps, write_atomic};

use crate::error::{Error, Result};
use crate::graph::Function;
use graph_format::{GraphDesc, FORMAT, VERSION};
use std::collections::HashMap;
use std::path::Path;

/// The metadata key of the JSON graph description.
pub const METADATA_KEY: &str = FORMAT;

/// The name used for files in errors about in-memory models.
const IN_MEMORY: &str = "<in-memory model>";

fn format_err(file: &str, detail: impl Into<String>) -> Error {
    Error::Format {
        file: file.to_string(),
        detail: detail.into(),
    }
}

/// The model file's bytes for `model` (everything `save_model` writes).
pub fn model_to_bytes(model: &Function) -> Result<Vec<u8>> {
    encode(IN_MEMORY, model)
}

fn encode(file: &str, model: &Function) -> Result<Vec<u8>> {
    let d = save::describe(model)?;
    let json = serde_json::to_string(&d.desc)
        .map_err(|e| Error::invalid(format!("saving {file}"), e.to_string()))?;
    // Attributes JSON cannot carry (NaN or infinite op attributes) would come back
    // different: refuse them now rather than write a file that loads differently.
    let back: Option<GraphDesc> = serde_json::from_str(&json).ok();
    if back.as_ref() != Some(&d.desc) {
        let exact = |f: &graph_format::FunctionDesc| {
            serde_json::to_string(f)
                .ok()
                .and_then(|s| serde_json::from_str::<graph_format::FunctionDesc>(&s).ok())
                .as_ref()
                == Some(f)
        };
        let culprit = match d.desc.functions.iter().find(|f| !exact(f)) {
            Some(f) => format!("function {} '{}' ({:?})", f.uid, f.name, f.kind),
            None => "the graph".into(),
        };
        return Err(Error::invalid(
            format!("saving {file}"),
            format!(
                "{culprit} has an attribute the model format cannot store exactly \
                 (NaN or infinite numbers)"
            ),
        ));
    }
    let metadata = HashMap::from([(METADATA_KEY.to_string(), json)]);
    weights::encode(file, &d.tensors, metadata)
}

/// Save `model` (a function and everything it depends on) to `path`, atomically.
pub fn save_model(model: &Function, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let bytes = encode(&path.display().to_string(), model)?;
    write_atomic(path, &bytes)
}

/// The fields every version of the description starts with.
#[derive(serde::Deserialize)]
struct Header {
    format: String,
    version: u64,
}

/// The graph description in a model file's metadata, after checking that it is an
/// rntk model of a version this build reads (before looking at anything else).
fn description(file: &str, metadata: &HashMap<String, String>) -> Result<GraphDesc> {
    let json = metadata.get(METADATA_KEY).ok_or_else(|| {
        let found: Vec<&String> = metadata.keys().collect();
        format_err(
            file,
            format!(
                "expected the metadata entry \"{METADATA_KEY}\" (the graph description of \
                 an rntk model), found {}: a safetensors file, but not an rntk model",
                if found.is_empty() {
                    "no metadata".to_string()
                } else {
                    format!("only {found:?}")
                }
            ),
        )
    })?;
    let header: Header = serde_json::from_str(json).map_err(|e| {
        format_err(
            file,
            format!(
                "the graph description must be a JSON object with \"format\" and \
                 \"version\": {e}"
            ),
        )
    })?;
    if header.format != FORMAT {
        return Err(format_err(
            file,
            format!(
                "expected format \"{FORMAT}\", found \"{}\": not an rntk model",
                header.format
            ),
        ));
    }
    if header.version > VERSION as u64 {
        return Err(format_err(
            file,
            format!(
                "model format version {} is newer than this build of rntk reads (version \
                 {VERSION}): load it with a newer rntk",
                header.version
            ),
        ));
    }
    if header.version != VERSION as u64 {
        return Err(format_err(
            file,
            format!(
                "expected model format version {VERSION}, found version {}",
                header.version
            ),
        ));
    }
    serde_json::from_str(json).map_err(|e| {
        format_err(
            file,
            format!("the graph description does not follow model format version {VERSION}: {e}"),
        )
    })
}

/// Graphs up to this many nodes are rebuilt on the caller's thread.
const INLINE_NODES: usize = 1000;
/// Stack reserved per node for larger graphs: the compiler's check for cycles without
/// a delay walks the graph recursively (a few hundred bytes per level).
const STACK_PER_NODE: usize = 4096;

fn decode(file: &str, bytes: &[u8]) -> Result<Function> {
    let metadata = weights::metadata(file, bytes)?;
    let desc = description(file, &metadata)?;
    let tensors = weights::decode(file, bytes)?.tensors;
    let nodes = desc.functions.len().saturating_add(desc.variables.len());
    if nodes <= INLINE_NODES {
        return load::rebuild(file, &desc, tensors);
    }
    // A deep graph (legitimately large, or a hostile file) must not overflow the
    // caller's stack: rebuild it on a thread whose stack grows with the graph.
    let stack = nodes.saturating_mul(STACK_PER_NODE).saturating_add(1 << 20);
    let too_big = |detail: String| Error::Format {
        file: file.to_string(),
        detail: format!("a graph of {nodes} functions and variables cannot be rebuilt: {detail}"),
    };
    std::thread::scope(|s| {
        let worker = std::thread::Builder::new()
            .name("rntk-load".into())
            .stack_size(stack)
            .spawn_scoped(s, || load::rebuild(file, &desc, tensors))
            .map_err(|e| too_big(format!("no thread with a {stack}-byte stack: {e}")))?;
        worker
            .join()
            .map_err(|_| too_big("rebuilding it failed unexpectedly".into()))?
    })
}

/// Rebuild a model from the bytes of a model file.
pub fn model_from_bytes(bytes: &[u8]) -> Result<Function> {
    decode(IN_MEMORY, bytes)
}

/// [`model_from_bytes`] for bytes read from `file` (named in errors).
pub fn model_from_bytes_named(file: &str, bytes: &[u8]) -> Result<Function> {
    decode(file, bytes)
}

/// Load the model saved in `path`.
pub fn load_model(path: impl AsRef<Path>) -> Result<Function> {
    let path = path.as_ref();
    let file = path.display().to_string();
    let bytes = crate::files::read_whole(path, "a model file")?;
    decode(&file, &bytes)
}

/// The graph description of a model file, without building the graph (for tools that
/// list a model's contents).
pub fn read_description(path: impl AsRef<Path>) -> Result<GraphDesc> {
    let path = path.as_ref();
    let file = path.display().to_string();
    let bytes = crate::files::read_whole(path, "a model file")?;
    description(&file, &weights::metadata(&file, &bytes)?)
}

impl Function {
    /// Save this function and everything it depends on to `path` (see [`save_model`]).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        save_model(self, path)
    }

    /// Load a function saved with [`Function::save`] (see [`load_model`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Function> {
        load_model(path)
    }
}
