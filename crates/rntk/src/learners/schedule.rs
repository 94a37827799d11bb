//! Hyper-parameter schedules: piecewise values over samples or data sweeps, with the
//! reference minibatch size that decides how a value is scaled to one update.

use crate::error::{Error, Result};

/// The reference minibatch size meaning "per minibatch": a learning rate then acts on
/// the mean gradient and a momentum is used as is (CNTK's `C.learners.IGNORE`).
pub const IGNORE: usize = 0;

/// The unit in which a schedule advances from one value to the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EpochSize {
    /// Every value lasts this many samples (times its count, for counted values).
    Samples(u64),
    /// Every value lasts one data sweep: the schedule advances after each update
    /// flagged `is_sweep_end` (CNTK's default when no `epoch_size` is given).
    Sweep,
}

/// A piecewise-constant schedule of a learning rate or a momentum.
///
/// Mirrors CNTK's `TrainingParameterSchedule`: the value an update uses is looked up
/// with the samples (or sweeps) seen *before* that update, and the last value repeats
/// forever.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Schedule {
    /// (exclusive end of the segment in schedule units, value), ends increasing.
    segments: Vec<(u64, f64)>,
    unit: EpochSize,
    minibatch_size: usize,
    /// Whether `minibatch_size` was given; if not, a learner-level `minibatch_size`
    /// replaces it (CNTK's `is_minibatch_size_explicitly_specified`).
    explicit: bool,
}

impl Schedule {
    /// One value for the whole training, per minibatch unless a reference minibatch
    /// size is set later (`learning_parameter_schedule(v)` or a plain float in CNTK).
    pub fn constant(value: f64) -> Schedule {
        Schedule {
            segments: vec![(1, value)],
            unit: EpochSize::Sweep,
            minibatch_size: IGNORE,
            explicit: false,
        }
    }

    /// `[v1, v2, ...]`: each value lasts one epoch (`epoch_size` samples, or one sweep
    /// when `None`), the last one forever.
    pub fn piecewise(values: &[f64], epoch_size: Option<u64>) -> Result<Schedule> {
        let pairs: Vec<(u64, f64)> = values.iter().map(|&v| (1, v)).collect();
        Schedule::piecewise_counts(&pairs, epoch_size)
    }

    /// `[(n1, v1), (n2, v2), ...]`: value `vi` lasts `ni` epochs.
    pub fn piecewise_counts(pairs: &[(u64, f64)], epoch_size: Option<u64>) -> Result<Schedule> {
        let ctx = "learning parameter schedule";
        if pairs.is_empty() {
            return Err(Error::invalid(
                ctx,
                "the list of values is empty; give at least one value",
            ));
        }
        let unit = match epoch_size {
            None => EpochSize::Sweep,
            Some(0) => return Err(Error::invalid(
                ctx,
                "epoch_size must be at least 1 sample; pass None to advance once per data sweep",
            )),
            Some(e) => EpochSize::Samples(e),
        };
        let per_unit = match unit {
            EpochSize::Samples(e) => e,
            EpochSize::Sweep => 1,
        };
        let mut end = 0u64;
        let mut segments = Vec::with_capacity(pairs.len());
        for (i, &(n, v)) in pairs.iter().enumerate() {
            if n == 0 {
                return Err(Error::invalid(
                    ctx,
                    format!("entry {i} ({n}, {v}) has a unit count of 0; every count must be at least 1"),
                ));
            }
            end = end.saturating_add(n.saturating_mul(per_unit));
            segments.push((end, v));
        }
        Ok(Schedule {
            segments,
            unit,
            minibatch_size: IGNORE,
            explicit: false,
        })
    }

    /// CNTK's deprecated `momentum_as_time_constant_schedule(T)`: a per-sample momentum
    /// `exp(-1/T)` (`T = 0` means no momentum).
    pub fn momentum_as_time_constant(time_constant: f64) -> Result<Schedule> {
        Schedule::momentum_as_time_constant_counts(&[(1, time_constant)], None)
    }

    /// Piecewise time constants, converted value by value.
    pub fn momentum_as_time_constant_counts(
        pairs: &[(u64, f64)],
        epoch_size: Option<u64>,
    ) -> Result<Schedule> {
        let mut converted = Vec::with_capacity(pairs.len());
        for &(n, t) in pairs {
            if t.is_nan() || t < 0.0 {
                return Err(Error::invalid(
                    "momentum_as_time_constant schedule",
                    format!("time constant {t} must be a number >= 0 (samples)"),
                ));
            }
            converted.push((n, if t == 0.0 { 0.0 } else { (-1.0 / t).exp() }));
        }
        // The reference minibatch size of a time constant is always one sample.
        Ok(Schedule::piecewise_counts(&converted, epoch_size)?.with_minibatch_size(1))
    }

