//! Helpers shared by the tutorial examples (and by tests/examples_learn.rs, which runs
//! reduced versions of them): a seeded random generator standing in for numpy's,
//! the tutorials' synthetic data and a tiny argument parser; [`slots`] holds CNTK 202's
//! slot-tagging pipeline over an ATIS-like CTF corpus.

// Every example uses a different part of this module.
#![allow(dead_code)]

use rntk::Result;
use std::path::PathBuf;

pub mod slots;

/// SplitMix64: a small, seeded generator (the tutorials call `np.random.seed(0)`).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }
    /// Standard normal (Box–Muller), `np.random.randn()`.
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.uniform();
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
    /// Uniform integer in [0, n), `np.random.randint(0, n)`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// One-hot rows (`num_classes` values per sample) for class indices.
pub fn one_hot(labels: &[usize], num_classes: usize) -> Vec<f32> {
    let mut v = vec![0.0f32; labels.len() * num_classes];
    for (i, &c) in labels.iter().enumerate() {
        v[i * num_classes + c] = 1.0;
    }
    v
}

/// CNTK 101/102's `generate_random_data_sample(sample_size, feature_dim, num_classes)`:
///
/// ```text
/// Y = np.random.randint(size=(sample_size, 1), low=0, high=num_classes)
/// X = (np.random.randn(sample_size, feature_dim) + 3) * (Y + 1)
/// ```
///
/// Returns the features (`sample_size × feature_dim`, row-major), the one-hot labels
/// (`sample_size × num_classes`) and the class indices.
pub fn generate_random_data_sample(
    rng: &mut Rng,
    sample_size: usize,
    feature_dim: usize,
    num_classes: usize,
) -> (Vec<f32>, Vec<f32>, Vec<usize>) {
    let ys: Vec<usize> = (0..sample_size).map(|_| rng.below(num_classes)).collect();
    let mut xs = Vec::with_capacity(sample_size * feature_dim);
    for &y in &ys {
        for _ in 0..feature_dim {
            xs.push(((rng.normal() + 3.0) * (y as f64 + 1.0)) as f32);
        }
    }
    (xs, one_hot(&ys, num_classes), ys)
}

/// The error rate of always answering the most frequent class.
pub fn majority_error(labels: &[usize], num_classes: usize) -> f64 {
    let mut counts = vec![0usize; num_classes];
    for &c in labels {
        counts[c] += 1;
    }
    let best = counts.iter().copied().max().unwrap_or(0);
    1.0 - best as f64 / labels.len().max(1) as f64
}

/// `--name VALUE` from the command line, parsed; exits with a message when the value
/// does not parse.
pub fn arg<T: std::str::FromStr>(name: &str) -> Option<T> {
    let args: Vec<String> = std::env::args().collect();
    let flag = format!("--{name}");
    let i = args.iter().position(|a| *a == flag)?;
    match args.get(i + 1).map(|v| v.parse::<T>()) {
        Some(Ok(v)) => Some(v),
        _ => {
            eprintln!("{flag} needs a value (see the example's header)");
            std::process::exit(2);
        }
    }
}

/// A fresh directory for generated files (under the system temp dir).
pub fn temp_dir(tag: &str) -> Result<PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "rntk-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| rntk::Error::Io {
        file: dir.display().to_string(),
        detail: e.to_string(),
    })?;
    Ok(dir)
}

/// `Training N parameters in K parameter tensors.` (`C.logging.log_number_of_parameters`).
pub fn parameter_line(params: &[rntk::Variable]) -> String {
    let n: usize = params.iter().map(|p| p.shape().numel()).sum();
    format!(
        "Training {n} parameters in {} parameter tensors.",
        params.len()
    )
}
