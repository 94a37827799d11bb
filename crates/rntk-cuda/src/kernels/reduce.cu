// Reductions over static axes: the host gives, per output element, the input offset
// of its first element (bases) and the offsets of the elements it reduces (offs),
// taken from rntk's ReduceGeom walk. Op codes: 0 Sum, 1 Mean, 2 Max, 3 Min, 4 LogSumExp.

__device__ T reduce_one(int op, const T* x, const u64* offs, u64 count) {
    if (op <= 1) {
        T s = (T)0;
        for (u64 c = 0; c < count; c++) s += x[offs[c]];
        return op == 1 ? s / (T)count : s;
    }
    if (op == 3) {
        T m = INF_T;
        for (u64 c = 0; c < count; c++) if (x[offs[c]] < m) m = x[offs[c]];
        return m;
    }
    T m = -INF_T;
    for (u64 c = 0; c < count; c++) if (x[offs[c]] > m) m = x[offs[c]];
    if (op == 2 || isinf(m) || isnan(m)) return m;
    T s = (T)0;
    for (u64 c = 0; c < count; c++) s += exp(x[offs[c]] - m);
    return m + log(s);
}

__device__ T reduce_d(int op, u64 count, T x, T o) {
    switch (op) {
    case 0: return (T)1;
    case 1: return (T)1 / (T)count;
    case 4: return exp(x - o);
    default: return x == o ? (T)1 : (T)0;
    }
}

// out[r, e] = reduce over x's row r (stride sx: 0 for a static x).
KERNEL(reduce_fwd)(int op, const T* x, u64 sx, T* out, u64 n, u64 on, const u64* bases,
                   const u64* offs, u64 count) {
    FOR(k, n * on) {
        u64 r = k / on, e = k % on;
        out[k] = reduce_one(op, x + r * sx + bases[e], offs, count);
    }
}

// din[r·sx + base + off] += dout · ∂out/∂x, atomic where a static x sums rows.
KERNEL(reduce_bwd)(int op, const T* x, u64 sx, const T* out, const T* dout, T* din, u64 n,
                   u64 on, const u64* bases, const u64* offs, u64 count) {
    FOR(k, n * on * count) {
        u64 c = k % count, q = k / count, r = q / on, e = q % on;
        u64 at = r * sx + bases[e] + offs[c];
        T v = dout[q] * reduce_d(op, count, x[at], out[q]);
        add_at(&din[at], v, sx == 0);
    }
}

// out[0] = reduce(x) over n elements: one block, a tree in shared memory for the
// sums, one thread for the order-sensitive max/min/logsumexp.
KERNEL(reduce_all)(int op, const T* x, u64 n, T* out) {
    __shared__ T part[256];
    if (op >= 2) {
        if (threadIdx.x != 0) return;
        T m = op == 3 ? INF_T : -INF_T;
        for (u64 i = 0; i < n; i++) {
            if (op == 3 ? x[i] < m : x[i] > m) m = x[i];
        }
        if (op == 4 && !isinf(m) && !isnan(m)) {
            T s = (T)0;
            for (u64 i = 0; i < n; i++) s += exp(x[i] - m);
            m = m + log(s);
        }
        out[0] = m;
        return;
    }
    T s = (T)0;
    for (u64 i = threadIdx.x; i < n; i += blockDim.x) s += x[i];
    part[threadIdx.x] = s;
    __syncthreads();
    for (unsigned w = blockDim.x / 2; w > 0; w /= 2) {
        if (threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[0] = op == 1 ? part[0] / (T)n : part[0];
}

KERNEL(reduce_all_bwd)(int op, const T* x, u64 n, const T* out, const T* dout, T* din) {
    FOR(i, n) din[i] += dout[0] * reduce_d(op, n, x[i], out[0]);
}

// Σ x² into acc[0] (a double, atomically): the norm for gradient clipping.
KERNEL(sum_squares)(const T* x, u64 n, double* acc) {
    double s = 0.0;
    FOR(i, n) s += (double)x[i] * (double)x[i];
    atomicAdd(acc, s);
}
