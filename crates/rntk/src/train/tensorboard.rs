//! TensorBoard event files (TFRecord framing of `tensorflow.Event` protos, masked CRC32C)
//! and CNTK's `TensorBoardProgressWriter`, which records training progress in them.
//!
//! The file layout follows CNTK 2.7's `TensorBoardFileWriter`
//! (Source/CNTKv2LibraryDll/tensorboard/TensorBoardFileWriter.cpp): a file named
//! `events.out.tfevents.<10-digit unix seconds>.<hostname>` whose first record is an
//! `Event{file_version: "brain.Event:2"}`, then one `Event{step, Summary{Value{tag,
//! simple_value}}}` per scalar. Each record is `u64 length (LE) · masked crc32c(length) ·
//! data · masked crc32c(data)`, the mask being `rotr(crc, 15) + 0xa282ead8`.

use super::progress::{ProgressWriter, Totals};
use crate::error::{Error, Result};
use prost::Message;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// The version string of the first record of every event file.
pub const FILE_VERSION: &str = "brain.Event:2";

/// `tensorflow.Event` (tensorflow/core/util/event.proto), the fields rntk writes.
#[derive(Clone, PartialEq, Message)]
pub struct Event {
    /// Seconds since the Unix epoch.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// Global step of the event.
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// What the event carries.
    #[prost(oneof = "EventWhat", tags = "3, 5")]
    pub what: Option<EventWhat>,
}

/// `Event.what`, the cases rntk writes.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum EventWhat {
    /// The file's format version ([`FILE_VERSION`]), in the first record.
    #[prost(string, tag = "3")]
    FileVersion(String),
    /// Summaries (scalars here).
    #[prost(message, tag = "5")]
    Summary(Summary),
}

/// `tensorflow.Summary` (tensorflow/core/framework/summary.proto).
#[derive(Clone, PartialEq, Message)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

/// `tensorflow.Summary.Value` with its `simple_value` case.
#[derive(Clone, PartialEq, Message)]
pub struct SummaryValue {
    #[prost(string, tag = "1")]
    pub tag: String,
    #[prost(float, optional, tag = "2")]
    pub simple_value: Option<f32>,
}

impl Event {
    /// An event holding one scalar.
    pub fn scalar(tag: &str, value: f32, step: i64, wall_time: f64) -> Self {
        Event {
            wall_time,
            step,
            what: Some(EventWhat::Summary(Summary {
                value: vec![SummaryValue {
                    tag: tag.to_string(),
                    simple_value: Some(value),
                }],
            })),
        }
    }

    /// The `(tag, value)` scalars this event carries.
    pub fn scalars(&self) -> Vec<(&str, f32)> {
        match &self.what {
            Some(EventWhat::Summary(s)) => s
                .value
                .iter()
                .filter_map(|v| v.simple_value.map(|x| (v.tag.as_str(), x)))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// TFRecord's masked CRC32C: `((crc >> 15) | (crc << 17)) + 0xa282ead8`.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
        .rotate_right(15)
        .wrapping_add(0xa282_ead8)
}

/// Append one TFRecord (`length · crc(length) · data · crc(data)`) to `out`.
pub fn encode_record(data: &[u8], out: &mut Vec<u8>) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
}

fn corrupt(file: &str, detail: String) -> Error {
    Error::Io {
        file: file.to_string(),
        detail,
    }
}

/// Split a TFRecord stream into its records, checking both CRCs of each; `name` labels
/// errors. A truncated or corrupted record is an error.
pub fn decode_records<'a>(bytes: &'a [u8], name: &str) -> Result<Vec<&'a [u8]>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let at = bytes.len() - rest.len();
        if rest.len() < 12 {
            return Err(corrupt(
                name,
                format!("truncated record header at byte {at}"),
            ));
        }
        let (len_bytes, tail) = rest.split_at(8);
        let (crc_bytes, tail) = tail.split_at(4);
        let crc = u32::from_le_bytes([crc_bytes[0], crc_bytes[1], crc_bytes[2], crc_bytes[3]]);
        if crc != masked_crc32c(len_bytes) {
            return Err(corrupt(name, format!("length CRC mismatch at byte {at}")));
        }
        let mut len8 = [0u8; 8];
        len8.copy_from_slice(len_bytes);
        let len = usize::try_from(u64::from_le_bytes(len8))
            .ok()
            .filter(|&n| tail.len() >= 4 && n <= tail.len() - 4)
            .ok_or_else(|| corrupt(name, format!("truncated record data at byte {at}")))?;
        let (data, tail) = tail.split_at(len);
        let (crc_bytes, tail) = tail.split_at(4);
        let crc = u32::from_le_bytes([crc_bytes[0], crc_bytes[1], crc_bytes[2], crc_bytes[3]]);
        if crc != masked_crc32c(data) {
            return Err(corrupt(name, format!("data CRC mismatch at byte {at}")));
        }
        out.push(data);
        rest = tail;
    }
    Ok(out)
}

