// Data movement: slices and splices of (outer, dim, inner) samples, permutations and
// row maps through host-made index tables, the delays' rows, sparse to dense and
// sparse × dense products.

// Per row, elements begin + j·stride (j < count) of the middle axis.
KERNEL(slice_fwd)(const T* x, T* out, u64 n, u64 outer, u64 dim, u64 inner, u64 begin,
                  u64 stride, u64 count) {
    u64 nx = outer * dim * inner, no = outer * count * inner;
    FOR(k, n * no) {
        u64 r = k / no, e = k % no;
        u64 o = e / (count * inner), j = (e / inner) % count, i = e % inner;
        out[k] = x[r * nx + (o * dim + begin + j * stride) * inner + i];
    }
}

KERNEL(slice_bwd)(const T* dout, T* din, u64 n, u64 outer, u64 dim, u64 inner, u64 begin,
                  u64 stride, u64 count, int per_row) {
    u64 nx = outer * dim * inner, no = outer * count * inner;
    FOR(k, n * no) {
        u64 r = k / no, e = k % no;
        u64 o = e / (count * inner), j = (e / inner) % count, i = e % inner;
        add_at(&din[(per_row ? r * nx : 0) + (o * dim + begin + j * stride) * inner + i],
               dout[k], !per_row);
    }
}

// One operand's part of a splice: out's (outer, total, inner) at start .. start + extent.
KERNEL(splice_fwd)(const T* x, u64 sx, T* out, u64 n, u64 outer, u64 inner, u64 total,
                   u64 start, u64 extent) {
    u64 nx = outer * extent * inner, no = outer * total * inner;
    FOR(k, n * nx) {
        u64 r = k / nx, e = k % nx, o = e / (extent * inner), rest = e % (extent * inner);
        out[r * no + (o * total + start) * inner + rest] = x[r * sx + e];
    }
}

KERNEL(splice_bwd)(const T* dout, T* din, u64 n, u64 outer, u64 inner, u64 total, u64 start,
                   u64 extent, int per_row) {
    u64 nx = outer * extent * inner, no = outer * total * inner;
    FOR(k, n * nx) {
        u64 r = k / nx, e = k % nx, o = e / (extent * inner), rest = e % (extent * inner);
        add_at(&din[(per_row ? r * nx : 0) + e], dout[r * no + (o * total + start) * inner + rest],
               !per_row);
    }
}

// out[r, e] = x[r, map[e]] (a permutation's table).
KERNEL(gather_map)(const T* x, T* out, u64 n, u64 d, const u64* map) {
    FOR(k, n * d) {
        u64 r = k / d, e = k % d;
        out[k] = x[r * d + map[e]];
    }
}

// din[r, map[e]] += dout[r, e] (din static: summed atomically).
KERNEL(scatter_map)(const T* dout, T* din, u64 n, u64 d, const u64* map, int per_row) {
    FOR(k, n * d) {
        u64 r = k / d, e = k % d;
        add_at(&din[(per_row ? r * d : 0) + map[e]], dout[k], !per_row);
    }
}

// dst[b] = src[a] for each (a, b) pair, rows of d.
KERNEL(copy_rows)(const T* src, T* dst, u64 d, const u64* pairs, u64 np) {
    FOR(k, np * d) {
        u64 p = k / d, f = k % d;
        dst[pairs[2 * p + 1] * d + f] = src[pairs[2 * p] * d + f];
    }
}

// dst[b] += src[a] (pairs may share a destination: atomic).
KERNEL(add_rows)(const T* src, T* dst, u64 d, const u64* pairs, u64 np) {
    FOR(k, np * d) {
        u64 p = k / d, f = k % d;
        atomicAdd(&dst[pairs[2 * p + 1] * d + f], src[pairs[2 * p] * d + f]);
    }
}

