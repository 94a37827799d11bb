//! Parameter initializers: CNTK's `cntk.initializer`, drawing CNTK 2.7's numbers.
//!
//! A random initializer without a seed takes one from the process-wide sequence of
//! [`crate::random`] when its parameter is created ([`Initializer::resolve_seed`], called
//! by [`crate::parameter`]); the draws themselves reproduce CNTK's CPU path (see
//! [`Initializer::generate`] and docs/random.md), so the same seed gives CNTK's values.

use crate::error::{Error, Result};
use crate::random::{self, Mt19937_64};
use crate::tensor::{DType, Shape, Tensor};
use rand_core::RngCore;

/// Same as [`random::set_fixed_random_seed`] (kept here for existing callers).
pub use crate::random::set_fixed_random_seed;

/// Take the next automatic seed: same as [`random::generate_random_seed`].
pub fn next_seed() -> u64 {
    random::generate_random_seed()
}

/// Which of CNTK's random initializers (`cntk.initializer.X`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RandomKind {
    /// `uniform(scale)`: U(−scale, scale).
    Uniform,
    /// `normal(scale)`: N(0, scale²).
    Normal,
    /// `truncated_normal(stdev)`: N(0, stdev²) redrawn outside ±2·stdev.
    TruncatedNormal,
    /// `xavier(scale)`: U(−a, a), a = scale·√(3/fan_in).
    Xavier,
    /// `glorot_uniform(scale)`: U(−a, a), a = scale·√(6/(fan_in+fan_out)).
    GlorotUniform,
    /// `glorot_normal(scale)`: N(0, σ²), σ = scale·√(2/(fan_in+fan_out)).
    GlorotNormal,
    /// `he_uniform(scale)`: U(−a, a), a = scale·√(6/fan_in).
    HeUniform,
    /// `he_normal(scale)`: N(0, σ²), σ = scale·√(2/fan_in).
    HeNormal,
}

impl RandomKind {
    /// CNTK's Python name.
    pub fn name(self) -> &'static str {
        match self {
            RandomKind::Uniform => "uniform",
            RandomKind::Normal => "normal",
            RandomKind::TruncatedNormal => "truncated_normal",
            RandomKind::Xavier => "xavier",
            RandomKind::GlorotUniform => "glorot_uniform",
            RandomKind::GlorotNormal => "glorot_normal",
            RandomKind::HeUniform => "he_uniform",
            RandomKind::HeNormal => "he_normal",
        }
    }
}

