//! Built-in synthetic data sets, generated deterministically (nothing is downloaded).

use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Samples (time steps) in the training split of the solar data, as in the CNTK tutorial.
pub const SOLAR_TRAIN_SAMPLES: usize = 12434;
/// Samples in the test split.
pub const SOLAR_TEST_SAMPLES: usize = 2000;

/// One split of solar-panel-style data, the shape of the CNTK time-series tutorial: each
/// day has 8..20 readings of the cumulative (normalized) energy produced so far; each
/// sequence is a prefix of a day, 3..14 steps long, and its target is that day's final
/// value. Sequence lengths add up to exactly `total_samples`.
pub struct Solar {
    /// Per sequence: the cumulative readings (one feature per step).
    pub features: Vec<Vec<f32>>,
    /// Per sequence: the day's total.
    pub targets: Vec<f32>,
}

impl Solar {
    /// `train = true` gives the training split (12434 samples), else the test split (2000),
    /// from another part of the year.
    pub fn generate(train: bool, seed: u64) -> Solar {
        let total_samples = if train {
            SOLAR_TRAIN_SAMPLES
        } else {
            SOLAR_TEST_SAMPLES
        };
        Self::with_samples(
            total_samples,
            if train { 0 } else { 100_000 },
            seed.wrapping_mul(2).wrapping_add(train as u64),
        )
    }

    fn with_samples(total_samples: usize, first_day: usize, seed: u64) -> Solar {
        const MIN_LEN: usize = 3;
        const MAX_LEN: usize = 14;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let (mut features, mut targets) = (Vec::new(), Vec::new());
        let mut total = 0;
        let mut day = first_day;
        while total < total_samples {
            let cum = solar_day(&mut rng, day);
            day += 1;
            let target = *cum.last().unwrap_or(&0.0) as f32;
            for j in MIN_LEN..=MAX_LEN.min(cum.len()) {
                let r = total_samples - total;
                if r == 0 {
                    break;
                }
                // only take a prefix if the rest can still be filled exactly
                if j == r || j + MIN_LEN <= r {
                    features.push(cum[..j].iter().map(|&v| v as f32).collect());
                    targets.push(target);
                    total += j;
                }
            }
        }
        Solar { features, targets }
    }
}

fn uniform(rng: &mut impl RngCore) -> f64 {
    crate::initializer::unit(rng)
}

/// Cumulative normalized energy readings of one day (8..20 of them).
fn solar_day(rng: &mut impl RngCore, day: usize) -> Vec<f64> {
    let n = 8 + (rng.next_u64() % 13) as usize;
    let season = 0.65 + 0.25 * (2.0 * std::f64::consts::PI * day as f64 / 365.0).sin();
    let cloud = 0.35 + 0.65 * uniform(rng);
    let amp = season * cloud;
    let mut acc = 0.0;
    (0..n)
        .map(|k| {
            let t = (k as f64 + 0.5) / n as f64;
            // Box–Muller noise
            let (u1, u2) = (1.0 - uniform(rng), uniform(rng));
            let noise = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            let p = amp * (std::f64::consts::PI * t).sin().powf(1.5) * (1.0 + 0.08 * noise);
            acc += p.max(0.0) * (20.0 / n as f64) / 12.0;
            acc
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn solar_splits_have_exact_sizes_and_are_deterministic() {
        let a = Solar::generate(true, 1);
        let n: usize = a.features.iter().map(|s| s.len()).sum();
        assert_eq!(n, SOLAR_TRAIN_SAMPLES);
        assert!(a.features.iter().all(|s| (3..=14).contains(&s.len())));
        assert_eq!(a.features.len(), a.targets.len());
        let b = Solar::generate(true, 1);
        assert_eq!(a.features, b.features);
        let t = Solar::generate(false, 1);
        assert_eq!(
            t.features.iter().map(|s| s.len()).sum::<usize>(),
            SOLAR_TEST_SAMPLES
        );
        // cumulative: non-decreasing, target is the day's total ≥ every reading
        for (s, y) in a.features.iter().zip(&a.targets) {
            assert!(s.windows(2).all(|w| w[0] <= w[1]));
            assert!(s.iter().all(|v| v <= y));
        }
    }
}
