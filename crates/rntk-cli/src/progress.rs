//! CNTK's progress text (`ProgressPrinter`) plus, on a terminal, an indicatif bar per
//! epoch on stderr. The bar is cleared while a text line is printed, so the CNTK text
//! stays byte-identical and uninterrupted.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rntk::train::{ProgressWriter, Totals};

/// Wraps a writer (the printer) and draws a bar of `epoch_size` samples.
pub struct WithBar {
    inner: Box<dyn ProgressWriter>,
    bar: ProgressBar,
    epoch: u64,
    num_epochs: Option<u64>,
}

impl WithBar {
    pub fn new(inner: Box<dyn ProgressWriter>, epoch_size: u64, num_epochs: Option<u64>) -> Self {
        let bar = ProgressBar::with_draw_target(Some(epoch_size), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{prefix} [{bar:40}] {pos}/{len} samples {msg} ({elapsed}, eta {eta})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        let mut w = WithBar {
            inner,
            bar,
            epoch: 1,
            num_epochs,
        };
        w.set_prefix();
        w
    }

    fn set_prefix(&mut self) {
        let of = self
            .num_epochs
            .map(|k| format!(" of {k}"))
            .unwrap_or_default();
        self.bar.set_prefix(format!("Epoch {}{of}", self.epoch));
    }
}

impl ProgressWriter for WithBar {
    fn on_training_update(&mut self, t: &Totals) {
        let inner = &mut self.inner;
        self.bar.suspend(|| inner.on_training_update(t));
        self.bar.set_position(t.samples);
        if t.samples > 0 {
            self.bar
                .set_message(format!("loss {:.6}", t.loss / t.samples as f64));
        }
    }
    fn on_training_summary(&mut self, e: &Totals, seconds: f64) {
        let inner = &mut self.inner;
        self.bar.suspend(|| inner.on_training_summary(e, seconds));
        self.epoch += 1;
        self.set_prefix();
        self.bar.reset();
        self.bar.set_message("");
    }
    fn on_test_update(&mut self, t: &Totals) {
        let inner = &mut self.inner;
        self.bar.suspend(|| inner.on_test_update(t));
    }
    fn on_test_summary(&mut self, p: &Totals) {
        let inner = &mut self.inner;
        self.bar.suspend(|| inner.on_test_summary(p));
    }
    fn write(&mut self, key: &str, value: f64) {
        let inner = &mut self.inner;
        self.bar.suspend(|| inner.write(key, value));
    }
    fn log(&mut self, message: &str) {
        let inner = &mut self.inner;
        self.bar.suspend(|| inner.log(message));
    }
}

impl Drop for WithBar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
