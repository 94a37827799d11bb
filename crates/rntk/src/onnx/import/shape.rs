//! ONNX shape ops → rntk: `Concat`, `Slice`, `Reshape`, `Flatten`, `Transpose`,
//! `Squeeze` / `Unsqueeze`, `Expand`, `Gather`. Each works on tensors (an rntk op over
//! the sample axes; the dynamic dims must stay where they are) and folds shape vectors
//! and constants (the shape arithmetic exporters write) at import.

use super::super::proto::NodeProto;
use super::model::ConstT;
use super::ops::{attr_i, attr_ints, one_tv, unsupported};
use super::value::{const_i64, Av, SDim, Tv};
use super::Imp;
use crate::error::Result;
use crate::functions as f;
use crate::graph::{constant, Variable};
use crate::tensor::Shape;
use std::rc::Rc;

impl Imp<'_> {
    pub(crate) fn concat(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
        let vals: Vec<Av> = (0..n.input.len())
            .map(|i| self.need(n, i))
            .collect::<Result<_>>()?;
        // shape vectors and int constants: folded
        if vals.iter().all(|v| matches!(v, Av::S(..) | Av::C(..))) {
            let mut out = Vec::new();
            for v in &vals {
                match v {
                    Av::S(s) => out.extend(s.iter().cloned()),
                    Av::C(c, _) if !c.data.is_float() => {
                        out.extend(c.data.to_i64().iter().map(|&k| SDim::N(k.max(0) as usize)))
                    }
                    _ => return self.concat_tensors(n, &vals),
                }
            }
            if vals.iter().any(|v| matches!(v, Av::S(..))) {
                return Ok(vec![Av::S(out)]);
            }
            if vals
                .iter()
                .all(|v| matches!(v, Av::C(c, _) if !c.data.is_float()))
            {
                let all: Vec<i64> = vals
                    .iter()
                    .flat_map(|v| match v {
                        Av::C(c, _) => c.data.to_i64(),
                        _ => vec![],
                    })
                    .collect();
                return Ok(vec![const_i64(vec![all.len()], all)]);
            }
        }
        self.concat_tensors(n, &vals)
    }

    pub(crate) fn concat_tensors(&mut self, n: &NodeProto, vals: &[Av]) -> Result<Vec<Av>> {
        let mut ts = Vec::new();
        for (i, v) in vals.iter().enumerate() {
            ts.push(self.tv_of_av(n, i, v)?);
        }
        let a = ts[0]
            .axis(attr_i(n, "axis", 0))
            .ok_or_else(|| self.err(n, "axis out of range"))?;
        let sa = ts[0]
            .sample_axis(a)
            .ok_or_else(|| unsupported("Concat along a dynamic dimension"))?;
        let mut vars = Vec::new();
        for t in &ts {
            if t.dims.len() != ts[0].dims.len() {
                return Err(self.err(n, "operands of different ranks"));
            }
            vars.push(self.exact(t)?);
        }
        let refs: Vec<&Variable> = vars.iter().collect();
        let var = f::splice(&refs, sa as isize)?;
        let mut dims = ts[0].dims.clone();
        dims[a] = SDim::N(var.shape().dims()[sa]);
        one_tv(Tv { var, dims })
    }

    pub(crate) fn slice(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
        let v = self.need(n, 0)?;
        let (starts, ends, axes, steps) = if self.opset < 10 {
            (
                attr_ints(n, "starts").unwrap_or_default(),
                attr_ints(n, "ends").unwrap_or_default(),
                attr_ints(n, "axes"),
                None,
            )
        } else {
            (
                self.ints(n, 1)?.unwrap_or_default(),
                self.ints(n, 2)?.unwrap_or_default(),
                self.ints(n, 3)?,
                self.ints(n, 4)?,
            )
        };
        if let Av::S(s) = &v {
            // a slice of a shape vector
            let (b, e) = (
                starts.first().copied().unwrap_or(0),
                ends.first().copied().unwrap_or(0),
            );
            let r = s.len() as i64;
            let clamp = |x: i64| if x < 0 { (x + r).max(0) } else { x.min(r) } as usize;
            return Ok(vec![Av::S(s[clamp(b)..clamp(e).max(clamp(b))].to_vec())]);
        }
        let mut t = self.tv(&v, None)?;
        let axes: Vec<i64> = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
        let steps_len = steps.as_ref().map_or(axes.len(), Vec::len);
        if starts.len() != axes.len() || ends.len() != axes.len() || steps_len != axes.len() {
            return Err(self.err(
                n,
                format!(
                    "starts, ends, axes and steps must be equally long (found {}, {}, {}, {})",
                    starts.len(),
                    ends.len(),
                    axes.len(),
                    steps_len
                ),
            ));
        }
        for (k, &ax) in axes.iter().enumerate() {
            let a = t.axis(ax).ok_or_else(|| self.err(n, "axis out of range"))?;
            let step = steps.as_ref().and_then(|s| s.get(k)).copied().unwrap_or(1);
            let (b, e) = (starts[k], ends[k]);
            if Some(a) == t.t_pos() {
                // along the sequence: the last step, or the first
                let var = match (b, e, step) {
                    (-1, e, 1) if e >= i32::MAX as i64 => crate::sequence::last(&t.var)?,
                    (0, 1, 1) => crate::sequence::first(&t.var)?,
                    _ => {
                        return Err(unsupported(
                            "a slice along the sequence axis other than its first or last step",
                        ))
                    }
                };
                let mut dims = t.dims.clone();
                dims[a] = SDim::N(1);
                t = Tv { var, dims };
                continue;
            }
            let sa = t
                .sample_axis(a)
                .ok_or_else(|| unsupported("a slice along the batch axis"))?;
            let d = t.sample()[sa] as i64;
            if step <= 0 {
                return Err(unsupported("a slice with a negative step"));
            }
            let clamp = |x: i64| if x < 0 { (x + d).max(0) } else { x.min(d) };
            let (b, e) = (clamp(b), clamp(e));
            if e <= b {
                return Err(self.err(n, "an empty slice"));
            }
            let x = self.exact(&t)?;
            let var = f::slice_strided(&x, sa as isize, b as isize, e as isize, step as isize)?;
            let mut dims = t.dims.clone();
            dims[a] = SDim::N(var.shape().dims()[sa]);
            t = Tv { var, dims };
        }
        one_tv(t)
    }

    /// Target dims of a reshape in ONNX terms (0 copies, -1 is inferred), with the
    /// dynamic dims followed through.
    pub(crate) fn reshape_dims(
        &self,
        n: &NodeProto,
        t: &Tv,
        target: &[SDim],
        allow_zero: bool,
    ) -> Result<Vec<SDim>> {
        let mut out: Vec<Option<SDim>> = Vec::new();
        for (i, d) in target.iter().enumerate() {
            out.push(match d {
                SDim::N(0) if !allow_zero => Some(
                    t.dims
                        .get(i)
                        .cloned()
                        .ok_or_else(|| self.err(n, "a 0 in the shape beyond the input's rank"))?,
                ),
                SDim::N(k) if *k == usize::MAX => None,
                x => Some(x.clone()),
            });
        }
        // (a hostile shape may not overflow: products checked)
        let overflow = || self.err(n, "a shape whose size overflows");
        let known_in = checked_product(t.sample().into_iter()).ok_or_else(overflow)?;
        let known_out = checked_product(out.iter().flatten().map(|d| match d {
            SDim::N(k) => *k,
            _ => 1,
        }))
        .ok_or_else(overflow)?;
        let dyn_in: Vec<SDim> = t
            .dims
            .iter()
            .filter(|d| !matches!(d, SDim::N(_)))
            .cloned()
            .collect();
        let dyn_out: Vec<SDim> = out
            .iter()
            .flatten()
            .filter(|d| !matches!(d, SDim::N(_)))
            .cloned()
            .collect();
        let missing: Vec<SDim> = dyn_in
            .iter()
            .filter(|d| !dyn_out.contains(d))
            .cloned()
            .collect();
        let mut res = Vec::new();
        for d in out {
            res.push(match d {
                Some(x) => x,
                None => match missing.as_slice() {
                    [] => SDim::N(known_in / known_out.max(1)),
                    [m] if known_in == known_out => m.clone(),
                    _ => {
                        return Err(unsupported(
                            "a reshape that merges the batch or sequence axis with others",
                        ))
                    }
                },
            });
        }
        let res_known = checked_product(res.iter().map(|d| match d {
            SDim::N(k) => *k,
            _ => 1,
        }))
        .ok_or_else(overflow)?;
        // CNTK's files: the batch (fixed to 1) may disappear into a unit dim
        let lost: Vec<&SDim> = dyn_in.iter().filter(|d| !res.contains(d)).collect();
        if res_known != known_in || lost.iter().any(|d| **d == SDim::T) {
            return Err(unsupported(format!(
                "a reshape from {:?} to {:?} that moves elements across the batch or sequence axis",
                t.dims, res
            )));
        }
        Ok(res)
    }

    pub(crate) fn reshape(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
        let v = self.need(n, 0)?;
        let target: Vec<SDim> = match self.input(n, 1)? {
            Some(Av::C(c, _)) => c
                .data
                .to_i64()
                .iter()
                .map(|&k| {
                    if k < 0 {
                        SDim::N(usize::MAX)
                    } else {
                        SDim::N(k as usize)
                    }
                })
                .collect(),
            Some(Av::S(s)) => s,
            None => attr_ints(n, "shape")
                .unwrap_or_default()
                .iter()
                .map(|&k| {
                    if k < 0 {
                        SDim::N(usize::MAX)
                    } else {
                        SDim::N(k as usize)
                    }
                })
                .collect(),
            _ => return Err(unsupported("Reshape to a shape computed from data")),
        };
        if let Av::C(c, l) = &v {
            let t = Tv {
                var: crate::graph::scalar(0.0, self.dtype),
                dims: c.dims.iter().map(|&d| SDim::N(d)).collect(),
            };
            let d = self.reshape_dims(n, &t, &target, attr_i(n, "allowzero", 0) == 1)?;
            let dims: Vec<usize> = d
                .iter()
                .map(|x| if let SDim::N(k) = x { *k } else { 1 })
                .collect();
            return Ok(vec![Av::C(
                Rc::new(ConstT {
                    dims,
                    data: c.data.clone(),
                }),
                *l,
            )]);
        }
        let t = self.tv(&v, None)?;
        let dims = self.reshape_dims(n, &t, &target, attr_i(n, "allowzero", 0) == 1)?;
        let s: Vec<usize> = dims
            .iter()
            .filter_map(|d| if let SDim::N(k) = d { Some(*k) } else { None })
            .collect();
        let var = if t.var.shape().numel() == s.iter().product::<usize>() {
            t.var.clone()
        } else {
            return Err(unsupported("a reshape of a broadcast constant"));
        };
        one_tv(Tv { var, dims })
    }

    pub(crate) fn flatten(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
        let v = self.need(n, 0)?;
        let t = self.tv(&v, None)?;
        let a = attr_i(n, "axis", 1);
        let a = if a < 0 { a + t.dims.len() as i64 } else { a } as usize;
        if t.dims[..a.min(t.dims.len())]
            .iter()
            .filter(|d| !matches!(d, SDim::N(_)))
            .count()
            != t.dims.iter().filter(|d| !matches!(d, SDim::N(_))).count()
        {
            return Err(unsupported("Flatten across the batch or sequence axis"));
        }
        let mut dims: Vec<SDim> = t.dims[..a].to_vec();
        let rest = checked_product(
            t.dims[a..]
                .iter()
                .map(|d| if let SDim::N(k) = d { *k } else { 1 }),
        )
        .ok_or_else(|| self.err(n, "a shape whose size overflows"))?;
        dims.push(SDim::N(rest));
        one_tv(Tv { var: t.var, dims })
    }

    pub(crate) fn transpose(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
        let v = self.need(n, 0)?;
        let t = self.tv(&v, None)?;
        let r = t.dims.len();
        let perm: Vec<usize> = attr_ints(n, "perm")
            .map(|p| p.iter().map(|&x| x as usize).collect())
            .unwrap_or_else(|| (0..r).rev().collect());
        if perm.len() != r || perm.iter().any(|&p| p >= r) {
            return Err(self.err(n, "perm does not fit the input's rank"));
        }
        let dims: Vec<SDim> = perm.iter().map(|&p| t.dims[p].clone()).collect();
        // the sample dims in their new order
        let sample_perm: Vec<usize> = perm.iter().filter_map(|&p| t.sample_axis(p)).collect();
        let identity = sample_perm.iter().enumerate().all(|(i, &p)| i == p);
        let var = if identity {
            t.var.clone()
        } else {
            // unit dims the variable lacks do not move data
            let x = self.exact(&t)?;
            f::transpose(&x, &sample_perm)?
        };
        one_tv(Tv { var, dims })
    }

    pub(crate) fn squeeze(&mut self, n: &NodeProto, squeeze: bool) -> Result<Vec<Av>> {
        let v = self.need(n, 0)?;
        let axes = self.axes_of(n, 1)?;
        if let Av::S(s) = &v {
            // shape arithmetic: a one-element vector and a scalar stand for the same
            return Ok(vec![Av::S(s.clone())]);
        }
        if let Av::Mask(k) = v {
            return Ok(vec![Av::Mask(k)]);
        }
        if let Av::C(c, l) = &v {
            let mut dims = c.dims.clone();
            if squeeze {
                match &axes {
                    Some(a) => {
                        let r = dims.len() as i64;
                        let mut idx: Vec<usize> = a
                            .iter()
                            .map(|&x| if x < 0 { x + r } else { x } as usize)
                            .collect();
                        idx.sort_unstable();
                        for i in idx.into_iter().rev() {
                            if i < dims.len() {
                                dims.remove(i);
                            }
                        }
                    }
                    None => dims.retain(|&d| d != 1),
                }
            } else {
                let a = axes.unwrap_or_default();
                let r = (dims.len() + a.len()) as i64;
                let mut idx: Vec<usize> = a
                    .iter()
                    .map(|&x| if x < 0 { x + r } else { x } as usize)
                    .collect();
                idx.sort_unstable();
                for i in idx {
                    dims.insert(i.min(dims.len()), 1);
                }
            }
            return Ok(vec![Av::C(
                Rc::new(ConstT {
                    dims,
                    data: c.data.clone(),
                }),
                *l,
            )]);
        }
        let t = self.tv(&v, None)?;
        let mut dims = t.dims.clone();
        if squeeze {
            let r = dims.len() as i64;
            let idx: Vec<usize> = match axes {
                Some(a) => a
                    .iter()
                    .map(|&x| if x < 0 { x + r } else { x } as usize)
                    .collect(),
                None => (0..dims.len()).filter(|&i| dims[i] == SDim::N(1)).collect(),
            };
            let mut idx = idx;
            idx.sort_unstable();
            for i in idx.into_iter().rev() {
                match dims.get(i) {
                    Some(SDim::N(1)) => {
                        dims.remove(i);
                    }
                    // CNTK's batch of 1 squeezed away: the batch stays, unnamed
                    Some(SDim::B) if self.producer == "CNTK" => {
                        dims.remove(i);
                    }
                    _ => return Err(self.err(n, "squeezes a dimension that is not 1")),
                }
            }
        } else {
            let a = axes.unwrap_or_default();
            let r = (dims.len() + a.len()) as i64;
            let mut idx: Vec<usize> = a
                .iter()
                .map(|&x| if x < 0 { x + r } else { x } as usize)
                .collect();
            idx.sort_unstable();
            for i in idx {
                dims.insert(i.min(dims.len()), SDim::N(1));
            }
        }
        one_tv(Tv { var: t.var, dims })
    }

    pub(crate) fn gather(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
        let data = self.need(n, 0)?;
        let axis = attr_i(n, "axis", 0);
        let idx = self.need(n, 1)?;
        if let Av::S(s) = &data {
            // one entry of a shape vector
            let k = self
                .ints(n, 1)?
                .ok_or_else(|| self.err(n, "a dynamic index into a shape"))?;
            let r = s.len() as i64;
            let pick: Vec<SDim> = k
                .iter()
                .map(|&i| {
                    s.get((if i < 0 { i + r } else { i }) as usize)
                        .cloned()
                        .ok_or_else(|| self.err(n, "index out of range"))
                })
                .collect::<Result<_>>()?;
            return Ok(vec![Av::S(pick)]);
        }
        let t = self.tv_of_av(n, 0, &data)?;
        let a = t
            .axis(axis)
            .ok_or_else(|| self.err(n, "axis out of range"))?;
        if Some(a) == t.t_pos() {
            // a step of every sequence: the first or the last
            let k = self
                .ints(n, 1)?
                .ok_or_else(|| unsupported("a dynamic index along the sequence axis"))?;
            let var = match k.as_slice() {
                [0] => crate::sequence::first(&t.var)?,
                [-1] => crate::sequence::last(&t.var)?,
                _ => {
                    return Err(unsupported(
                        "a step along the sequence axis other than the first or last",
                    ))
                }
            };
            let mut dims = t.dims.clone();
            dims.remove(a);
            return one_tv(Tv { var, dims });
        }
        // an embedding: rows of a static table picked by per-sample indices
        if a != 0 || t.dims.iter().any(|d| !matches!(d, SDim::N(_))) {
            return Err(unsupported("Gather other than rows of a static table"));
        }
        let it = self.tv(&idx, None)?;
        let reference = self.exact(&t)?;
        let ix = self.exact(&it)?;
        let var = f::gather(&reference, &ix)?;
        let mut dims = it.dims.clone();
        dims.extend(t.dims[1..].iter().cloned());
        one_tv(Tv { var, dims })
    }

    pub(crate) fn expand(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
        let v = self.need(n, 0)?;
        let shape: Vec<SDim> = match self.input(n, 1)? {
            Some(Av::S(s)) => s,
            Some(Av::C(c, _)) => c
                .data
                .to_i64()
                .iter()
                .map(|&k| SDim::N(k.max(0) as usize))
                .collect(),
            _ => return Err(unsupported("Expand to a shape computed from data")),
        };
        let t = self.tv(&v, None)?;
        // broadcast: the result's dims, the value's data (rntk broadcasts when used)
        let r = shape.len().max(t.dims.len());
        let mut dims = vec![SDim::N(1); r];
        for (i, d) in shape.iter().enumerate() {
            dims[r - shape.len() + i] = d.clone();
        }
        for (i, d) in t.dims.iter().enumerate() {
            let o = &mut dims[r - t.dims.len() + i];
            if *d != SDim::N(1) {
                *o = d.clone();
            }
        }
        // a static value broadcast over sample dims becomes that shape (the dynamic
        // dims stay broadcast marks)
        let want: Vec<usize> = dims
            .iter()
            .filter_map(|d| if let SDim::N(k) = d { Some(*k) } else { None })
            .collect();
        let var = if t.var.shape().numel() == want.iter().product::<usize>()
            || t.var.shape().numel() == 1 && want.iter().product::<usize>() == 1
        {
            t.var.clone()
        } else if t.var.dynamic_axes().is_none() && t.var.shape().numel() == 1 {
            // a scalar fill: kept a scalar (broadcast when used)
            return one_tv(Tv {
                var: t.var,
                dims: dims
                    .iter()
                    .map(|d| match d {
                        SDim::N(_) => SDim::N(1),
                        x => x.clone(),
                    })
                    .collect(),
            })
            .map(|mut v| {
                if let Some(Av::T(tv)) = v.first_mut() {
                    tv.dims = dims.clone();
                }
                v
            });
        } else {
            let ones = constant(
                crate::tensor::Tensor::from_f64(
                    Shape::new(want.clone()),
                    self.dtype,
                    &vec![0.0; want.iter().product()],
                )?,
                "",
            );
            f::plus(&t.var, &ones)?
        };
        one_tv(Tv { var, dims })
    }
}

/// The product of `sizes`, `None` on overflow.
fn checked_product(mut sizes: impl Iterator<Item = usize>) -> Option<usize> {
    sizes.try_fold(1usize, |a, k| a.checked_mul(k))
}
