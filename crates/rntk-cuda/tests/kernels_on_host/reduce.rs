//! The reduction kernels on the host, by the tables.

use super::{close, library, vals, M, P};
use rntk::backend::reduce::{ReduceGeom, ReduceOp};
use rntk::backend::{Cpu, Operand, Reductions};
use rntk::Shape;
use rntk_cuda::tables;

#[test]
fn reduction_kernels_follow_the_tables() {
    let Some(lib) = library() else { return };
    let shape = Shape::from([2, 3, 4]);
    let n = 2;
    let x = vals(n * 24, 4);
    for axes in [vec![1isize], vec![0, 2], vec![-1]] {
        let g = ReduceGeom::new(&shape, Some(&axes)).unwrap();
        let (bases, offs) = tables::reduce(&g);
        let on = g.out_numel();
        for (code, op) in [
            (0, ReduceOp::Sum),
            (1, ReduceOp::Mean),
            (2, ReduceOp::Max),
            (3, ReduceOp::Min),
            (4, ReduceOp::LogSumExp),
        ] {
            let (mut out, mut outc) = (vec![0.0; n * on], vec![0.0; n * on]);
            k!(
                lib,
                "reduce_fwd",
                fn(i32, P, u64, M, u64, u64, *const u64, *const u64, u64),
                code,
                x.as_ptr(),
                24,
                out.as_mut_ptr(),
                n as u64,
                on as u64,
                bases.as_ptr(),
                offs.as_ptr(),
                g.count as u64
            );
            let ox = Operand::<Cpu, f64> {
                data: &x,
                per_row: true,
            };
            Cpu.reduce(op, &g, ox, &mut outc, n);
            close(&format!("{op:?} over {axes:?}"), &out, &outc, 1e-14);
            let dout = vals(n * on, 6);
            let (mut d, mut dc) = (vec![0.5; n * 24], vec![0.5; n * 24]);
            k!(
                lib,
                "reduce_bwd",
                fn(i32, P, u64, P, P, M, u64, u64, *const u64, *const u64, u64),
                code,
                x.as_ptr(),
                24,
                outc.as_ptr(),
                dout.as_ptr(),
                d.as_mut_ptr(),
                n as u64,
                on as u64,
                bases.as_ptr(),
                offs.as_ptr(),
                g.count as u64
            );
            Cpu.reduce_backward(op, &g, ox, &outc, &dout, &mut dc, n);
            close(&format!("{op:?} backward over {axes:?}"), &d, &dc, 1e-14);
        }
    }
}
