//! `Elementwise` on the GPU: one kernel per arity (the op a switch inside), broadcasts
//! through a host-made index table, static operands as row stride 0; gradients of
//! static or broadcast operands add atomically (summation order differs from the CPU's:
//! agreement within rounding, not bit for bit).

use super::{flag, p, pm, stride, table, u};
use crate::device::{Cuda, KArg};
use crate::memory::{CMut, CRef};
use rntk::backend::elementwise::{BinaryOp, Elementwise, Geom, TernaryOp, UnaryOp};
use rntk::backend::{Operand, Par};
use rntk::tensor::Element;

/// The op code (kernels/elementwise.cu) and parameter of a unary op.
fn unary_code(op: UnaryOp) -> (i32, f64) {
    match op {
        UnaryOp::Negate => (0, 0.0),
        UnaryOp::Sigmoid => (1, 0.0),
        UnaryOp::Tanh => (2, 0.0),
        UnaryOp::Relu => (3, 0.0),
        UnaryOp::LeakyRelu(a) => (4, a),
        UnaryOp::Elu => (5, 0.0),
        UnaryOp::Softplus => (6, 0.0),
        UnaryOp::Exp => (7, 0.0),
        UnaryOp::Log => (8, 0.0),
        UnaryOp::Sqrt => (9, 0.0),
        UnaryOp::Square => (10, 0.0),
        UnaryOp::Abs => (11, 0.0),
        UnaryOp::Reciprocal => (12, 0.0),
        UnaryOp::StopGradient => (13, 0.0),
        UnaryOp::Alias => (14, 0.0),
        UnaryOp::Floor => (15, 0.0),
        UnaryOp::Sin => (16, 0.0),
        UnaryOp::Cos => (17, 0.0),
    }
}

fn binary_code(op: BinaryOp) -> i32 {
    match op {
        BinaryOp::Plus => 0,
        BinaryOp::Minus => 1,
        BinaryOp::ElementTimes => 2,
        BinaryOp::ElementDivide => 3,
        BinaryOp::Pow => 4,
        BinaryOp::ElementMax => 5,
        BinaryOp::ElementMin => 6,
        BinaryOp::Equal => 7,
        BinaryOp::NotEqual => 8,
        BinaryOp::Less => 9,
        BinaryOp::LessEqual => 10,
        BinaryOp::Greater => 11,
        BinaryOp::GreaterEqual => 12,
        BinaryOp::LogPlus => 13,
    }
}

fn ternary_code(op: TernaryOp) -> i32 {
    match op {
        TernaryOp::Clip => 0,
        TernaryOp::Select => 1,
    }
}

