//! The 64-bit Mersenne Twister, `std::mt19937_64`: the engine behind every random
//! number CNTK 2.7 draws on the CPU (initializers and dropout masks).
//!
//! Parameters and seeding are those of the C++ standard ([rand.predef]): w = 64,
//! n = 312, m = 156, r = 31, a = 0xB5026F5AA96619E9, tempering (u, d) = (29,
//! 0x5555555555555555), (s, b) = (17, 0x71D67FFFEDA60000), (t, c) = (37,
//! 0xFFF7EEE000000000), l = 43, seeded by x[i] = 6364136223846793005 (x[i-1] ^
//! (x[i-1] >> 62)) + i. The standard fixes the 10000th output of the default seed
//! (5489) at 9981545732273789042; the unit test checks it.

const N: usize = 312;
const M: usize = 156;
const MATRIX_A: u64 = 0xB502_6F5A_A966_19E9;
const UPPER: u64 = 0xFFFF_FFFF_8000_0000;
const LOWER: u64 = 0x7FFF_FFFF;

/// `std::mt19937_64`.
#[derive(Clone)]
pub struct Mt19937_64 {
    state: Box<[u64; N]>,
    index: usize,
}

impl std::fmt::Debug for Mt19937_64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mt19937_64 {{ index: {} }}", self.index)
    }
}

impl Mt19937_64 {
    /// The engine as `std::mt19937_64 e(seed)` leaves it.
    pub fn new(seed: u64) -> Self {
        let mut state = Box::new([0u64; N]);
        state[0] = seed;
        for i in 1..N {
            let p = state[i - 1];
            state[i] = 6_364_136_223_846_793_005u64
                .wrapping_mul(p ^ (p >> 62))
                .wrapping_add(i as u64);
        }
        Mt19937_64 { state, index: N }
    }

    fn twist(&mut self) {
        let s = &mut self.state;
        for i in 0..N {
            let x = (s[i] & UPPER) | (s[(i + 1) % N] & LOWER);
            let mut xa = x >> 1;
            if x & 1 != 0 {
                xa ^= MATRIX_A;
            }
            s[i] = s[(i + M) % N] ^ xa;
        }
        self.index = 0;
    }

    /// The next output (`e()`).
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        if self.index >= N {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= (y >> 29) & 0x5555_5555_5555_5555;
        y ^= (y << 17) & 0x71D6_7FFF_EDA6_0000;
        y ^= (y << 37) & 0xFFF7_EEE0_0000_0000;
        y ^ (y >> 43)
    }

    /// Skip `n` outputs (`e.discard(n)`), a whole state block at a time where it can.
    pub fn discard(&mut self, mut n: u64) {
        while n > 0 {
            if self.index >= N {
                if n >= N as u64 {
                    self.twist();
                    self.index = N;
                    n -= N as u64;
                    continue;
                }
                self.twist();
            }
            let here = ((N - self.index) as u64).min(n);
            self.index += here as usize;
            n -= here;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standards_check_value() {
        let mut e = Mt19937_64::new(5489);
        for _ in 0..9999 {
            e.next_u64();
        }
        assert_eq!(e.next_u64(), 9_981_545_732_273_789_042);
    }

    #[test]
    fn discard_equals_drawing() {
        for n in [0u64, 1, 311, 312, 313, 624, 1000, 5000] {
            let mut a = Mt19937_64::new(42);
            let mut b = a.clone();
            a.next_u64(); // start mid-block too
            b.next_u64();
            for _ in 0..n {
                a.next_u64();
            }
            b.discard(n);
            assert_eq!(a.next_u64(), b.next_u64(), "n = {n}");
        }
    }
}
