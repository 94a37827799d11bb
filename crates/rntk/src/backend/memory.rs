//! The memory half of the kernel interface: a backend's own buffers, the views kernels
//! take, the transfers between host and device, and the degree of parallelism a call
//! may use.
//!
//! ```text
//!   Buf<T>   owned device memory (CPU: Vec<T>; a GPU: a device allocation)
//!     │ view / view_mut                    host ──upload──▶ Buf   (feeds, parameters)
//!   Ref<'a,T> / Mut<'a,T>  (buffer, offset, length)    Buf ──download──▶ host (fetches, saves)
//!     │ sub / sub_mut / split_at: narrower views, no copy
//!   kernels (products, element-wise, …) read Refs and write Muts
//! ```
//!
//! Views are the backend's own types, so the CPU's are plain slices (`&[T]`,
//! `&mut [T]`): a row block inside a recurrent loop is a subslice, monomorphized,
//! with no dynamic dispatch and no allocation. Layouts, shapes and other metadata stay
//! on the host; only values live in buffers.

use crate::tensor::{Csr, Device, Element, Storage};
use std::num::NonZeroUsize;
use std::ops::Range;

/// How many threads a kernel call may use (after faer's `Par`): decided once per call
/// by the caller (the executor, a learner), never probed by the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Par {
    /// On the calling thread only.
    Seq,
    /// Inside the backend's pool of this many threads.
    Rayon(NonZeroUsize),
}

impl Par {
    /// Threads the call may use (1 for `Seq`).
    pub fn threads(self) -> usize {
        match self {
            Par::Seq => 1,
            Par::Rayon(n) => n.get(),
        }
    }
    /// Whether splitting work between threads is possible at all.
    pub fn is_parallel(self) -> bool {
        self.threads() > 1
    }
}

/// A device could not allocate the memory asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfMemory;

/// What a call is about to do, for [`Memory::scope`] to choose its parallelism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// A forward or backward pass: rows × Σ per-row sizes of the nodes.
    Pass(usize),
    /// A learner update: elements of the parameters updated.
    Update(usize),
}

/// Counts of host↔device copies (a device backend keeps them; the CPU has none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transfers {
    /// Host → device copies of values: feeds, parameter init/load.
    pub uploads: u64,
    /// Device → host copies of values: fetched outputs, saves.
    pub downloads: u64,
    /// Device → host reads made by an op whose result depends on data
    /// (sequence.where's layout, ranking metrics): see ARCHITECTURE.md.
    pub op_reads: u64,
    /// Host → device writes of values an op computed on the host (the same few ops).
    pub op_writes: u64,
}

impl Transfers {
    /// What happened between `before` and `self`.
    pub fn since(&self, before: &Transfers) -> Transfers {
        Transfers {
            uploads: self.uploads - before.uploads,
            downloads: self.downloads - before.downloads,
            op_reads: self.op_reads - before.op_reads,
            op_writes: self.op_writes - before.op_writes,
        }
    }
}

/// Buffers, views and transfers of one device. Every kernel family extends it.
pub trait Memory: Clone + Send + Sync + 'static {
    /// Owned memory for `T`s on this device.
    type Buf<T: Element>: Default + Send + Sync + 'static;
    /// A read-only view `(buffer, offset, length)`.
    type Ref<'a, T: Element>: Copy + Send + Sync + 'a;
    /// A writable view `(buffer, offset, length)`, exclusive like `&mut`.
    type Mut<'a, T: Element>: Send + 'a;
    /// Sparse rows (CSR) on this device: the row pointers may stay on the host.
    type Sparse<T: Element>: Send + Sync + 'static;

    /// The device this backend computes on.
    fn device(&self) -> Device;

    /// Elements in `b`.
    fn len<T: Element>(b: &Self::Buf<T>) -> usize;
    /// All of `b`.
    fn view<T: Element>(b: &Self::Buf<T>) -> Self::Ref<'_, T>;
    /// All of `b`, writable.
    fn view_mut<T: Element>(b: &mut Self::Buf<T>) -> Self::Mut<'_, T>;
    /// Elements in a view.
    fn ref_len<T: Element>(r: Self::Ref<'_, T>) -> usize;
    /// Elements in a writable view.
    fn mut_len<T: Element>(m: &Self::Mut<'_, T>) -> usize;
    /// Elements `at` of a view.
    fn sub<'a, T: Element>(r: Self::Ref<'a, T>, at: Range<usize>) -> Self::Ref<'a, T>;
    /// Elements `at` of a writable view.
    fn sub_mut<'a, T: Element>(m: Self::Mut<'a, T>, at: Range<usize>) -> Self::Mut<'a, T>;
    /// A shorter-lived copy of a writable view (as `&mut *m`).
    fn reborrow<'b, T: Element>(m: &'b mut Self::Mut<'_, T>) -> Self::Mut<'b, T>;
    /// A writable view read through.
    fn freeze<'b, T: Element>(m: &'b Self::Mut<'_, T>) -> Self::Ref<'b, T>;
    /// Two disjoint writable views: `[0, at)` and `[at, len)`.
    fn split_at<'a, T: Element>(
        m: Self::Mut<'a, T>,
        at: usize,
    ) -> (Self::Mut<'a, T>, Self::Mut<'a, T>);

    /// Resize `b` to `len` elements: the first `min(old, len)` kept, new ones zero.
    fn resize<T: Element>(&self, b: &mut Self::Buf<T>, len: usize);
    /// [`Memory::resize`], or `Err` with `b` unchanged when the device cannot give the
    /// memory (a minibatch too large is then an error, not an abort).
    fn try_resize<T: Element>(&self, b: &mut Self::Buf<T>, len: usize) -> Result<(), OutOfMemory> {
        self.resize(b, len);
        Ok(())
    }
    /// Host → device: `dst` becomes a copy of `src` (a counted upload).
    fn upload<T: Element>(&self, src: &[T], dst: &mut Self::Buf<T>);
    /// Device → host: a copy of the view (a counted download).
    fn download<T: Element>(&self, src: Self::Ref<'_, T>) -> Vec<T>;
    /// Sparse rows to the device (a counted upload of indices and values).
    fn upload_sparse<T: Element>(&self, csr: Csr<T>) -> Self::Sparse<T>;
    /// Rows of a sparse matrix on this device.
    fn sparse_rows<T: Element>(s: &Self::Sparse<T>) -> usize;
    /// An op's read of a few device values it needs on the host (counted as an op
    /// read; only data-dependent ops do this).
    fn read_host<T: Element>(&self, src: Self::Ref<'_, T>) -> Vec<T>;
    /// An op's write of values it computed on the host (counted as an op write).
    fn write_host<T: Element>(&self, src: &[T], dst: Self::Mut<'_, T>);

    /// The buffer of a tensor's storage when it lives on this device (else `None`).
    fn resident<'s, T: Element>(&self, s: &'s Storage) -> Option<&'s Self::Buf<T>>;
    /// The buffer of a tensor's storage when it lives on this device, writable.
    fn resident_mut<'s, T: Element>(&self, s: &'s mut Storage) -> Option<&'s mut Self::Buf<T>>;
    /// A buffer as tensor storage (no copy).
    fn wrap_storage<T: Element>(&self, b: Self::Buf<T>) -> Storage;
    /// Tensor storage of this device back as a buffer (no copy); other storage is
    /// returned unchanged.
    fn take_storage<T: Element>(&self, s: Storage) -> std::result::Result<Self::Buf<T>, Storage>;
    /// `s` (host or another device) copied onto this device: parameter init/load.
    fn make_resident(&self, s: &Storage) -> Storage;
    /// Host↔device copies so far (zeros for a backend that does not count).
    fn transfers(&self) -> Transfers {
        Transfers::default()
    }

    /// Run `f` with the parallelism `work` deserves. The CPU enters its pool for large
    /// work; others run `f(Par::Seq)`.
    fn scope<R: Send>(&self, work: Work, f: impl FnOnce(Par) -> R + Send) -> R {
        let _ = work;
        f(Par::Seq)
    }
}

