//! The arena backend: a device whose memory is an arena of its own. Buffers are
//! opaque handles (an arena id, a slot, a length), views are `(handle, offset,
//! length)`, and every copy between the host and the arena is counted
//! ([`Memory::transfers`]). Its kernels run the CPU kernels on the arena's memory
//! (device-side compute), but nothing outside this module ever sees a host slice of
//! an arena buffer: the tests run the op, layer, learner and training suites on it
//! and assert that results equal the CPU's and that no value crosses to the host
//! inside a minibatch beyond the feeds and the fetches.
//!
//! It is also the template for a real device: `kernels.rs` (with `conv.rs` and
//! `attention.rs`) shows every family a backend implements, `resolve.rs` what turns its
//! views into memory.

mod attention;
mod conv;
mod kernels;
mod resolve;

use super::dynamic::Resident;
use super::memory::{Memory, Transfers};
use crate::tensor::{Csr, Device, Element, Storage};
use std::any::Any;
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// One arena: its memory and its transfer counters. Clones share the arena.
#[derive(Clone)]
pub struct Arena {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Arena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Arena({})", self.inner.id)
    }
}

struct Inner {
    id: u64,
    slots: Mutex<Slots>,
    uploads: AtomicU64,
    downloads: AtomicU64,
    op_reads: AtomicU64,
    op_writes: AtomicU64,
}

/// The arena's memory: one typed allocation per slot (`Vec<T>` or `Csr<T>`).
#[derive(Default)]
pub(super) struct Slots {
    mem: Vec<Option<Box<dyn Any + Send>>>,
    free: Vec<usize>,
}

impl Slots {
    fn alloc(&mut self, m: Box<dyn Any + Send>) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.mem[i] = Some(m);
                i
            }
            None => {
                self.mem.push(Some(m));
                self.mem.len() - 1
            }
        }
    }
    pub(super) fn vec_mut<T: 'static>(&mut self, id: usize) -> &mut Vec<T> {
        self.mem[id]
            .as_mut()
            .and_then(|m| m.downcast_mut::<Vec<T>>())
            .expect("a live arena buffer of its type")
    }
    pub(super) fn csr<T: 'static>(&self, id: usize) -> &Csr<T> {
        self.mem[id]
            .as_ref()
            .and_then(|m| m.downcast_ref::<Csr<T>>())
            .expect("a live arena sparse matrix of its type")
    }
}

/// A buffer in an arena: a handle, no memory of its own.
pub struct ArenaBuf<T> {
    arena: Option<Arc<Inner>>,
    slot: usize,
    len: usize,
    _t: PhantomData<fn() -> T>,
}

impl<T> Default for ArenaBuf<T> {
    fn default() -> Self {
        ArenaBuf {
            arena: None,
            slot: usize::MAX,
            len: 0,
            _t: PhantomData,
        }
    }
}

impl<T> Drop for ArenaBuf<T> {
    fn drop(&mut self) {
        if let Some(a) = &self.arena {
            let mut s = lock(a);
            s.mem[self.slot] = None;
            s.free.push(self.slot);
        }
    }
}

/// A sparse matrix in an arena (its row pointers, indices and values in one slot).
pub struct ArenaSparse<T> {
    buf: ArenaBuf<T>,
    rows: usize,
}

/// A read-only view: `(buffer, offset, length)`.
pub struct ARef<'a, T> {
    buf: &'a ArenaBuf<T>,
    off: usize,
    len: usize,
}

impl<T> Clone for ARef<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for ARef<'_, T> {}

/// A writable view: `(buffer, offset, length)`, exclusive (made from `&mut` buffers
/// and split into disjoint ranges only).
pub struct AMut<'a, T> {
    buf: &'a ArenaBuf<T>,
    off: usize,
    len: usize,
    _excl: PhantomData<&'a mut T>,
}

fn lock(a: &Inner) -> MutexGuard<'_, Slots> {
    a.slots.lock().unwrap_or_else(|e| e.into_inner())
}

static NEXT_ARENA: AtomicU64 = AtomicU64::new(1);

