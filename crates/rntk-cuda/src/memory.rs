//! `Memory` on the GPU: a buffer is a device allocation (`CudaSlice<u8>` holding
//! elements of `T`, its capacity may exceed its length so a buffer that shrinks and
//! grows back is not reallocated); views are `(device pointer, length)`; transfers
//! are counted as rntk's conformance tests expect. Small host metadata (index tables,
//! row maps) goes up through [`Cuda::meta`], uncounted: it is plan data, not values.

use crate::device::{fault, Cuda};
use cudarc::driver::{result, CudaSlice, DevicePtr};
use rntk::backend::{Memory, OutOfMemory, Resident, Transfers};
use rntk::tensor::{Csr, DType, Device, Element, Storage};
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::atomic::Ordering;

/// Owned device memory for `len` elements of `T`.
pub struct CudaBuf<T> {
    /// The allocation (freed on drop); kernels use `ptr`.
    _mem: Option<CudaSlice<u8>>,
    pub(crate) ptr: u64,
    len: usize,
    cap: usize,
    _t: PhantomData<fn() -> T>,
}

impl<T> Default for CudaBuf<T> {
    fn default() -> Self {
        CudaBuf {
            _mem: None,
            ptr: 0,
            len: 0,
            cap: 0,
            _t: PhantomData,
        }
    }
}

/// A read-only view: a device pointer and a length.
pub struct CRef<'a, T> {
    pub(crate) ptr: u64,
    pub(crate) len: usize,
    _p: PhantomData<&'a T>,
}

impl<T> Clone for CRef<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for CRef<'_, T> {}
// SAFETY: a device address; the memory is only touched through the device's stream.
unsafe impl<T: Sync> Send for CRef<'_, T> {}
unsafe impl<T: Sync> Sync for CRef<'_, T> {}

/// A writable view, exclusive like `&mut` (made from `&mut` buffers, split only into
/// disjoint ranges).
pub struct CMut<'a, T> {
    pub(crate) ptr: u64,
    pub(crate) len: usize,
    _p: PhantomData<&'a mut T>,
}
// SAFETY: as CRef.
unsafe impl<T: Send> Send for CMut<'_, T> {}

impl<'a, T> CRef<'a, T> {
    pub(crate) fn new(ptr: u64, len: usize) -> Self {
        CRef {
            ptr,
            len,
            _p: PhantomData,
        }
    }
}

impl<'a, T> CMut<'a, T> {
    /// A writable view from its parts (the caller makes sure it is exclusive).
    pub(crate) fn from_raw(ptr: u64, len: usize) -> Self {
        CMut {
            ptr,
            len,
            _p: PhantomData,
        }
    }
}

/// Sparse rows on the GPU: the CSR arrays on the device (row pointers as u64), and the
/// host copy the few host-side kernels read.
pub struct CudaSparse<T> {
    pub(crate) host: Csr<T>,
    pub(crate) indptr: Option<CudaSlice<u64>>,
    pub(crate) indices: Option<CudaSlice<u32>>,
    pub(crate) values: CudaBuf<T>,
}

pub(crate) fn size<T>() -> usize {
    std::mem::size_of::<T>()
}

/// A host slice of elements as bytes (f32/f64: plain data).
fn bytes<T: Element>(s: &[T]) -> &[u8] {
    // SAFETY: Element is f32 or f64, plain old data with no padding.
    unsafe { std::slice::from_raw_parts(s.as_ptr() as *const u8, std::mem::size_of_val(s)) }
}

pub(crate) fn dev_ptr<X>(s: &CudaSlice<X>, c: &Cuda) -> u64 {
    s.device_ptr(&c.inner.stream).0
}

impl Cuda {
    /// A new device allocation of `n` zeroed `X`s (at least one, so it has an address).
    pub(crate) fn alloc_zeros<X: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits>(
        &self,
        n: usize,
    ) -> Result<CudaSlice<X>, OutOfMemory> {
        self.bind();
        self.inner
            .stream
            .alloc_zeros::<X>(n.max(1))
            .map_err(|_| OutOfMemory)
    }

    /// Host metadata (an index table) on the device for the next kernels; dropping the
    /// slice frees it in stream order.
    pub(crate) fn meta<X: cudarc::driver::DeviceRepr>(&self, v: &[X]) -> (CudaSlice<X>, u64) {
        self.bind();
        let s = if v.is_empty() {
            // SAFETY: one element nobody reads (a kernel given no items).
            unsafe { self.inner.stream.alloc::<X>(1) }
        } else {
            self.inner.stream.clone_htod(v)
        }
        .unwrap_or_else(|e| fault("uploading an index table", e));
        let p = dev_ptr(&s, self);
        (s, p)
    }

