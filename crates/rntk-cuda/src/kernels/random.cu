// Dropout's mask: the same counter-based hash of (seed, pass, absolute element index)
// as rntk's CPU (cpu/random.rs `keep`), so GPU and CPU draw identical masks.

__device__ __forceinline__ u64 mix(u64 z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

KERNEL(dropout)(const T* x, T* mask, T* out, u64 n, u64 seed, u64 pass, u64 first, double rate) {
    u64 key = mix(seed ^ mix(pass * 0xD6E8FEB86659FD93ull));
    T scale = (T)(1.0 / (1.0 - rate));
    FOR(e, n) {
        u64 h = mix(key + (first + e) * 0x9E3779B97F4A7C15ull);
        double u = (double)(h >> 11) * (1.0 / 9007199254740992.0);
        T m = u >= rate ? scale : (T)0;
        mask[e] = m;
        out[e] = x[e] * m;
    }
}
