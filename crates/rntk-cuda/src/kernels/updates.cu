// The learners' element-wise steps, rounded as rntk's CPU kernels (constants to T
// first), and the clip / L2 / L1 stages around them.

KERNEL(clip_truncate)(const T* g, T* out, u64 n, double tau) {
    T t = (T)tau;
    FOR(i, n) {
        T x = g[i];
        out[i] = x > t ? t : (x < -t ? -t : x);
    }
}

// Rescale to Frobenius norm tau when the norm (sqrt of acc[0]) exceeds it.
KERNEL(clip_norm)(T* g, u64 n, const double* acc, double tau) {
    double norm = sqrt(acc[0]);
    if (!(norm > tau)) return;
    T f = (T)(tau / norm);
    FOR(i, n) g[i] *= f;
}

KERNEL(axpy)(T* y, const T* x, u64 n, double w) {
    T a = (T)w;
    FOR(i, n) y[i] += a * x[i];
}

KERNEL(l1_shrink)(T* p, u64 n, double w) {
    T t = (T)w;
    FOR(i, n) {
        T x = p[i];
        p[i] = x > t ? x - t : (x < -t ? x + t : (T)0);
    }
}

KERNEL(sgd)(T* p, const T* g, u64 n, double eta) {
    T e = (T)eta;
    FOR(i, n) p[i] -= e * g[i];
}

KERNEL(momentum)(T* p, const T* g, T* v, u64 n, double mu_, double eta, int unit_gain,
                 int nesterov) {
    T mu = (T)mu_;
    T unit = unit_gain ? (T)1 - mu : (T)1;
    T alpha = unit * (T)eta;
    FOR(i, n) {
        T gi = g[i];
        T vi = alpha * gi + mu * v[i];
        v[i] = vi;
        if (nesterov) {
            p[i] += -mu * vi;
            p[i] += -alpha * gi;
        } else {
            p[i] -= vi;
        }
    }
}

KERNEL(adam)(T* p, const T* g, T* m, T* v, u64 n, double mu_, double beta2, double step_,
             double eps_, int unit_gain, int adamax) {
    T unit = unit_gain ? (T)1 - (T)mu_ : (T)1;
    T mu = (T)mu_, b2 = (T)beta2, omb2 = (T)1 - b2, step = (T)step_, eps = (T)eps_;
    FOR(i, n) {
        T gi = g[i], denom;
        if (adamax) {
            T a = b2 * v[i], b = fabs(gi);
            v[i] = a > b ? a : b;
            denom = v[i] + eps;
        } else {
            v[i] = b2 * v[i] + omb2 * gi * gi;
            denom = sqrt(v[i]) + eps;
        }
        m[i] = mu * m[i] + unit * gi;
        T w = step * ((T)1 / denom);
        p[i] -= w * m[i];
    }
}
