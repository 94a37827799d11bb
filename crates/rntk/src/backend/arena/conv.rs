//! The convolution family on the arena: convolutions, pooling, unpooling and ROI
//! pooling, each run by the CPU kernel on the arena's memory.

use super::resolve::Resolve;
use super::{AMut, ARef, Arena};
use crate::backend::conv::{ConvGeometry, Convolutions, PoolGeometry, PoolKind};
use crate::backend::roi::RoiGeometry;
use crate::backend::{Cpu, Par};
use crate::tensor::Element;

impl Convolutions for Arena {
    fn conv_forward<T: Element>(
        &self,
        g: &ConvGeometry,
        n: usize,
        x: ARef<'_, T>,
        w: ARef<'_, T>,
        y: AMut<'_, T>,
        acc: bool,
        par: Par,
    ) {
        self.call(|cx| unsafe { Cpu.conv_forward(g, n, x.get(cx), w.get(cx), y.get(cx), acc, par) })
    }
    fn conv_backward_data<T: Element>(
        &self,
        g: &ConvGeometry,
        n: usize,
        dy: ARef<'_, T>,
        w: ARef<'_, T>,
        dx: AMut<'_, T>,
        acc: bool,
        par: Par,
    ) {
        self.call(|cx| unsafe {
            Cpu.conv_backward_data(g, n, dy.get(cx), w.get(cx), dx.get(cx), acc, par)
        })
    }
    fn conv_backward_filter<T: Element>(
        &self,
        g: &ConvGeometry,
        n: usize,
        x: ARef<'_, T>,
        dy: ARef<'_, T>,
        dw: AMut<'_, T>,
        acc: bool,
        par: Par,
    ) {
        self.call(|cx| unsafe {
            Cpu.conv_backward_filter(g, n, x.get(cx), dy.get(cx), dw.get(cx), acc, par)
        })
    }
    fn pool_forward<T: Element>(
        &self,
        g: &PoolGeometry,
        kn: (PoolKind, usize),
        x: ARef<'_, T>,
        y: AMut<'_, T>,
        par: Par,
    ) {
        self.call(|cx| unsafe { Cpu.pool_forward(g, kn, x.get(cx), y.get(cx), par) })
    }
    fn pool_backward<T: Element>(
        &self,
        g: &PoolGeometry,
        kn: (PoolKind, usize),
        x: ARef<'_, T>,
        dy: ARef<'_, T>,
        dx: AMut<'_, T>,
        acc: bool,
        par: Par,
    ) {
        self.call(|cx| unsafe {
            Cpu.pool_backward(g, kn, x.get(cx), dy.get(cx), dx.get(cx), acc, par)
        })
    }
    fn unpool_forward<T: Element>(
        &self,
        g: &PoolGeometry,
        n: usize,
        (u, x): (ARef<'_, T>, ARef<'_, T>),
        y: AMut<'_, T>,
        par: Par,
    ) {
        self.call(|cx| unsafe { Cpu.unpool_forward(g, n, (u.get(cx), x.get(cx)), y.get(cx), par) })
    }
    fn unpool_backward<T: Element>(
        &self,
        g: &PoolGeometry,
        n: usize,
        x: ARef<'_, T>,
        dy: ARef<'_, T>,
        du: AMut<'_, T>,
        acc: bool,
        par: Par,
    ) {
        self.call(|cx| unsafe {
            Cpu.unpool_backward(g, n, x.get(cx), dy.get(cx), du.get(cx), acc, par)
        })
    }
    fn roi_pool_forward<T: Element>(
        &self,
        g: &RoiGeometry,
        n: usize,
        (x, r): (ARef<'_, T>, ARef<'_, T>),
        y: AMut<'_, T>,
        par: Par,
    ) {
        self.call(|cx| unsafe {
            Cpu.roi_pool_forward(g, n, (x.get(cx), r.get(cx)), y.get(cx), par)
        })
    }
    fn roi_pool_backward<T: Element>(
        &self,
        g: &RoiGeometry,
        n: usize,
        (x, r): (ARef<'_, T>, ARef<'_, T>),
        dy: ARef<'_, T>,
        dx: AMut<'_, T>,
        acc: bool,
        par: Par,
    ) {
        self.call(|cx| unsafe {
            let xr = (x.get(cx), r.get(cx));
            Cpu.roi_pool_backward(g, n, xr, dy.get(cx), dx.get(cx), acc, par)
        })
    }
}
