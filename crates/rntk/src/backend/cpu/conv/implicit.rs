//! Stride-1 convolutions as products that read the patches where they lie ("implicit
//! GEMM"), on the register-blocked path of `micro` (AVX-512 or AVX2). One group's channels
//! of an image are copied once into a zero-padded buffer of extent `output + span − 1`
//! along every axis. On that
//! buffer each filter tap reads all output positions at one fixed offset, so the patch
//! matrix of a block of positions is the buffer seen through a table of row offsets
//! (`Rows::gathered`): nothing is packed.
//!
//! ```text
//!   padded buffer (P0 × P1 × P2)       grid position of output (o0, o1, o2):
//!   ┌──────────────┬──┐                  (o0·P1 + o1)·P2 + o2
//!   │ outputs      │▒▒│  ▒ = pad columns  tap (j0, j1, j2) of every position reads
//!   │ (out1 × out2)│▒▒│  (computed on the  buffer[grid + (j0·d0·P1 + j1·d1)·P2 + j2·d2]
//!   └──────────────┴──┘   grid, dropped)
//! ```
//!
//! Blocks walk the grid, which also holds positions with `o1 ≥ out1` or `o2 ≥ out2`. Their
//! products go to scratch and are dropped (forward) or meet zeros (backward filter). That
//! waste (6 % for 32×32 outputs and a 3×3 kernel, 22 % at 8×8) costs less than packing.
//!
//! Backward data of a stride-1 convolution is the forward convolution of `dy` with the
//! filters transposed per group and flipped, padded by `span − 1 − pad` (`dual`), so it
//! too needs no scatter. Backward filter reads the patches as the left operand; with at
//! most 16 output channels, as dot products of patch rows with `dy` laid over the grid
//! (`dots`).

use super::dots::dots;
use super::micro::{fast, product, Rows};
use super::pack::{copy_run, zero_edge};
use crate::backend::conv::{ConvAxis, ConvGeometry};
use crate::tensor::Element;

/// Grid positions per block: the block's products stay in L1/L2 with the buffer.
const BLOCK: usize = 256;
/// Output channels up to which the filter gradient runs as dot products over the whole
/// grid (`dots`): `dy` copied row by row instead of transposed, and no lanes masked at 8.
const DOT_OUTPUTS: usize = 16;

/// Whether `g` runs here for `n` images on `threads`: f32 on the register-blocked path,
/// every axis stride 1, not pointwise (that has its own path), at least one (image, group)
/// per thread, and a grid at most twice the output (little waste on the pads).
pub(crate) fn applies<T: Element>(g: &ConvGeometry, n: usize, threads: usize) -> bool {
    if !fast::<T>() || g.is_pointwise() || g.axes.iter().any(|a| a.stride != 1) {
        return false;
    }
    n * g.groups >= threads.max(1) && Grid::new(g).len <= 2 * g.out_spatial()
}

/// The padded layout of one stride-1 convolution.
struct Grid {
    a: [ConvAxis; 3],
    /// padded extents, outermost first
    dims: [usize; 3],
    /// values of one padded channel
    plane: usize,
    /// grid positions up to the last output's, inclusive
    len: usize,
    /// per (channel, tap) row of the patch matrix: where it starts in the buffer
    offs: Vec<usize>,
}

impl Grid {
    fn new(g: &ConvGeometry) -> Self {
        let a = g.axes3();
        let dims = [0, 1, 2].map(|i| a[i].output + a[i].span() - 1);
        let plane = dims.iter().product();
        let len = ((a[0].output - 1) * dims[1] + a[1].output - 1) * dims[2] + a[2].output;
        let mut taps = Vec::with_capacity(g.kernel_size());
        for j0 in 0..a[0].kernel {
            for j1 in 0..a[1].kernel {
                for j2 in 0..a[2].kernel {
                    let outer = j0 * a[0].dilation * dims[1] + j1 * a[1].dilation;
                    taps.push(outer * dims[2] + j2 * a[2].dilation);
                }
            }
        }
        let offs = (0..g.cg())
            .flat_map(|c| taps.iter().map(move |t| c * plane + t))
            .collect();
        Grid {
            a,
            dims,
            plane,
            len,
            offs,
        }
    }

    /// `dst` (`channels` × `plane`) = the channels of `img`, zero-padded: padded position
    /// `p` holds input position `p − pad` along every axis, or zero outside the input.
    /// Rows are short (the inner extent): copied inline, not through `memcpy` calls.
    fn pad<T: Element>(&self, img: &[T], channels: usize, dst: &mut [T]) {
        crate::backend::cpu::wide(
            #[inline(always)]
            || self.pad_body(img, channels, dst),
        )
    }

