//! From arena views to the memory behind them, for one kernel call: with the arena
//! locked, each view becomes the slice of its slot that it names, and the CPU kernel
//! runs on those slices.
//!
//! Soundness: the arena is locked for the whole call, so no slot is allocated, freed
//! or resized by anyone else meanwhile; slices are made from `Vec::as_mut_ptr` (which
//! creates no reference to the elements, so earlier pointers stay valid); writable
//! views are exclusive by construction (made from `&mut` buffers, split only into
//! disjoint ranges), so no two slices handed to a kernel alias where one writes. The
//! slices must not outlive the call: `Arena::call` is the only way to get them.

use super::{AMut, ARef, Arena, ArenaBuf, ArenaSparse, Slots};
use crate::backend::{Arg, Cpu, MatMut, MatRef, Operand, SparseRows};
use crate::tensor::{Csr, Element};

/// The locked memory of one call.
pub(super) struct Cx {
    slots: *mut Slots,
}

impl Cx {
    /// The first element of a buffer's slot (dangling for a buffer without memory).
    fn base<T: Element>(&self, b: &ArenaBuf<T>) -> *mut T {
        if b.arena.is_none() {
            return std::ptr::NonNull::dangling().as_ptr();
        }
        // SAFETY: `slots` is the locked arena's memory (see `Arena::call`).
        unsafe { (*self.slots).vec_mut::<T>(b.slot).as_mut_ptr() }
    }
    /// The vector of a buffer's slot, for kernels that size their own buffers.
    ///
    /// # Safety
    /// As [`Resolve::get`]; the caller updates `b`'s length afterwards.
    pub(super) unsafe fn vec<'a, T: Element>(&self, b: &'a mut ArenaBuf<T>) -> &'a mut Vec<T> {
        &mut *((*self.slots).vec_mut::<T>(b.slot) as *mut Vec<T>)
    }
    fn csr<'a, T: Element>(&self, s: &'a ArenaSparse<T>) -> &'a Csr<T> {
        // SAFETY: as `base`; sparse matrices are never written by kernels.
        unsafe { &*((*self.slots).csr::<T>(s.buf.slot) as *const Csr<T>) }
    }
}

/// An arena-typed kernel argument and its CPU counterpart.
pub(super) trait Resolve {
    type Cpu;
    /// # Safety
    /// Only inside `Arena::call`, and the result must not outlive it.
    unsafe fn get(self, cx: &Cx) -> Self::Cpu;
}

impl<'a, T: Element> Resolve for ARef<'a, T> {
    type Cpu = &'a [T];
    unsafe fn get(self, cx: &Cx) -> &'a [T] {
        std::slice::from_raw_parts(cx.base(self.buf).add(self.off), self.len)
    }
}

impl<'a, T: Element> Resolve for AMut<'a, T> {
    type Cpu = &'a mut [T];
    unsafe fn get(self, cx: &Cx) -> &'a mut [T] {
        std::slice::from_raw_parts_mut(cx.base(self.buf).add(self.off), self.len)
    }
}

impl<R: Resolve> Resolve for Option<R> {
    type Cpu = Option<R::Cpu>;
    unsafe fn get(self, cx: &Cx) -> Self::Cpu {
        self.map(|r| r.get(cx))
    }
}

impl<R: Resolve, const N: usize> Resolve for [R; N] {
    type Cpu = [R::Cpu; N];
    unsafe fn get(self, cx: &Cx) -> Self::Cpu {
        self.map(|r| r.get(cx))
    }
}

impl<'a, T: Element> Resolve for Operand<'a, Arena, T> {
    type Cpu = Operand<'a, Cpu, T>;
    unsafe fn get(self, cx: &Cx) -> Self::Cpu {
        Operand {
            data: self.data.get(cx),
            per_row: self.per_row,
        }
    }
}

impl<'a, T: Element> Resolve for SparseRows<'a, Arena, T> {
    type Cpu = SparseRows<'a, Cpu, T>;
    unsafe fn get(self, cx: &Cx) -> Self::Cpu {
        SparseRows {
            m: cx.csr(self.m),
            r0: self.r0,
            r1: self.r1,
        }
    }
}

impl<'a, T: Element> Resolve for Arg<'a, Arena, T> {
    type Cpu = Arg<'a, Cpu, T>;
    unsafe fn get(self, cx: &Cx) -> Self::Cpu {
        match self {
            Arg::Rows(x) => Arg::Rows(x.get(cx)),
            Arg::Static(x) => Arg::Static(x.get(cx)),
            Arg::Sparse(s) => Arg::Sparse(s.get(cx)),
        }
    }
}

impl<'a, T: Element> Resolve for MatRef<'a, Arena, T> {
    type Cpu = MatRef<'a, Cpu, T>;
    unsafe fn get(self, cx: &Cx) -> Self::Cpu {
        MatRef {
            data: self.data.get(cx),
            rows: self.rows,
            cols: self.cols,
            rs: self.rs,
            cs: self.cs,
        }
    }
}

impl<'a, T: Element> Resolve for MatMut<'a, Arena, T> {
    type Cpu = MatMut<'a, Cpu, T>;
    unsafe fn get(self, cx: &Cx) -> Self::Cpu {
        MatMut {
            data: self.data.get(cx),
            rows: self.rows,
            cols: self.cols,
            rs: self.rs,
            cs: self.cs,
        }
    }
}

impl Arena {
    /// One kernel call on the arena's memory: `f` gets the locked memory to resolve
    /// its arguments with.
    pub(super) fn call<R>(&self, f: impl FnOnce(&Cx) -> R) -> R {
        self.with(|slots| f(&Cx { slots }))
    }
}
