//! `Elementwise` on the CPU: one specialized loop per common op (a per-element `match`
//! would block inlining and vectorization), sigmoid/tanh/exp through `simd/`, large
//! row blocks split over the pool's threads when the call's `Par` allows.

use super::par::row_blocks;
use super::{simd, Cpu};
use crate::backend::elementwise::{BinaryOp, Elementwise, Geom, TernaryOp, UnaryOp};
use crate::backend::{Operand, Par};
use crate::tensor::Element;
use rayon::prelude::*;

/// Rows `r0..r1` of a per-row operand of `d` elements (a static one unchanged).
fn rows_of<'a, T: Element>(
    x: Operand<'a, Cpu, T>,
    d: usize,
    r0: usize,
    r1: usize,
) -> Operand<'a, Cpu, T> {
    if x.per_row {
        Operand {
            data: &x.data[r0 * d..r1 * d],
            per_row: true,
        }
    } else {
        x
    }
}

/// Sample `r` of an operand of `d` elements.
#[inline(always)]
fn row<T>(x: &[T], per_row: bool, r: usize, d: usize) -> &[T] {
    if per_row {
        &x[r * d..(r + 1) * d]
    } else {
        &x[..d]
    }
}

#[inline(always)]
fn map<T: Element>(x: &[T], y: &mut [T], f: impl Fn(T) -> T) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o = f(v);
    }
}

fn unary_forward<T: Element>(op: UnaryOp, x: &[T], y: &mut [T]) {
    super::wide(
        #[inline(always)]
        || unary_forward_body(op, x, y),
    )
}

#[inline(always)]
fn unary_forward_body<T: Element>(op: UnaryOp, x: &[T], y: &mut [T]) {
    debug_assert_eq!(x.len(), y.len());
    let zero = T::zero();
    let one = T::one();
    match op {
        UnaryOp::Sigmoid => simd::sigmoid(x, y),
        UnaryOp::Tanh => simd::tanh(x, y),
        UnaryOp::Exp => simd::exp(x, y),
        UnaryOp::Negate => map(x, y, |v| -v),
        UnaryOp::Relu => map(x, y, |v| if v > zero { v } else { zero }),
        UnaryOp::LeakyRelu(a) => {
            let a = T::from_f64(a);
            map(x, y, |v| if v > zero { v } else { a * v })
        }
        UnaryOp::Elu => map(x, y, |v| if v > zero { v } else { v.exp() - one }),
        // log(1 + e^x) computed without overflow.
        UnaryOp::Softplus => map(x, y, |v| v.max(zero) + (-v.abs()).exp().ln_1p()),
        UnaryOp::Log => map(x, y, |v| v.ln()),
        UnaryOp::Sqrt => map(x, y, |v| v.sqrt()),
        UnaryOp::Square => map(x, y, |v| v * v),
        UnaryOp::Abs => map(x, y, |v| v.abs()),
        UnaryOp::Reciprocal => map(x, y, |v| one / v),
        UnaryOp::StopGradient | UnaryOp::Alias => y.copy_from_slice(x),
        UnaryOp::Floor => map(x, y, |v| v.floor()),
        UnaryOp::Sin => map(x, y, |v| v.sin()),
        UnaryOp::Cos => map(x, y, |v| v.cos()),
    }
}

/// `dx += dy * f'(x)`, using the saved output `y` where that is cheaper.
fn unary_grad<T: Element>(op: UnaryOp, x: &[T], y: &[T], dy: &[T], dx: &mut [T]) {
    super::wide(
        #[inline(always)]
        || unary_grad_body(op, x, y, dy, dx),
    )
}

