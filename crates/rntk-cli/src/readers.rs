//! The `[readers.NAME]` tables as `MinibatchSource`s: a CTF file (default) or, with
//! `type = "image"`, CNTK's `ImageDeserializer` over a map file (`image_reader.rs`);
//! and the checks that the streams fit the model's inputs before reading starts.

use crate::config::{InputSpec, ReaderSpec};
use crate::fail::{Context, Fail, Result};
use rntk::io::{
    CtfDeserializer, CtfOptions, Deserializer, MinibatchSource, MinibatchSourceConfig, StreamDef,
    DEFAULT_CHUNK_BYTES,
};
use rntk::{DType, Variable};
use std::path::Path;
use std::sync::Arc;

/// What every reader of a run shares.
pub struct ReaderContext<'a> {
    pub inputs: &'a [InputSpec],
    /// The config's folder (relative paths inside transforms).
    pub base: &'a Path,
    pub dtype: DType,
    /// The criterion's labels dimension: an image reader's default `num_classes`.
    pub labels_dim: Option<usize>,
}

fn is_image(r: &ReaderSpec, key: &str) -> Result<bool> {
    match r.kind.as_deref() {
        None | Some("ctf") => Ok(false),
        Some("image") => Ok(true),
        Some(other) => Err(Fail::new(format!(
            "{key}.type: unknown reader type \"{other}\" (expected ctf or image)"
        ))),
    }
}

/// The CTF deserializer of a reader.
fn ctf(key: &str, r: &ReaderSpec, inputs: &[InputSpec]) -> Result<CtfDeserializer> {
    for (k, given) in [
        ("transforms", r.transforms.is_some()),
        ("num_classes", r.num_classes.is_some()),
        ("image_stream", r.image_stream.is_some()),
        ("label_stream", r.label_stream.is_some()),
        ("images_per_chunk", r.images_per_chunk.is_some()),
        ("skip_bad_images", r.skip_bad_images.is_some()),
    ] {
        if given {
            return Err(Fail::new(format!(
                "{key}.{k}: an option of image readers only (add type = \"image\")"
            )));
        }
    }
    for s in r.streams.iter().flatten() {
        rntk::limits::check_sample_shape(&rntk::Shape::from(s.dim))
            .map_err(|d| Fail::new(format!("{key}.streams '{}'.dim: {d}", s.name)))?;
    }
    let def = |name: &str, dim: usize, sparse: bool| {
        if sparse {
            StreamDef::sparse(name, dim)
        } else {
            StreamDef::dense(name, dim)
        }
    };
    let streams: Vec<StreamDef> = match &r.streams {
        Some(s) => s
            .iter()
            .map(|s| {
                def(&s.name, s.dim, s.sparse)
                    .field(s.field.as_deref().unwrap_or(&s.name))
                    .defines_mb_size(s.defines_mb_size)
            })
            .collect(),
        None => inputs
            .iter()
            .map(|i| def(&i.name, i.dim.numel(), i.sparse))
            .collect(),
    };
    if !r.file.exists() {
        return Err(Fail::new(format!(
            "{key}.file: {} does not exist",
            r.file.display()
        )));
    }
    let mut options = CtfOptions::default();
    if let Some(b) = r.chunk_bytes {
        if b == 0 {
            return Err(Fail::new(format!(
                "{key}.chunk_bytes: 0 bytes per chunk; give a positive size (the default is {DEFAULT_CHUNK_BYTES})"
            )));
        }
        options.chunk_bytes = b;
    }
    CtfDeserializer::with_options(&r.file, &streams, options).context(format!("{key}.file"))
}

/// A `MinibatchSource` over the reader's file.
pub fn source(name: &str, r: &ReaderSpec, cx: &ReaderContext) -> Result<MinibatchSource> {
    let key = format!("readers.{name}");
    let d: Arc<dyn Deserializer> = if is_image(r, &key)? {
        Arc::new(crate::image_reader::deserializer(
            &key,
            r,
            cx.base,
            cx.dtype,
            cx.labels_dim,
        )?)
    } else {
        Arc::new(ctf(&key, r, cx.inputs)?)
    };
    let mut c = MinibatchSourceConfig {
        randomize: r.randomize,
        frame_mode: r.frame_mode,
        truncation_length: r.truncation_length,
        ..Default::default()
    };
    if let Some(m) = r.max_sweeps {
        c.max_sweeps = m;
    }
    if let Some(m) = r.max_samples {
        c.max_samples = m;
    }
    if let Some(s) = r.randomization_seed {
        c.randomization_seed = s;
    }
    if let Some(w) = r.randomization_window_in_chunks {
        c.randomization_window_in_chunks = w;
    }
    MinibatchSource::new(vec![d], c).context(&key)
}

/// The same reader limited to one sweep (CNTK's `FULL_DATA_SWEEP`), for test passes.
pub fn source_one_sweep(name: &str, r: &ReaderSpec, cx: &ReaderContext) -> Result<MinibatchSource> {
    let spec = ReaderSpec {
        max_sweeps: Some(1),
        max_samples: None,
        ..r.clone()
    };
    source(name, &spec, cx)
}

/// The configured streams' dimensions against the inputs, before a source starts
/// reading (its prefetch thread would otherwise print reader warnings for data
/// parsed with the wrong dimension ahead of the one-line error).
pub fn check_stream_specs(r: &ReaderSpec, map: &[(Variable, String)], key: &str) -> Result<()> {
    let Some(streams) = &r.streams else {
        // default streams are made from the inputs themselves
        return Ok(());
    };
    for (v, stream) in map {
        if let Some(s) = streams.iter().find(|s| s.name == *stream) {
            if s.dim != v.shape().numel() {
                return Err(Fail::new(format!(
                    "{key}: stream '{stream}' has dim {} but input '{}' has dim {}",
                    s.dim,
                    v.name(),
                    v.shape().numel()
                )));
            }
        }
    }
    Ok(())
}

/// Every mapped stream exists in the source, with the input's dimension.
pub fn check_streams(src: &MinibatchSource, map: &[(Variable, String)], key: &str) -> Result<()> {
    let names: Vec<&str> = src.streams().iter().map(|s| s.name.as_str()).collect();
    for (v, stream) in map {
        let Some(info) = src.stream_info(stream) else {
            return Err(Fail::new(format!(
                "{key}: input '{}' reads stream '{stream}', which the reader does not define (streams: {}); add it to {key}.streams or map the input in train.inputs_to_streams",
                v.name(),
                names.join(", ")
            )));
        };
        if info.sample_shape.numel() != v.shape().numel() {
            return Err(Fail::new(format!(
                "{key}: stream '{stream}' has {} {} but input '{}' has {} {}",
                if info.sample_shape.rank() > 1 {
                    "shape"
                } else {
                    "dim"
                },
                shown(&info.sample_shape),
                v.name(),
                if v.shape().rank() > 1 { "shape" } else { "dim" },
                shown(&v.shape())
            )));
        }
    }
    Ok(())
}

/// `784` for a vector, `(3, 32, 32)` for an image.
fn shown(s: &rntk::Shape) -> String {
    match s.dims() {
        [n] => n.to_string(),
        _ => s.to_string(),
    }
}
