//! The index tables the host makes for kernels from rntk's geometry (plan data, not
//! values): per output element the element of each broadcast operand, a reduction's
//! first input per output and the offsets it reduces, a permutation's sources. Public
//! so the host emulation of the kernels (`tests/kernels_on_host/`) feeds them the
//! same tables the GPU gets.

use rntk::backend::copies::PermuteGeom;
use rntk::backend::elementwise::Geom;
use rntk::backend::reduce::ReduceGeom;

/// `K` entries per output element (operand `k`'s element at `K·e + k`), or `None` when
/// the operands are not broadcast.
pub fn broadcast<const K: usize>(g: &Geom<K>) -> Option<Vec<u64>> {
    let bc = g.bcast.as_ref()?;
    let mut t = vec![0u64; K * g.out];
    bc.for_each(|e, at| {
        for (k, &i) in at.iter().enumerate() {
            t[K * e + k] = i as u64;
        }
    });
    Some(t)
}

/// (per output element its first input element, the offsets from there it reduces).
pub fn reduce(g: &ReduceGeom) -> (Vec<u64>, Vec<u64>) {
    let mut bases = vec![0u64; g.out_numel()];
    g.for_each_out(|e, base| bases[e] = base as u64);
    let mut offs = Vec::with_capacity(g.count);
    g.for_each_in(0, |i| offs.push(i as u64));
    (bases, offs)
}

/// Per output element of a permutation, its input element.
pub fn permute(g: &PermuteGeom) -> Vec<u64> {
    let mut t = vec![0u64; g.numel()];
    g.for_each(|e, s| t[e] = s as u64);
    t
}