#[inline(always)]
fn unary_grad_body<T: Element>(op: UnaryOp, x: &[T], y: &[T], dy: &[T], dx: &mut [T]) {
    let zero = T::zero();
    let one = T::one();
    let half = T::from_f64(0.5);
    let it = dx.iter_mut().zip(dy).zip(x.iter().zip(y));
    match op {
        UnaryOp::Negate => it.for_each(|((d, &g), _)| *d -= g),
        UnaryOp::Sigmoid => it.for_each(|((d, &g), (_, &s))| *d += g * s * (one - s)),
        UnaryOp::Tanh => it.for_each(|((d, &g), (_, &t))| *d += g * (one - t * t)),
        // (select, then add: vectorizes; adding 0 leaves d as it was but for −0.0)
        UnaryOp::Relu => it.for_each(|((d, &g), (&v, _))| *d += if v > zero { g } else { zero }),
        UnaryOp::LeakyRelu(a) => {
            let a = T::from_f64(a);
            // CNTK: leaky_relu'(0) = 1 (also at -0.0, which compares equal to 0)
            it.for_each(|((d, &g), (&v, _))| *d += if v >= zero { g } else { a * g })
        }
        UnaryOp::Elu => {
            it.for_each(|((d, &g), (&v, &o))| *d += if v > zero { g } else { g * (o + one) })
        }
        UnaryOp::Softplus => it.for_each(|((d, &g), (&v, _))| *d += g / (one + (-v).exp())),
        UnaryOp::Exp => it.for_each(|((d, &g), (_, &o))| *d += g * o),
        UnaryOp::Log => it.for_each(|((d, &g), (&v, _))| *d += g / v),
        UnaryOp::Sqrt => it.for_each(|((d, &g), (_, &o))| *d += g * half / o),
        UnaryOp::Square => it.for_each(|((d, &g), (&v, _))| *d += g * (v + v)),
        UnaryOp::Abs => it.for_each(|((d, &g), (&v, _))| {
            if v > zero {
                *d += g
            } else if v < zero {
                *d -= g
            }
        }),
        UnaryOp::Reciprocal => it.for_each(|((d, &g), (_, &o))| *d -= g * o * o),
        UnaryOp::StopGradient | UnaryOp::Floor => {}
        UnaryOp::Alias => it.for_each(|((d, &g), _)| *d += g),
        UnaryOp::Sin => it.for_each(|((d, &g), (&v, _))| *d += g * v.cos()),
        UnaryOp::Cos => it.for_each(|((d, &g), (&v, _))| *d -= g * v.sin()),
    }
}

impl BinaryOp {
    #[inline(always)]
    fn apply<T: Element>(self, a: T, b: T) -> T {
        let t = |c: bool| if c { T::one() } else { T::zero() };
        match self {
            BinaryOp::Plus => a + b,
            BinaryOp::Minus => a - b,
            BinaryOp::ElementTimes => a * b,
            BinaryOp::ElementDivide => a / b,
            BinaryOp::Pow => a.powf(b),
            BinaryOp::ElementMax => {
                if a > b {
                    a
                } else {
                    b
                }
            }
            BinaryOp::ElementMin => {
                if a < b {
                    a
                } else {
                    b
                }
            }
            BinaryOp::Equal => t(a == b),
            BinaryOp::NotEqual => t(a != b),
            BinaryOp::Less => t(a < b),
            BinaryOp::LessEqual => t(a <= b),
            BinaryOp::Greater => t(a > b),
            BinaryOp::GreaterEqual => t(a >= b),
            BinaryOp::LogPlus => {
                let m = if a > b { a } else { b };
                m + (-(a - b).abs()).exp().ln_1p()
            }
        }
    }

