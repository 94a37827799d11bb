//! Parameter initializers. Every random draw comes from an explicit seed; without one,
//! seeds are taken from a process-wide sequence that starts at a fixed value, so the
//! same program builds the same weights.

use crate::error::{Error, Result};
use crate::tensor::{DType, Shape, Tensor};
use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_SEED: AtomicU64 = AtomicU64::new(1);

/// Seed for an initializer that was not given one.
pub fn next_seed() -> u64 {
    NEXT_SEED.fetch_add(1, Ordering::Relaxed)
}

/// Restart the process-wide seed sequence (CNTK's `set_fixed_random_seed`).
pub fn set_fixed_random_seed(seed: u64) {
    NEXT_SEED.store(seed, Ordering::Relaxed);
}

/// How a parameter's first value is made (CNTK's `cntk.initializer`).
///
/// Fans follow CNTK: for a parameter of shape `S` and `output_rank` r, fan_out is the
/// product of the last r axes and fan_in the product of the rest; `filter_rank` > 0
/// (convolution kernels) multiplies both by the receptive field, the product of the
/// last `filter_rank` axes, which are then excluded from the fans themselves.
#[derive(Clone, Debug, PartialEq)]
pub enum Initializer {
    /// Every element equal to the constant (CNTK's scalar `init=c`; 0 for biases).
    Constant(f64),
    /// U(-scale, scale).
    Uniform { scale: f64, seed: Option<u64> },
    /// N(0, scale²).
    Normal { scale: f64, seed: Option<u64> },
    /// N(0, stdev²) truncated to ±2·stdev.
    TruncatedNormal { stdev: f64, seed: Option<u64> },
    /// U(−a, a), a = scale·√(6/(fan_in+fan_out)) — the default everywhere in CNTK.
    GlorotUniform {
        scale: f64,
        output_rank: usize,
        seed: Option<u64>,
    },
    /// N(0, σ²), σ = scale·√(2/(fan_in+fan_out)).
    GlorotNormal {
        scale: f64,
        output_rank: usize,
        seed: Option<u64>,
    },
    /// U(−a, a), a = scale·√(6/fan_in); fan_in = the leading axis (CNTK pins it there).
    HeUniform {
        scale: f64,
        output_rank: usize,
        seed: Option<u64>,
    },
    /// N(0, σ²), σ = scale·√(2/fan_in).
    HeNormal {
        scale: f64,
        output_rank: usize,
        seed: Option<u64>,
    },
    /// CNTK's `xavier`: **uniform** U(−a, a), a = scale·√(3/fan_in).
    Xavier {
        scale: f64,
        output_rank: usize,
        seed: Option<u64>,
    },
    /// Fan-based initializer of a convolution kernel `(out, in, k...)`.
    Kernel {
        kind: KernelInit,
        scale: f64,
        filter_rank: usize,
        seed: Option<u64>,
    },
    /// An explicit array (its shape must match).
    Array(Tensor),
}

/// Which fan rule a convolution kernel initializer uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelInit {
    GlorotUniform,
    GlorotNormal,
    HeUniform,
    HeNormal,
}

impl Initializer {
    /// glorot_uniform with scale 1, output rank 1 and a seed from the process sequence.
    pub fn glorot_uniform() -> Self {
        Initializer::GlorotUniform {
            scale: 1.0,
            output_rank: 1,
            seed: None,
        }
    }

    /// The zero initializer (CNTK's `zero`).
    pub fn zero() -> Self {
        Initializer::Constant(0.0)
    }

    /// The same initializer with an explicit seed (no effect on deterministic ones).
    pub fn with_seed(self, seed: u64) -> Self {
        use Initializer::*;
        match self {
            Uniform { scale, .. } => Uniform {
                scale,
                seed: Some(seed),
            },
            Normal { scale, .. } => Normal {
                scale,
                seed: Some(seed),
            },
            TruncatedNormal { stdev, .. } => TruncatedNormal {
                stdev,
                seed: Some(seed),
            },
            GlorotUniform {
                scale, output_rank, ..
            } => GlorotUniform {
                scale,
                output_rank,
                seed: Some(seed),
            },
            GlorotNormal {
                scale, output_rank, ..
            } => GlorotNormal {
                scale,
                output_rank,
                seed: Some(seed),
            },
            HeUniform {
                scale, output_rank, ..
            } => HeUniform {
                scale,
                output_rank,
                seed: Some(seed),
            },
            HeNormal {
                scale, output_rank, ..
            } => HeNormal {
                scale,
                output_rank,
                seed: Some(seed),
            },
            Xavier {
                scale, output_rank, ..
            } => Xavier {
                scale,
                output_rank,
                seed: Some(seed),
            },
            Kernel {
                kind,
                scale,
                filter_rank,
                ..
            } => Kernel {
                kind,
                scale,
                filter_rank,
                seed: Some(seed),
            },
            other => other,
        }
    }

