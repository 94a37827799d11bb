// Shared by every kernel source: compiled once per element type with -DT=float
// -DSUF=_f32 (or double/_f64), so each kernel exists as name_f32 and name_f64.
typedef unsigned long long u64;
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define KERNEL(name) extern "C" __global__ void CAT(name, SUF)
// A grid-stride loop over n items.
#define FOR(i, n) \
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < (u64)(n); \
         i += (u64)blockDim.x * gridDim.x)
#define INF_T ((T)(1.0 / 0.0))

__device__ __forceinline__ void add_at(T* p, T v, int atomic) {
    if (atomic) atomicAdd(p, v); else *p += v;
}
