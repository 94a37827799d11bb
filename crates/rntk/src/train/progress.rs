//! Progress writers: the `ProgressWriter` callbacks a trainer drives, and
//! `ProgressPrinter`, whose text is byte-identical to CNTK 2.7's (spec training.md §4,
//! shared/bench/cntk/progress_formats.txt).

use super::pyfmt::{fmt_g, py_float};
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Totals since the last summary (of training or of testing).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Totals {
    /// Minibatches.
    pub updates: u64,
    /// Samples as the trainer counts them (dynamic-axes.md §6).
    pub samples: u64,
    /// Σ loss elements.
    pub loss: f64,
    /// Σ metric elements.
    pub metric: f64,
}

/// Receives a trainer's progress (CNTK's `ProgressWriter`). All methods default to
/// doing nothing, so a writer implements only what it needs.
pub trait ProgressWriter: Send {
    /// After each training minibatch, with totals since the last training summary.
    fn on_training_update(&mut self, _since_summary: &Totals) {}
    /// At the end of an epoch (every `progress_frequency` samples, and at the end).
    fn on_training_summary(&mut self, _epoch: &Totals, _seconds: f64) {}
    /// After each test minibatch, with totals since the last test summary.
    fn on_test_update(&mut self, _since_summary: &Totals) {}
    /// After a test or cross-validation pass.
    fn on_test_summary(&mut self, _pass: &Totals) {}
    /// A `key: value` message, e.g. from a learner ("Learning rate per minibatch", 0.005).
    fn write(&mut self, _key: &str, _value: f64) {}
    /// Free text.
    fn log(&mut self, _message: &str) {}
}

/// Where printed lines go.
enum Sink {
    Stdout,
    File(io::BufWriter<File>),
    Shared(Arc<Mutex<Vec<u8>>>),
}

/// CNTK's `ProgressPrinter`.
pub struct ProgressPrinter {
    freq: Option<u64>,
    first: u64,
    tag: String,
    num_epochs: Option<u64>,
    test_freq: Option<u64>,
    metric_is_pct: bool,
    sink: Sink,
    // training window state (since the last printed line)
    last_line: Totals,
    epochs: u64,
    // test state
    last_test_line: Totals,
    test_summaries: u64,
}

impl ProgressPrinter {
    /// `freq`: `None` = only summaries; `Some(0)` = geometric lines after updates
    /// 1, 3, 7, 15, …; `Some(n)` = a line every n minibatches. Prints the freq=0 header
    /// at once, as CNTK does.
    pub fn new(freq: Option<u64>) -> Self {
        Self::build(freq, Sink::Stdout)
    }

    /// A printer whose text goes into `buffer` (for tests and embedding).
    pub fn to_buffer(freq: Option<u64>, buffer: Arc<Mutex<Vec<u8>>>) -> Self {
        Self::build(freq, Sink::Shared(buffer))
    }

    fn build(freq: Option<u64>, sink: Sink) -> Self {
        let mut p = ProgressPrinter {
            freq,
            first: 0,
            tag: String::new(),
            num_epochs: None,
            test_freq: None,
            metric_is_pct: true,
            sink,
            last_line: Totals::default(),
            epochs: 0,
            last_test_line: Totals::default(),
            test_summaries: 0,
        };
        if freq == Some(0) {
            p.header();
        }
        p
    }

    fn header(&mut self) {
        self.line(" average      since    average      since      examples");
        self.line("    loss       last     metric       last              ");
        self.line(" ------------------------------------------------------");
    }

    /// Print every update up to `first` on its own line (freq > 0).
    pub fn first(mut self, first: u64) -> Self {
        self.first = first;
        self
    }
    /// `[tag] ` in epoch summaries.
    pub fn tag(mut self, tag: &str) -> Self {
        self.tag = tag.to_string();
        self
    }
    /// `Finished Epoch[e of K]`.
    pub fn num_epochs(mut self, k: u64) -> Self {
        self.num_epochs = Some(k);
        self
    }
    /// Per-minibatch evaluation lines every n test minibatches.
    pub fn test_freq(mut self, n: u64) -> Self {
        self.test_freq = Some(n);
        self
    }
    /// `false` prints the metric as a fraction (`%.6f`) instead of a percentage.
    pub fn metric_is_pct(mut self, pct: bool) -> Self {
        self.metric_is_pct = pct;
        self
    }
    /// Send everything to `path` (stdout gets `Redirecting log to file …`), starting
    /// with CNTK's log-file preamble.
    pub fn log_to_file(mut self, path: &Path) -> io::Result<Self> {
        let f = File::create(path)?;
        println!("Redirecting log to file {}", path.display());
        self.sink = Sink::File(io::BufWriter::new(f));
        let n = self.num_epochs.unwrap_or(300);
        self.line(&path.display().to_string());
        self.line(&format!("CNTKCommandTrainInfo: train : {n}"));
        self.line(&format!(
            "CNTKCommandTrainInfo: CNTKNoMoreCommands_Total : {n}"
        ));
        self.line("CNTKCommandTrainBegin: train");
        if self.freq == Some(0) {
            self.header();
        }
        Ok(self)
    }
    /// CNTK's `end_progress_print(msg)`.
    pub fn end_progress_print(&mut self, msg: &str) {
        self.line("CNTKCommandTrainEnd: train");
        if !msg.is_empty() {
            self.line(msg);
        }
    }