    #[inline(always)]
    fn pad_body<T: Element>(&self, img: &[T], channels: usize, dst: &mut [T]) {
        let a = &self.a;
        let [d0, d1, d2] = self.dims;
        let (in1, in2) = (a[1].input, a[2].input);
        let pin = a[0].input * in1 * in2;
        let inside = |p: usize, ax: &ConvAxis| {
            let i = p as isize - ax.pad;
            (i >= 0 && (i as usize) < ax.input).then_some(i as usize)
        };
        // along the inner axis: positions lo..hi read input lo − pad..
        let lo = a[2].pad.clamp(0, d2 as isize) as usize;
        let hi = (in2 as isize + a[2].pad).clamp(lo as isize, d2 as isize) as usize;
        let from = (lo as isize - a[2].pad) as usize;
        for c in 0..channels {
            let src = &img[c * pin..(c + 1) * pin];
            let out = &mut dst[c * self.plane..(c + 1) * self.plane];
            for (r, row) in out.chunks_exact_mut(d2).take(d0 * d1).enumerate() {
                match (inside(r / d1, &a[0]), inside(r % d1, &a[1])) {
                    (Some(i0), Some(i1)) => {
                        let s = &src[(i0 * in1 + i1) * in2 + from..][..hi - lo];
                        zero_edge(&mut row[..lo]);
                        copy_run(&mut row[lo..hi], s);
                        zero_edge(&mut row[hi..]);
                    }
                    _ => row.fill(T::zero()),
                }
            }
        }
    }

    /// `f(q, o, len)` for each stretch of outputs in grid positions `p0..p0 + count`:
    /// block column `q` on is output `o` on (flat index), for `len` positions.
    fn segments(&self, p0: usize, count: usize, mut f: impl FnMut(usize, usize, usize)) {
        let [_, d1, d2] = self.dims;
        let (out1, out2) = (self.a[1].output, self.a[2].output);
        let end = p0 + count;
        let mut r = p0 / d2;
        while r * d2 < end {
            let (o0, o1) = (r / d1, r % d1);
            let (s, e) = ((r * d2).max(p0), (r * d2 + out2).min(end));
            if o1 < out1 && s < e {
                f(s - p0, (o0 * out1 + o1) * out2 + (s - r * d2), e - s);
            }
            r += 1;
        }
    }
}

/// `y (+)= conv(x, w)` for `n` images (`applies(g, ..)` must hold).
pub(crate) fn forward<T: Element>(
    g: &ConvGeometry,
    n: usize,
    x: &[T],
    w: &[T],
    y: &mut [T],
    accumulate: bool,
    threads: usize,
) {
    let grid = Grid::new(g);
    let (cg, og, rows) = (g.cg(), g.og(), g.cg() * g.kernel_size());
    let (pin, pout) = (g.in_spatial(), g.out_spatial());
    let ys = super::convolution::Shared::new(y);
    super::convolution::split(n * g.groups, threads, |range| {
        let mut buf = vec![T::zero(); cg * grid.plane];
        let mut tmp = vec![T::zero(); og * BLOCK];
        for item in range {
            let (img, grp) = (item / g.groups, item % g.groups);
            grid.pad(&x[img * g.in_size() + grp * cg * pin..], cg, &mut buf);
            let a = Rows::new(&w[grp * og * rows..], og, rows, rows);
            // SAFETY: each item writes its own group's channels of its own image.
            let yg = unsafe { ys.slice(img * g.out_size() + grp * og * pout, og * pout) };
            for p0 in (0..grid.len).step_by(BLOCK) {
                let cnt = BLOCK.min(grid.len - p0);
                let b = Rows::gathered(&buf[p0..], &grid.offs, cnt);
                product(a, b, &mut tmp, cnt, false);
                grid.segments(p0, cnt, |q, o, len| {
                    for ch in 0..og {
                        let src = &tmp[ch * cnt + q..][..len];
                        let dst = &mut yg[ch * pout + o..][..len];
                        if accumulate {
                            dst.iter_mut().zip(src).for_each(|(d, s)| *d += *s);
                        } else {
                            dst.copy_from_slice(src);
                        }
                    }
                });
            }
        }
    });
}