    fn grow<T: Element>(
        &self,
        b: &mut CudaBuf<T>,
        len: usize,
        keep: bool,
    ) -> Result<(), OutOfMemory> {
        if len <= b.cap {
            if keep && len > b.len {
                self.zero_range(
                    b.ptr + (b.len * size::<T>()) as u64,
                    (len - b.len) * size::<T>(),
                );
            }
            b.len = len;
            return Ok(());
        }
        let mem = self.alloc_zeros::<u8>(len * size::<T>())?;
        let ptr = dev_ptr(&mem, self);
        if keep && b.len > 0 {
            // SAFETY: both live allocations of at least b.len elements.
            unsafe { result::memcpy_dtod_async(ptr, b.ptr, b.len * size::<T>(), self.cu_stream()) }
                .unwrap_or_else(|e| fault("copying a buffer", e));
        }
        *b = CudaBuf {
            _mem: Some(mem),
            ptr,
            len,
            cap: len,
            _t: PhantomData,
        };
        Ok(())
    }

    /// The device's one stream (every kernel, copy and cuBLAS call is ordered on it;
    /// only downloads wait for it).
    pub(crate) fn cu_stream(&self) -> cudarc::driver::sys::CUstream {
        self.inner.stream.cu_stream()
    }

    pub(crate) fn zero_range(&self, ptr: u64, nbytes: usize) {
        if nbytes == 0 {
            return;
        }
        self.bind();
        // SAFETY: a range inside a live allocation.
        unsafe { result::memset_d8_async(ptr, 0, nbytes, self.cu_stream()) }
            .unwrap_or_else(|e| fault("zeroing", e));
    }

    fn copy_out<T: Element>(&self, src: CRef<'_, T>) -> Vec<T> {
        let mut v = vec![T::zero(); src.len];
        if src.len > 0 {
            self.bind();
            // SAFETY: src names src.len live elements.
            unsafe { result::memcpy_dtoh_sync(&mut v[..], src.ptr) }
                .unwrap_or_else(|e| fault("downloading", e));
        }
        v
    }

    fn copy_in<T: Element>(&self, src: &[T], dst: u64) {
        if src.is_empty() {
            return;
        }
        self.bind();
        // SAFETY: dst names src.len() live elements.
        unsafe { result::memcpy_htod_sync(dst, bytes(src)) }
            .unwrap_or_else(|e| fault("uploading", e));
    }
}

impl Memory for Cuda {
    type Buf<T: Element> = CudaBuf<T>;
    type Ref<'a, T: Element> = CRef<'a, T>;
    type Mut<'a, T: Element> = CMut<'a, T>;
    type Sparse<T: Element> = CudaSparse<T>;