    fn line(&mut self, s: &str) {
        // Progress output must never abort training: write errors are dropped.
        match &mut self.sink {
            Sink::Stdout => println!("{s}"),
            Sink::File(f) => {
                let _ = writeln!(f, "{s}");
                let _ = f.flush();
            }
            Sink::Shared(b) => {
                if let Ok(mut b) = b.lock() {
                    let _ = writeln!(b, "{s}");
                }
            }
        }
    }

    fn metric_text(&self, avg: f64) -> String {
        if self.metric_is_pct {
            format!("{:.2}%", avg * 100.0)
        } else {
            format!("{avg:.6}")
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

impl ProgressWriter for ProgressPrinter {
    fn on_training_update(&mut self, t: &Totals) {
        let u = t.updates;
        match self.freq {
            None => {}
            // after updates 1, 3, 7, 15, …
            Some(0) if (u + 1).is_power_of_two() => {
                let w = Totals {
                    updates: u - self.last_line.updates,
                    samples: t.samples - self.last_line.samples,
                    loss: t.loss - self.last_line.loss,
                    metric: t.metric - self.last_line.metric,
                };
                let s = format!(
                    " {}   {}   {}   {}    {:>10}",
                    fmt_g(avg(t.loss, t.samples), 8, 3),
                    fmt_g(avg(w.loss, w.samples), 8, 3),
                    fmt_g(avg(t.metric, t.samples), 8, 3),
                    fmt_g(avg(w.metric, w.samples), 8, 3),
                    t.samples
                );
                self.line(&s);
                self.last_line = *t;
            }
            Some(n) if u.is_multiple_of(n) || u <= self.first => {
                let a = self.last_line.updates + 1;
                let samples = t.samples - self.last_line.samples;
                let s = format!(
                    " Minibatch[{:>4}-{:>4}]: loss = {:.6} * {samples}, metric = {} * {samples};",
                    a,
                    u,
                    avg(t.loss - self.last_line.loss, samples),
                    self.metric_text(avg(t.metric - self.last_line.metric, samples)),
                );
                self.line(&s);
                self.last_line = *t;
            }
            Some(_) => {}
        }
    }

    fn on_training_summary(&mut self, e: &Totals, seconds: f64) {
        self.last_line = Totals::default();
        self.epochs += 1;
        if self.freq == Some(0) {
            return;
        }
        let of = self
            .num_epochs
            .map(|k| format!(" of {k}"))
            .unwrap_or_default();
        let tag = if self.tag.is_empty() {
            String::new()
        } else {
            format!("[{}] ", self.tag)
        };
        let rate = if seconds > 0.0 {
            e.samples as f64 / seconds
        } else {
            0.0
        };
        let s = format!(
            "Finished Epoch[{}{of}]: {tag}loss = {:.6} * {}, metric = {} * {} {:.3}s ({:5.1} samples/s);",
            self.epochs,
            avg(e.loss, e.samples),
            e.samples,
            self.metric_text(avg(e.metric, e.samples)),
            e.samples,
            seconds,
            rate
        );
        self.line(&s);
    }

    fn on_test_update(&mut self, t: &Totals) {
        if let Some(n) = self.test_freq.filter(|&n| n > 0) {
            if t.updates.is_multiple_of(n) {
                let samples = t.samples - self.last_test_line.samples;
                let s = format!(
                    " Evaluation Minibatch[{:>4}-{:>4}]: metric = {} * {samples};",
                    self.last_test_line.updates + 1,
                    t.updates,
                    self.metric_text(avg(t.metric - self.last_test_line.metric, samples)),
                );
                self.line(&s);
                self.last_test_line = *t;
            }
        }
    }

    fn on_test_summary(&mut self, p: &Totals) {
        self.last_test_line = Totals::default();
        self.test_summaries += 1;
        let s = format!(
            "Finished Evaluation [{}]: Minibatch[1-{}]: metric = {} * {};",
            self.test_summaries,
            p.updates,
            self.metric_text(avg(p.metric, p.samples)),
            p.samples
        );
        self.line(&s);
    }

    fn write(&mut self, key: &str, value: f64) {
        let s = format!("{key}: {}", py_float(value));
        self.line(&s);
    }

    fn log(&mut self, message: &str) {
        self.line(message);
    }
}

/// Wall-clock of an epoch, for summaries.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EpochClock(Instant);

impl EpochClock {
    pub fn start() -> Self {
        EpochClock(Instant::now())
    }
    pub fn seconds(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}
