//! Element-wise binary ops with NumPy-style broadcasting of static axes (shapes are
//! aligned at their trailing axes; size-1 axes stretch) and broadcasting of static
//! operands over the rows of dynamic ones.

use super::{dense_info, expect_arity, join_axes, Arg, Inferred, RowCtx};
use crate::error::{Error, Result};
use crate::graph::VarInfo;
use crate::tensor::{Element, Shape};

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

impl BinaryOp {
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Plus => "Plus",
            BinaryOp::Minus => "Minus",
            BinaryOp::ElementTimes => "ElementTimes",
            BinaryOp::ElementDivide => "ElementDivide",
            BinaryOp::Pow => "Pow",
            BinaryOp::ElementMax => "ElementMax",
            BinaryOp::ElementMin => "ElementMin",
            BinaryOp::Equal => "Equal",
            BinaryOp::NotEqual => "NotEqual",
            BinaryOp::Less => "Less",
            BinaryOp::LessEqual => "LessEqual",
            BinaryOp::Greater => "Greater",
            BinaryOp::GreaterEqual => "GreaterEqual",
            BinaryOp::LogPlus => "LogPlus",
        }
    }

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

/// NumPy broadcast of two static shapes.
pub(crate) fn broadcast_shape(a: &Shape, b: &Shape) -> Option<Shape> {
    let r = a.rank().max(b.rank());
    let mut out = vec![0; r];
    for (i, o) in out.iter_mut().enumerate() {
        let da = if i + a.rank() >= r {
            a.dims()[i + a.rank() - r]
        } else {
            1
        };
        let db = if i + b.rank() >= r {
            b.dims()[i + b.rank() - r]
        } else {
            1
        };
        *o = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return None;
        };
    }
    Some(Shape::new(out))
}

pub(crate) fn infer(op: &str, name: &str, infos: &[VarInfo]) -> Result<Inferred> {
    expect_arity(op, name, infos, 2)?;
    let (a, b) = (&infos[0], &infos[1]);
    let shape = broadcast_shape(&a.shape, &b.shape).ok_or_else(|| {
        Error::shape(
            op,
            name,
            format!(
                "operand shapes {} and {} cannot be broadcast together",
                a.shape, b.shape
            ),
        )
    })?;
    let axes = join_axes(op, name, &[a, b])?;
    Ok(Inferred::one(dense_info(shape, a, axes)))
}

const MAX_RANK: usize = 8;

/// Index maps from an output element to the operands' elements, computed without
/// heap allocation (ranks up to 8).
struct Bcast {
    rank: usize,
    dims: [usize; MAX_RANK],
    sa: [usize; MAX_RANK],
    sb: [usize; MAX_RANK],
}

impl Bcast {
    fn new(a: &Shape, b: &Shape, out: &Shape) -> Result<Self> {
        let r = out.rank();
        if r > MAX_RANK {
            return Err(Error::Unsupported(format!(
                "broadcasting beyond rank {MAX_RANK}"
            )));
        }
        let mut s = Bcast {
            rank: r,
            dims: [1; MAX_RANK],
            sa: [0; MAX_RANK],
            sb: [0; MAX_RANK],
        };
        let strides = |sh: &Shape, st: &mut [usize; MAX_RANK]| {
            let mut acc = 1;
            for k in (0..sh.rank()).rev() {
                let d = sh.dims()[k];
                st[k + r - sh.rank()] = if d == 1 { 0 } else { acc };
                acc *= d;
            }
        };
        s.dims[..r].copy_from_slice(out.dims());
        strides(a, &mut s.sa);
        strides(b, &mut s.sb);
        Ok(s)
    }