    fn device(&self) -> Device {
        Device::Cuda(self.inner.ordinal)
    }
    fn len<T: Element>(b: &CudaBuf<T>) -> usize {
        b.len
    }
    fn view<T: Element>(b: &CudaBuf<T>) -> CRef<'_, T> {
        CRef::new(b.ptr, b.len)
    }
    fn view_mut<T: Element>(b: &mut CudaBuf<T>) -> CMut<'_, T> {
        CMut {
            ptr: b.ptr,
            len: b.len,
            _p: PhantomData,
        }
    }
    fn ref_len<T: Element>(r: CRef<'_, T>) -> usize {
        r.len
    }
    fn mut_len<T: Element>(m: &CMut<'_, T>) -> usize {
        m.len
    }
    fn sub<'a, T: Element>(r: Self::Ref<'a, T>, at: Range<usize>) -> Self::Ref<'a, T> {
        assert!(
            at.start <= at.end && at.end <= r.len,
            "GPU view {at:?} of {}",
            r.len
        );
        CRef::new(r.ptr + (at.start * size::<T>()) as u64, at.len())
    }
    fn sub_mut<'a, T: Element>(m: Self::Mut<'a, T>, at: Range<usize>) -> Self::Mut<'a, T> {
        assert!(
            at.start <= at.end && at.end <= m.len,
            "GPU view {at:?} of {}",
            m.len
        );
        CMut {
            ptr: m.ptr + (at.start * size::<T>()) as u64,
            len: at.len(),
            _p: PhantomData,
        }
    }
    fn reborrow<'b, T: Element>(m: &'b mut CMut<'_, T>) -> CMut<'b, T> {
        CMut {
            ptr: m.ptr,
            len: m.len,
            _p: PhantomData,
        }
    }
    fn freeze<'b, T: Element>(m: &'b CMut<'_, T>) -> CRef<'b, T> {
        CRef::new(m.ptr, m.len)
    }
    fn split_at<'a, T: Element>(
        m: Self::Mut<'a, T>,
        at: usize,
    ) -> (Self::Mut<'a, T>, Self::Mut<'a, T>) {
        assert!(at <= m.len, "GPU split at {at} of {}", m.len);
        let hi = CMut {
            ptr: m.ptr + (at * size::<T>()) as u64,
            len: m.len - at,
            _p: PhantomData,
        };
        (
            CMut {
                ptr: m.ptr,
                len: at,
                _p: PhantomData,
            },
            hi,
        )
    }
    fn resize<T: Element>(&self, b: &mut CudaBuf<T>, len: usize) {
        if self.try_resize(b, len).is_err() {
            fault(
                "allocating",
                format!("{len} × {} (out of GPU memory)", T::DTYPE),
            );
        }
    }
    fn try_resize<T: Element>(&self, b: &mut CudaBuf<T>, len: usize) -> Result<(), OutOfMemory> {
        self.grow(b, len, true)
    }
    fn upload<T: Element>(&self, src: &[T], dst: &mut CudaBuf<T>) {
        self.count(&self.inner.uploads);
        if self.grow(dst, src.len(), false).is_err() {
            fault(
                "allocating",
                format!("{} × {} (out of GPU memory)", src.len(), T::DTYPE),
            );
        }
        self.copy_in(src, dst.ptr);
    }
    fn download<T: Element>(&self, src: CRef<'_, T>) -> Vec<T> {
        self.count(&self.inner.downloads);
        self.copy_out(src)
    }
    fn upload_sparse<T: Element>(&self, csr: Csr<T>) -> CudaSparse<T> {
        self.count(&self.inner.uploads);
        let ptrs: Vec<u64> = csr.indptr.iter().map(|&p| p as u64).collect();
        let indptr = (!ptrs.is_empty()).then(|| self.meta(&ptrs).0);
        let indices = (!csr.indices.is_empty()).then(|| self.meta(&csr.indices).0);
        let mut values = CudaBuf::default();
        if self.grow(&mut values, csr.values.len(), false).is_err() {
            fault("allocating", "sparse values (out of GPU memory)");
        }
        self.copy_in(&csr.values, values.ptr);
        CudaSparse {
            host: csr,
            indptr,
            indices,
            values,
        }
    }
    fn sparse_rows<T: Element>(s: &CudaSparse<T>) -> usize {
        s.host.rows
    }
    fn read_host<T: Element>(&self, src: CRef<'_, T>) -> Vec<T> {
        self.count(&self.inner.op_reads);
        self.copy_out(src)
    }
    fn write_host<T: Element>(&self, src: &[T], dst: CMut<'_, T>) {
        self.count(&self.inner.op_writes);
        assert_eq!(src.len(), dst.len, "GPU write length");
        self.copy_in(src, dst.ptr);
    }
    fn resident<'s, T: Element>(&self, s: &'s Storage) -> Option<&'s CudaBuf<T>> {
        Resident::<Cuda, T>::get(self, s)
    }
    fn resident_mut<'s, T: Element>(&self, s: &'s mut Storage) -> Option<&'s mut CudaBuf<T>> {
        Resident::<Cuda, T>::get_mut(self, s)
    }
    fn wrap_storage<T: Element>(&self, b: CudaBuf<T>) -> Storage {
        Resident::wrap(self, b)
    }
    fn take_storage<T: Element>(&self, s: Storage) -> Result<CudaBuf<T>, Storage> {
        Resident::<Cuda, T>::unwrap(self, s)
    }
    fn make_resident(&self, s: &Storage) -> Storage {
        fn up<T: Element>(c: &Cuda, host: &Storage) -> Storage {
            let mut b = CudaBuf::default();
            c.upload(T::slice(host).unwrap_or(&[]), &mut b);
            c.wrap_storage::<T>(b)
        }
        if s.device() == Memory::device(self) {
            return s.clone();
        }
        let host = s.to_host();
        match host.dtype() {
            DType::F32 => up::<f32>(self, &host),
            DType::F64 => up::<f64>(self, &host),
        }
    }
    fn transfers(&self) -> Transfers {
        let i = &self.inner;
        Transfers {
            uploads: i.uploads.load(Ordering::Relaxed),
            downloads: i.downloads.load(Ordering::Relaxed),
            op_reads: i.op_reads.load(Ordering::Relaxed),
            op_writes: i.op_writes.load(Ordering::Relaxed),
        }
    }
}
