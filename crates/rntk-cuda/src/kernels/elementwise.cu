// Element-wise kernels: unary/binary/ternary with their backwards (op codes in the
// order of rntk's UnaryOp/BinaryOp/TernaryOp variants), broadcasting through an index
// table (per output element, the element of each operand), static operands as row
// stride 0, and the plain fills, copies and sums.

__device__ T unary_f(int op, T v, T a) {
    switch (op) {
    case 0: return -v;
    case 1: return (T)1 / ((T)1 + exp(-v));
    case 2: return tanh(v);
    case 3: return v > (T)0 ? v : (T)0;
    case 4: return v > (T)0 ? v : a * v;
    case 5: return v > (T)0 ? v : exp(v) - (T)1;
    case 6: return fmax(v, (T)0) + log1p(exp(-fabs(v)));
    case 7: return exp(v);
    case 8: return log(v);
    case 9: return sqrt(v);
    case 10: return v * v;
    case 11: return fabs(v);
    case 12: return (T)1 / v;
    case 15: return floor(v);
    case 16: return sin(v);
    case 17: return cos(v);
    default: return v; // 13 StopGradient, 14 Alias
    }
}

// dy * f'(x), with y = f(x) where the derivative reads it.
__device__ T unary_d(int op, T v, T o, T g, T a) {
    switch (op) {
    case 0: return -g;
    case 1: return g * o * ((T)1 - o);
    case 2: return g * ((T)1 - o * o);
    case 3: return v > (T)0 ? g : (T)0;
    case 4: return v >= (T)0 ? g : a * g;
    case 5: return v > (T)0 ? g : g * (o + (T)1);
    case 6: return g / ((T)1 + exp(-v));
    case 7: return g * o;
    case 8: return g / v;
    case 9: return g * (T)0.5 / o;
    case 10: return g * (v + v);
    case 11: return v > (T)0 ? g : (v < (T)0 ? -g : (T)0);
    case 12: return -g * o * o;
    case 14: return g;
    case 16: return g * cos(v);
    case 17: return -g * sin(v);
    default: return (T)0; // 13 StopGradient, 15 Floor
    }
}

KERNEL(unary_fwd)(int op, double alpha, const T* x, T* y, u64 n) {
    T a = (T)alpha;
    FOR(i, n) y[i] = unary_f(op, x[i], a);
}

KERNEL(unary_bwd)(int op, double alpha, const T* x, const T* y, const T* dy, T* dx, u64 n) {
    T a = (T)alpha;
    FOR(i, n) dx[i] += unary_d(op, x[i], y[i], dy[i], a);
}

__device__ T binary_f(int op, T a, T b) {
    switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
    case 4: return pow(a, b);
    case 5: return a > b ? a : b;
    case 6: return a < b ? a : b;
    case 7: return a == b ? (T)1 : (T)0;
    case 8: return a != b ? (T)1 : (T)0;
    case 9: return a < b ? (T)1 : (T)0;
    case 10: return a <= b ? (T)1 : (T)0;
    case 11: return a > b ? (T)1 : (T)0;
    case 12: return a >= b ? (T)1 : (T)0;
    default: { // 13 LogPlus
        T m = a > b ? a : b;
        return m + log1p(exp(-fabs(a - b)));
    }
    }
}

// ∂f/∂a (or ∂f/∂b when wrt_b) at (a, b) with output o.
__device__ T binary_d(int op, int wrt_b, T a, T b, T o) {
    switch (op) {
    case 0: return (T)1;
    case 1: return wrt_b ? (T)-1 : (T)1;
    case 2: return wrt_b ? a : b;
    case 3: return wrt_b ? -o / b : (T)1 / b;
    case 4: return wrt_b ? o * log(a) : b * pow(a, b - (T)1);
    case 5: return (a > b) != (wrt_b != 0) ? (T)1 : (T)0;
    case 6: return (a < b) != (wrt_b != 0) ? (T)1 : (T)0;
    case 13: return exp((wrt_b ? b : a) - o);
    default: return (T)0;
    }
}