    /// The same initializer with the given output rank (layers set it from their output shape).
    pub fn with_output_rank(self, r: usize) -> Self {
        use Initializer::*;
        match self {
            GlorotUniform { scale, seed, .. } => GlorotUniform {
                scale,
                output_rank: r,
                seed,
            },
            GlorotNormal { scale, seed, .. } => GlorotNormal {
                scale,
                output_rank: r,
                seed,
            },
            HeUniform { scale, seed, .. } => HeUniform {
                scale,
                output_rank: r,
                seed,
            },
            HeNormal { scale, seed, .. } => HeNormal {
                scale,
                output_rank: r,
                seed,
            },
            Xavier { scale, seed, .. } => Xavier {
                scale,
                output_rank: r,
                seed,
            },
            other => other,
        }
    }

    /// Materialize a tensor of `shape` (all dimensions known).
    pub fn generate(&self, shape: &Shape, dtype: DType) -> Result<Tensor> {
        if shape.has_inferred() {
            return Err(Error::invalid(
                "initializer",
                format!("cannot initialize shape {shape} before its inferred dimensions are known"),
            ));
        }
        let n = shape.numel();
        // The values are drawn as f64, then converted: a request the system cannot
        // satisfy is an error here rather than an abort in the middle of drawing.
        let mut probe: Vec<f64> = Vec::new();
        probe.try_reserve_exact(n).map_err(|_| {
            Error::invalid(
                "initializer",
                format!("cannot allocate memory for the {n} values of shape {shape}"),
            )
        })?;
        drop(probe);
        let fans = |output_rank: usize| {
            let r = output_rank.min(shape.rank());
            let fan_out = shape.prod(shape.rank() - r..shape.rank()) as f64;
            let fan_in = shape.prod(0..shape.rank() - r) as f64;
            (fan_in.max(1.0), fan_out.max(1.0))
        };
        let uniform = |a: f64, seed: Option<u64>| {
            let mut rng = rng(seed);
            (0..n)
                .map(|_| a * (2.0 * unit(&mut rng) - 1.0))
                .collect::<Vec<f64>>()
        };
        let normal = |sd: f64, seed: Option<u64>| {
            let mut rng = rng(seed);
            (0..n)
                .map(|_| sd * gaussian(&mut rng))
                .collect::<Vec<f64>>()
        };
        use Initializer::*;
        let data: Vec<f64> = match self {
            Constant(c) => vec![*c; n],
            Uniform { scale, seed } => uniform(*scale, *seed),
            Normal { scale, seed } => normal(*scale, *seed),
            TruncatedNormal { stdev, seed } => {
                let mut rng = rng(*seed);
                (0..n)
                    .map(|_| loop {
                        let v = gaussian(&mut rng);
                        if v.abs() <= 2.0 {
                            break stdev * v;
                        }
                    })
                    .collect()
            }
            GlorotUniform {
                scale,
                output_rank,
                seed,
            } => {
                let (fi, fo) = fans(*output_rank);
                uniform(scale * (6.0 / (fi + fo)).sqrt(), *seed)
            }
            GlorotNormal {
                scale,
                output_rank,
                seed,
            } => {
                let (fi, fo) = fans(*output_rank);
                normal(scale * (2.0 / (fi + fo)).sqrt(), *seed)
            }
            HeUniform { scale, seed, .. } => {
                let fi = shape.dims().first().copied().unwrap_or(1).max(1) as f64;
                uniform(scale * (6.0 / fi).sqrt(), *seed)
            }
            HeNormal { scale, seed, .. } => {
                let fi = shape.dims().first().copied().unwrap_or(1).max(1) as f64;
                normal(scale * (2.0 / fi).sqrt(), *seed)
            }
            Xavier {
                scale,
                output_rank,
                seed,
            } => {
                let (fi, _) = fans(*output_rank);
                uniform(scale * (3.0 / fi).sqrt(), *seed)
            }
            Kernel {
                kind,
                scale,
                filter_rank,
                seed,
            } => {
                // (out, in, k...) : receptive field = product of the kernel axes
                let r = shape.rank();
                let fr = (*filter_rank).min(r.saturating_sub(2));
                let field = shape.prod(r - fr..r) as f64;
                let fan_out = shape.dims().first().copied().unwrap_or(1) as f64 * field;
                let fan_in = shape.prod(1.min(r)..r - fr) as f64 * field;
                match kind {
                    KernelInit::GlorotUniform => {
                        uniform(scale * (6.0 / (fan_in + fan_out)).sqrt(), *seed)
                    }
                    KernelInit::GlorotNormal => {
                        normal(scale * (2.0 / (fan_in + fan_out)).sqrt(), *seed)
                    }
                    KernelInit::HeUniform => uniform(scale * (6.0 / fan_in).sqrt(), *seed),
                    KernelInit::HeNormal => normal(scale * (2.0 / fan_in).sqrt(), *seed),
                }
            }
            Array(t) => {
                if t.shape() != shape {
                    return Err(Error::invalid(
                        "initializer",
                        format!(
                            "array of shape {} given for a parameter of shape {shape}",
                            t.shape()
                        ),
                    ));
                }
                return Ok(t.cast(dtype));
            }
        };
        Tensor::from_f64(shape.clone(), dtype, &data)
    }
}

