//! The CUDA device: a context, its stream, a cuBLAS handle and the compiled kernels,
//! shared by every handle to the same GPU. Opening one checks that the libraries can
//! be loaded before the first call into them (cudarc panics on a missing library), so
//! a machine without a GPU gets an ordinary error ("no GPU: ..."), never a panic.

use crate::kernels;
use cudarc::cublas::sys::cublasHandle_t;
use cudarc::driver::{CudaContext, CudaFunction, CudaStream, LaunchConfig, PushKernelArg};
use rntk::tensor::Element;
use rntk::{DType, Error, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// A CUDA GPU as an rntk backend (`Executor::<f32, Cuda>::with_backend`,
/// `train_on`). Clones share the device.
#[derive(Clone)]
pub struct Cuda {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Cuda {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cuda({}: {})", self.inner.ordinal, self.inner.name)
    }
}

pub(crate) struct Inner {
    pub(crate) ordinal: u32,
    pub(crate) name: String,
    pub(crate) ctx: Arc<CudaContext>,
    pub(crate) stream: Arc<CudaStream>,
    pub(crate) blas: Blas,
    funcs: [HashMap<&'static str, CudaFunction>; 2],
    pub(crate) uploads: AtomicU64,
    pub(crate) downloads: AtomicU64,
    pub(crate) op_reads: AtomicU64,
    pub(crate) op_writes: AtomicU64,
    /// Kernel calls that ran on the host through counted transfers (not yet on the GPU).
    pub(crate) host_calls: Mutex<HashMap<&'static str, u64>>,
}

/// A cuBLAS handle (destroyed with the device).
pub(crate) struct Blas(pub(crate) cublasHandle_t);
// SAFETY: the handle is used only with the device's one stream, calls serialized by
// the stream; cuBLAS handles may be used from any thread of their context.
unsafe impl Send for Blas {}
unsafe impl Sync for Blas {}

impl Drop for Blas {
    fn drop(&mut self) {
        // SAFETY: created by create_handle, destroyed once.
        let _ = unsafe { cudarc::cublas::result::destroy_handle(self.0) };
    }
}

/// A kernel argument: a device pointer, a size, a flag or a scalar (f64; the kernel
/// rounds it to its element type).
#[derive(Clone, Copy, Debug)]
pub(crate) enum KArg {
    U(u64),
    I(i32),
    F(f64),
}

/// Whether the CUDA driver library can be loaded at all.
pub fn driver_present() -> bool {
    // SAFETY: only tries to open the library.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// GPUs the driver sees (0 without a driver or a GPU).
pub fn device_count() -> usize {
    if !driver_present() {
        return 0;
    }
    CudaContext::device_count().map_or(0, |n| n.max(0) as usize)
}

/// Why no GPU can be used here, or `None` when one can.
pub fn unavailable() -> Option<String> {
    if !driver_present() {
        return Some("no GPU: the CUDA driver (libcuda.so.1) is not installed".into());
    }
    if device_count() == 0 {
        return Some("no GPU: the CUDA driver reports no device".into());
    }
    None
}

fn no_gpu(what: impl std::fmt::Display) -> Error {
    Error::Unsupported(format!("no GPU: {what}"))
}

static OPEN: OnceLock<Mutex<HashMap<u32, Cuda>>> = OnceLock::new();

impl Cuda {
    /// GPU `ordinal`, opened once per process (later calls share it): the context,
    /// the kernels compiled by NVRTC for its architecture, cuBLAS. Every missing piece
    /// is an error naming it.
    pub fn new(ordinal: u32) -> Result<Cuda> {
        let open = OPEN.get_or_init(Default::default);
        let mut open = open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = open.get(&ordinal) {
            return Ok(c.clone());
        }
        let c = Cuda::open(ordinal)?;
        open.insert(ordinal, c.clone());
        Ok(c)
    }

    fn open(ordinal: u32) -> Result<Cuda> {
        if let Some(why) = unavailable() {
            return Err(Error::Unsupported(why));
        }
        let count = device_count();
        if ordinal as usize >= count {
            return Err(no_gpu(format!(
                "GPU {ordinal} asked for, the driver sees {count} (gpu:0 .. gpu:{})",
                count - 1
            )));
        }
        // SAFETY: only try to open the libraries.
        if !kernels::nvrtc_present() {
            return Err(no_gpu(
                "the NVRTC library (libnvrtc.so.13) is not installed",
            ));
        }
        if !unsafe { cudarc::cublas::sys::is_culib_present() } {
            return Err(no_gpu("cuBLAS (libcublas.so.13) is not installed"));
        }
        let ctx = CudaContext::new(ordinal as usize).map_err(no_gpu)?;
        // one stream: every call is ordered, no cross-stream events to track
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.default_stream();
        let name = ctx.name().unwrap_or_else(|_| "unknown GPU".into());
        let (major, minor) = ctx.compute_capability().map_err(no_gpu)?;
        let arch: &'static str = Box::leak(format!("compute_{major}{minor}").into_boxed_str());
        let blas = Blas(cudarc::cublas::result::create_handle().map_err(no_gpu)?);
        // SAFETY: a fresh handle and the context's null stream.
        unsafe { cudarc::cublas::result::set_stream(blas.0, std::ptr::null_mut()) }
            .map_err(no_gpu)?;
        let load = |dtype: DType| -> Result<HashMap<&'static str, CudaFunction>> {
            let ptx = kernels::compile(dtype, arch)
                .map_err(|log| no_gpu(format!("compiling the kernels for {arch}: {log}")))?;
            let module = ctx.load_module(ptx).map_err(no_gpu)?;
            let mut m = HashMap::new();
            for &k in kernels::NAMES {
                let f = module
                    .load_function(&format!("{k}{}", kernels::suffix(dtype)))
                    .map_err(|e| no_gpu(format!("kernel {k}: {e}")))?;
                m.insert(k, f);
            }
            Ok(m)
        };
        let funcs = [load(DType::F32)?, load(DType::F64)?];
        Ok(Cuda {
            inner: Arc::new(Inner {
                ordinal,
                name,
                ctx,
                stream,
                blas,
                funcs,
                uploads: AtomicU64::new(0),
                downloads: AtomicU64::new(0),
                op_reads: AtomicU64::new(0),
                op_writes: AtomicU64::new(0),
                host_calls: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The device's name (e.g. "NVIDIA H200").
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Kernel calls that ran on the host through counted transfers, by kernel: the
    /// parts of the interface not yet implemented on the GPU.
    pub fn host_calls(&self) -> Vec<(&'static str, u64)> {
        let m = self
            .inner
            .host_calls
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = m.iter().map(|(k, n)| (*k, *n)).collect();
        v.sort();
        v
    }

    /// Wait for every queued kernel (timings).
    pub fn synchronize(&self) -> Result<()> {
        self.inner
            .stream
            .synchronize()
            .map_err(|e| Error::Unsupported(format!("GPU {}: {e}", self.inner.ordinal)))
    }

    pub(crate) fn bind(&self) {
        self.inner
            .ctx
            .bind_to_thread()
            .unwrap_or_else(|e| fault("binding the context", e));
    }

    pub(crate) fn count(&self, c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn host_call(&self, kernel: &'static str) {
        let mut m = self
            .inner
            .host_calls
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *m.entry(kernel).or_default() += 1;
    }

    /// Launch kernel `name` (for `T`) over `work` items (grid-stride loops).
    pub(crate) fn launch<T: Element>(&self, name: &'static str, work: usize, args: &[KArg]) {
        if work == 0 {
            return;
        }
        let blocks = work.div_ceil(256).min(1 << 16) as u32;
        let cfg = LaunchConfig {
            grid_dim: (blocks, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        self.launch_cfg::<T>(name, cfg, args)
    }

    /// Launch with an explicit configuration.
    pub(crate) fn launch_cfg<T: Element>(
        &self,
        name: &'static str,
        cfg: LaunchConfig,
        args: &[KArg],
    ) {
        let k = match T::DTYPE {
            DType::F32 => 0,
            DType::F64 => 1,
        };
        let f = self.inner.funcs[k]
            .get(name)
            .unwrap_or_else(|| fault("looking up a kernel", name));
        let mut b = self.inner.stream.launch_builder(f);
        for a in args {
            match a {
                KArg::U(v) => b.arg(v),
                KArg::I(v) => b.arg(v),
                KArg::F(v) => b.arg(v),
            };
        }
        // SAFETY: the arguments match the kernel's signature (kernels/*.cu), pointers
        // are live device buffers of the views passed in.
        unsafe { b.launch(cfg) }.unwrap_or_else(|e| fault(name, e));
    }
}

/// A failure of the device itself after it was opened (a kernel fault, a lost
/// device): not a user error, and the kernel interface has no error channel.
pub(crate) fn fault(what: impl std::fmt::Display, e: impl std::fmt::Display) -> ! {
    panic!("CUDA device failure in {what}: {e}")
}