/// The three operands as (address, row stride) arguments.
fn three<T: Element>(x: &[Operand<'_, Cuda, T>; 3], g: &Geom<3>) -> [KArg; 6] {
    [
        p(x[0].data),
        stride(&x[0], g.ins[0]),
        p(x[1].data),
        stride(&x[1], g.ins[1]),
        p(x[2].data),
        stride(&x[2], g.ins[2]),
    ]
}

impl Elementwise for Cuda {
    fn unary<T: Element>(
        &self,
        op: UnaryOp,
        x: CRef<'_, T>,
        y: CMut<'_, T>,
        (n, d): (usize, usize),
        _par: Par,
    ) {
        let (code, a) = unary_code(op);
        let args = [KArg::I(code), KArg::F(a), p(x), pm(&y), u(n * d)];
        self.launch::<T>("unary_fwd", n * d, &args);
    }

    fn unary_backward<T: Element>(
        &self,
        op: UnaryOp,
        x: CRef<'_, T>,
        y: CRef<'_, T>,
        dy: CRef<'_, T>,
        dx: CMut<'_, T>,
        (n, d): (usize, usize),
        _par: Par,
    ) {
        if matches!(op, UnaryOp::StopGradient | UnaryOp::Floor) {
            return; // zero gradient: dx unchanged, as on the CPU
        }
        let (code, a) = unary_code(op);
        let args = [
            KArg::I(code),
            KArg::F(a),
            p(x),
            p(y),
            p(dy),
            pm(&dx),
            u(n * d),
        ];
        self.launch::<T>("unary_bwd", n * d, &args);
    }

    fn binary<T: Element>(
        &self,
        op: BinaryOp,
        a: Operand<'_, Cuda, T>,
        b: Operand<'_, Cuda, T>,
        g: &Geom<2>,
        out: CMut<'_, T>,
        n: usize,
        _par: Par,
    ) {
        let t = self.bcast_table(g);
        let args = [
            KArg::I(binary_code(op)),
            p(a.data),
            stride(&a, g.ins[0]),
            p(b.data),
            stride(&b, g.ins[1]),
            pm(&out),
            u(n),
            u(g.out),
            table(&t),
        ];
        self.launch::<T>("binary_fwd", n * g.out, &args);
    }

    fn binary_backward<T: Element>(
        &self,
        op: BinaryOp,
        wrt_b: bool,
        a: Operand<'_, Cuda, T>,
        b: Operand<'_, Cuda, T>,
        g: &Geom<2>,
        out: CRef<'_, T>,
        dout: CRef<'_, T>,
        din: CMut<'_, T>,
        n: usize,
        _par: Par,
    ) {
        let t = self.bcast_table(g);
        let (per_row, nd) = if wrt_b {
            (b.per_row, g.ins[1])
        } else {
            (a.per_row, g.ins[0])
        };
        let atomic = !per_row || t.is_some();
        let args = [
            KArg::I(binary_code(op)),
            flag(wrt_b),
            p(a.data),
            stride(&a, g.ins[0]),
            p(b.data),
            stride(&b, g.ins[1]),
            p(out),
            p(dout),
            pm(&din),
            u(if per_row { nd } else { 0 }),
            flag(atomic),
            u(n),
            u(g.out),
            table(&t),
        ];
        self.launch::<T>("binary_bwd", n * g.out, &args);
    }

    fn ternary<T: Element>(
        &self,
        op: TernaryOp,
        x: [Operand<'_, Cuda, T>; 3],
        g: &Geom<3>,
        out: CMut<'_, T>,
        n: usize,
    ) {
        let t = self.bcast_table(g);
        let mut args = vec![KArg::I(ternary_code(op))];
        args.extend(three(&x, g));
        args.extend([pm(&out), u(n), u(g.out), table(&t)]);
        self.launch::<T>("ternary_fwd", n * g.out, &args);
    }

    fn ternary_backward<T: Element>(
        &self,
        op: TernaryOp,
        i: usize,
        x: [Operand<'_, Cuda, T>; 3],
        g: &Geom<3>,
        dout: CRef<'_, T>,
        din: CMut<'_, T>,
        n: usize,
    ) {
        let t = self.bcast_table(g);
        let mut args = vec![KArg::I(ternary_code(op)), KArg::I(i as i32)];
        args.extend(three(&x, g));
        let sd = if x[i].per_row { g.ins[i] } else { 0 };
        args.extend([p(dout), pm(&din), u(sd), u(n), u(g.out), table(&t)]);
        self.launch::<T>("ternary_bwd", n * g.out, &args);
    }

    fn fill<T: Element>(&self, dst: CMut<'_, T>, v: T) {
        let n = dst.len;
        self.launch::<T>("fill", n, &[pm(&dst), KArg::F(v.as_f64()), u(n)]);
    }

    fn zero<T: Element>(&self, dst: CMut<'_, T>, _par: Par) {
        self.zero_range(dst.ptr, dst.len * std::mem::size_of::<T>());
    }

    fn add_scalar<T: Element>(&self, dst: CMut<'_, T>, v: T) {
        let n = dst.len;
        self.launch::<T>("add_scalar", n, &[pm(&dst), KArg::F(v.as_f64()), u(n)]);
    }

    fn copy<T: Element>(&self, src: CRef<'_, T>, dst: CMut<'_, T>) {
        assert_eq!(src.len, dst.len, "GPU copy of {} into {}", src.len, dst.len);
        self.copy_dtod::<T>(src.ptr, dst.ptr, src.len);
    }

    fn add<T: Element>(&self, src: CRef<'_, T>, dst: CMut<'_, T>, _par: Par) {
        let n = dst.len.min(src.len);
        self.launch::<T>("add", n, &[p(src), pm(&dst), u(n)]);
    }

    fn mul<T: Element>(&self, a: CRef<'_, T>, b: CRef<'_, T>, dst: CMut<'_, T>) {
        let n = dst.len.min(a.len).min(b.len);
        self.launch::<T>("mul", n, &[p(a), p(b), pm(&dst), u(n)]);
    }

    fn add_product<T: Element>(&self, a: CRef<'_, T>, b: CRef<'_, T>, dst: CMut<'_, T>) {
        let n = dst.len.min(a.len).min(b.len);
        self.launch::<T>("add_product", n, &[p(a), p(b), pm(&dst), u(n)]);
    }

    fn sum_rows<T: Element>(&self, src: CRef<'_, T>, dst: CMut<'_, T>) {
        let d = dst.len;
        self.launch::<T>("sum_rows", d, &[p(src), u(src.len), pm(&dst), u(d)]);
    }
}

impl Cuda {
    /// Device-to-device copy of `n` elements.
    pub(crate) fn copy_dtod<T>(&self, src: u64, dst: u64, n: usize) {
        if n == 0 || src == dst {
            return;
        }
        self.bind();
        let bytes = n * std::mem::size_of::<T>();
        // SAFETY: both name n live elements (views of live buffers).
        unsafe { cudarc::driver::result::memcpy_dtod_async(dst, src, bytes, self.cu_stream()) }
            .unwrap_or_else(|e| crate::device::fault("copying", e));
    }
}