fn rng(seed: Option<u64>) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed.unwrap_or_else(next_seed))
}

/// Uniform in [0, 1) with 53 random bits.
pub(crate) fn unit(rng: &mut impl RngCore) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

fn gaussian(rng: &mut impl RngCore) -> f64 {
    // Box–Muller; 1 - u keeps the log argument in (0, 1].
    let u1 = 1.0 - unit(rng);
    let u2 = unit(rng);
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn seeded_draws_repeat_and_respect_bounds() {
        let init = Initializer::glorot_uniform().with_seed(7);
        let a = init.generate(&Shape::from([300, 200]), DType::F32).unwrap();
        let b = init.generate(&Shape::from([300, 200]), DType::F32).unwrap();
        assert_eq!(a, b);
        let bound = (6.0f64 / 500.0).sqrt();
        assert!(a.to_f64_vec().iter().all(|v| v.abs() <= bound));
        assert!(init
            .generate(&Shape::from([crate::tensor::INFERRED]), DType::F32)
            .is_err());
    }

    fn stats(init: Initializer, shape: &[usize]) -> (f64, f64) {
        let v = init
            .generate(&Shape::from(shape), DType::F64)
            .unwrap()
            .to_f64_vec();
        let max = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let sd = (v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64).sqrt();
        (max, sd)
    }

    /// The bounds and spreads of recurrence.md §1, over many draws.
    #[test]
    fn fan_rules_match_cntk() {
        let (m, _) = stats(Initializer::glorot_uniform().with_seed(1), &[300, 200]);
        let b = (6.0f64 / 500.0).sqrt();
        assert!(m <= b && m > 0.999 * b, "{m}");
        let (m, _) = stats(Initializer::glorot_uniform().with_seed(2), &[4, 300, 200]);
        let b = (6.0f64 / 1400.0).sqrt();
        assert!(m <= b && m > 0.999 * b, "{m}");
        let (m, _) = stats(Initializer::glorot_uniform().with_seed(3), &[300]);
        let b = (6.0f64 / 301.0).sqrt();
        assert!(m <= b && m > 0.99 * b, "{m}");
        let he = Initializer::HeUniform {
            scale: 1.0,
            output_rank: 1,
            seed: Some(4),
        };
        let (m, _) = stats(he, &[300, 200]);
        let b = (6.0f64 / 300.0).sqrt();
        assert!(m <= b && m > 0.999 * b, "{m}");
        let x = Initializer::Xavier {
            scale: 1.0,
            output_rank: 1,
            seed: Some(5),
        };
        let (m, _) = stats(x, &[300, 200]);
        assert!(m <= 0.1 && m > 0.0999, "{m}");
        let k = Initializer::Kernel {
            kind: KernelInit::GlorotUniform,
            scale: 1.0,
            filter_rank: 2,
            seed: Some(6),
        };
        let (m, _) = stats(k, &[64, 3, 5, 5]);
        let b = (6.0f64 / 1675.0).sqrt();
        assert!(m <= b && m > 0.999 * b, "{m}");
        let gn = Initializer::GlorotNormal {
            scale: 1.0,
            output_rank: 1,
            seed: Some(7),
        };
        let (_, sd) = stats(gn, &[300, 200]);
        assert!((sd - (2.0f64 / 500.0).sqrt()).abs() < 0.002, "{sd}");
        let tn = Initializer::TruncatedNormal {
            stdev: 0.5,
            seed: Some(8),
        };
        let (m, _) = stats(tn, &[200, 300]);
        assert!(m <= 1.0, "{m}");
    }
}
