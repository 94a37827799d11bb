//! The CUDA kernels' arithmetic checked without a GPU: the same sources, compiled as
//! C++ for the host by the system's `c++` with a small shim (one block of one thread,
//! so every grid-stride loop walks all items in order; atomics are plain adds), are
//! called on host memory and compared with rntk's CPU kernels. This checks what each
//! kernel computes (gates, softmax, losses, broadcasting tables, reductions, learner
//! steps) — not the launch, the memory or the GPU's rounding of
//! exp/tanh, which `tests/gpu_conformance.rs` checks on a GPU. Skips with one line
//! where no C++ compiler is installed.
//!
//! One test binary: `main.rs` builds the library and holds the helpers, one module per
//! kernel family holds its tests.

use rntk_cuda::kernels;
use std::path::PathBuf;
use std::sync::OnceLock;

const SHIM: &str = r#"
#include <cmath>
#include <cstdint>
using namespace std;
struct dim3_ { unsigned x, y, z; };
static const dim3_ blockIdx = {0, 0, 0}, threadIdx = {0, 0, 0};
static const dim3_ blockDim = {1, 1, 1}, gridDim = {1, 1, 1};
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __syncthreads() ((void)0)
template <class X> inline X atomicAdd(X* p, X v) { X old = *p; *p += v; return old; }
"#;

/// The f64 kernels built as a host library, or `None` (skip) without a compiler.
fn library() -> Option<&'static libloading::Library> {
    static LIB: OnceLock<Option<libloading::Library>> = OnceLock::new();
    LIB.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rntk-cuda-host-kernels");
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("kernels.cpp");
        let lib = dir.join("libkernels.so");
        std::fs::write(
            &src,
            format!("{SHIM}\n{}", kernels::program(rntk::DType::F64)),
        )
        .unwrap();
        let out = std::process::Command::new("c++")
            .args(["-O1", "-std=c++17", "-shared", "-fPIC", "-w", "-o"])
            .arg(&lib)
            .arg(&src)
            .output();
        match out {
            Err(e) => {
                eprintln!("skipped: no C++ compiler to build the host emulation ({e})");
                None
            }
            Ok(o) => {
                assert!(
                    o.status.success(),
                    "the kernels as C++:\n{}",
                    String::from_utf8_lossy(&o.stderr)
                );
                // SAFETY: a library just built from our sources, no initializers.
                Some(unsafe { libloading::Library::new(&lib) }.unwrap())
            }
        }
    })
    .as_ref()
}

/// Call kernel `$name` (f64) with the C signature `$sig`.
macro_rules! k {
    ($lib:expr, $name:literal, fn($($t:ty),*), $($a:expr),*) => {{
        let f: libloading::Symbol<unsafe extern "C" fn($($t),*)> =
            unsafe { $lib.get(concat!($name, "_f64\0").as_bytes()) }.unwrap();
        unsafe { f($($a),*) }
    }};
}

type P = *const f64;
type M = *mut f64;
const NULLU: *const u64 = std::ptr::null();

fn vals(n: usize, key: usize) -> Vec<f64> {
    (0..n)
        .map(|i| ((((i * 37 + key * 11) % 29) as f64) - 14.0) * 0.13 + 0.001 * i as f64)
        .collect()
}

fn close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "{what}[{i}]: kernel {g} vs CPU {w}"
        );
    }
}

mod copies;
mod elementwise;
mod losses;
mod recurrent;
mod reduce;
mod updates;