// dst[b] = max(dst[b], src[a]) in pair order: one thread per column, the pairs in turn.
KERNEL(max_rows)(const T* src, T* dst, u64 d, const u64* pairs, u64 np) {
    FOR(f, d) {
        for (u64 p = 0; p < np; p++) {
            T v = src[pairs[2 * p] * d + f];
            T* m = &dst[pairs[2 * p + 1] * d + f];
            if (v > *m) *m = v;
        }
    }
}

KERNEL(max_rows_bwd)(const T* x, const T* y, const T* dy, T* dx, u64 d, const u64* pairs,
                     u64 np) {
    FOR(k, np * d) {
        u64 p = k / d, f = k % d;
        u64 a = pairs[2 * p] * d + f, b = pairs[2 * p + 1] * d + f;
        if (x[a] == y[b]) atomicAdd(&dx[a], dy[b]);
    }
}

KERNEL(fill_rows)(T* dst, u64 d, const u64* rows, u64 nr, double v) {
    FOR(k, nr * d) dst[rows[k / d] * d + k % d] = (T)v;
}

// A delay's step: row j of the block gets x's row src[j], or (src[j] has the top bit)
// the initial state: one scalar (mode 0), sequence src[j] & mask (mode 1), one sample
// (mode 2).
#define INIT_BIT (1ull << 63)
KERNEL(delay_fwd)(const T* x, const T* init, T* y, u64 d, const u64* src, u64 rows, int mode) {
    FOR(k, rows * d) {
        u64 j = k / d, f = k % d, s = src[j];
        T v;
        if (!(s & INIT_BIT)) v = x[s * d + f];
        else if (mode == 0) v = init[0];
        else if (mode == 1) v = init[(s & ~INIT_BIT) * d + f];
        else v = init[f];
        y[k] = v;
    }
}

KERNEL(delay_bwd)(const T* dy, T* dx, T* dinit, u64 d, const u64* src, u64 rows, int mode) {
    FOR(k, rows * d) {
        u64 j = k / d, f = k % d, s = src[j];
        T g = dy[k];
        if (!(s & INIT_BIT)) {
            if (dx) atomicAdd(&dx[s * d + f], g);
        } else if (dinit) {
            if (mode == 0) atomicAdd(&dinit[0], g);
            else if (mode == 1) atomicAdd(&dinit[(s & ~INIT_BIT) * d + f], g);
            else atomicAdd(&dinit[f], g);
        }
    }
}

// Sparse rows (indptr offset to the block's first row) written into zeroed dense rows
// (one thread per row: a repeated column keeps its last value, as on the CPU).
KERNEL(scatter_sparse)(const u64* indptr, const unsigned* indices, const T* values, u64 rows,
                       u64 d, T* out) {
    FOR(r, rows) {
        for (u64 p = indptr[r]; p < indptr[r + 1]; p++) out[r * d + indices[p]] = values[p];
    }
}

// out (n × o) = a·B for sparse a (n × k) and B (k × o), or a·Bᵀ with B (o × k).
KERNEL(sparse_times)(const u64* indptr, const unsigned* indices, const T* values, u64 n,
                     const T* b, u64 k, u64 o, int transposed, T* out) {
    FOR(q, n * o) {
        u64 r = q / o, c = q % o;
        T s = (T)0;
        for (u64 p = indptr[r]; p < indptr[r + 1]; p++) {
            u64 j = indices[p];
            s += values[p] * (transposed ? b[c * k + j] : b[j * o + c]);
        }
        out[q] = s;
    }
}

// dB += aᵀ·dout (laid out as B above).
KERNEL(sparse_times_bwd)(const u64* indptr, const unsigned* indices, const T* values, u64 n,
                         const T* dout, u64 k, u64 o, int transposed, T* db) {
    FOR(q, n * o) {
        u64 r = q / o, c = q % o;
        T g = dout[q];
        for (u64 p = indptr[r]; p < indptr[r + 1]; p++) {
            u64 j = indices[p];
            atomicAdd(&db[transposed ? c * k + j : j * o + c], values[p] * g);
        }
    }
}
