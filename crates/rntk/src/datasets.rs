//! Built-in synthetic data sets, generated deterministically (nothing is downloaded):
//! the seed tutorial's solar series here, digit and coloured-shape images in [`images`].

pub mod images;

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

/// Vocabulary of the [`Lm`] data set.
pub const LM_VOCAB: usize = 10000;
/// Tokens per [`Lm`] sequence.
pub const LM_SEQ_LEN: usize = 35;
/// Sequences in the training split of [`Lm`] (200025 tokens).
pub const LM_TRAIN_SEQS: usize = 5715;
/// Sequences in the test split of [`Lm`] (20020 tokens).
pub const LM_TEST_SEQS: usize = 572;
const LM_SUCCESSORS: usize = 4;
const LM_P_SUCCESSOR: f64 = 0.6;

/// Language-model tokens, the shape of the benchmarks' `lm` data set: a Zipf-like
/// unigram distribution over [`LM_VOCAB`] words plus a learnable bigram structure (each
/// word has 4 preferred successors, taken 60% of the time), one token stream cut into
/// sequences of exactly [`LM_SEQ_LEN`] tokens; `labels[i][t]` is the token after
/// `features[i][t]`.
pub struct Lm {
    pub features: Vec<Vec<u32>>,
    pub labels: Vec<Vec<u32>>,
}

impl Lm {
    /// The training split (5715 sequences) or the test split (572); both share the
    /// word tables drawn from `seed`.
    pub fn generate(train: bool, seed: u64) -> Lm {
        let n_seq = if train { LM_TRAIN_SEQS } else { LM_TEST_SEQS };
        Self::with_sequences(n_seq, train, seed)
    }

    /// `n_seq` sequences of the given split.
    pub fn with_sequences(n_seq: usize, train: bool, seed: u64) -> Lm {
        let mut tables = Xoshiro256PlusPlus::seed_from_u64(seed.wrapping_mul(31).wrapping_add(2));
        let cdf = zipf_cdf(LM_VOCAB, 1.05, 2.7);
        let perm = permutation(&mut tables, LM_VOCAB);
        let succ: Vec<u32> = (0..LM_VOCAB * LM_SUCCESSORS)
            .map(|_| {
                let w = draw(&cdf, uniform(&mut tables));
                // scramble half of them so that successors are not just frequent words
                if uniform(&mut tables) < 0.5 {
                    w as u32
                } else {
                    perm[w] as u32
                }
            })
            .collect();
        let mut rng =
            Xoshiro256PlusPlus::seed_from_u64(seed.wrapping_mul(31).wrapping_add(if train {
                12
            } else {
                13
            }));
        let n = n_seq * LM_SEQ_LEN + 1;
        let mut tokens = Vec::with_capacity(n);
        let mut prev = draw(&cdf, uniform(&mut rng)) as u32;
        tokens.push(prev);
        for _ in 1..n {
            prev = if uniform(&mut rng) < LM_P_SUCCESSOR {
                succ[prev as usize * LM_SUCCESSORS
                    + (rng.next_u64() % LM_SUCCESSORS as u64) as usize]
            } else {
                draw(&cdf, uniform(&mut rng)) as u32
            };
            tokens.push(prev);
        }
        Lm {
            features: (0..n_seq)
                .map(|k| tokens[k * LM_SEQ_LEN..(k + 1) * LM_SEQ_LEN].to_vec())
                .collect(),
            labels: (0..n_seq)
                .map(|k| tokens[k * LM_SEQ_LEN + 1..(k + 1) * LM_SEQ_LEN + 1].to_vec())
                .collect(),
        }
    }
}

/// Input words of the [`Slots`] data set (0 = BOS, 1 = EOS, 2..400 carrier words).
pub const SLOT_VOCAB: usize = 943;
/// Slot labels: `2s` / `2s+1` = B / I of slot type `s`, [`SLOT_O`] = outside.
pub const SLOT_LABELS: usize = 129;
/// The `O` label.
pub const SLOT_O: u32 = 128;
/// Intents.
pub const SLOT_INTENTS: usize = 26;
const SLOT_TYPES: usize = 64;
const SLOT_CARRIER: (usize, usize) = (2, 400);

/// ATIS-like slot tagging, the shape of the benchmarks' `slots` data set: sentences of
/// 5..25 words starting with BOS (word 0) and ending with EOS (word 1), one slot label
/// per word and one intent per sentence; about 36000 words for training, 9000 for test.
pub struct Slots {
    pub words: Vec<Vec<u32>>,
    pub labels: Vec<Vec<u32>>,
    pub intents: Vec<u32>,
}

impl Slots {
    pub fn generate(train: bool, seed: u64) -> Slots {
        Self::with_samples(if train { 36000 } else { 9000 }, train, seed)
    }

