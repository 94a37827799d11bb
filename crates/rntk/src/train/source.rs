//! What a training loop reads from: CNTK's `MinibatchSource` (CTF files) and
//! `MinibatchSourceFromData` (in-memory arrays), behind one trait, with positions that
//! a checkpoint can store.

use crate::error::{Error, Result};
use crate::graph::{DynamicAxes, Variable};
use crate::io::{Minibatch, MinibatchPartition, MinibatchSource, MinibatchSourceFromData};
use crate::tensor::{Layout, Value};

/// A source of minibatches for `train` / `test`.
pub trait MinibatchProvider: Send {
    /// The next minibatch of about `size` samples (whole sequences, at least one), or
    /// `None` when the source is exhausted.
    fn next_minibatch(&mut self, size: usize) -> Result<Option<Minibatch>>;
    /// This worker's part of the next minibatch of about `size` samples of all
    /// workers (distributed training; see `MinibatchSource::next_minibatch_partition`),
    /// `None` when the source is exhausted. A source that cannot be split refuses
    /// more than one partition.
    fn next_minibatch_partition(
        &mut self,
        size: usize,
        num_data_partitions: usize,
        partition_index: usize,
    ) -> Result<Option<MinibatchPartition>> {
        if num_data_partitions > 1 {
            return Err(Error::Unsupported(format!(
                "this minibatch source cannot be split into {num_data_partitions} partitions (partition {partition_index}) for distributed training: use a MinibatchSource"
            )));
        }
        Ok(self.next_minibatch(size)?.map(|mb| MinibatchPartition {
            end_of_sweep: mb.end_of_sweep(),
            minibatch: Some(mb),
        }))
    }
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
    fn next_minibatch_partition(
        &mut self,
        size: usize,
        num_data_partitions: usize,
        partition_index: usize,
    ) -> Result<Option<MinibatchPartition>> {
        MinibatchSource::next_minibatch_partition(self, size, num_data_partitions, partition_index)
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
/// from a stream of one-row sequences (the seed program's `target`) gets a batch value;
/// a stream whose samples have the input's number of elements in another shape feeds it
/// as the input's shape, as CNTK does (tutorial 103's 784 CTF values into a (1, 28, 28)
/// image, in (C, H, W) order).
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
            Ok((v.clone(), shaped_like(value, v)?))
        })
        .collect()
}

/// `value` with the sample shape of `input` when both hold the same number of elements
/// (a mismatch is left for the executor to report with both shapes).
fn shaped_like(value: Value, input: &Variable) -> Result<Value> {
    let shape = input.shape();
    if *value.shape() == shape || value.shape().numel() != shape.numel() || shape.has_inferred() {
        return Ok(value);
    }
    let layout = value.layout().clone();
    Value::new(shape, layout, value.into_data())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::MinibatchData;

    #[test]
    fn a_flat_stream_feeds_an_image_input_in_its_shape() {
        let x = crate::input_variable([1, 2, 3]);
        let data = Value::batch([6], (0..12).map(|v| v as f32).collect()).unwrap();
        let mb = Minibatch {
            streams: vec![crate::io::StreamInformation {
                name: "features".into(),
                id: 0,
                storage_format: crate::io::StorageFormat::Dense,
                element_type: crate::DType::F32,
                sample_shape: crate::Shape::from(6),
                defines_mb_size: false,
            }],
            data: vec![MinibatchData {
                data: data.clone(),
                num_sequences: 2,
                num_samples: 2,
                end_of_sweep: false,
            }],
            keys: vec![0, 1],
            pieces: Vec::new(),
        };
        let feeds = feeds_for(&mb, &[(x, "features".into())]).unwrap();
        assert_eq!(feeds[0].1.shape().dims(), &[1, 2, 3]);
        assert_eq!(feeds[0].1.to_vec::<f32>(), data.to_vec::<f32>());
        // another size is left as it is (the executor names both shapes)
        let y = crate::input_variable(5);
        let feeds = feeds_for(&mb, &[(y, "features".into())]).unwrap();
        assert_eq!(feeds[0].1.shape().dims(), &[6]);
    }
}