/// A buffer of backend `B`.
pub type Buf<B, T> = <B as Memory>::Buf<T>;
/// A read-only view of backend `B`.
pub type Ref<'a, B, T> = <B as Memory>::Ref<'a, T>;
/// A writable view of backend `B`.
pub type Mut<'a, B, T> = <B as Memory>::Mut<'a, T>;

/// A dense operand over `n` rows: one sample per row, or one sample shared by every row
/// (parameters, constants).
pub struct Operand<'a, B: Memory, T: Element> {
    pub data: B::Ref<'a, T>,
    pub per_row: bool,
}

impl<B: Memory, T: Element> Clone for Operand<'_, B, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<B: Memory, T: Element> Copy for Operand<'_, B, T> {}

/// Rows `r0..r1` of a sparse matrix.
pub struct SparseRows<'a, B: Memory, T: Element> {
    pub m: &'a B::Sparse<T>,
    pub r0: usize,
    pub r1: usize,
}

impl<B: Memory, T: Element> Clone for SparseRows<'_, B, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<B: Memory, T: Element> Copy for SparseRows<'_, B, T> {}

impl<B: Memory, T: Element> SparseRows<'_, B, T> {
    pub fn rows(&self) -> usize {
        self.r1 - self.r0
    }
}

/// One operand of an op over a block of `n` rows.
pub enum Arg<'a, B: Memory, T: Element> {
    /// `n` samples, one per row.
    Rows(B::Ref<'a, T>),
    /// One sample shared by every row (parameters, constants).
    Static(B::Ref<'a, T>),
    /// `n` sparse samples.
    Sparse(SparseRows<'a, B, T>),
}

impl<B: Memory, T: Element> Clone for Arg<'_, B, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<B: Memory, T: Element> Copy for Arg<'_, B, T> {}

impl<'a, B: Memory, T: Element> Arg<'a, B, T> {
    /// The dense data, if not sparse.
    pub fn dense(&self) -> Option<Operand<'a, B, T>> {
        match *self {
            Arg::Rows(data) => Some(Operand {
                data,
                per_row: true,
            }),
            Arg::Static(data) => Some(Operand {
                data,
                per_row: false,
            }),
            Arg::Sparse(_) => None,
        }
    }
    pub fn is_static(&self) -> bool {
        matches!(self, Arg::Static(_))
    }
    pub fn is_sparse(&self) -> bool {
        matches!(self, Arg::Sparse(_))
    }
}

/// A strided matrix view: element (i, j) is `data[i·rs + j·cs]`.
pub struct MatRef<'a, B: Memory, T: Element> {
    pub data: B::Ref<'a, T>,
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<B: Memory, T: Element> Clone for MatRef<'_, B, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<B: Memory, T: Element> Copy for MatRef<'_, B, T> {}

impl<'a, B: Memory, T: Element> MatRef<'a, B, T> {
    /// `data` as a `rows × cols` row-major matrix.
    pub fn row_major(data: B::Ref<'a, T>, rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }
    /// The transpose, as a view (no copy).
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }
}

/// A writable strided matrix view.
pub struct MatMut<'a, B: Memory, T: Element> {
    pub data: B::Mut<'a, T>,
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a, B: Memory, T: Element> MatMut<'a, B, T> {
    /// `data` as a `rows × cols` row-major matrix.
    pub fn row_major(data: B::Mut<'a, T>, rows: usize, cols: usize) -> Self {
        MatMut {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }
}
