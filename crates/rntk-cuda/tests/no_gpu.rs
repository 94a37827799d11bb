//! Where no GPU (or no CUDA driver) is found, opening one is an ordinary error that
//! says so — never a panic; where one is, it opens and names itself.

use rntk_cuda::Cuda;

#[test]
fn opening_a_gpu_is_an_error_or_a_device_never_a_panic() {
    match rntk_cuda::unavailable() {
        Some(why) => {
            assert!(why.starts_with("no GPU: "), "{why}");
            let err = Cuda::new(0).unwrap_err().to_string();
            assert!(err.contains("no GPU: "), "{err}");
            assert_eq!(rntk_cuda::device_count(), 0);
        }
        None => {
            let gpu = Cuda::new(0).expect("GPU 0 opens");
            assert!(!gpu.name().is_empty());
            let count = rntk_cuda::device_count() as u32;
            let err = Cuda::new(count).unwrap_err().to_string();
            assert!(err.contains(&format!("GPU {count} asked for")), "{err}");
        }
    }
}