    /// ∂f/∂a or ∂f/∂b at (a, b) with output `o`.
    #[inline(always)]
    fn partial<T: Element>(self, wrt_b: bool, a: T, b: T, o: T) -> T {
        let (zero, one) = (T::zero(), T::one());
        match (self, wrt_b) {
            (BinaryOp::Plus, _) => one,
            (BinaryOp::Minus, false) => one,
            (BinaryOp::Minus, true) => -one,
            (BinaryOp::ElementTimes, false) => b,
            (BinaryOp::ElementTimes, true) => a,
            (BinaryOp::ElementDivide, false) => one / b,
            (BinaryOp::ElementDivide, true) => -o / b,
            (BinaryOp::Pow, false) => b * a.powf(b - one),
            (BinaryOp::Pow, true) => o * a.ln(),
            (BinaryOp::ElementMax, false) => {
                if a > b {
                    one
                } else {
                    zero
                }
            }
            (BinaryOp::ElementMax, true) => {
                if a > b {
                    zero
                } else {
                    one
                }
            }
            (BinaryOp::ElementMin, false) => {
                if a < b {
                    one
                } else {
                    zero
                }
            }
            (BinaryOp::ElementMin, true) => {
                if a < b {
                    zero
                } else {
                    one
                }
            }
            // ∂/∂a log(eᵃ + eᵇ) = eᵃ⁻ᵒ
            (BinaryOp::LogPlus, false) => (a - o).exp(),
            (BinaryOp::LogPlus, true) => (b - o).exp(),
            _ => zero,
        }
    }
}

/// One binary node over a block of `n` rows, on this thread.
struct Bin<'a, 'g, T> {
    a: &'a [T],
    ra: bool,
    b: &'a [T],
    rb: bool,
    g: &'g Geom<2>,
}

impl<T: Element> Bin<'_, '_, T> {
    #[inline(always)]
    fn forward(&self, f: impl Fn(T, T) -> T, out: &mut [T], n: usize) {
        let ([na, nb], no) = (self.g.ins, self.g.out);
        if self.g.bcast.is_none() && self.ra && self.rb {
            // both per-row, same shape: one flat loop over every row
            for ((o, &x), &y) in out[..n * no]
                .iter_mut()
                .zip(&self.a[..n * na])
                .zip(&self.b[..n * nb])
            {
                *o = f(x, y);
            }
            return;
        }
        for r in 0..n {
            let ar = row(self.a, self.ra, r, na);
            let br = row(self.b, self.rb, r, nb);
            let or = &mut out[r * no..(r + 1) * no];
            match &self.g.bcast {
                None => {
                    for ((o, &x), &y) in or.iter_mut().zip(ar).zip(br) {
                        *o = f(x, y);
                    }
                }
                Some(bc) => bc.for_each_run(
                    #[inline(always)]
                    |e, [i, j], len, [si, sj]| {
                        let o = &mut or[e..e + len];
                        match (si, sj) {
                            // the common broadcasts: a per-channel value over a plane
                            (1, 0) => {
                                let y = br[j];
                                o.iter_mut()
                                    .zip(&ar[i..i + len])
                                    .for_each(|(o, &x)| *o = f(x, y));
                            }
                            (0, 1) => {
                                let x = ar[i];
                                o.iter_mut()
                                    .zip(&br[j..j + len])
                                    .for_each(|(o, &y)| *o = f(x, y));
                            }
                            _ => o
                                .iter_mut()
                                .enumerate()
                                .for_each(|(t, o)| *o = f(ar[i + t * si], br[j + t * sj])),
                        }
                    },
                ),
            }
        }
    }

