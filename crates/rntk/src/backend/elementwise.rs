//! Element-wise math: unary functions, binary functions with NumPy broadcasting of
//! static axes (and of static operands over rows), clip/select over three operands,
//! and the plain moves and sums (fill, copy, add) every recipe uses.

use super::memory::{Memory, Operand, Par};
use crate::error::{Error, Result};
use crate::tensor::{Element, Shape};

/// An element-wise function of one operand.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum UnaryOp {
    Negate,
    Sigmoid,
    Tanh,
    Relu,
    LeakyRelu(f64),
    Elu,
    Softplus,
    Exp,
    Log,
    Sqrt,
    Square,
    Abs,
    Reciprocal,
    /// Identity forward, zero gradient.
    StopGradient,
    /// Identity (a named copy).
    Alias,
    /// Round down; zero gradient (as CNTK).
    Floor,
    Sin,
    Cos,
}

/// An element-wise function of two operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BinaryOp {
    Plus,
    Minus,
    ElementTimes,
    ElementDivide,
    Pow,
    /// Ties send the whole gradient to the second operand (as CNTK does).
    ElementMax,
    ElementMin,
    Equal,
    NotEqual,
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
    /// log(exp(a) + exp(b)), computed without overflow (CNTK's LogPlus).
    LogPlus,
}

/// An element-wise function of three operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TernaryOp {
    /// `clip(x, min, max)`; the gradient goes to `x` where `min ≤ x ≤ max`.
    Clip,
    /// `element_select(cond, a, b)`; the gradient goes to `a` where `cond ≠ 0`, else `b`.
    Select,
}

/// Most axes a broadcast sample may have (index state lives on the stack).
pub const MAX_RANK: usize = 8;

/// Index maps from an output element to the elements of `K` broadcast operands
/// (shapes aligned at their trailing axes; size-1 axes stretch), without heap
/// allocation.
#[derive(Clone, Debug)]
pub struct Broadcast<const K: usize> {
    rank: usize,
    dims: [usize; MAX_RANK],
    strides: [[usize; MAX_RANK]; K],
}

impl<const K: usize> Broadcast<K> {
    pub fn new(shapes: [&Shape; K], out: &Shape) -> Result<Self> {
        let r = out.rank();
        if r > MAX_RANK {
            return Err(Error::Unsupported(format!(
                "broadcasting beyond rank {MAX_RANK}"
            )));
        }
        let mut b = Broadcast {
            rank: r,
            dims: [1; MAX_RANK],
            strides: [[0; MAX_RANK]; K],
        };
        b.dims[..r].copy_from_slice(out.dims());
        for (sh, st) in shapes.iter().zip(b.strides.iter_mut()) {
            let mut acc = 1;
            for k in (0..sh.rank()).rev() {
                let d = sh.dims()[k];
                st[k + r - sh.rank()] = if d == 1 { 0 } else { acc };
                acc *= d;
            }
        }
        b.merge_axes();
        Ok(b)
    }

    /// Fold each axis into the next outer one where every operand steps through both as
    /// through one (stride of the outer = stride · extent of the inner), so the innermost
    /// axis is as long as it can be; the index map is unchanged.
    fn merge_axes(&mut self) {
        let mut k = self.rank;
        while k > 1 {
            k -= 1;
            let (o, i) = (k - 1, k);
            let (dout, din) = (self.dims[o], self.dims[i]);
            let st = &self.strides;
            let merged: Option<[usize; K]> = if din == 1 {
                Some(std::array::from_fn(|q| st[q][o]))
            } else if dout == 1 || st.iter().all(|s| s[o] == s[i] * din) {
                Some(std::array::from_fn(|q| st[q][i]))
            } else {
                None
            };
            if let Some(m) = merged {
                self.dims[o] = dout * din;
                for (s, v) in self.strides.iter_mut().zip(m) {
                    s[o] = v;
                    s.copy_within(i + 1..self.rank, i);
                    s[self.rank - 1] = 0;
                }
                self.dims.copy_within(i + 1..self.rank, i);
                self.rank -= 1;
                self.dims[self.rank] = 1;
            }
        }
    }

