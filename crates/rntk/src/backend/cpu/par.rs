//! Who runs on which thread, in one place: the CPU backend's pool and every size
//! threshold below which splitting work is not worth it.
//!
//! The executor (and a learner update) asks [`Cpu::scope`](super::Cpu) once per call
//! with the work the call will do; large calls run inside rntk's pool with
//! `Par::Rayon(threads)`, small ones on the caller's thread with `Par::Seq`. Kernels
//! receive that `Par` and split only when it allows and their own block is above the
//! threshold here — no kernel asks which thread it is on.

use crate::backend::Par;
use std::num::NonZeroUsize;

/// Elements of node outputs over the minibatch (rows × Σ per-row sizes) from which a
/// call runs inside the pool: entering a rayon pool from outside costs ~16 µs, paid
/// once per call instead of once per parallel kernel; tiny models (the seed's 5 µs
/// inference) never pay it.
pub const POOL_WORK: usize = 1 << 20;
/// Elements of a learner update (all its parameters) from which it runs in the pool.
pub const UPDATE_WORK: usize = 1 << 16;
/// Elements of an element-wise row block below which it stays on one thread.
pub const SPLIT_ELEMS: usize = 1 << 17;
/// Elements of a fused-loss row block below which it stays on one thread.
pub const LOSS_ELEMS: usize = 1 << 16;
/// Multiply-adds of a GEMM below which threads cost more than they save (~ a
/// 64×64×64 product).
pub const GEMM_FLOPS: usize = 1 << 18;
/// Multiply-adds of a packed-operand product (or one LSTM step) below which it stays
/// on one thread.
pub const PACKED_MACS: usize = 1 << 18;
/// Multiply-adds of a convolution call (elements, for pooling) below which it stays on
/// one thread.
pub const CONV_MACS: usize = 1 << 18;
/// Elements of a packing of a right operand from which its panels split.
pub const PACK_ELEMS: usize = 1 << 16;
/// Elements of a gradient buffer from which zeroing it splits (memory-bound).
pub const ZERO_ELEMS: usize = 1 << 16;
/// Chunk of a zeroing split.
pub const ZERO_CHUNK: usize = 1 << 15;
/// Elements of a scan's ∂/∂pre hand-over from which the add splits.
pub const ADD_ELEMS: usize = 1 << 18;
/// Chunk of a split add.
pub const ADD_CHUNK: usize = 1 << 16;
/// Elements per chunk of an Adam update split; the split needs four chunks.
pub const UPDATE_CHUNK: usize = 1 << 14;

/// rntk's pool: one per process, as many threads as rayon's default.
pub fn pool() -> &'static rayon::ThreadPool {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("rntk-{i}"))
            .build()
            .unwrap_or_else(|_| {
                // Thread creation refused (limits): a one-thread pool still works.
                rayon::ThreadPoolBuilder::new()
                    .num_threads(1)
                    .build()
                    .expect("a single-thread pool")
            })
    })
}

/// Run `f` in the pool with its parallelism when `parallel`, else `f(Par::Seq)` here.
pub fn run<R: Send>(parallel: bool, f: impl FnOnce(Par) -> R + Send) -> R {
    if !parallel {
        return f(Par::Seq);
    }
    let p = pool();
    let n = NonZeroUsize::new(p.current_num_threads()).unwrap_or(NonZeroUsize::MIN);
    p.install(|| f(Par::Rayon(n)))
}

/// Rows per block when `n` rows of `per_row` elements are split over `par`'s threads
/// (two blocks per thread), or `None` to stay on one thread.
pub fn row_blocks(par: Par, n: usize, per_row: usize) -> Option<usize> {
    if !par.is_parallel() || n < 2 || n * per_row < SPLIT_ELEMS {
        return None;
    }
    Some(n.div_ceil(2 * par.threads()))
}