// out[r, e] = f(a[r·sa + ia(e)], b[r·sb + ib(e)]); idx (2 per element) or identity.
KERNEL(binary_fwd)(int op, const T* a, u64 sa, const T* b, u64 sb, T* out, u64 n, u64 no,
                   const u64* idx) {
    FOR(k, n * no) {
        u64 r = k / no, e = k % no;
        u64 ia = idx ? idx[2 * e] : e, ib = idx ? idx[2 * e + 1] : e;
        out[k] = binary_f(op, a[r * sa + ia], b[r * sb + ib]);
    }
}

KERNEL(binary_bwd)(int op, int wrt_b, const T* a, u64 sa, const T* b, u64 sb, const T* out,
                   const T* dout, T* din, u64 sd, int atomic, u64 n, u64 no, const u64* idx) {
    FOR(k, n * no) {
        u64 r = k / no, e = k % no;
        u64 ia = idx ? idx[2 * e] : e, ib = idx ? idx[2 * e + 1] : e;
        T v = dout[k] * binary_d(op, wrt_b, a[r * sa + ia], b[r * sb + ib], out[k]);
        add_at(&din[r * sd + (wrt_b ? ib : ia)], v, atomic);
    }
}

KERNEL(ternary_fwd)(int op, const T* x0, u64 s0, const T* x1, u64 s1, const T* x2, u64 s2,
                    T* out, u64 n, u64 no, const u64* idx) {
    FOR(k, n * no) {
        u64 r = k / no, e = k % no;
        u64 i0 = idx ? idx[3 * e] : e, i1 = idx ? idx[3 * e + 1] : e, i2 = idx ? idx[3 * e + 2] : e;
        T v = x0[r * s0 + i0], l = x1[r * s1 + i1], h = x2[r * s2 + i2];
        if (op == 0) out[k] = v < l ? l : (v > h ? h : v);
        else out[k] = v != (T)0 ? l : h;
    }
}

// din += the gradient of operand i (its row stride sd); always atomic (rare op).
KERNEL(ternary_bwd)(int op, int i, const T* x0, u64 s0, const T* x1, u64 s1, const T* x2,
                    u64 s2, const T* dout, T* din, u64 sd, u64 n, u64 no, const u64* idx) {
    FOR(k, n * no) {
        u64 r = k / no, e = k % no;
        u64 i0 = idx ? idx[3 * e] : e, i1 = idx ? idx[3 * e + 1] : e, i2 = idx ? idx[3 * e + 2] : e;
        T v = x0[r * s0 + i0];
        if (op == 0) {
            if (i == 0 && v >= x1[r * s1 + i1] && v <= x2[r * s2 + i2])
                atomicAdd(&din[r * sd + i0], dout[k]);
        } else if (i > 0) {
            int taken = v != (T)0;
            if (taken == (i == 1)) atomicAdd(&din[r * sd + (i == 1 ? i1 : i2)], dout[k]);
        }
    }
}

KERNEL(fill)(T* dst, double v, u64 n) {
    T x = (T)v;
    FOR(i, n) dst[i] = x;
}

KERNEL(add_scalar)(T* dst, double v, u64 n) {
    T x = (T)v;
    FOR(i, n) dst[i] += x;
}

KERNEL(add)(const T* src, T* dst, u64 n) {
    FOR(i, n) dst[i] += src[i];
}

KERNEL(add_product)(const T* a, const T* b, T* dst, u64 n) {
    FOR(i, n) dst[i] += a[i] * b[i];
}

// dst[j] += Σ_c src[c·d + j] over the consecutive d-sized rows of src (len elements).
KERNEL(sum_rows)(const T* src, u64 len, T* dst, u64 d) {
    FOR(j, d) {
        T s = dst[j];
        for (u64 at = j; at < len; at += d) s += src[at];
        dst[j] = s;
    }
}

KERNEL(mul)(const T* a, const T* b, T* dst, u64 n) {
    FOR(i, n) dst[i] = a[i] * b[i];
}
