//! Backends behind a type-erased handle, for code that is not generic over the backend:
//! a learner updates parameters wherever they live, a tensor reads its elements back
//! to the host. Every [`Backend`] is a [`DynBackend`] (a blanket impl); a device
//! backend stores its buffers in tensors as [`Resident`].

use super::updates::LearnerStep;
use super::{Backend, Cpu, Memory, Par, Work};
use crate::error::{Error, Result};
use crate::tensor::{DType, Device, DeviceData, Element, Storage};
use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// What code without the backend's type can ask of it.
pub trait DynBackend: Send + Sync {
    fn device(&self) -> Device;
    /// Whether `s` lives on this backend (in its own element type).
    fn is_resident(&self, s: &Storage) -> bool;
    /// `s` copied onto this backend (parameter init/load).
    fn make_resident(&self, s: &Storage) -> Storage;
    /// `len` zeros of `dtype` on this backend (learner state, created on the device).
    fn zeros(&self, dtype: DType, len: usize) -> Storage;
    /// One learner step on storage resident here (`state` and `scratch` are made
    /// resident first when they are not: a restored checkpoint, the first update).
    fn learner_step(
        &self,
        step: &LearnerStep,
        p: &mut Storage,
        g: &Storage,
        state: &mut [Storage],
        scratch: &mut Option<Storage>,
        par: Par,
    ) -> Result<()>;
    /// Run `f` with the parallelism a learner update of `elements` deserves.
    fn update_scope(&self, elements: usize, f: &mut (dyn FnMut(Par) + Send));
}

/// The backend a storage lives on: the CPU for host storage.
pub fn backend_of(s: &Storage) -> Arc<dyn DynBackend> {
    let device = match s {
        Storage::Device(d) => d.owner().downcast_ref::<Arc<dyn DynBackend>>().cloned(),
        _ => None,
    };
    device.unwrap_or_else(|| Arc::new(Cpu))
}

impl<B: Backend> DynBackend for B {
    fn device(&self) -> Device {
        Memory::device(self)
    }
    fn is_resident(&self, s: &Storage) -> bool {
        match s.dtype() {
            DType::F32 => self.resident::<f32>(s).is_some(),
            DType::F64 => self.resident::<f64>(s).is_some(),
        }
    }
    fn make_resident(&self, s: &Storage) -> Storage {
        Memory::make_resident(self, s)
    }
    fn zeros(&self, dtype: DType, len: usize) -> Storage {
        fn typed<T: Element, B: Backend>(b: &B, len: usize) -> Storage {
            let mut buf = Default::default();
            b.resize(&mut buf, len);
            b.wrap_storage::<T>(buf)
        }
        match dtype {
            DType::F32 => typed::<f32, B>(self, len),
            DType::F64 => typed::<f64, B>(self, len),
        }
    }
    fn learner_step(
        &self,
        step: &LearnerStep,
        p: &mut Storage,
        g: &Storage,
        state: &mut [Storage],
        scratch: &mut Option<Storage>,
        par: Par,
    ) -> Result<()> {
        match p.dtype() {
            DType::F32 => typed_step::<f32, B>(self, step, p, g, (state, scratch), par),
            DType::F64 => typed_step::<f64, B>(self, step, p, g, (state, scratch), par),
        }
    }
    fn update_scope(&self, elements: usize, f: &mut (dyn FnMut(Par) + Send)) {
        self.scope(Work::Update(elements), f)
    }
}

