// The fused LSTM cell (gate order [i, g, f, o] as CNTK): per row, the activated
// gates and tanh(c) kept for the backward, out = [h | c]. One thread per (row, unit).

__device__ __forceinline__ T sigm(T v) { return (T)1 / ((T)1 + exp(-v)); }

KERNEL(lstm_cell_fwd)(const T* pre, const T* cprev, u64 cstride, T* kept, T* out, u64 n,
                      u64 rows) {
    FOR(k, rows * n) {
        u64 r = k / n, j = k % n;
        const T* p = pre + r * 4 * n;
        T* g = kept + r * 5 * n;
        T gi = sigm(p[j]), gg = tanh(p[n + j]), gf = sigm(p[2 * n + j]), go = sigm(p[3 * n + j]);
        T c = gf * cprev[r * cstride + j] + gi * gg;
        T tc = tanh(c);
        g[j] = gi; g[n + j] = gg; g[2 * n + j] = gf; g[3 * n + j] = go; g[4 * n + j] = tc;
        out[r * 2 * n + j] = tc * go;
        out[r * 2 * n + n + j] = c;
    }
}

// Adds ∂/∂pre into dpre (rows × 4N) and ∂/∂c_prev into dcprev (either may be null);
// row strides as rntk's LstmStrides (0: one shared row, then atomically).
KERNEL(lstm_cell_bwd)(const T* kept, const T* cprev, const T* dh, const T* dc, T* dpre,
                      T* dcprev, u64 s_cprev, u64 s_dh, u64 s_dc, u64 s_dcprev, u64 n, u64 rows) {
    FOR(k, rows * n) {
        u64 r = k / n, j = k % n;
        const T* g = kept + r * 5 * n;
        T gi = g[j], gg = g[n + j], gf = g[2 * n + j], go = g[3 * n + j], tc = g[4 * n + j];
        T h = dh[r * s_dh + j];
        T d = dc[r * s_dc + j] + h * go * ((T)1 - tc * tc);
        if (dpre) {
            T* dp = dpre + r * 4 * n;
            dp[j] += d * gg * gi * ((T)1 - gi);
            dp[n + j] += d * gi * ((T)1 - gg * gg);
            dp[2 * n + j] += d * cprev[r * s_cprev + j] * gf * ((T)1 - gf);
            dp[3 * n + j] += h * tc * go * ((T)1 - go);
        }
        if (dcprev) add_at(&dcprev[r * s_dcprev + j], d * gf, s_dcprev == 0 && rows > 1);
    }
}

// The scan's previous state for the rows of one step: the first from_src rows from the
// output rows starting at src_row0 (part 0: h, 1: c), the rest the initial state (one
// value broadcast when init_len is 1).
KERNEL(scan_gather)(const T* out, u64 src_row0, u64 from_src, const T* init, u64 init_len,
                    T* dst, u64 rows, u64 part, u64 n) {
    FOR(k, rows * n) {
        u64 j = k / n, q = k % n;
        dst[k] = j < from_src ? out[(src_row0 + j) * 2 * n + part * n + q]
                              : (init_len == 1 ? init[0] : init[q]);
    }
}

// The gradients of [h | c] at a step: from outside, plus the carry from the step that
// read this one's state (rows < carried).
KERNEL(scan_dstate)(const T* gout, const T* carry_h, const T* carry_c, T* dh, T* dc, u64 rows,
                    u64 carried, u64 n) {
    FOR(k, rows * n) {
        u64 j = k / n, q = k % n;
        T gh = gout[j * 2 * n + q], gc = gout[j * 2 * n + n + q];
        if (j < carried) {
            gh = gh + carry_h[k];
            gc = gc + carry_c[k];
        }
        dh[k] = gh;
        dc[k] = gc;
    }
}

// Rows j0 .. rows started a sequence: their carried gradient goes to the initial state
// (summed into one value when it has one element).
KERNEL(scan_init_grad)(const T* carry, u64 j0, u64 rows, u64 n, T* dinit, u64 dlen) {
    FOR(k, (rows - j0) * n) {
        u64 j = j0 + k / n, q = k % n;
        atomicAdd(&dinit[dlen == 1 ? 0 : q], carry[j * n + q]);
    }
}
