//! The LSTM cell kernels on the host.

use super::{close, library, vals, M, P};
use rntk::backend::recurrent::LstmStrides;
use rntk::backend::{Cpu, Recurrent};

#[test]
fn the_lstm_cell_kernels_agree() {
    let Some(lib) = library() else { return };
    let (n, rows) = (7, 4);
    let pre = vals(rows * 4 * n, 1);
    let cprev = vals(rows * n, 2);
    let (mut kept, mut out) = (vec![0.0; rows * 5 * n], vec![0.0; rows * 2 * n]);
    let (mut keptc, mut outc) = (kept.clone(), out.clone());
    k!(
        lib,
        "lstm_cell_fwd",
        fn(P, P, u64, M, M, u64, u64),
        pre.as_ptr(),
        cprev.as_ptr(),
        n as u64,
        kept.as_mut_ptr(),
        out.as_mut_ptr(),
        n as u64,
        rows as u64
    );
    Cpu.lstm_cell(&pre, (&cprev, n), &mut keptc, &mut outc, (n, rows));
    close("lstm kept", &kept, &keptc, 1e-14);
    close("lstm out", &out, &outc, 1e-14);
    let (dh, dc) = (vals(rows * n, 3), vals(rows * n, 4));
    let (mut dpre, mut dcp) = (vals(rows * 4 * n, 5), vals(rows * n, 6));
    let (mut dprec, mut dcpc) = (dpre.clone(), dcp.clone());
    let s = LstmStrides {
        cprev: n,
        dh: n,
        dc: n,
        dcprev: n,
    };
    k!(
        lib,
        "lstm_cell_bwd",
        fn(P, P, P, P, M, M, u64, u64, u64, u64, u64, u64),
        keptc.as_ptr(),
        cprev.as_ptr(),
        dh.as_ptr(),
        dc.as_ptr(),
        dpre.as_mut_ptr(),
        dcp.as_mut_ptr(),
        n as u64,
        n as u64,
        n as u64,
        n as u64,
        n as u64,
        rows as u64
    );
    Cpu.lstm_cell_backward(
        &keptc,
        &cprev,
        &dh,
        &dc,
        Some(&mut dprec),
        Some(&mut dcpc),
        &s,
        (n, rows),
    );
    close("lstm dpre", &dpre, &dprec, 1e-14);
    close("lstm dcprev", &dcp, &dcpc, 1e-14);
}
