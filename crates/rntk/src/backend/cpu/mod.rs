//! The CPU backend: host memory (`Vec<T>`, views are slices), GEMM through the `gemm`
//! crate with a packed-operand kernel for recurrent steps, vectorized element-wise
//! math (`simd/`, a scalar reference beside each vector kernel), and the pool and
//! size thresholds that decide threading (`par.rs`).

mod attention;
mod batchnorm;
pub mod conv;
mod copies;
mod elementwise;
mod gemm;
mod losses;
mod lstm;
mod lstm_scan;
mod packed;
pub mod par;
mod products;
mod random;
mod reduce;
mod simd;
pub mod update;

pub use gemm::{gemm, gemm_with_transposed, Mat, MatMut, SMALL_FLOPS};
pub use packed::{
    gates_packed_len, pack_gates, pack_rhs, pack_rhs_par, packed_available, packed_gemm, packed_len,
};
pub use simd::{exp, run_f32, sigmoid, simd_level, tanh, Kernel, SimdLevel};
pub(crate) use simd::{lstm_backward_rows, lstm_forward_rows, wide};

use super::memory::{Memory, OutOfMemory, Par, Transfers, Work};
use crate::tensor::{Csr, Device, Element, Storage};
use std::ops::Range;

/// The CPU: buffers are host vectors, so "transfers" are plain copies (not counted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cpu;

impl Memory for Cpu {
    type Buf<T: Element> = Vec<T>;
    type Ref<'a, T: Element> = &'a [T];
    type Mut<'a, T: Element> = &'a mut [T];
    type Sparse<T: Element> = Csr<T>;

    fn device(&self) -> Device {
        Device::Cpu
    }
    #[inline(always)]
    fn len<T: Element>(b: &Vec<T>) -> usize {
        b.len()
    }
    #[inline(always)]
    fn view<T: Element>(b: &Vec<T>) -> &[T] {
        b
    }
    #[inline(always)]
    fn view_mut<T: Element>(b: &mut Vec<T>) -> &mut [T] {
        b
    }
    #[inline(always)]
    fn ref_len<T: Element>(r: &[T]) -> usize {
        r.len()
    }
    #[inline(always)]
    fn mut_len<T: Element>(m: &&mut [T]) -> usize {
        m.len()
    }
    #[inline(always)]
    fn sub<'a, T: Element>(r: Self::Ref<'a, T>, at: Range<usize>) -> Self::Ref<'a, T> {
        &r[at]
    }
    #[inline(always)]
    fn sub_mut<'a, T: Element>(m: Self::Mut<'a, T>, at: Range<usize>) -> Self::Mut<'a, T> {
        &mut m[at]
    }
    #[inline(always)]
    fn reborrow<'b, T: Element>(m: &'b mut &mut [T]) -> &'b mut [T] {
        m
    }
    #[inline(always)]
    fn freeze<'b, T: Element>(m: &'b &mut [T]) -> &'b [T] {
        m
    }
    #[inline(always)]
    fn split_at<'a, T: Element>(
        m: Self::Mut<'a, T>,
        at: usize,
    ) -> (Self::Mut<'a, T>, Self::Mut<'a, T>) {
        m.split_at_mut(at)
    }
    #[inline]
    fn resize<T: Element>(&self, b: &mut Vec<T>, len: usize) {
        b.resize(len, T::zero());
    }
    fn try_resize<T: Element>(&self, b: &mut Vec<T>, len: usize) -> Result<(), OutOfMemory> {
        if len > b.len() {
            b.try_reserve(len - b.len()).map_err(|_| OutOfMemory)?;
        }
        b.resize(len, T::zero());
        Ok(())
    }
    fn upload<T: Element>(&self, src: &[T], dst: &mut Vec<T>) {
        dst.clear();
        dst.extend_from_slice(src);
    }
    fn download<T: Element>(&self, src: &[T]) -> Vec<T> {
        src.to_vec()
    }
    fn upload_sparse<T: Element>(&self, csr: Csr<T>) -> Csr<T> {
        csr
    }
    fn sparse_rows<T: Element>(s: &Csr<T>) -> usize {
        s.rows
    }
    fn read_host<T: Element>(&self, src: &[T]) -> Vec<T> {
        src.to_vec()
    }
    fn write_host<T: Element>(&self, src: &[T], dst: &mut [T]) {
        dst.copy_from_slice(src);
    }
    fn resident<'s, T: Element>(&self, s: &'s Storage) -> Option<&'s Vec<T>> {
        T::vec(s)
    }
    fn resident_mut<'s, T: Element>(&self, s: &'s mut Storage) -> Option<&'s mut Vec<T>> {
        T::vec_mut(s)
    }
    fn wrap_storage<T: Element>(&self, b: Vec<T>) -> Storage {
        T::wrap(b)
    }
    fn take_storage<T: Element>(&self, s: Storage) -> Result<Vec<T>, Storage> {
        T::unwrap_vec(s)
    }
    fn make_resident(&self, s: &Storage) -> Storage {
        s.to_host()
    }
    fn transfers(&self) -> Transfers {
        Transfers::default()
    }
    fn scope<R: Send>(&self, work: Work, f: impl FnOnce(Par) -> R + Send) -> R {
        let parallel = match work {
            Work::Pass(n) => n >= par::POOL_WORK,
            Work::Update(n) => n >= par::UPDATE_WORK,
        };
        par::run(parallel, f)
    }
}