/// How a parameter's first value is made (CNTK's `cntk.initializer`).
///
/// Fans follow CNTK's `InitRandom`: for a parameter of Python shape `S` (rank `R`),
/// `filter_rank` f and `output_rank` r, the receptive field is the product of the last
/// f axes; fan_in = field · prod(S[0 .. R−f−max(r,0)]) for r ≥ 0, or field ·
/// prod(S[−r .. R−f]) for r < 0 (convolution kernels pass r = −1: `(K, C, kh, kw)` gives
/// fan_in = C·kh·kw); fan_out = numel · field / fan_in. f + |r| may not exceed R.
/// The variants other than [`Initializer::Random`] are shorthands for common rank
/// settings (filter_rank 0; `Kernel`: output_rank −1).
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
    /// U(−a, a), a = scale·√(6/fan_in).
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
    /// Fan-based initializer of a convolution kernel `(out, in, k...)` (output_rank −1).
    Kernel {
        kind: KernelInit,
        scale: f64,
        filter_rank: usize,
        seed: Option<u64>,
    },
    /// Any random initializer with CNTK's rank arguments as given (`None`: CNTK's
    /// "infer" sentinel, i.e. output_rank 1 and filter_rank 0 unless a layer sets them).
    Random {
        kind: RandomKind,
        scale: f64,
        output_rank: Option<i32>,
        filter_rank: Option<usize>,
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

/// A random initializer with everything resolved but the seed.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Spec {
    kind: RandomKind,
    scale: f64,
    output_rank: i32,
    filter_rank: usize,
    seed: Option<u64>,
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

    /// CNTK's `cntk.initializer.<kind>(scale)` with the rank arguments left to infer
    /// and no seed (`truncated_normal`'s stdev is the scale).
    pub fn random(kind: RandomKind, scale: f64) -> Self {
        Initializer::Random {
            kind,
            scale,
            output_rank: None,
            filter_rank: None,
            seed: None,
        }
    }

    fn spec(&self) -> Option<Spec> {
        use Initializer::*;
        let (kind, scale, output_rank, filter_rank, seed) = match *self {
            Uniform { scale, seed } => (RandomKind::Uniform, scale, 1, 0, seed),
            Normal { scale, seed } => (RandomKind::Normal, scale, 1, 0, seed),
            TruncatedNormal { stdev, seed } => (RandomKind::TruncatedNormal, stdev, 1, 0, seed),
            GlorotUniform {
                scale,
                output_rank,
                seed,
            } => (RandomKind::GlorotUniform, scale, rank(output_rank), 0, seed),
            GlorotNormal {
                scale,
                output_rank,
                seed,
            } => (RandomKind::GlorotNormal, scale, rank(output_rank), 0, seed),
            HeUniform {
                scale,
                output_rank,
                seed,
            } => (RandomKind::HeUniform, scale, rank(output_rank), 0, seed),
            HeNormal {
                scale,
                output_rank,
                seed,
            } => (RandomKind::HeNormal, scale, rank(output_rank), 0, seed),
            Xavier {
                scale,
                output_rank,
                seed,
            } => (RandomKind::Xavier, scale, rank(output_rank), 0, seed),
            Kernel {
                kind,
                scale,
                filter_rank,
                seed,
            } => {
                let kind = match kind {
                    KernelInit::GlorotUniform => RandomKind::GlorotUniform,
                    KernelInit::GlorotNormal => RandomKind::GlorotNormal,
                    KernelInit::HeUniform => RandomKind::HeUniform,
                    KernelInit::HeNormal => RandomKind::HeNormal,
                };
                (kind, scale, -1, filter_rank, seed)
            }
            Random {
                kind,
                scale,
                output_rank,
                filter_rank,
                seed,
            } => (
                kind,
                scale,
                output_rank.unwrap_or(1),
                filter_rank.unwrap_or(0),
                seed,
            ),
            Constant(_) | Array(_) => return None,
        };
        Some(Spec {
            kind,
            scale,
            output_rank,
            filter_rank,
            seed,
        })
    }

    /// Whether this initializer draws random numbers.
    pub fn is_random(&self) -> bool {
        self.spec().is_some()
    }

    /// The explicit seed, if this is a random initializer that has one.
    pub fn seed(&self) -> Option<u64> {
        self.spec().and_then(|s| s.seed)
    }

    /// A random initializer without a seed takes the next automatic one
    /// ([`random::generate_random_seed`]); CNTK does this when the parameter is created.
    pub fn resolve_seed(self) -> Self {
        if self.is_random() && self.seed().is_none() {
            let s = random::generate_random_seed();
            self.with_seed(s)
        } else {
            self
        }
    }

    /// The same initializer with an explicit seed (no effect on deterministic ones).
    pub fn with_seed(self, seed: u64) -> Self {
        use Initializer::*;
        let seed = Some(seed);
        match self {
            Uniform { scale, .. } => Uniform { scale, seed },
            Normal { scale, .. } => Normal { scale, seed },
            TruncatedNormal { stdev, .. } => TruncatedNormal { stdev, seed },
            GlorotUniform {
                scale, output_rank, ..
            } => GlorotUniform {
                scale,
                output_rank,
                seed,
            },
            GlorotNormal {
                scale, output_rank, ..
            } => GlorotNormal {
                scale,
                output_rank,
                seed,
            },
            HeUniform {
                scale, output_rank, ..
            } => HeUniform {
                scale,
                output_rank,
                seed,
            },
            HeNormal {
                scale, output_rank, ..
            } => HeNormal {
                scale,
                output_rank,
                seed,
            },
            Xavier {
                scale, output_rank, ..
            } => Xavier {
                scale,
                output_rank,
                seed,
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
                seed,
            },
            Random {
                kind,
                scale,
                output_rank,
                filter_rank,
                ..
            } => Random {
                kind,
                scale,
                output_rank,
                filter_rank,
                seed,
            },
            other => other,
        }
    }

    /// The same initializer with the given output rank (layers set it from their output
    /// shape). A [`Initializer::Random`] keeps an output rank given explicitly.
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
            Random {
                kind,
                scale,
                output_rank,
                filter_rank,
                seed,
            } => Random {
                kind,
                scale,
                output_rank: output_rank.or(Some(rank(r))),
                filter_rank,
                seed,
            },
            other => other,
        }
    }

    /// CNTK's `initializer_with_rank` (what layers do to their `init`): set the ranks of
    /// a fan-based random initializer; one given explicitly and different is an error.
    /// Uniform and non-random initializers come back unchanged.
    pub fn with_ranks(self, output_rank: i32, filter_rank: usize) -> Result<Self> {
        let Some(sp) = self.spec() else {
            return Ok(self);
        };
        if sp.kind == RandomKind::Uniform {
            return Ok(self);
        }
        let (given_or, given_fr) = match &self {
            Initializer::Random {
                output_rank,
                filter_rank,
                ..
            } => (*output_rank, *filter_rank),
            _ => (Some(sp.output_rank), Some(sp.filter_rank)),
        };
        let explicit = matches!(self, Initializer::Random { .. });
        if explicit && given_or.is_some_and(|r| r != output_rank) {
            return Err(Error::invalid(
                "initializer",
                "Output rank of a non-uniform random initialier cannot be overridden if it has been already specified!",
            ));
        }
        if explicit && given_fr.is_some_and(|f| f != filter_rank) {
            return Err(Error::invalid(
                "initializer",
                "Filer rank of a non-uniform random initialier cannot be overridden if it has been already specified!",
            ));
        }
        Ok(Initializer::Random {
            kind: sp.kind,
            scale: sp.scale,
            output_rank: Some(output_rank),
            filter_rank: Some(filter_rank),
            seed: sp.seed,
        })
    }

    /// Materialize a tensor of `shape` (all dimensions known). A random initializer
    /// without a seed takes the next automatic one now (see [`Self::resolve_seed`]).
    ///
    /// The draws are CNTK 2.7's: the range (bound or standard deviation) is computed
    /// in the element type (`float(√(6/(fan_in+fan_out))) · float(scale)` for float32),
    /// `std::mt19937_64(seed)` feeds Boost's `uniform_real_distribution<double>(−a, a)`
    /// or `normal_distribution<double>(0, σ)` in element order (Python's row-major
    /// order), each double rounded to the element type; truncated normal redraws values
    /// that, rounded, fall outside ±2σ.
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
        let data: Vec<f64> = match self {
            Initializer::Constant(c) => vec![*c; n],
            Initializer::Array(t) => {
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
            other => {
                let sp = other.spec().expect("random initializer");
                let seed = sp.seed.unwrap_or_else(random::generate_random_seed);
                draw(&sp, seed, shape, dtype)?
            }
        };
        Tensor::from_f64(shape.clone(), dtype, &data)
    }
}

