//! Additive attention on the CPU (the math is in `ops/attention.rs`): one pass per
//! batch item over its query steps; the scores are recomputed in the backward (the
//! `tanh` terms are `T_q·T_k·dim` values, the weights only `T_q·T_k`).

use crate::backend::attention::{Attention, AttentionGeom};
use crate::backend::Cpu;
use crate::tensor::Element;

/// `Σ_a w_a tanh(q_a + k_a)`.
fn score<T: Element>(q: &[T], k: &[T], w: &[T]) -> T {
    q.iter()
        .zip(k)
        .zip(w)
        .fold(T::zero(), |acc, ((&q, &k), &w)| acc + w * (q + k).tanh())
}

/// The rows of sequence `s` (steps in order) and where its weights start.
struct Item {
    q_rows: Vec<usize>,
    k_rows: Vec<usize>,
    weights_at: usize,
}

fn items(g: &AttentionGeom) -> Vec<Item> {
    let mut at = 0;
    (0..g.query.num_sequences())
        .map(|s| {
            let q_rows: Vec<usize> = (0..g.query.lengths()[s])
                .map(|t| g.query.row(s, t))
                .collect();
            let k_rows: Vec<usize> = (0..g.keys.lengths()[s]).map(|t| g.keys.row(s, t)).collect();
            let item = Item {
                weights_at: at,
                q_rows,
                k_rows,
            };
            at += item.q_rows.len() * item.k_rows.len();
            item
        })
        .collect()
}

fn row<T>(x: &[T], r: usize, d: usize) -> &[T] {
    &x[r * d..(r + 1) * d]
}

/// Softmax of `u` in place (max subtracted).
fn softmax<T: Element>(u: &mut [T]) {
    let m = u.iter().fold(T::neg_infinity(), |m, &x| m.max(x));
    let mut sum = T::zero();
    for x in u.iter_mut() {
        *x = (*x - m).exp();
        sum += *x;
    }
    for x in u.iter_mut() {
        *x = *x / sum;
    }
}

impl Attention for Cpu {
    fn additive_attention<T: Element>(
        &self,
        g: &AttentionGeom,
        [q, k, v, w]: [&[T]; 4],
        weights: &mut [T],
        out: &mut [T],
    ) {
        let (a, h) = (g.dim, g.value_dim);
        for it in items(g) {
            let tk = it.k_rows.len();
            for (i, &qr) in it.q_rows.iter().enumerate() {
                let at = it.weights_at + i * tk;
                let alpha = &mut weights[at..at + tk];
                let qi = row(q, qr, a);
                for (u, &kr) in alpha.iter_mut().zip(&it.k_rows) {
                    *u = score(qi, row(k, kr, a), w);
                }
                softmax(alpha);
                let y = &mut out[qr * h..(qr + 1) * h];
                y.fill(T::zero());
                for (&al, &kr) in alpha.iter().zip(&it.k_rows) {
                    for (y, &x) in y.iter_mut().zip(row(v, kr, h)) {
                        *y += al * x;
                    }
                }
            }
        }
    }

    fn additive_attention_backward<T: Element>(
        &self,
        g: &AttentionGeom,
        [q, k, v, w]: [&[T]; 4],
        weights: &[T],
        dout: &[T],
        grads: &mut [T],
    ) {
        let (a, h) = (g.dim, g.value_dim);
        let (nq, nk) = (g.query.total(), g.keys.total());
        let (dq, rest) = grads.split_at_mut(nq * a);
        let (dk, rest) = rest.split_at_mut(nk * a);
        let (dv, dw) = rest.split_at_mut(nk * h);
        let mut du: Vec<T> = Vec::new();
        for it in items(g) {
            let tk = it.k_rows.len();
            du.resize(tk, T::zero());
            for (i, &qr) in it.q_rows.iter().enumerate() {
                let at = it.weights_at + i * tk;
                let alpha = &weights[at..at + tk];
                let gi = row(dout, qr, h);
                // ∂α_j = g_i·v_j, ∂v_j += α_j g_i
                for ((d, &al), &kr) in du.iter_mut().zip(alpha).zip(&it.k_rows) {
                    *d = gi.iter().zip(row(v, kr, h)).map(|(&g, &x)| g * x).sum();
                    for (dv, &g) in dv[kr * h..(kr + 1) * h].iter_mut().zip(gi) {
                        *dv += al * g;
                    }
                }
                // ∂u_j = α_j (∂α_j − Σ α ∂α)
                let c: T = du.iter().zip(alpha).map(|(&d, &al)| d * al).sum();
                for (d, &al) in du.iter_mut().zip(alpha) {
                    *d = al * (*d - c);
                }
                let qi = row(q, qr, a);
                for (&d, &kr) in du.iter().zip(&it.k_rows) {
                    let kj = row(k, kr, a);
                    for e in 0..a {
                        let t = (qi[e] + kj[e]).tanh();
                        dw[e] += d * t;
                        let dt = d * w[e] * (T::one() - t * t);
                        dq[qr * a + e] += dt;
                        dk[kr * a + e] += dt;
                    }
                }
            }
        }
    }
}