fn typed_step<T: Element, B: Backend>(
    b: &B,
    step: &LearnerStep,
    p: &mut Storage,
    g: &Storage,
    (state, scratch): (&mut [Storage], &mut Option<Storage>),
    par: Par,
) -> Result<()> {
    let wrong = |what: &str| {
        Error::Unsupported(format!(
            "learner update: the {what} is not a {} tensor on {:?}",
            T::DTYPE,
            Memory::device(b)
        ))
    };
    for s in state.iter_mut() {
        if b.resident::<T>(s).is_none() {
            *s = Memory::make_resident(b, s);
        }
    }
    if scratch
        .as_ref()
        .is_none_or(|s| b.resident::<T>(s).is_none())
    {
        *scratch = Some(b.wrap_storage::<T>(Default::default()));
    }
    // A gradient from elsewhere (a caller's host tensor) comes over first.
    let moved;
    let g = match b.resident::<T>(g) {
        Some(g) => g,
        None => {
            moved = Memory::make_resident(b, g);
            b.resident::<T>(&moved).ok_or_else(|| wrong("gradient"))?
        }
    };
    let mut bufs = Vec::with_capacity(state.len());
    for s in state.iter_mut() {
        let taken = std::mem::replace(s, Storage::F32(Vec::new()));
        bufs.push(
            b.take_storage::<T>(taken)
                .map_err(|_| wrong("learner state"))?,
        );
    }
    let scr = scratch
        .as_mut()
        .and_then(|s| b.resident_mut::<T>(s))
        .ok_or_else(|| wrong("scratch"))?;
    let pb = b.resident_mut::<T>(p).ok_or_else(|| wrong("parameter"))?;
    b.learner_step(step, B::view_mut(pb), B::view(g), &mut bufs, scr, par);
    for (s, buf) in state.iter_mut().zip(bufs) {
        *s = b.wrap_storage(buf);
    }
    Ok(())
}

/// A device backend's buffer inside tensor storage (`Storage::Device`): the buffer,
/// the backend that owns it, and the type-erased handle [`backend_of`] finds.
pub struct Resident<B: Backend, T: Element> {
    backend: B,
    owner: Arc<dyn DynBackend>,
    buf: B::Buf<T>,
}

impl<B: Backend, T: Element> Resident<B, T> {
    /// `buf` as tensor storage.
    pub fn wrap(backend: &B, buf: B::Buf<T>) -> Storage {
        Storage::Device(Box::new(Resident {
            backend: backend.clone(),
            owner: Arc::new(backend.clone()) as Arc<dyn DynBackend>,
            buf,
        }))
    }
    /// The buffer of `s` when it is a `B` buffer of `T` on `backend`'s device.
    pub fn get<'s>(backend: &B, s: &'s Storage) -> Option<&'s B::Buf<T>> {
        match s {
            Storage::Device(d) if d.device() == Memory::device(backend) => {
                d.as_any().downcast_ref::<Self>().map(|r| &r.buf)
            }
            _ => None,
        }
    }
    /// The same, writable.
    pub fn get_mut<'s>(backend: &B, s: &'s mut Storage) -> Option<&'s mut B::Buf<T>> {
        match s {
            Storage::Device(d) if d.device() == Memory::device(backend) => {
                d.as_any_mut().downcast_mut::<Self>().map(|r| &mut r.buf)
            }
            _ => None,
        }
    }
    /// The buffer of `s` taken back (else `s` unchanged).
    pub fn unwrap(backend: &B, s: Storage) -> std::result::Result<B::Buf<T>, Storage> {
        if Self::get(backend, &s).is_none() {
            return Err(s);
        }
        match s {
            Storage::Device(d) => {
                let any: Box<dyn Any> = d.into_any();
                any.downcast::<Self>()
                    .map(|r| r.buf)
                    .map_err(|_| unreachable_storage())
            }
            other => Err(other),
        }
    }
}

fn unreachable_storage() -> Storage {
    Storage::F32(Vec::new())
}

impl<B: Backend, T: Element> fmt::Debug for Resident<B, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} × {} on {:?}",
            B::len(&self.buf),
            T::DTYPE,
            Memory::device(&self.backend)
        )
    }
}

impl<B: Backend, T: Element> DeviceData for Resident<B, T> {
    fn device(&self) -> Device {
        Memory::device(&self.backend)
    }
    fn dtype(&self) -> DType {
        T::DTYPE
    }
    fn len(&self) -> usize {
        B::len(&self.buf)
    }
    fn to_host(&self) -> Storage {
        T::wrap(self.backend.download(B::view(&self.buf)))
    }
    fn duplicate(&self) -> Box<dyn DeviceData> {
        let mut buf = Default::default();
        self.backend.resize(&mut buf, B::len(&self.buf));
        self.backend.copy(B::view(&self.buf), B::view_mut(&mut buf));
        Box::new(Resident {
            backend: self.backend.clone(),
            owner: self.owner.clone(),
            buf,
        })
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
    fn owner(&self) -> &dyn Any {
        &self.owner
    }
}