/// Read every event of an event file, checking the framing and CRCs.
pub fn read_events(path: impl AsRef<Path>) -> Result<Vec<Event>> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let bytes = crate::files::read_whole(path, "a TensorBoard event file")?;
    decode_records(&bytes, &name)?
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            Event::decode(r).map_err(|e| corrupt(&name, format!("record {i}: bad Event: {e}")))
        })
        .collect()
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// This machine's name for the file name (as CNTK's `GetHostName()`), without path
/// separators; `localhost` if it cannot be found.
fn hostname() -> String {
    let from_file = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok());
    let name = from_file
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_default();
    let name: String = name
        .trim()
        .chars()
        .map(|c| if matches!(c, '/' | '\\') { '_' } else { c })
        .collect();
    if name.is_empty() {
        "localhost".to_string()
    } else {
        name
    }
}

/// Writes one event file: the version record at creation, then scalars.
/// Records are buffered; [`flush`](Self::flush) persists them, as does dropping.
pub struct EventFileWriter {
    out: BufWriter<File>,
    path: PathBuf,
    record: Vec<u8>,
}

impl EventFileWriter {
    /// Create `log_dir` if missing and a new event file in it,
    /// `events.out.tfevents.<secs>.<hostname>`; if that name is taken (two writers in
    /// the same second) `.<pid>.<n>` is appended. Writes and flushes the version record.
    pub fn create(log_dir: impl AsRef<Path>) -> Result<Self> {
        let dir = log_dir.as_ref();
        let io = |p: &Path, e: std::io::Error| Error::Io {
            file: p.display().to_string(),
            detail: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let wall = now();
        let base = format!("events.out.tfevents.{:010}.{}", wall as u64, hostname());
        let mut n = 0u32;
        let (file, path) = loop {
            let name = if n == 0 {
                base.clone()
            } else {
                format!("{base}.{}.{n}", std::process::id())
            };
            let path = dir.join(name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => break (f, path),
                Err(e) if e.kind() == ErrorKind::AlreadyExists && n < 1000 => n += 1,
                Err(e) => return Err(io(&path, e)),
            }
        };
        let mut w = EventFileWriter {
            out: BufWriter::new(file),
            path,
            record: Vec::new(),
        };
        w.write_event(&Event {
            wall_time: wall,
            step: 0,
            what: Some(EventWhat::FileVersion(FILE_VERSION.to_string())),
        })?;
        w.flush()?;
        Ok(w)
    }

    /// The event file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io_err(&self, e: std::io::Error) -> Error {
        Error::Io {
            file: self.path.display().to_string(),
            detail: e.to_string(),
        }
    }

    /// Append one event (buffered).
    pub fn write_event(&mut self, event: &Event) -> Result<()> {
        self.record.clear();
        encode_record(&event.encode_to_vec(), &mut self.record);
        let r = self.out.write_all(&self.record);
        r.map_err(|e| self.io_err(e))
    }

    /// Append a scalar `tag = value` at `step`, stamped with the current time.
    pub fn write_scalar(&mut self, tag: &str, value: f32, step: i64) -> Result<()> {
        self.write_event(&Event::scalar(tag, value, step, now()))
    }

    /// Persist everything written so far.
    pub fn flush(&mut self) -> Result<()> {
        let r = self.out.flush();
        r.map_err(|e| self.io_err(e))
    }
}