    /// Call `f(out_index, [first element in each operand], len, [step in each operand])`
    /// for every run of `len` consecutive output elements along the innermost axis, in
    /// row-major order (the runs cover what [`Broadcast::for_each`] visits, in its order).
    #[inline(always)]
    pub fn for_each_run(&self, mut f: impl FnMut(usize, [usize; K], usize, [usize; K])) {
        if self.rank == 0 {
            return f(0, [0; K], 1, [0; K]);
        }
        let last = self.rank - 1;
        let len = self.dims[last];
        let step = std::array::from_fn(|k| self.strides[k][last]);
        let runs: usize = self.dims[..last].iter().product();
        let mut idx = [0usize; MAX_RANK];
        let mut at = [0usize; K];
        for r in 0..runs {
            f(r * len, at, len, step);
            let mut k = last;
            while k > 0 {
                k -= 1;
                idx[k] += 1;
                for (a, st) in at.iter_mut().zip(&self.strides) {
                    *a += st[k];
                }
                if idx[k] < self.dims[k] {
                    break;
                }
                for (a, st) in at.iter_mut().zip(&self.strides) {
                    *a -= st[k] * self.dims[k];
                }
                idx[k] = 0;
            }
        }
    }

    /// Call `f(out_index, [element index in each operand])` for every output element,
    /// in row-major order.
    #[inline]
    pub fn for_each(&self, mut f: impl FnMut(usize, [usize; K])) {
        let total: usize = self.dims[..self.rank].iter().product();
        let mut idx = [0usize; MAX_RANK];
        let mut at = [0usize; K];
        for e in 0..total {
            f(e, at);
            // odometer increment
            let mut k = self.rank;
            while k > 0 {
                k -= 1;
                idx[k] += 1;
                for (a, st) in at.iter_mut().zip(&self.strides) {
                    *a += st[k];
                }
                if idx[k] < self.dims[k] {
                    break;
                }
                for (a, st) in at.iter_mut().zip(&self.strides) {
                    *a -= st[k] * self.dims[k];
                }
                idx[k] = 0;
            }
        }
    }
}

/// Sample sizes of the operands and the output of an element-wise op of `K` operands,
/// and the broadcast map when the sizes differ.
#[derive(Clone, Debug)]
pub struct Geom<const K: usize> {
    pub ins: [usize; K],
    pub out: usize,
    pub bcast: Option<Broadcast<K>>,
}

impl<const K: usize> Geom<K> {
    pub fn new(shapes: [&Shape; K], out: &Shape) -> Result<Self> {
        let ins = shapes.map(|s| s.numel());
        let no = out.numel();
        let bcast = if ins.iter().all(|&n| n == no) {
            None
        } else {
            Some(Broadcast::new(shapes, out)?)
        };
        Ok(Geom {
            ins,
            out: no,
            bcast,
        })
    }
}