    /// Call `f(out_index, a_index, b_index)` for every output element.
    #[inline]
    fn for_each(&self, mut f: impl FnMut(usize, usize, usize)) {
        let total: usize = self.dims[..self.rank].iter().product();
        let mut idx = [0usize; MAX_RANK];
        let (mut ia, mut ib) = (0usize, 0usize);
        for e in 0..total {
            f(e, ia, ib);
            // odometer increment
            let mut k = self.rank;
            while k > 0 {
                k -= 1;
                idx[k] += 1;
                ia += self.sa[k];
                ib += self.sb[k];
                if idx[k] < self.dims[k] {
                    break;
                }
                ia -= self.sa[k] * self.dims[k];
                ib -= self.sb[k] * self.dims[k];
                idx[k] = 0;
            }
        }
    }
}

fn operands<'a, T: Element>(
    op: BinaryOp,
    args: &[Arg<'a, T>],
) -> Result<(&'a [T], bool, &'a [T], bool)> {
    let d = |a: &Arg<'a, T>| {
        a.dense()
            .ok_or_else(|| Error::Unsupported(format!("{} on a sparse operand", op.name())))
    };
    Ok((
        d(&args[0])?,
        !args[0].is_static(),
        d(&args[1])?,
        !args[1].is_static(),
    ))
}

pub(crate) fn forward<T: Element>(
    op: BinaryOp,
    args: &[Arg<T>],
    shapes: &[Shape],
    out_shape: &Shape,
    out: &mut [T],
    ctx: RowCtx,
) -> Result<()> {
    let g = Geom::new(op, args, shapes, out_shape)?;
    // One specialized loop per common op: the per-element `match` would block
    // inlining and vectorization.
    match op {
        BinaryOp::Plus => g.forward(|x, y| x + y, out, ctx.n),
        BinaryOp::Minus => g.forward(|x, y| x - y, out, ctx.n),
        BinaryOp::ElementTimes => g.forward(|x, y| x * y, out, ctx.n),
        BinaryOp::ElementDivide => g.forward(|x, y| x / y, out, ctx.n),
        _ => g.forward(move |x, y| op.apply(x, y), out, ctx.n),
    }
    Ok(())
}

/// Operands and broadcast plan of one binary node over a block of rows.
struct Geom<'a, T> {
    a: &'a [T],
    ra: bool,
    b: &'a [T],
    rb: bool,
    na: usize,
    nb: usize,
    no: usize,
    bc: Option<Bcast>,
}