fn rank(r: usize) -> i32 {
    i32::try_from(r).unwrap_or(i32::MAX)
}

/// CNTK's fans of `shape` (Python order) for the given ranks; `None` when the ranks do
/// not fit the shape.
fn fans(shape: &Shape, output_rank: i32, filter_rank: usize) -> Option<(usize, usize)> {
    let r = shape.rank();
    if filter_rank + output_rank.unsigned_abs() as usize > r {
        return None;
    }
    let field = shape.prod(r - filter_rank..r);
    // CNTK's input dims, counted from the innermost axis: [begin, end).
    let begin = filter_rank + output_rank.max(0) as usize;
    let end = if output_rank >= 0 {
        r
    } else {
        r - output_rank.unsigned_abs() as usize
    };
    let fan_in = field * shape.prod(r - end..r - begin);
    let fan_out = shape.numel() * field / fan_in.max(1);
    Some((fan_in, fan_out))
}

fn draw(sp: &Spec, seed: u64, shape: &Shape, dtype: DType) -> Result<Vec<f64>> {
    let n = shape.numel();
    if n == 0 {
        return Ok(Vec::new());
    }
    let (fan_in, fan_out) = fans(shape, sp.output_rank, sp.filter_rank).ok_or_else(|| {
        Error::invalid(
            format!("{} initializer", sp.kind.name()),
            format!(
                "Sum of filter rank ({}) and output rank ({}) of the parameter initializer cannot exceed the Parameter shape '{shape}' rank ({})",
                sp.filter_rank,
                sp.output_rank,
                shape.rank()
            ),
        )
    })?;
    let (fi, fio) = (fan_in as f64, (fan_in + fan_out) as f64);
    let base = match sp.kind {
        RandomKind::Uniform | RandomKind::Normal | RandomKind::TruncatedNormal => 1.0,
        RandomKind::Xavier => (3.0 / fi).sqrt(),
        RandomKind::GlorotUniform => (6.0 / fio).sqrt(),
        RandomKind::GlorotNormal => (2.0 / fio).sqrt(),
        RandomKind::HeUniform => (6.0 / fi).sqrt(),
        RandomKind::HeNormal => (2.0 / fi).sqrt(),
    };
    // CNTK: `ElemType range = (ElemType)base; range *= (ElemType)scale;`
    let elem = |v: f64| match dtype {
        DType::F32 => v as f32 as f64,
        DType::F64 => v,
    };
    let range = match dtype {
        DType::F32 => ((base as f32) * (sp.scale as f32)) as f64,
        DType::F64 => base * sp.scale,
    };
    let mut e = Mt19937_64::new(seed);
    let uniform_kind = matches!(
        sp.kind,
        RandomKind::Uniform
            | RandomKind::Xavier
            | RandomKind::GlorotUniform
            | RandomKind::HeUniform
    );
    if uniform_kind {
        return Ok((0..n)
            .map(|_| elem(random::uniform_real(&mut e, -range, range)))
            .collect());
    }
    if range.is_nan() || range <= 0.0 {
        return Err(Error::invalid(
            format!("{} initializer", sp.kind.name()),
            format!(
                "sigma must be a positive value, got {range} (scale {})",
                sp.scale
            ),
        ));
    }
    if sp.kind != RandomKind::TruncatedNormal {
        return Ok((0..n)
            .map(|_| elem(random::normal(&mut e, 0.0, range)))
            .collect());
    }
    let (lo, hi) = (elem(0.0 - 2.0 * range), elem(0.0 + 2.0 * range));
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let v = elem(random::normal(&mut e, 0.0, range));
        if !(v < lo || v > hi) {
            out.push(v);
        }
    }
    Ok(out)
}

/// Uniform in [0, 1) with 53 random bits (the synthetic datasets' helper).
pub(crate) fn unit(rng: &mut impl RngCore) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
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