impl Drop for EventFileWriter {
    fn drop(&mut self) {
        // Errors cannot be reported from drop; `flush` reports them to a caller.
        let _ = self.out.flush();
    }
}

struct Inner {
    log_dir: PathBuf,
    /// `false` for a worker of rank > 0, which records nothing (as CNTK).
    enabled: bool,
    /// `None` after a write error; the next write opens a new file (as CNTK).
    file: Option<EventFileWriter>,
    closed: bool,
    freq: Option<u64>,
    /// Training updates since the last summary, and in all.
    updates: u64,
    total_updates: u64,
    /// Trainer totals at the last callback and at the last written update.
    seen: Totals,
    written: Totals,
    summaries: u64,
    test_summaries: u64,
    /// The first error met inside a `ProgressWriter` callback (those cannot return one).
    error: Option<Error>,
}

impl Inner {
    fn write(&mut self, tag: &str, value: f64, step: u64) -> Result<()> {
        if self.closed {
            return Err(Error::invalid(
                "TensorBoardProgressWriter",
                "attempting to use a closed writer",
            ));
        }
        if !self.enabled {
            return Ok(());
        }
        let step = i64::try_from(step)
            .map_err(|_| Error::invalid("TensorBoardProgressWriter", "step exceeds i64"))?;
        if self.file.is_none() {
            self.file = Some(EventFileWriter::create(&self.log_dir)?);
        }
        let r = match &mut self.file {
            Some(f) => f.write_scalar(tag, value as f32, step),
            None => Ok(()),
        };
        if r.is_err() {
            self.file = None;
        }
        r
    }

    fn flush(&mut self) -> Result<()> {
        if self.closed {
            return Err(Error::invalid(
                "TensorBoardProgressWriter",
                "attempting to use a closed writer",
            ));
        }
        let r = match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        };
        if r.is_err() {
            self.file = None;
        }
        r
    }

    /// Keep a callback's error (the first one) and tell stderr once.
    fn keep(&mut self, r: Result<()>) {
        if let Err(e) = r {
            if self.error.is_none() {
                eprintln!("TensorBoardProgressWriter: {e}");
                self.error = Some(e);
            }
        }
    }
}

