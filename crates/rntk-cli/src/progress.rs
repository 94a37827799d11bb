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
    visible: bool,
    epoch_size: u64,
}

fn make_bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{prefix} [{bar:40}] {pos}/{len} samples {msg} ({elapsed}, eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

impl WithBar {
    pub fn new(inner: Box<dyn ProgressWriter>, epoch_size: u64, num_epochs: Option<u64>) -> Self {
        let mut w = WithBar {
            inner,
            bar: make_bar(epoch_size),
            epoch: 1,
            num_epochs,
            visible: true,
            epoch_size,
        };
        w.set_prefix();
        w
    }

    /// Clear the bar (test and cross-validation passes, the end of training).
    fn hide(&mut self) {
        if self.visible {
            self.bar.finish_and_clear();
            self.visible = false;
        }
    }

    /// Run `f` on the inner writer with the bar out of the way.
    fn quiet(&mut self, f: impl FnOnce(&mut dyn ProgressWriter)) {
        let inner = &mut *self.inner;
        if self.visible {
            self.bar.suspend(|| f(inner));
        } else {
            f(inner);
        }
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
        if !self.visible {
            // a new bar after a cross-validation pass
            self.bar = make_bar(self.epoch_size);
            self.set_prefix();
            self.visible = true;
        }
        self.quiet(|w| w.on_training_update(t));
        self.bar.set_position(t.samples);
        if t.samples > 0 {
            self.bar
                .set_message(format!("loss {:.6}", t.loss / t.samples as f64));
        }
    }
    fn on_training_summary(&mut self, e: &Totals, seconds: f64) {
        self.quiet(|w| w.on_training_summary(e, seconds));
        self.epoch += 1;
        if self.num_epochs.is_some_and(|k| self.epoch > k) {
            self.hide();
        } else if self.visible {
            self.set_prefix();
            self.bar.reset();
            self.bar.set_message("");
        }
    }
    fn on_test_update(&mut self, t: &Totals) {
        self.hide();
        self.inner.on_test_update(t);
    }
    fn on_test_summary(&mut self, p: &Totals) {
        self.hide();
        self.inner.on_test_summary(p);
    }
    fn write(&mut self, key: &str, value: f64) {
        self.quiet(|w| w.write(key, value));
    }
    fn log(&mut self, message: &str) {
        self.quiet(|w| w.log(message));
    }
}

impl Drop for WithBar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
