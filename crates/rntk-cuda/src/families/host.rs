//! The host path: a kernel not yet written for the GPU runs the CPU kernel on copies
//! of its operands, every copy counted as an op read/write (so the conformance tests,
//! which expect none inside a minibatch, name it) and the call recorded in
//! [`Cuda::host_calls`]. Correct by construction, slow; each use is listed in
//! `crates/rntk-cuda/README.md`.

use crate::device::Cuda;
use crate::memory::{CMut, CRef, CudaBuf};
use rntk::backend::{Cpu, Memory, Operand};
use rntk::tensor::Element;

/// An operand's elements copied to the host.
pub(crate) struct HostOperand<T> {
    data: Vec<T>,
    per_row: bool,
}

impl<T: Element> HostOperand<T> {
    pub(crate) fn get(&self) -> Operand<'_, Cpu, T> {
        Operand {
            data: &self.data,
            per_row: self.per_row,
        }
    }
}

impl Cuda {
    /// Enter the host path for `kernel` (recorded).
    pub(crate) fn on_host(&self, kernel: &'static str) {
        self.host_call(kernel);
    }
    /// A view's elements on the host (a counted op read).
    pub(crate) fn fetch<T: Element>(&self, r: CRef<'_, T>) -> Vec<T> {
        self.read_host(r)
    }
    /// A writable view's current elements on the host (kernels that add into it).
    pub(crate) fn fetch_mut<T: Element>(&self, m: &CMut<'_, T>) -> Vec<T> {
        self.read_host(<Cuda as Memory>::freeze(m))
    }
    /// The host result back into the view (a counted op write).
    pub(crate) fn put<T: Element>(&self, v: &[T], m: CMut<'_, T>) {
        self.write_host(v, m)
    }
    /// A whole buffer on the host.
    pub(crate) fn fetch_buf<T: Element>(&self, b: &CudaBuf<T>) -> Vec<T> {
        self.read_host(<Cuda as Memory>::view(b))
    }
    /// A host vector as the whole of buffer `b` (resized to it; a counted op write).
    pub(crate) fn put_buf<T: Element>(&self, v: &[T], b: &mut CudaBuf<T>) {
        self.resize(b, v.len());
        self.write_host(v, <Cuda as Memory>::view_mut(b));
    }
    pub(crate) fn host_operand<T: Element>(&self, o: Operand<'_, Cuda, T>) -> HostOperand<T> {
        HostOperand {
            data: self.fetch(o.data),
            per_row: o.per_row,
        }
    }
}
