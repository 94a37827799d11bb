//! Additive attention on the CPU (the math is in `ops/attention.rs`): one pass per
//! query row of the block over its sequence's key steps; the scores are recomputed in
//! the backward (the `tanh` terms are `T_q·T_k·dim` values, the weights only
//! `T_q·T_k`). No allocation: a recurrent loop calls it once per time step.

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

fn row<T>(x: &[T], r: usize, d: usize) -> &[T] {
    &x[r * d..(r + 1) * d]
}

fn dot<T: Element>(a: &[T], b: &[T]) -> T {
    a.iter().zip(b).fold(T::zero(), |acc, (&x, &y)| acc + x * y)
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
        let (a, h, kmax) = (g.dim, g.value_dim, g.keys.max_len());
        for (qr, s) in g.block() {
            let tk = g.keys.lengths()[s];
            let alpha = &mut weights[qr * kmax..qr * kmax + tk];
            let qi = row(q, qr, a);
            for (u, kr) in alpha.iter_mut().zip(g.key_rows(s)) {
                *u = score(qi, row(k, kr, a), w);
            }
            softmax(alpha);
            let y = &mut out[qr * h..(qr + 1) * h];
            y.fill(T::zero());
            for (&al, kr) in alpha.iter().zip(g.key_rows(s)) {
                for (y, &x) in y.iter_mut().zip(row(v, kr, h)) {
                    *y += al * x;
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
        let (a, h, kmax) = (g.dim, g.value_dim, g.keys.max_len());
        let (nq, nk) = (g.query.total(), g.keys.total());
        let (dq, rest) = grads.split_at_mut(nq * a);
        let (dk, rest) = rest.split_at_mut(nk * a);
        let (dv, dw) = rest.split_at_mut(nk * h);
        for (qr, s) in g.block() {
            let tk = g.keys.lengths()[s];
            let alpha = &weights[qr * kmax..qr * kmax + tk];
            let gi = row(dout, qr, h);
            // ∂α_j = g_i·v_j, ∂v_j += α_j g_i; c = Σ_j α_j ∂α_j
            let mut c = T::zero();
            for (&al, kr) in alpha.iter().zip(g.key_rows(s)) {
                c += al * dot(gi, row(v, kr, h));
                for (dv, &g) in dv[kr * h..(kr + 1) * h].iter_mut().zip(gi) {
                    *dv += al * g;
                }
            }
            // ∂u_j = α_j (∂α_j − c), through tanh to q, k and w
            let qi = row(q, qr, a);
            for (&al, kr) in alpha.iter().zip(g.key_rows(s)) {
                let d = al * (dot(gi, row(v, kr, h)) - c);
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
