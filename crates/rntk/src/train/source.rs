//! What a training loop reads from: CNTK's `MinibatchSource` (CTF files) and
//! `MinibatchSourceFromData` (in-memory arrays), behind one trait, with positions that
//! a checkpoint can store.

use crate::error::{Error, Result};
use crate::graph::{DynamicAxes, Variable};
use crate::io::{Minibatch, MinibatchSource, MinibatchSourceFromData};
use crate::tensor::{Layout, Value};

/// A source of minibatches for `train` / `test`.
pub trait MinibatchProvider: Send {
    /// The next minibatch of about `size` samples (whole sequences, at least one), or
    /// `None` when the source is exhausted.
    fn next_minibatch(&mut self, size: usize) -> Result<Option<Minibatch>>;
    /// The position, serialized (for checkpoints).
    fn position(&self) -> Result<serde_json::Value>;
    /// Return to a position taken with `position`.
    fn restore_position(&mut self, p: &serde_json::Value) -> Result<()>;
}

fn pos_err(e: serde_json::Error) -> Error {
    Error::Format {
        file: "checkpoint".into(),
        detail: format!("reader position: {e}"),
    }
}

impl MinibatchProvider for MinibatchSource {
    fn next_minibatch(&mut self, size: usize) -> Result<Option<Minibatch>> {
        MinibatchSource::next_minibatch(self, size)
    }
    fn position(&self) -> Result<serde_json::Value> {
        serde_json::to_value(self.get_checkpoint_state()).map_err(pos_err)
    }
    fn restore_position(&mut self, p: &serde_json::Value) -> Result<()> {
        let c = serde_json::from_value(p.clone()).map_err(pos_err)?;
        self.restore_from_checkpoint(&c)
    }
}

impl MinibatchProvider for MinibatchSourceFromData {
    fn next_minibatch(&mut self, size: usize) -> Result<Option<Minibatch>> {
        MinibatchSourceFromData::next_minibatch(self, size)
    }
    fn position(&self) -> Result<serde_json::Value> {
        serde_json::to_value(self.get_checkpoint_state()).map_err(pos_err)
    }
    fn restore_position(&mut self, p: &serde_json::Value) -> Result<()> {
        let c = serde_json::from_value(p.clone()).map_err(pos_err)?;
        self.restore_from_checkpoint(&c)
    }
}

/// Feeds for `map` (model input → stream name) from a minibatch. A batch-only input fed
/// from a stream of one-row sequences (the seed program's `target`) gets a batch value.
pub fn feeds_for(mb: &Minibatch, map: &[(Variable, String)]) -> Result<Vec<(Variable, Value)>> {
    map.iter()
        .map(|(v, stream)| {
            let d = mb.get(stream).ok_or_else(|| {
                let names: Vec<&str> = mb.streams.iter().map(|s| s.name.as_str()).collect();
                Error::Argument(format!(
                    "input {} is mapped to stream '{stream}', which the source does not have (streams: {})",
                    v.label(),
                    names.join(", ")
                ))
            })?;
            let value = match (v.dynamic_axes(), d.data.layout()) {
                (DynamicAxes::Batch, Layout::Sequence(_)) => d.to_batch()?,
                _ => d.data.clone(),
            };
            Ok((v.clone(), value))
        })
        .collect()
}
