//! Every kernel source compiles with NVRTC (CUDA 13.0) to PTX — no GPU needed — for
//! both element types and the lent cards' architectures, and the PTX holds every
//! kernel the backend launches. CI installs NVRTC from PyPI (`nvidia-cuda-nvrtc`) and
//! sets `RNTK_REQUIRE_NVRTC=1`, so there a missing library fails instead of skipping.

use rntk::DType;
use rntk_cuda::kernels;

/// Whether NVRTC is here; without it, skip with one line (or fail under CI).
fn nvrtc() -> bool {
    if kernels::nvrtc_present() {
        return true;
    }
    assert!(
        std::env::var_os("RNTK_REQUIRE_NVRTC").is_none(),
        "RNTK_REQUIRE_NVRTC is set but libnvrtc.so.13 is not on LD_LIBRARY_PATH"
    );
    eprintln!(
        "skipped: libnvrtc.so.13 not on LD_LIBRARY_PATH (pip install nvidia-cuda-nvrtc==13.0.*; .ci/run does)"
    );
    false
}

#[test]
fn every_kernel_compiles_to_ptx_for_both_element_types() {
    if !nvrtc() {
        return;
    }
    // sm_80 (A100), sm_90 (H100/H200): the PTX the driver JIT-compiles on those cards
    for arch in ["compute_80", "compute_90"] {
        for dtype in [DType::F32, DType::F64] {
            let ptx = kernels::compile(dtype, arch)
                .unwrap_or_else(|log| panic!("kernels for {dtype:?} on {arch}:\n{log}"));
            let text = ptx.to_src();
            for k in kernels::NAMES {
                let entry = format!(".entry {k}{}(", kernels::suffix(dtype));
                assert!(text.contains(&entry), "{entry} missing from the {arch} PTX");
            }
        }
    }
}

#[test]
fn a_kernel_that_does_not_compile_is_an_error_with_nvrtcs_log() {
    if !nvrtc() {
        return;
    }
    let bad = format!(
        "{}\n{}",
        "#define T float\n#define SUF _f32",
        kernels::COMMON
    ) + "KERNEL(broken)(T* x) { x[0] = undeclared_name; }\n";
    let log = kernels::compile_source(&bad, "broken.cu", "compute_90").unwrap_err();
    assert!(log.contains("undeclared_name"), "log: {log}");
}