    /// `din += dout · ∂f/∂(a or b)`, with `d(x, y, out)` the partial.
    #[inline(always)]
    fn backward(
        &self,
        wrt_b: bool,
        d: impl Fn(T, T, T) -> T,
        (out, dout): (&[T], &[T]),
        din: &mut [T],
        n: usize,
    ) {
        let ([na, nb], no) = (self.g.ins, self.g.out);
        let per_row_din = if wrt_b { self.rb } else { self.ra };
        let nd = if wrt_b { nb } else { na };
        if self.g.bcast.is_none() && self.ra && self.rb {
            let lhs = self.a[..n * na].iter().zip(&self.b[..n * nb]);
            let it = din[..n * nd]
                .iter_mut()
                .zip(&dout[..n * no])
                .zip(lhs)
                .zip(&out[..n * no]);
            for (((dx, &g), (&x, &y)), &o) in it {
                *dx += g * d(x, y, o);
            }
            return;
        }
        for r in 0..n {
            let ar = row(self.a, self.ra, r, na);
            let br = row(self.b, self.rb, r, nb);
            let or = &out[r * no..(r + 1) * no];
            let gr = &dout[r * no..(r + 1) * no];
            let dr = if per_row_din {
                &mut din[r * nd..(r + 1) * nd]
            } else {
                &mut din[..]
            };
            match &self.g.bcast {
                None => {
                    for e in 0..no {
                        dr[e] += gr[e] * d(ar[e], br[e], or[e]);
                    }
                }
                Some(bc) => bc.for_each_run(
                    #[inline(always)]
                    |e, [x, y], len, [sx, sy]| {
                        let (at, step) = if wrt_b { (y, sy) } else { (x, sx) };
                        let term =
                            |t: usize| gr[e + t] * d(ar[x + t * sx], br[y + t * sy], or[e + t]);
                        if step == 0 {
                            // a value broadcast along the run: its gradient sums the run
                            // (the other operand along it at stride 1, as a bias over a
                            // plane: the same sum over exact slices, which vectorizes)
                            let (g, o) = (&gr[e..e + len], &or[e..e + len]);
                            dr[at] = match (sx, sy) {
                                (1, 0) => {
                                    let (xs, y) = (&ar[x..x + len], br[y]);
                                    run_sum_slices(dr[at], (g, xs, o), |x, o| d(x, y, o))
                                }
                                (0, 1) => {
                                    let (x, ys) = (ar[x], &br[y..y + len]);
                                    run_sum_slices(dr[at], (g, ys, o), |y, o| d(x, y, o))
                                }
                                _ => run_sum(dr[at], len, term),
                            };
                        } else {
                            for t in 0..len {
                                dr[at + t * step] += term(t);
                            }
                        }
                    },
                ),
            }
        }
    }
}

/// `acc + Σ_{t<len} term(t)`: element by element for short runs; from 32 terms on, in 8
/// interleaved partial sums (`t mod 8`) added pairwise, then the tail in order (8
/// independent chains instead of one: a per-channel bias over a plane sums 4–5× faster;
/// the order differs from the element-by-element one by rounding only).
#[inline(always)]
fn run_sum<T: Element>(acc: T, len: usize, term: impl Fn(usize) -> T) -> T {
    if len < 32 {
        return (0..len).fold(acc, |a, t| a + term(t));
    }
    let mut s = [T::zero(); 8];
    let full = len / 8 * 8;
    for c in (0..full).step_by(8) {
        for (l, p) in s.iter_mut().enumerate() {
            *p += term(c + l);
        }
    }
    let pairs = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    (full..len).fold(acc + pairs, |a, t| a + term(t))
}

/// [`run_sum`] of the terms `g[t] · d(v[t], o[t])` over slices of one length: the same
/// sums in the same order, without an index to check per term.
#[inline(always)]
fn run_sum_slices<T: Element>(acc: T, (g, v, o): (&[T], &[T], &[T]), d: impl Fn(T, T) -> T) -> T {
    let len = g.len();
    let (v, o) = (&v[..len], &o[..len]);
    if len < 32 {
        return (0..len).fold(acc, |a, t| a + g[t] * d(v[t], o[t]));
    }
    let mut s = [T::zero(); 8];
    let full = len / 8 * 8;
    let chunks = g
        .chunks_exact(8)
        .zip(v.chunks_exact(8))
        .zip(o.chunks_exact(8));
    for ((gc, vc), oc) in chunks {
        for (sl, ((&gv, &vv), &ov)) in s.iter_mut().zip(gc.iter().zip(vc).zip(oc)) {
            *sl += gv * d(vv, ov);
        }
    }
    let pairs = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    (full..len).fold(acc + pairs, |a, t| a + g[t] * d(v[t], o[t]))
}