fn avg(sum: f64, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

/// CNTK's `TensorBoardProgressWriter(freq, log_dir, rank, model)`: records training
/// progress as TensorBoard scalars, with CNTK 2.7's tags, steps and values
/// (`cntk/logging/progress_print.py`):
///
/// | event | tag | step | value |
/// |---|---|---|---|
/// | every `freq` training updates | `minibatch/avg_loss`, `minibatch/avg_metric` | training updates so far, all epochs | averages per sample since the last such write |
/// | training summary | `summary/avg_loss`, `summary/avg_metric` | summaries so far (1, 2, …) | averages per sample of the summarized period |
/// | test summary after training updates | `minibatch/test_avg_metric` | training updates so far | average metric per sample |
/// | test summary before any training | `summary/test_avg_metric` | test summaries so far (1, 2, …) | average metric per sample |
///
/// Metrics are recorded as fractions (an error rate of 12% is 0.12), as CNTK does; only
/// its `ProgressPrinter` shows percentages. A handle is cheap to clone and all clones write
/// the same file, so one clone can be given to a `Trainer` while another records user
/// scalars with [`write_value`](Self::write_value). The file is flushed after each
/// summary, on [`flush`](Self::flush)/[`close`](Self::close), and when the last clone is
/// dropped.
#[derive(Clone)]
pub struct TensorBoardProgressWriter {
    inner: Arc<Mutex<Inner>>,
}

impl TensorBoardProgressWriter {
    /// A writer creating its event file in `log_dir` (created if missing). `freq`:
    /// `None` records only summaries; `Some(n)` also per-minibatch averages every n
    /// training updates; `Some(0)` after updates 1, 3, 7, 15, … (CNTK's geometric schedule).
    pub fn new(freq: Option<u64>, log_dir: impl AsRef<Path>) -> Result<Self> {
        Self::with_rank(freq, log_dir, None)
    }

    /// As [`new`](Self::new) for distributed training: only the worker of rank 0 (or
    /// `None`) writes; the others record nothing and create no file, as in CNTK.
    pub fn with_rank(
        freq: Option<u64>,
        log_dir: impl AsRef<Path>,
        rank: Option<usize>,
    ) -> Result<Self> {
        let log_dir = log_dir.as_ref().to_path_buf();
        let enabled = rank.unwrap_or(0) == 0;
        let file = if enabled {
            Some(EventFileWriter::create(&log_dir)?)
        } else {
            None
        };
        Ok(TensorBoardProgressWriter {
            inner: Arc::new(Mutex::new(Inner {
                log_dir,
                enabled,
                file,
                closed: false,
                freq,
                updates: 0,
                total_updates: 0,
                seen: Totals::default(),
                written: Totals::default(),
                summaries: 0,
                test_summaries: 0,
                error: None,
            })),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves plain counters; keep going.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record a scalar `name = value` at `step` (CNTK's `write_value`; stored as f32).
    pub fn write_value(&self, name: &str, value: f64, step: u64) -> Result<()> {
        self.lock().write(name, value, step)
    }

    /// Persist every record written so far.
    pub fn flush(&self) -> Result<()> {
        self.lock().flush()
    }

    /// Flush and close the file; any later use of this writer (or a clone) is an error.
    pub fn close(&self) -> Result<()> {
        let mut g = self.lock();
        let r = g.flush();
        g.file = None;
        g.closed = true;
        r
    }

    /// The current event file (`None` for rank > 0, after `close`, or after a write error).
    pub fn path(&self) -> Option<PathBuf> {
        self.lock().file.as_ref().map(|f| f.path().to_path_buf())
    }

    /// Training updates recorded so far, over all epochs (CNTK's `total_training_updates`).
    pub fn total_training_updates(&self) -> u64 {
        self.lock().total_updates
    }

    /// Take the first error met while recording from a trainer callback (callbacks cannot
    /// return errors; such an error is also printed once to stderr).
    pub fn take_error(&self) -> Option<Error> {
        self.lock().error.take()
    }
}

impl ProgressWriter for TensorBoardProgressWriter {
    fn on_training_update(&mut self, t: &Totals) {
        let mut g = self.lock();
        // CNTK ignores updates with no samples.
        let fresh = t.samples > g.seen.samples;
        g.seen = *t;
        if !fresh {
            return;
        }
        g.updates += 1;
        g.total_updates += 1;
        let u = g.updates;
        let due = match g.freq {
            None => false,
            Some(0) => (u + 1).is_power_of_two(),
            Some(n) => u.is_multiple_of(n),
        };
        if !due {
            return;
        }
        let samples = t.samples - g.written.samples;
        let loss = avg(t.loss - g.written.loss, samples);
        let metric = avg(t.metric - g.written.metric, samples);
        let step = g.total_updates;
        g.written = *t;
        let r = g
            .write("minibatch/avg_loss", loss, step)
            .and_then(|()| g.write("minibatch/avg_metric", metric, step));
        g.keep(r);
    }

    fn on_training_summary(&mut self, e: &Totals, _seconds: f64) {
        let mut g = self.lock();
        g.summaries += 1;
        g.updates = 0;
        g.seen = Totals::default();
        g.written = Totals::default();
        let step = g.summaries;
        let r = g
            .write("summary/avg_loss", avg(e.loss, e.samples), step)
            .and_then(|()| g.write("summary/avg_metric", avg(e.metric, e.samples), step))
            .and_then(|()| g.flush());
        g.keep(r);
    }

    fn on_test_summary(&mut self, p: &Totals) {
        let mut g = self.lock();
        g.test_summaries += 1;
        let metric = avg(p.metric, p.samples);
        let r = if g.total_updates != 0 {
            let step = g.total_updates;
            g.write("minibatch/test_avg_metric", metric, step)
        } else {
            let step = g.test_summaries;
            g.write("summary/test_avg_metric", metric, step)
        };
        let r = r.and_then(|()| g.flush());
        g.keep(r);
    }
}