impl Arena {
    /// A new, empty arena with its own device id and counters.
    pub fn new() -> Self {
        Arena {
            inner: Arc::new(Inner {
                id: NEXT_ARENA.fetch_add(1, Ordering::Relaxed),
                slots: Mutex::new(Slots::default()),
                uploads: AtomicU64::new(0),
                downloads: AtomicU64::new(0),
                op_reads: AtomicU64::new(0),
                op_writes: AtomicU64::new(0),
            }),
        }
    }

    /// Buffers alive in the arena (for leak checks).
    pub fn live_buffers(&self) -> usize {
        lock(&self.inner).mem.iter().filter(|m| m.is_some()).count()
    }

    fn count(&self, c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Run `f` with the arena's memory locked (one kernel call).
    pub(super) fn with<R>(&self, f: impl FnOnce(&mut Slots) -> R) -> R {
        f(&mut lock(&self.inner))
    }

    /// A new buffer holding `v` (no transfer: memory already on the device side).
    fn adopt<T: Element>(&self, v: Vec<T>) -> ArenaBuf<T> {
        let len = v.len();
        let slot = self.with(|s| s.alloc(Box::new(v)));
        ArenaBuf {
            arena: Some(self.inner.clone()),
            slot,
            len,
            _t: PhantomData,
        }
    }

    fn owns<T>(&self, b: &ArenaBuf<T>) -> bool {
        b.arena
            .as_ref()
            .is_some_and(|a| Arc::ptr_eq(a, &self.inner))
    }
}

impl Default for Arena {
    fn default() -> Self {
        Arena::new()
    }
}

impl Memory for Arena {
    type Buf<T: Element> = ArenaBuf<T>;
    type Ref<'a, T: Element> = ARef<'a, T>;
    type Mut<'a, T: Element> = AMut<'a, T>;
    type Sparse<T: Element> = ArenaSparse<T>;

