//! A tiny seeded generator (SplitMix64), so a seed reproduces a simulation or a test's
//! random choices exactly.

/// SplitMix64 state.
#[derive(Debug, Clone)]
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub fn fraction(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform in `[0, n)`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_bounds_hold() {
        let (mut a, mut b) = (SplitMix(9), SplitMix(9));
        for _ in 0..1_000 {
            assert_eq!(a.next_u64(), b.next_u64());
            let f = a.fraction(0.2, 0.6);
            assert!((0.2..0.6).contains(&f));
            assert!(a.below(7) < 7);
            b.fraction(0.2, 0.6);
            b.below(7);
        }
        assert_ne!(SplitMix(1).next_u64(), SplitMix(2).next_u64());
    }
}