impl<'a, T: Element> Geom<'a, T> {
    fn new(op: BinaryOp, args: &[Arg<'a, T>], shapes: &[Shape], out_shape: &Shape) -> Result<Self> {
        let (a, ra, b, rb) = operands(op, args)?;
        let (na, nb, no) = (shapes[0].numel(), shapes[1].numel(), out_shape.numel());
        let bc = if na == no && nb == no {
            None
        } else {
            Some(Bcast::new(&shapes[0], &shapes[1], out_shape)?)
        };
        Ok(Geom {
            a,
            ra,
            b,
            rb,
            na,
            nb,
            no,
            bc,
        })
    }

    #[inline(always)]
    fn forward(&self, f: impl Fn(T, T) -> T, out: &mut [T], n: usize) {
        let (na, nb, no) = (self.na, self.nb, self.no);
        if self.bc.is_none() && self.ra && self.rb {
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
            let ar = if self.ra {
                &self.a[r * na..(r + 1) * na]
            } else {
                self.a
            };
            let br = if self.rb {
                &self.b[r * nb..(r + 1) * nb]
            } else {
                self.b
            };
            let or = &mut out[r * no..(r + 1) * no];
            match &self.bc {
                None => {
                    for ((o, &x), &y) in or.iter_mut().zip(ar).zip(br) {
                        *o = f(x, y);
                    }
                }
                Some(bc) => bc.for_each(|e, i, j| or[e] = f(ar[i], br[j])),
            }
        }
    }

    /// `din += dout · ∂f/∂(a or b)`, with `d(x, y, out)` the partial.
    #[inline(always)]
    fn backward(
        &self,
        wrt_b: bool,
        d: impl Fn(T, T, T) -> T,
        out: &[T],
        dout: &[T],
        din: &mut [T],
        n: usize,
    ) {
        let (na, nb, no) = (self.na, self.nb, self.no);
        let per_row_din = if wrt_b { self.rb } else { self.ra };
        let nd = if wrt_b { nb } else { na };
        if self.bc.is_none() && self.ra && self.rb {
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
            let ar = if self.ra {
                &self.a[r * na..(r + 1) * na]
            } else {
                self.a
            };
            let br = if self.rb {
                &self.b[r * nb..(r + 1) * nb]
            } else {
                self.b
            };
            let or = &out[r * no..(r + 1) * no];
            let gr = &dout[r * no..(r + 1) * no];
            let dr = if per_row_din {
                &mut din[r * nd..(r + 1) * nd]
            } else {
                &mut din[..]
            };
            match &self.bc {
                None => {
                    for e in 0..no {
                        dr[e] += gr[e] * d(ar[e], br[e], or[e]);
                    }
                }
                Some(bc) => bc.for_each(|e, x, y| {
                    dr[if wrt_b { y } else { x }] += gr[e] * d(ar[x], br[y], or[e]);
                }),
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<T: Element>(
    op: BinaryOp,
    i: usize,
    args: &[Arg<T>],
    shapes: &[Shape],
    out_shape: &Shape,
    out: &[T],
    dout: &[T],
    din: &mut [T],
    ctx: RowCtx,
) -> Result<()> {
    let g = Geom::new(op, args, shapes, out_shape)?;
    let n = ctx.n;
    let one = T::one();
    match (op, i == 1) {
        (BinaryOp::Plus, w) => g.backward(w, |_, _, _| one, out, dout, din, n),
        (BinaryOp::Minus, false) => g.backward(false, |_, _, _| one, out, dout, din, n),
        (BinaryOp::Minus, true) => g.backward(true, |_, _, _| -one, out, dout, din, n),
        (BinaryOp::ElementTimes, false) => g.backward(false, |_, y, _| y, out, dout, din, n),
        (BinaryOp::ElementTimes, true) => g.backward(true, |x, _, _| x, out, dout, din, n),
        (op, w) => g.backward(w, move |x, y, o| op.partial(w, x, y, o), out, dout, din, n),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn broadcast_shapes_follow_numpy() {
        let s = |d: &[usize]| Shape::from(d);
        assert_eq!(broadcast_shape(&s(&[2, 3]), &s(&[3])), Some(s(&[2, 3])));
        assert_eq!(broadcast_shape(&s(&[2, 3]), &s(&[2, 1])), Some(s(&[2, 3])));
        assert_eq!(broadcast_shape(&s(&[2, 3]), &s(&[])), Some(s(&[2, 3])));
        assert_eq!(broadcast_shape(&s(&[2, 3]), &s(&[2])), None);
    }
    #[test]
    fn bias_add_over_rows() {
        let x = [1.0f64, 2., 3., 4., 5., 6.];
        let b = [10.0f64, 20., 30.];
        let mut y = [0.0; 6];
        let sh = [Shape::from([3]), Shape::from([3])];
        let ctx = RowCtx {
            n: 2,
            row0: 0,
            training: false,
        };
        forward(
            BinaryOp::Plus,
            &[Arg::Rows(&x), Arg::Static(&b)],
            &sh,
            &Shape::from([3]),
            &mut y,
            ctx,
        )
        .unwrap();
        assert_eq!(y, [11., 22., 33., 14., 25., 36.]);
        let mut db = [0.0; 3];
        let g = [1.0; 6];
        backward(
            BinaryOp::Plus,
            1,
            &[Arg::Rows(&x), Arg::Static(&b)],
            &sh,
            &Shape::from([3]),
            &y,
            &g,
            &mut db,
            ctx,
        )
        .unwrap();
        assert_eq!(db, [2., 2., 2.]);
    }
}
