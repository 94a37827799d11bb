// Softmax and the fused losses: one thread per distribution (rows × outer × inner),
// max-subtracted like the CPU. Targets are dense (row stride st, 0 when static) or
// sparse CSR rows (indptr, indices, values) from row r0 on.

// softmax / log_softmax along the middle axis of (outer, dim, inner), per row.
KERNEL(softmax_fwd)(int lg, const T* x, u64 sx, T* out, u64 n, u64 outer, u64 dim, u64 inner) {
    u64 numel = outer * dim * inner;
    FOR(k, n * outer * inner) {
        u64 r = k / (outer * inner), q = k % (outer * inner), o = q / inner, i = q % inner;
        const T* xr = x + r * sx + o * dim * inner + i;
        T* yr = out + r * numel + o * dim * inner + i;
        T m = -INF_T;
        for (u64 j = 0; j < dim; j++) if (xr[j * inner] > m) m = xr[j * inner];
        T s = (T)0;
        for (u64 j = 0; j < dim; j++) s += exp(xr[j * inner] - m);
        T ls = log(s);
        for (u64 j = 0; j < dim; j++) {
            T v = xr[j * inner] - m;
            yr[j * inner] = lg ? v - ls : exp(v) / s;
        }
    }
}

// din += the softmax (log_softmax) gradient from the output; din static: atomic.
KERNEL(softmax_bwd)(int lg, const T* out, const T* dout, T* din, u64 n, u64 outer, u64 dim,
                    u64 inner, int per_row) {
    u64 numel = outer * dim * inner;
    FOR(k, n * outer * inner) {
        u64 r = k / (outer * inner), q = k % (outer * inner), o = q / inner, i = q % inner;
        u64 base = o * dim * inner + i;
        const T* y = out + r * numel + base;
        const T* g = dout + r * numel + base;
        T* d = din + (per_row ? r * numel : 0) + base;
        T s = (T)0;
        for (u64 j = 0; j < dim; j++) s += lg ? g[j * inner] : g[j * inner] * y[j * inner];
        for (u64 j = 0; j < dim; j++) {
            u64 a = j * inner;
            T v = lg ? g[a] - exp(y[a]) * s : y[a] * (g[a] - s);
            add_at(&d[a], v, !per_row);
        }
    }
}

// Σ_j t_j·o_j over part [lo, lo + dim) of row r's target.
__device__ T dot_target(const T* o, const T* t, u64 st, const u64* indptr,
                        const unsigned* indices, const T* values, u64 r, u64 lo, u64 dim) {
    T s = (T)0;
    if (t) {
        const T* tr = t + r * st + lo;
        for (u64 j = 0; j < dim; j++) s += tr[j] * o[j];
    } else {
        for (u64 p = indptr[r]; p < indptr[r + 1]; p++) {
            u64 c = indices[p];
            if (c >= lo && c < lo + dim) s += values[p] * o[c - lo];
        }
    }
    return s;
}

__device__ T log_sum_exp(const T* o, u64 dim) {
    T m = -INF_T;
    for (u64 j = 0; j < dim; j++) if (o[j] > m) m = o[j];
    if (isinf(m) || isnan(m)) return m;
    T s = (T)0;
    for (u64 j = 0; j < dim; j++) s += exp(o[j] - m);
    return m + log(s);
}

// Per distribution q of row r: lse = log Σ exp(o), out = lse − Σ t·o. `indptr` is
// already offset to the block's first row.
KERNEL(ce_fwd)(const T* o, u64 so, const T* t, u64 st, const u64* indptr,
               const unsigned* indices, const T* values, T* lse, T* out, u64 n, u64 numel,
               u64 dim) {
    u64 outer = numel / dim;
    FOR(k, n * outer) {
        u64 r = k / outer, q = k % outer;
        const T* od = o + r * so + q * dim;
        T l = log_sum_exp(od, dim);
        lse[k] = l;
        out[k] = l - dot_target(od, t, st, indptr, indices, values, r, q * dim, dim);
    }
}

// i == 0: din[o] += dout·(softmax(o) − t); i == 1: din[t] += −dout·o. One thread per
// element; a static din (stride 0) adds atomically.
KERNEL(ce_bwd)(int i, const T* o, u64 so, const T* t, u64 st, const u64* indptr,
               const unsigned* indices, const T* values, const T* lse, const T* dout,
               T* din, u64 sd, u64 n, u64 numel, u64 dim) {
    u64 outer = numel / dim;
    FOR(k, n * numel) {
        u64 r = k / numel, c = k % numel, q = c / dim;
        T gv = dout[r * outer + q];
        T v;
        if (i == 1) {
            v = -gv * o[r * so + c];
        } else {
            v = gv * exp(o[r * so + c] - lse[r * outer + q]);
            if (t) {
                v -= gv * t[r * st + c];
            } else {
                for (u64 p = indptr[r]; p < indptr[r + 1]; p++)
                    if (indices[p] == c) v -= gv * values[p];
            }
        }
        add_at(&din[r * sd + c], v, sd == 0 && n > 1);
    }
}

__device__ u64 argmax(const T* x, u64 dim) {
    u64 best = 0;
    for (u64 j = 1; j < dim; j++) if (x[j] > x[best]) best = j;
    return best;
}

// Per distribution: 1 − t[argmax o] (a sparse row sums its entries there).
KERNEL(class_err_fwd)(const T* o, u64 so, const T* t, u64 st, const u64* indptr,
                      const unsigned* indices, const T* values, T* out, u64 n, u64 numel,
                      u64 dim) {
    u64 outer = numel / dim;
    FOR(k, n * outer) {
        u64 r = k / outer, q = k % outer;
        u64 c = q * dim + argmax(o + r * so + q * dim, dim);
        T hit = (T)0;
        if (t) {
            hit = t[r * st + c];
        } else {
            for (u64 p = indptr[r]; p < indptr[r + 1]; p++)
                if (indices[p] == c) hit += values[p];
        }
        out[k] = (T)1 - hit;
    }
}

KERNEL(class_err_bwd)(const T* o, u64 so, const T* dout, T* din, u64 n, u64 numel, u64 dim,
                      int per_row) {
    u64 outer = numel / dim;
    FOR(k, n * outer) {
        u64 r = k / outer, q = k % outer;
        u64 c = q * dim + argmax(o + r * so + q * dim, dim);
        add_at(&din[(per_row ? r * numel : 0) + c], -dout[k], !per_row);
    }
}

// One-hot of the first maximal element of each row of d.
KERNEL(hardmax)(const T* x, u64 sx, T* out, u64 n, u64 d) {
    FOR(r, n) {
        u64 best = argmax(x + r * sx, d);
        for (u64 j = 0; j < d; j++) out[r * d + j] = j == best ? (T)1 : (T)0;
    }
}
