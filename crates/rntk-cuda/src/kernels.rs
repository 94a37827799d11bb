//! The CUDA C sources of every kernel and how they are compiled: NVRTC, once per
//! element type (`-DT=float -DSUF=_f32`, `double`/`_f64`), so each kernel exists as
//! `name_f32` and `name_f64`. [`NAMES`] lists every kernel the backend launches; the
//! CI test (`tests/nvrtc.rs`) compiles the sources to PTX without a GPU and checks
//! each name is there.

use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions, Ptx};
use rntk::DType;

/// Macros and helpers every source uses.
pub const COMMON: &str = include_str!("kernels/common.cuh");

/// The kernel sources, by family.
pub const SOURCES: &[(&str, &str)] = &[
    ("elementwise", include_str!("kernels/elementwise.cu")),
    ("reduce", include_str!("kernels/reduce.cu")),
    ("losses", include_str!("kernels/losses.cu")),
    ("copies", include_str!("kernels/copies.cu")),
    ("lstm", include_str!("kernels/lstm.cu")),
    ("updates", include_str!("kernels/updates.cu")),
];

/// Every kernel the backend launches (without the element-type suffix).
pub const NAMES: &[&str] = &[
    "unary_fwd",
    "unary_bwd",
    "binary_fwd",
    "binary_bwd",
    "ternary_fwd",
    "ternary_bwd",
    "fill",
    "add_scalar",
    "add",
    "mul",
    "add_product",
    "sum_rows",
    "reduce_fwd",
    "reduce_bwd",
    "reduce_all",
    "reduce_all_bwd",
    "sum_squares",
    "softmax_fwd",
    "softmax_bwd",
    "ce_fwd",
    "ce_bwd",
    "class_err_fwd",
    "class_err_bwd",
    "hardmax",
    "slice_fwd",
    "slice_bwd",
    "splice_fwd",
    "splice_bwd",
    "gather_map",
    "scatter_map",
    "copy_rows",
    "add_rows",
    "max_rows",
    "max_rows_bwd",
    "fill_rows",
    "delay_fwd",
    "delay_bwd",
    "scatter_sparse",
    "sparse_times",
    "sparse_times_bwd",
    "lstm_cell_fwd",
    "lstm_cell_bwd",
    "scan_gather",
    "scan_dstate",
    "scan_init_grad",
    "clip_truncate",
    "clip_norm",
    "axpy",
    "l1_shrink",
    "sgd",
    "momentum",
    "adam",
];

/// The suffix of the kernels compiled for `dtype`.
pub fn suffix(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "_f32",
        DType::F64 => "_f64",
    }
}

/// The whole program for one element type.
pub fn program(dtype: DType) -> String {
    let t = match dtype {
        DType::F32 => "float",
        DType::F64 => "double",
    };
    let mut s = format!("#define T {t}\n#define SUF {}\n{COMMON}\n", suffix(dtype));
    for (name, src) in SOURCES {
        s.push_str(&format!("// ---- {name}.cu\n{src}\n"));
    }
    s
}

/// Whether the NVRTC library can be loaded (checked before any NVRTC call: cudarc
/// panics on a missing library).
pub fn nvrtc_present() -> bool {
    // SAFETY: only tries to open the library.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// The program for `dtype` compiled to PTX for a virtual architecture
/// (`compute_90`, ...); the error is NVRTC's log.
pub fn compile(dtype: DType, arch: &'static str) -> Result<Ptx, String> {
    compile_source(&program(dtype), &format!("rntk{}.cu", suffix(dtype)), arch)
}

/// Any CUDA C source compiled to PTX (the error is NVRTC's log, or why NVRTC is
/// missing).
pub fn compile_source(src: &str, name: &str, arch: &'static str) -> Result<Ptx, String> {
    if !nvrtc_present() {
        return Err("the NVRTC library (libnvrtc.so.13) is not on the library path".into());
    }
    let opts = CompileOptions {
        arch: Some(arch),
        name: Some(name.into()),
        ..Default::default()
    };
    compile_ptx_with_opts(src, opts).map_err(|e| match e {
        cudarc::nvrtc::CompileError::CompileError { log, .. } => log.to_string_lossy().into_owned(),
        other => other.to_string(),
    })
}