/// The convolution whose forward pass is the backward-data pass of `g` (stride 1): input
/// and output swap, the window runs the other way (`pad' = span − 1 − pad`).
fn dual(g: &ConvGeometry) -> ConvGeometry {
    ConvGeometry {
        axes: g
            .axes
            .iter()
            .map(|a| ConvAxis {
                input: a.output,
                output: a.input,
                kernel: a.kernel,
                stride: 1,
                dilation: a.dilation,
                pad: a.span() as isize - 1 - a.pad,
            })
            .collect(),
        in_channels: g.out_channels,
        out_channels: g.in_channels,
        groups: g.groups,
    }
}

/// The filters of `dual(g)`: `w'[g·Cg + c][o][t] = w[g·Og + o][c][K − 1 − t]`.
fn flipped<T: Element>(g: &ConvGeometry, w: &[T]) -> Vec<T> {
    let (cg, og, k) = (g.cg(), g.og(), g.kernel_size());
    let mut out = vec![T::zero(); w.len()];
    for grp in 0..g.groups {
        for o in 0..og {
            for c in 0..cg {
                let src = &w[((grp * og + o) * cg + c) * k..][..k];
                let dst = &mut out[((grp * cg + c) * og + o) * k..][..k];
                for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                    *d = *s;
                }
            }
        }
    }
    out
}

/// `dx (+)= ∂conv/∂x` given `dy`, for `n` images (`applies(g, ..)` must hold).
pub(crate) fn backward_data<T: Element>(
    g: &ConvGeometry,
    n: usize,
    dy: &[T],
    w: &[T],
    dx: &mut [T],
    accumulate: bool,
    threads: usize,
) {
    forward(&dual(g), n, dy, &flipped(g, w), dx, accumulate, threads);
}

/// Whether the backward-data pass of `g` runs here: as `applies`, and with at least 8
/// input channels per group (the rows of its product; below that packing measured
/// faster, `conv_bench` on ResNet's 3→16 layer).
pub(crate) fn applies_backward_data<T: Element>(
    g: &ConvGeometry,
    n: usize,
    threads: usize,
) -> bool {
    g.cg() >= 8 && applies::<T>(g, n, threads) && applies::<T>(&dual(g), n, threads)
}

/// `Σ dW_gᵀ` (Cg·K × Og per group, as `convolution::finish_filter` takes it) of the
/// images `items` (image, group) into `acc`.
pub(crate) fn filter_partial<T: Element>(
    g: &ConvGeometry,
    (x, dy): (&[T], &[T]),
    items: std::ops::Range<usize>,
    acc: &mut [T],
) {
    let grid = Grid::new(g);
    let (cg, og, rows) = (g.cg(), g.og(), g.cg() * g.kernel_size());
    let (pin, pout) = (g.in_spatial(), g.out_spatial());
    let mut buf = vec![T::zero(); cg * grid.plane];
    let by_dots = og <= DOT_OUTPUTS;
    let mut dyt = vec![T::zero(); og * if by_dots { grid.len } else { BLOCK }];
    for item in items {
        let (img, grp) = (item / g.groups, item % g.groups);
        grid.pad(&x[img * g.in_size() + grp * cg * pin..], cg, &mut buf);
        let dyg = &dy[img * g.out_size() + grp * og * pout..][..og * pout];
        if by_dots {
            // dy over the grid, one row per output channel; the pad columns stay zero
            grid.segments(0, grid.len, |q, o, len| {
                for ch in 0..og {
                    copy_run(&mut dyt[ch * grid.len + q..][..len], &dyg[ch * pout + o..]);
                }
            });
            let a = Rows::gathered(&buf, &grid.offs, grid.len);
            let b = Rows::new(&dyt, og, grid.len, grid.len);
            dots(a, b, &mut acc[grp * og * rows..], og);
            continue;
        }
        for p0 in (0..grid.len).step_by(BLOCK) {
            let cnt = BLOCK.min(grid.len - p0);
            // dy of the block's positions, transposed; zero on the pad columns
            dyt[..cnt * og].fill(T::zero());
            grid.segments(p0, cnt, |q, o, len| {
                for ch in 0..og {
                    for (i, v) in dyg[ch * pout + o..][..len].iter().enumerate() {
                        dyt[(q + i) * og + ch] = *v;
                    }
                }
            });
            let a = Rows::gathered(&buf[p0..], &grid.offs, cnt);
            let b = Rows::new(&dyt, cnt, og, og);
            product(a, b, &mut acc[grp * og * rows..], og, true);
        }
    }
}
