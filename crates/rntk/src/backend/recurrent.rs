//! The fused LSTM kernels: one cell step over a block of rows (CNTK's gate order
//! [i, g, f, o]) and a whole scan over packed sequences with its BPTT (see
//! `ops/lstm_scan.rs` for the math and `tests/engine/lstm_scan.rs` for the bit-for-bit check
//! against the step loop).

use super::memory::{Memory, Par};
use crate::tensor::{Element, PackedLayout};

/// Row strides of the LSTM cell's operands (0: one row shared by all rows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LstmStrides {
    pub cprev: usize,
    pub dh: usize,
    pub dc: usize,
    pub dcprev: usize,
}

/// Per row the cell keeps `[i, g, f, o, tanh(c)]` for its backward: 5N values.
pub const KEPT: usize = 5;

/// A scan of an `n`-unit LSTM over packed sequences, forward or (`reverse`) from the
/// last step to the first.
#[derive(Clone, Copy, Debug)]
pub struct ScanGeom<'a> {
    pub layout: &'a PackedLayout,
    pub n: usize,
    pub reverse: bool,
}

impl ScanGeom<'_> {
    /// Values of the scan's saved state: per row `[i, g, f, o, tanh c]` (5N), then per
    /// row the `h_prev` (N) and then the `c_prev` (N) the step read.
    pub fn saved_len(&self) -> usize {
        self.layout.total() * (KEPT + 2) * self.n
    }
    /// Where the `h_prev` rows start in the saved state.
    pub fn hprev_at(&self) -> usize {
        self.layout.total() * KEPT * self.n
    }
    /// Values of ∂/∂pre for every row; ∂/∂h0 and ∂/∂c0 follow in the gradient buffer.
    pub fn dpre_len(&self) -> usize {
        self.layout.total() * 4 * self.n
    }
}

/// The fused recurrent kernels.
pub trait Recurrent: Memory {
    /// The cell over `rows` rows: `pre` (rows × 4N) and `cprev` (row stride
    /// `cprev_stride`, 0 for one shared row) to `out = [h | c]` per row, keeping
    /// `[i, g, f, o, tanh(c)]` per row in `kept`.
    fn lstm_cell<T: Element>(
        &self,
        pre: Self::Ref<'_, T>,
        cprev: (Self::Ref<'_, T>, usize),
        kept: Self::Mut<'_, T>,
        out: Self::Mut<'_, T>,
        dims: (usize, usize),
    );
    /// The cell's vector-Jacobian product over `rows` rows: adds into `dpre`
    /// (rows × 4N) and `dcprev`.
    #[allow(clippy::too_many_arguments)]
    fn lstm_cell_backward<T: Element>(
        &self,
        kept: Self::Ref<'_, T>,
        cprev: Self::Ref<'_, T>,
        dh: Self::Ref<'_, T>,
        dc: Self::Ref<'_, T>,
        dpre: Option<Self::Mut<'_, T>>,
        dcprev: Option<Self::Mut<'_, T>>,
        strides: &LstmStrides,
        dims: (usize, usize),
    );
    /// The scan forward: `[pre_x, H, h0, c0]` to `out = [h | c]` per row; `saved` is
    /// resized to [`ScanGeom::saved_len`], `work` is scratch.
    fn lstm_scan<T: Element>(
        &self,
        g: &ScanGeom,
        args: [Self::Ref<'_, T>; 4],
        out: Self::Mut<'_, T>,
        saved: &mut Self::Buf<T>,
        work: &mut Self::Buf<T>,
        par: Par,
    );
    /// BPTT over every step: `grads` becomes `[∂pre of every row | ∂h0 | ∂c0]` (h0, c0
    /// of `init_lens` elements) from the gradient `dout` of `[h | c]`.
    #[allow(clippy::too_many_arguments)]
    fn lstm_scan_backward<T: Element>(
        &self,
        g: &ScanGeom,
        h: Self::Ref<'_, T>,
        init_lens: (usize, usize),
        dout: Self::Ref<'_, T>,
        saved: Self::Ref<'_, T>,
        grads: &mut Self::Buf<T>,
        work: &mut Self::Buf<T>,
        par: Par,
    );
}