/// Element-wise kernels.
pub trait Elementwise: Memory {
    /// `y = f(x)` over `rows.0` rows of `rows.1` elements.
    fn unary<T: Element>(
        &self,
        op: UnaryOp,
        x: Self::Ref<'_, T>,
        y: Self::Mut<'_, T>,
        rows: (usize, usize),
        par: Par,
    );
    /// `dx += dy · f'(x)` (`y = f(x)` is given where the derivative uses it).
    #[allow(clippy::too_many_arguments)]
    fn unary_backward<T: Element>(
        &self,
        op: UnaryOp,
        x: Self::Ref<'_, T>,
        y: Self::Ref<'_, T>,
        dy: Self::Ref<'_, T>,
        dx: Self::Mut<'_, T>,
        rows: (usize, usize),
        par: Par,
    );
    /// `out = f(a, b)` over `n` rows.
    #[allow(clippy::too_many_arguments)]
    fn binary<T: Element>(
        &self,
        op: BinaryOp,
        a: Operand<'_, Self, T>,
        b: Operand<'_, Self, T>,
        g: &Geom<2>,
        out: Self::Mut<'_, T>,
        n: usize,
        par: Par,
    );
    /// `din += dout · ∂f/∂a` (or `∂f/∂b` when `wrt_b`) over `n` rows; `din` is one
    /// sample for a static operand (its rows summed).
    #[allow(clippy::too_many_arguments)]
    fn binary_backward<T: Element>(
        &self,
        op: BinaryOp,
        wrt_b: bool,
        a: Operand<'_, Self, T>,
        b: Operand<'_, Self, T>,
        g: &Geom<2>,
        out: Self::Ref<'_, T>,
        dout: Self::Ref<'_, T>,
        din: Self::Mut<'_, T>,
        n: usize,
        par: Par,
    );
    /// `out = f(x0, x1, x2)` over `n` rows.
    fn ternary<T: Element>(
        &self,
        op: TernaryOp,
        x: [Operand<'_, Self, T>; 3],
        g: &Geom<3>,
        out: Self::Mut<'_, T>,
        n: usize,
    );
    /// `din += ` the gradient of operand `i` over `n` rows.
    #[allow(clippy::too_many_arguments)]
    fn ternary_backward<T: Element>(
        &self,
        op: TernaryOp,
        i: usize,
        x: [Operand<'_, Self, T>; 3],
        g: &Geom<3>,
        dout: Self::Ref<'_, T>,
        din: Self::Mut<'_, T>,
        n: usize,
    );
    /// Every element of `dst` set to `v`.
    fn fill<T: Element>(&self, dst: Self::Mut<'_, T>, v: T);
    /// Every element of `dst` set to zero, split over `par`'s threads when large (a
    /// gradient buffer before a backward pass).
    fn zero<T: Element>(&self, dst: Self::Mut<'_, T>, par: Par);
    /// `dst += v` element-wise.
    fn add_scalar<T: Element>(&self, dst: Self::Mut<'_, T>, v: T);
    /// `dst = src` (equal lengths).
    fn copy<T: Element>(&self, src: Self::Ref<'_, T>, dst: Self::Mut<'_, T>);
    /// `dst += src` (equal lengths).
    fn add<T: Element>(&self, src: Self::Ref<'_, T>, dst: Self::Mut<'_, T>, par: Par);
    /// `dst = a ⊙ b` (equal lengths).
    fn mul<T: Element>(&self, a: Self::Ref<'_, T>, b: Self::Ref<'_, T>, dst: Self::Mut<'_, T>);
    /// `dst += a ⊙ b` (equal lengths).
    fn add_product<T: Element>(
        &self,
        a: Self::Ref<'_, T>,
        b: Self::Ref<'_, T>,
        dst: Self::Mut<'_, T>,
    );
    /// `dst += Σ` of the consecutive `dst`-sized rows of `src`.
    fn sum_rows<T: Element>(&self, src: Self::Ref<'_, T>, dst: Self::Mut<'_, T>);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Operand `k`'s element for output element `e`, from the shapes directly.
    fn direct(shapes: &[&Shape], out: &Shape, e: usize) -> Vec<usize> {
        let od = out.dims();
        let mut idx = vec![0; od.len()];
        let mut rest = e;
        for k in (0..od.len()).rev() {
            idx[k] = rest % od[k];
            rest /= od[k];
        }
        shapes
            .iter()
            .map(|sh| {
                let off = od.len() - sh.rank();
                sh.dims().iter().enumerate().fold(0, |acc, (k, &d)| {
                    acc * d + if d == 1 { 0 } else { idx[k + off] }
                })
            })
            .collect()
    }

    #[test]
    fn merged_axes_and_runs_map_as_the_shapes_say() {
        let cases: &[(&[usize], &[usize], &[usize])] = &[
            (&[8, 5, 7], &[8, 1, 1], &[8, 5, 7]),
            (&[8, 5, 7], &[5, 7], &[8, 5, 7]),
            (&[3, 1, 4], &[3, 5, 1], &[3, 5, 4]),
            (&[2, 3, 4, 5], &[1, 3, 1, 5], &[2, 3, 4, 5]),
            (&[1, 1, 6], &[4, 1, 6], &[4, 1, 6]),
            (&[], &[3, 2], &[3, 2]),
            (&[1], &[1], &[1]),
        ];
        for &(a, b, o) in cases {
            let (a, b, o) = (Shape::from(a), Shape::from(b), Shape::from(o));
            let bc = Broadcast::new([&a, &b], &o).unwrap();
            let mut seen = Vec::new();
            bc.for_each(|e, at| {
                assert_eq!(at.to_vec(), direct(&[&a, &b], &o, e), "{a} {b} {o} e={e}");
                seen.push(e);
            });
            assert_eq!(seen, (0..o.numel()).collect::<Vec<_>>());
            let mut runs = Vec::new();
            bc.for_each_run(|e, at, len, step| {
                for t in 0..len {
                    let want = direct(&[&a, &b], &o, e + t);
                    assert_eq!(vec![at[0] + t * step[0], at[1] + t * step[1]], want);
                    runs.push(e + t);
                }
            });
            assert_eq!(runs, (0..o.numel()).collect::<Vec<_>>());
        }
    }
}
