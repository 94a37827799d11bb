//! The kernel interface: what a device must provide for rntk to run on it, by family.
//!
//! | family | trait | kernels |
//! |---|---|---|
//! | memory | [`Memory`] | buffers, views, host↔device transfers, [`Par`] |
//! | products | [`Products`] | GEMM on strided views, batched GEMM, sparse × dense |
//! | element-wise | [`Elementwise`] | unary, binary and ternary with broadcasting, fill/copy/add |
//! | reductions | [`Reductions`] | over static axes, over everything, batch normalization |
//! | softmax and fused losses | [`Losses`] | softmax, sequence softmax, hardmax, cross-entropy, errors |
//! | copies | [`Copies`] | slice, splice, permute, delays, row maps, one_hot, gather, densify |
//! | recurrent | [`Recurrent`] | the fused LSTM cell and scan |
//! | attention | [`Attention`] | additive attention of one sequence over another, masked per batch item |
//! | learner updates | [`Updates`] | clip → L2 → rule → L1 in one call per parameter |
//! | random numbers | [`Random`] | dropout masks |
//! | convolutions | [`Convolutions`] | convolution (forward, data and filter gradients), pooling, max unpooling |
//!
//! A device implements every family for its own [`Memory::Buf`] type and is then a
//! [`Backend`] (a blanket impl). The ops (`ops/`) keep the shape rules and the
//! forward/backward *recipes* and call kernels only through these traits; the
//! executor owns the buffers. [`cpu::Cpu`] is the reference implementation and the
//! default; [`arena::Arena`] keeps its buffers behind opaque handles in an arena of
//! its own and counts every host transfer — the proof, in the tests, that nothing
//! outside a backend reads its memory.
//!
//! Kernels are generic over the element type (`T: Element`, f32 or f64) and take
//! small host metadata (shapes, geometry structs, packed layouts, row maps) by
//! reference: layouts are plan data and stay on the host; only values live in
//! buffers.

pub mod arena;
pub mod attention;
pub mod conv;
pub mod copies;
pub mod cpu;
mod dynamic;
pub mod elementwise;
pub mod losses;
mod memory;
pub mod products;
pub mod random;
pub mod recurrent;
pub mod reduce;
pub mod roi;
pub mod updates;

pub use arena::Arena;
pub use attention::Attention;
pub use conv::Convolutions;
pub use copies::Copies;
pub use cpu::Cpu;
pub use dynamic::{backend_of, DynBackend, Resident};
pub use elementwise::Elementwise;
pub use losses::Losses;
pub use memory::{
    Arg, Buf, MatMut, MatRef, Memory, Mut, Operand, OutOfMemory, Par, Ref, SparseRows, Transfers,
    Work,
};
pub use products::Products;
pub use random::Random;
pub use recurrent::Recurrent;
pub use reduce::Reductions;
pub use updates::Updates;

/// A device rntk can run on: every kernel family. Implement the families; this trait
/// follows.
pub trait Backend:
    Memory
    + Products
    + Elementwise
    + Reductions
    + Losses
    + Copies
    + Recurrent
    + Attention
    + Updates
    + Random
    + Convolutions
{
}

impl<B> Backend for B where
    B: Memory
        + Products
        + Elementwise
        + Reductions
        + Losses
        + Copies
        + Recurrent
        + Attention
        + Updates
        + Random
        + Convolutions
{
}