    /// Sentences until at least `total_samples` words.
    pub fn with_samples(total_samples: usize, train: bool, seed: u64) -> Slots {
        let mut t = Xoshiro256PlusPlus::seed_from_u64(seed.wrapping_mul(31).wrapping_add(3));
        let below = |r: &mut Xoshiro256PlusPlus, n: usize| (r.next_u64() % n as u64) as usize;
        // every slot word belongs to one slot type, 10% also to a second one
        let slot_words: Vec<usize> = permutation(&mut t, SLOT_VOCAB - SLOT_CARRIER.1)
            .into_iter()
            .map(|i| i + SLOT_CARRIER.1)
            .collect();
        let mut lexicon = vec![Vec::new(); SLOT_TYPES];
        for (i, &w) in slot_words.iter().enumerate() {
            lexicon[i % SLOT_TYPES].push(w as u32);
        }
        for &w in &slot_words {
            if uniform(&mut t) < 0.10 {
                lexicon[below(&mut t, SLOT_TYPES)].push(w as u32);
            }
        }
        let intent_slots: Vec<usize> = (0..SLOT_INTENTS * 5)
            .map(|_| below(&mut t, SLOT_TYPES))
            .collect();
        let carriers = SLOT_CARRIER.1 - SLOT_CARRIER.0;
        let o_cdf = zipf_cdf(carriers, 1.0, 1.5);
        let o_perm: Vec<u32> = permutation(&mut t, carriers)
            .into_iter()
            .map(|i| (i + SLOT_CARRIER.0) as u32)
            .collect();
        let intent_cue = &o_perm[..SLOT_INTENTS];
        let slot_cue = &o_perm[SLOT_INTENTS..SLOT_INTENTS + SLOT_TYPES];
        let intent_cdf = zipf_cdf(SLOT_INTENTS, 1.2, 1.0);

        let mut rng =
            Xoshiro256PlusPlus::seed_from_u64(seed.wrapping_mul(31).wrapping_add(if train {
                14
            } else {
                15
            }));
        let mut out = Slots {
            words: Vec::new(),
            labels: Vec::new(),
            intents: Vec::new(),
        };
        let mut total = 0;
        while total < total_samples {
            let length = 5 + below(&mut rng, 21);
            let intent = draw(&intent_cdf, uniform(&mut rng));
            let mut w = vec![0u32, intent_cue[intent]];
            let mut lab = vec![SLOT_O, SLOT_O];
            while w.len() < length - 1 {
                let room = length - 1 - w.len();
                if uniform(&mut rng) < 0.45 && room >= 2 {
                    // a slot phrase: a cue word (O) and 1..3 slot words
                    let s = if uniform(&mut rng) < 0.8 {
                        intent_slots[intent * 5 + below(&mut rng, 5)]
                    } else {
                        below(&mut rng, SLOT_TYPES)
                    };
                    let n = (room - 1).min(1 + below(&mut rng, 3));
                    w.push(slot_cue[s]);
                    lab.push(SLOT_O);
                    let lex = &lexicon[s];
                    for k in 0..n {
                        w.push(lex[below(&mut rng, lex.len())]);
                        lab.push(2 * s as u32 + (k > 0) as u32);
                    }
                } else {
                    w.push(o_perm[draw(&o_cdf, uniform(&mut rng))]);
                    lab.push(SLOT_O);
                }
            }
            w.push(1);
            lab.push(SLOT_O);
            total += w.len();
            out.words.push(w);
            out.labels.push(lab);
            out.intents.push(intent as u32);
        }
        out
    }
}

/// CDF of p(i) ∝ 1 / (i + q)^s, i = 0..n (Zipf–Mandelbrot).
fn zipf_cdf(n: usize, s: f64, q: f64) -> Vec<f64> {
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = (0..n)
        .map(|i| {
            acc += 1.0 / (i as f64 + q).powf(s);
            acc
        })
        .collect();
    for c in &mut cdf {
        *c /= acc;
    }
    cdf
}

/// Inverse-CDF sampling of a uniform `u` in [0, 1).
fn draw(cdf: &[f64], u: f64) -> usize {
    cdf.partition_point(|&c| c <= u).min(cdf.len() - 1)
}

/// A uniformly random permutation of 0..n (Fisher–Yates).
fn permutation(rng: &mut impl RngCore, n: usize) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        p.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    p
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

    #[test]
    fn lm_and_slots_have_the_benchmark_shapes_and_are_deterministic() {
        let a = Lm::with_sequences(50, true, 1);
        assert_eq!(a.features.len(), 50);
        assert!(a.features.iter().all(|s| s.len() == LM_SEQ_LEN));
        assert!(a
            .features
            .iter()
            .flatten()
            .all(|&w| (w as usize) < LM_VOCAB));
        // labels are the stream shifted by one
        assert_eq!(a.labels[0][..LM_SEQ_LEN - 1], a.features[0][1..]);
        assert_eq!(a.labels[0][LM_SEQ_LEN - 1], a.features[1][0]);
        assert_eq!(Lm::with_sequences(50, true, 1).features, a.features);
        assert_ne!(Lm::with_sequences(50, false, 1).features, a.features);

        let s = Slots::with_samples(2000, true, 1);
        let n: usize = s.words.iter().map(|w| w.len()).sum();
        assert!((2000..2025).contains(&n));
        for ((w, l), &i) in s.words.iter().zip(&s.labels).zip(&s.intents) {
            assert!((5..=25).contains(&w.len()));
            assert_eq!(w.len(), l.len());
            assert_eq!((w[0], *w.last().unwrap()), (0, 1));
            assert!(w.iter().all(|&x| (x as usize) < SLOT_VOCAB));
            assert!(l.iter().all(|&x| (x as usize) < SLOT_LABELS));
            assert!((i as usize) < SLOT_INTENTS);
        }
        assert!(s.labels.iter().flatten().any(|&x| x != SLOT_O));
        assert_eq!(Slots::with_samples(2000, true, 1).words, s.words);
    }
}