fn binary_serial<T: Element>(
    op: BinaryOp,
    (a, b): (Operand<Cpu, T>, Operand<Cpu, T>),
    g: &Geom<2>,
    out: &mut [T],
    n: usize,
) {
    super::wide(
        #[inline(always)]
        || binary_serial_body(op, (a, b), g, out, n),
    )
}

#[inline(always)]
fn binary_serial_body<T: Element>(
    op: BinaryOp,
    (a, b): (Operand<Cpu, T>, Operand<Cpu, T>),
    g: &Geom<2>,
    out: &mut [T],
    n: usize,
) {
    let k = Bin {
        a: a.data,
        ra: a.per_row,
        b: b.data,
        rb: b.per_row,
        g,
    };
    match op {
        BinaryOp::Plus => k.forward(|x, y| x + y, out, n),
        BinaryOp::Minus => k.forward(|x, y| x - y, out, n),
        BinaryOp::ElementTimes => k.forward(|x, y| x * y, out, n),
        BinaryOp::ElementDivide => k.forward(|x, y| x / y, out, n),
        _ => k.forward(move |x, y| op.apply(x, y), out, n),
    }
}

fn binary_grad_serial<T: Element>(
    (op, wrt_b): (BinaryOp, bool),
    (a, b): (Operand<Cpu, T>, Operand<Cpu, T>),
    g: &Geom<2>,
    od: (&[T], &[T]),
    din: &mut [T],
    n: usize,
) {
    super::wide(
        #[inline(always)]
        || binary_grad_serial_body((op, wrt_b), (a, b), g, od, din, n),
    )
}

#[inline(always)]
fn binary_grad_serial_body<T: Element>(
    (op, wrt_b): (BinaryOp, bool),
    (a, b): (Operand<Cpu, T>, Operand<Cpu, T>),
    g: &Geom<2>,
    od: (&[T], &[T]),
    din: &mut [T],
    n: usize,
) {
    let k = Bin {
        a: a.data,
        ra: a.per_row,
        b: b.data,
        rb: b.per_row,
        g,
    };
    let one = T::one();
    match (op, wrt_b) {
        (BinaryOp::Plus, w) => k.backward(w, |_, _, _| one, od, din, n),
        (BinaryOp::Minus, false) => k.backward(false, |_, _, _| one, od, din, n),
        (BinaryOp::Minus, true) => k.backward(true, |_, _, _| -one, od, din, n),
        (BinaryOp::ElementTimes, false) => k.backward(false, |_, y, _| y, od, din, n),
        (BinaryOp::ElementTimes, true) => k.backward(true, |x, _, _| x, od, din, n),
        (op, w) => k.backward(w, move |x, y, o| op.partial(w, x, y, o), od, din, n),
    }
}

