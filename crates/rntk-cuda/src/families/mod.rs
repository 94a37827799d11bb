//! The kernel families on the GPU, one file each, and the small helpers they share:
//! kernel arguments from views, broadcast index tables, the host path.

mod attention;
mod conv;
mod copies;
mod elementwise;
mod host;
mod losses;
mod products;
mod random;
mod recurrent;
mod reduce;
mod updates;

use crate::device::{Cuda, KArg};
use crate::memory::{CMut, CRef};
use cudarc::driver::CudaSlice;
use rntk::backend::elementwise::Geom;
use rntk::backend::Operand;
use rntk::tensor::Element;

/// A view's device address.
fn p<T>(r: CRef<'_, T>) -> KArg {
    KArg::U(r.ptr)
}

/// A writable view's device address.
fn pm<T>(m: &CMut<'_, T>) -> KArg {
    KArg::U(m.ptr)
}

fn u(n: usize) -> KArg {
    KArg::U(n as u64)
}

fn flag(b: bool) -> KArg {
    KArg::I(i32::from(b))
}

/// The row stride of an operand of `d` elements per row (0: static).
fn stride<T: Element>(o: &Operand<'_, Cuda, T>, d: usize) -> KArg {
    u(if o.per_row { d } else { 0 })
}

/// The null device pointer.
const NULL: KArg = KArg::U(0);

impl Cuda {
    /// The broadcast table of `g` on the device, or `None` when the operands are not
    /// broadcast.
    fn bcast_table<const K: usize>(&self, g: &Geom<K>) -> Option<(CudaSlice<u64>, u64)> {
        crate::tables::broadcast(g).map(|t| self.meta(&t))
    }
}

/// The address in a broadcast table option (null: none).
fn table(t: &Option<(CudaSlice<u64>, u64)>) -> KArg {
    KArg::U(t.as_ref().map_or(0, |t| t.1))
}