    fn device(&self) -> Device {
        Device::Arena(self.inner.id)
    }
    fn len<T: Element>(b: &ArenaBuf<T>) -> usize {
        b.len
    }
    fn view<T: Element>(b: &ArenaBuf<T>) -> ARef<'_, T> {
        ARef {
            buf: b,
            off: 0,
            len: b.len,
        }
    }
    fn view_mut<T: Element>(b: &mut ArenaBuf<T>) -> AMut<'_, T> {
        AMut {
            off: 0,
            len: b.len,
            buf: b,
            _excl: PhantomData,
        }
    }
    fn ref_len<T: Element>(r: ARef<'_, T>) -> usize {
        r.len
    }
    fn mut_len<T: Element>(m: &AMut<'_, T>) -> usize {
        m.len
    }
    fn sub<'a, T: Element>(r: Self::Ref<'a, T>, at: Range<usize>) -> Self::Ref<'a, T> {
        assert!(
            at.start <= at.end && at.end <= r.len,
            "arena view {at:?} of {}",
            r.len
        );
        ARef {
            buf: r.buf,
            off: r.off + at.start,
            len: at.len(),
        }
    }
    fn sub_mut<'a, T: Element>(m: Self::Mut<'a, T>, at: Range<usize>) -> Self::Mut<'a, T> {
        assert!(
            at.start <= at.end && at.end <= m.len,
            "arena view {at:?} of {}",
            m.len
        );
        AMut {
            buf: m.buf,
            off: m.off + at.start,
            len: at.len(),
            _excl: PhantomData,
        }
    }
    fn reborrow<'b, T: Element>(m: &'b mut AMut<'_, T>) -> AMut<'b, T> {
        AMut {
            buf: m.buf,
            off: m.off,
            len: m.len,
            _excl: PhantomData,
        }
    }
    fn freeze<'b, T: Element>(m: &'b AMut<'_, T>) -> ARef<'b, T> {
        ARef {
            buf: m.buf,
            off: m.off,
            len: m.len,
        }
    }
    fn split_at<'a, T: Element>(
        m: Self::Mut<'a, T>,
        at: usize,
    ) -> (Self::Mut<'a, T>, Self::Mut<'a, T>) {
        assert!(at <= m.len, "arena split at {at} of {}", m.len);
        let lo = AMut {
            buf: m.buf,
            off: m.off,
            len: at,
            _excl: PhantomData,
        };
        let hi = AMut {
            buf: m.buf,
            off: m.off + at,
            len: m.len - at,
            _excl: PhantomData,
        };
        (lo, hi)
    }
    fn resize<T: Element>(&self, b: &mut ArenaBuf<T>, len: usize) {
        if !self.owns(b) {
            *b = self.adopt(vec![T::zero(); len]);
            return;
        }
        self.with(|s| s.vec_mut::<T>(b.slot).resize(len, T::zero()));
        b.len = len;
    }
    fn upload<T: Element>(&self, src: &[T], dst: &mut ArenaBuf<T>) {
        self.count(&self.inner.uploads);
        if !self.owns(dst) {
            *dst = self.adopt(src.to_vec());
            return;
        }
        self.with(|s| {
            let v = s.vec_mut::<T>(dst.slot);
            v.clear();
            v.extend_from_slice(src);
        });
        dst.len = src.len();
    }
    fn download<T: Element>(&self, src: ARef<'_, T>) -> Vec<T> {
        self.count(&self.inner.downloads);
        self.copy_out(src)
    }
    fn upload_sparse<T: Element>(&self, csr: Csr<T>) -> ArenaSparse<T> {
        self.count(&self.inner.uploads);
        let rows = csr.rows;
        let slot = self.with(|s| s.alloc(Box::new(csr)));
        ArenaSparse {
            buf: ArenaBuf {
                arena: Some(self.inner.clone()),
                slot,
                len: 0,
                _t: PhantomData,
            },
            rows,
        }
    }
    fn sparse_rows<T: Element>(s: &ArenaSparse<T>) -> usize {
        s.rows
    }
    fn read_host<T: Element>(&self, src: ARef<'_, T>) -> Vec<T> {
        self.count(&self.inner.op_reads);
        self.copy_out(src)
    }
    fn write_host<T: Element>(&self, src: &[T], dst: AMut<'_, T>) {
        self.count(&self.inner.op_writes);
        assert_eq!(src.len(), dst.len, "arena write length");
        self.with(|s| {
            s.vec_mut::<T>(dst.buf.slot)[dst.off..dst.off + dst.len].copy_from_slice(src)
        });
    }
    fn resident<'s, T: Element>(&self, s: &'s Storage) -> Option<&'s ArenaBuf<T>> {
        Resident::<Arena, T>::get(self, s)
    }
    fn resident_mut<'s, T: Element>(&self, s: &'s mut Storage) -> Option<&'s mut ArenaBuf<T>> {
        Resident::<Arena, T>::get_mut(self, s)
    }
    fn wrap_storage<T: Element>(&self, b: ArenaBuf<T>) -> Storage {
        Resident::wrap(self, b)
    }
    fn take_storage<T: Element>(&self, s: Storage) -> Result<ArenaBuf<T>, Storage> {
        Resident::<Arena, T>::unwrap(self, s)
    }
    fn make_resident(&self, s: &Storage) -> Storage {
        fn up<T: Element>(a: &Arena, host: &Storage) -> Storage {
            let mut b = ArenaBuf::default();
            a.upload(T::slice(host).unwrap_or(&[]), &mut b);
            a.wrap_storage::<T>(b)
        }
        if s.device() == self.device() {
            return s.clone();
        }
        let host = s.to_host();
        match host.dtype() {
            crate::tensor::DType::F32 => up::<f32>(self, &host),
            crate::tensor::DType::F64 => up::<f64>(self, &host),
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

impl Arena {
    /// A view's elements copied out (the caller counts the transfer).
    fn copy_out<T: Element>(&self, src: ARef<'_, T>) -> Vec<T> {
        if src.buf.arena.is_none() {
            return Vec::new();
        }
        self.with(|s| s.vec_mut::<T>(src.buf.slot)[src.off..src.off + src.len].to_vec())
    }
}