/// The three dense operands of clip/select with their per-row sample sizes (0 for a
/// static operand, which every row shares).
fn three<'a, T>(x: &[Operand<'a, Cpu, T>; 3], g: &Geom<3>) -> [(&'a [T], usize); 3]
where
    T: Element,
{
    let s = |k: usize| (x[k].data, if x[k].per_row { g.ins[k] } else { 0 });
    [s(0), s(1), s(2)]
}

/// `f(row, out_index, [element index in each operand's row])` over `n` rows.
fn rows3(g: &Geom<3>, n: usize, mut f: impl FnMut(usize, usize, [usize; 3])) {
    for r in 0..n {
        match &g.bcast {
            None => (0..g.out).for_each(|e| f(r, e, [e; 3])),
            Some(b) => b.for_each(|e, at| f(r, e, at)),
        }
    }
}

impl Elementwise for Cpu {
    fn unary<T: Element>(
        &self,
        op: UnaryOp,
        x: &[T],
        y: &mut [T],
        (n, d): (usize, usize),
        par: Par,
    ) {
        match row_blocks(par, n, d) {
            Some(rows) => y[..n * d]
                .par_chunks_mut(rows * d)
                .zip(x[..n * d].par_chunks(rows * d))
                .for_each(|(y, x)| unary_forward(op, x, y)),
            None => unary_forward(op, x, y),
        }
    }

    fn unary_backward<T: Element>(
        &self,
        op: UnaryOp,
        x: &[T],
        y: &[T],
        dy: &[T],
        dx: &mut [T],
        (n, d): (usize, usize),
        par: Par,
    ) {
        match row_blocks(par, n, d) {
            Some(rows) => {
                let c = rows * d;
                dx[..n * d]
                    .par_chunks_mut(c)
                    .enumerate()
                    .for_each(|(k, dx)| {
                        let at = k * c..k * c + dx.len();
                        unary_grad(op, &x[at.clone()], &y[at.clone()], &dy[at], dx)
                    })
            }
            None => unary_grad(op, x, y, dy, dx),
        }
    }

    fn binary<T: Element>(
        &self,
        op: BinaryOp,
        a: Operand<'_, Cpu, T>,
        b: Operand<'_, Cpu, T>,
        g: &Geom<2>,
        out: &mut [T],
        n: usize,
        par: Par,
    ) {
        let ([na, nb], no) = (g.ins, g.out);
        match row_blocks(par, n, no) {
            Some(rows) => out[..n * no]
                .par_chunks_mut(rows * no)
                .enumerate()
                .for_each(|(k, o)| {
                    let (r0, r1) = (k * rows, (k * rows + rows).min(n));
                    let ab = (rows_of(a, na, r0, r1), rows_of(b, nb, r0, r1));
                    binary_serial(op, ab, g, o, r1 - r0)
                }),
            None => binary_serial(op, (a, b), g, out, n),
        }
    }

    fn binary_backward<T: Element>(
        &self,
        op: BinaryOp,
        wrt_b: bool,
        a: Operand<'_, Cpu, T>,
        b: Operand<'_, Cpu, T>,
        g: &Geom<2>,
        out: &[T],
        dout: &[T],
        din: &mut [T],
        n: usize,
        par: Par,
    ) {
        let ([na, nb], no) = (g.ins, g.out);
        let (per_row, di) = if wrt_b {
            (b.per_row, nb)
        } else {
            (a.per_row, na)
        };
        if !per_row {
            // a static operand's gradient sums over rows: blocks of rows into partial
            // sums, added in block order (an order that depends on the thread count)
            if let Some(rows) = row_blocks(par, n, no).filter(|_| di <= no) {
                let parts: Vec<Vec<T>> = (0..n.div_ceil(rows))
                    .into_par_iter()
                    .map(|k| {
                        let (r0, r1) = (k * rows, (k * rows + rows).min(n));
                        let ab = (rows_of(a, na, r0, r1), rows_of(b, nb, r0, r1));
                        let od = (&out[r0 * no..r1 * no], &dout[r0 * no..r1 * no]);
                        let mut part = vec![T::zero(); di];
                        binary_grad_serial((op, wrt_b), ab, g, od, &mut part, r1 - r0);
                        part
                    })
                    .collect();
                for part in parts {
                    din[..di].iter_mut().zip(part).for_each(|(d, p)| *d += p);
                }
                return;
            }
        }
        let blocks = if per_row {
            row_blocks(par, n, no)
        } else {
            None
        };
        match blocks {
            Some(rows) => din[..n * di]
                .par_chunks_mut(rows * di)
                .enumerate()
                .for_each(|(k, d)| {
                    let (r0, r1) = (k * rows, (k * rows + rows).min(n));
                    let ab = (rows_of(a, na, r0, r1), rows_of(b, nb, r0, r1));
                    let od = (&out[r0 * no..r1 * no], &dout[r0 * no..r1 * no]);
                    binary_grad_serial((op, wrt_b), ab, g, od, d, r1 - r0)
                }),
            None => binary_grad_serial((op, wrt_b), (a, b), g, (out, dout), din, n),
        }
    }

    fn ternary<T: Element>(
        &self,
        op: TernaryOp,
        x: [Operand<'_, Cpu, T>; 3],
        g: &Geom<3>,
        out: &mut [T],
        n: usize,
    ) {
        let no = g.out;
        let [(a, sa), (b, sb), (c, sc)] = three(&x, g);
        match op {
            TernaryOp::Clip => rows3(g, n, |r, e, [i, j, k]| {
                let (v, l, h) = (a[r * sa + i], b[r * sb + j], c[r * sc + k]);
                out[r * no + e] = if v < l {
                    l
                } else if v > h {
                    h
                } else {
                    v
                };
            }),
            TernaryOp::Select => rows3(g, n, |r, e, [i, j, k]| {
                out[r * no + e] = if a[r * sa + i] != T::zero() {
                    b[r * sb + j]
                } else {
                    c[r * sc + k]
                };
            }),
        }
    }

    fn ternary_backward<T: Element>(
        &self,
        op: TernaryOp,
        i: usize,
        x: [Operand<'_, Cpu, T>; 3],
        g: &Geom<3>,
        dout: &[T],
        din: &mut [T],
        n: usize,
    ) {
        let no = g.out;
        let [(a, sa), (b, sb), (c, sc)] = three(&x, g);
        match op {
            // Only the clipped operand has a gradient (as in CNTK).
            TernaryOp::Clip if i == 0 => rows3(g, n, |r, e, [p, j, k]| {
                let (v, l, h) = (a[r * sa + p], b[r * sb + j], c[r * sc + k]);
                if v >= l && v <= h {
                    din[r * sa + p] += dout[r * no + e];
                }
            }),
            TernaryOp::Select if i > 0 => {
                let sd = if i == 1 { sb } else { sc };
                rows3(g, n, |r, e, [k, p, q]| {
                    let taken = a[r * sa + k] != T::zero();
                    if taken == (i == 1) {
                        let at = if i == 1 { p } else { q };
                        din[r * sd + at] += dout[r * no + e];
                    }
                })
            }
            _ => {}
        }
    }

    fn fill<T: Element>(&self, dst: &mut [T], v: T) {
        dst.fill(v);
    }

    fn zero<T: Element>(&self, dst: &mut [T], par: Par) {
        use super::par::{ZERO_CHUNK, ZERO_ELEMS};
        if par.is_parallel() && dst.len() >= ZERO_ELEMS {
            dst.par_chunks_mut(ZERO_CHUNK)
                .for_each(|c| c.fill(T::zero()));
        } else {
            dst.fill(T::zero());
        }
    }

    fn add_scalar<T: Element>(&self, dst: &mut [T], v: T) {
        dst.iter_mut().for_each(|g| *g += v);
    }

    fn copy<T: Element>(&self, src: &[T], dst: &mut [T]) {
        dst.copy_from_slice(src);
    }

    fn add<T: Element>(&self, src: &[T], dst: &mut [T], par: Par) {
        use super::par::{ADD_CHUNK, ADD_ELEMS};
        if dst.len() >= ADD_ELEMS && par.is_parallel() {
            dst.par_chunks_mut(ADD_CHUNK)
                .zip(src.par_chunks(ADD_CHUNK))
                .for_each(|(a, b)| a.iter_mut().zip(b).for_each(|(a, &b)| *a += b));
        } else {
            for (a, &b) in dst.iter_mut().zip(src) {
                *a += b;
            }
        }
    }

    fn mul<T: Element>(&self, a: &[T], b: &[T], dst: &mut [T]) {
        for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
            *d = x * y;
        }
    }

    fn add_product<T: Element>(&self, a: &[T], b: &[T], dst: &mut [T]) {
        for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
            *d += x * y;
        }
    }

    fn sum_rows<T: Element>(&self, src: &[T], dst: &mut [T]) {
        let n = dst.len();
        for chunk in src.chunks(n.max(1)) {
            for (d, &g) in dst.iter_mut().zip(chunk) {
                *d += g;
            }
        }
    }
}

#[cfg(test)]
#[path = "elementwise_tests.rs"]
mod tests;