    /// Set the reference minibatch size explicitly: a value is meant for minibatches
    /// of `m` samples (`1` = per sample, [`IGNORE`] = per minibatch).
    pub fn with_minibatch_size(mut self, m: usize) -> Schedule {
        self.minibatch_size = m;
        self.explicit = true;
        self
    }

    /// Shorthand for `with_minibatch_size(1)` (`learning_parameter_schedule_per_sample`).
    pub fn per_sample(self) -> Schedule {
        self.with_minibatch_size(1)
    }

    /// The reference minibatch size ([`IGNORE`] = per minibatch).
    pub fn minibatch_size(&self) -> usize {
        self.minibatch_size
    }

    pub fn is_minibatch_size_explicit(&self) -> bool {
        self.explicit
    }

    pub fn epoch_size(&self) -> EpochSize {
        self.unit
    }

    /// The (end, value) segments; ends are in samples or sweeps.
    pub fn segments(&self) -> &[(u64, f64)] {
        &self.segments
    }

    /// A learner-level `minibatch_size` takes over where the schedule did not set one.
    pub(crate) fn adopt_minibatch_size(&mut self, m: Option<usize>) {
        if let (false, Some(m)) = (self.explicit, m) {
            self.minibatch_size = m;
        }
    }

    /// Take over another schedule's reference minibatch size (and whether it was
    /// explicit): what CNTK's `reset_learning_rate` does.
    pub(crate) fn keep_minibatch_size_of(&mut self, other: &Schedule) {
        self.minibatch_size = other.minibatch_size;
        self.explicit = other.explicit;
    }

    /// The value after `samples` samples and `sweeps` completed sweeps.
    pub fn value_at(&self, samples: u64, sweeps: u64) -> f64 {
        let pos = match self.unit {
            EpochSize::Samples(_) => samples,
            EpochSize::Sweep => sweeps,
        };
        self.segments
            .iter()
            .find(|(end, _)| pos < *end)
            .or(self.segments.last())
            .map_or(0.0, |s| s.1)
    }

    /// Check every value against a legal range; `what` names it in the error.
    pub(crate) fn check_values(
        &self,
        what: &str,
        ok: impl Fn(f64) -> bool,
        range: &str,
    ) -> Result<()> {
        for &(_, v) in &self.segments {
            if !ok(v) {
                return Err(Error::invalid(
                    what,
                    format!("value {v} is out of range: it must be {range}"),
                ));
            }
        }
        Ok(())
    }
}

/// A per-update momentum: `m^(N/M)` for a reference minibatch size `M`, else `m`.
pub(crate) fn momentum_for_minibatch(m: f64, reference: usize, n: usize) -> f64 {
    if reference == IGNORE {
        m
    } else {
        m.powf(n as f64 / reference as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_values_are_looked_up_with_the_samples_seen_before() {
        // The spec's example: [(2,0.1),(1,0.01)], epoch_size 3, N = 2 per update.
        let s = Schedule::piecewise_counts(&[(2, 0.1), (1, 0.01)], Some(3)).unwrap();
        let got: Vec<f64> = (0..4).map(|i| s.value_at(2 * i, 0)).collect();
        assert_eq!(got, vec![0.1, 0.1, 0.1, 0.01]);
    }

    #[test]
    fn sweep_schedule_advances_with_sweeps() {
        let s = Schedule::piecewise(&[0.1, 0.01, 0.001], None).unwrap();
        assert_eq!(s.value_at(1000, 0), 0.1);
        assert_eq!(s.value_at(0, 1), 0.01);
        assert_eq!(s.value_at(0, 7), 0.001);
    }

    #[test]
    fn time_constant_matches_cntk() {
        let s = Schedule::momentum_as_time_constant(1100.0).unwrap();
        assert_eq!(s.value_at(0, 0), 0.9990913221888589);
        assert_eq!(s.minibatch_size(), 1);
        assert_eq!(
            Schedule::momentum_as_time_constant(0.0)
                .unwrap()
                .value_at(0, 0),
            0.0
        );
    }
}
