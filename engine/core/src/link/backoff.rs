//! Reconnect delays: exponential backoff with full jitter.
//!
//! Attempt `n` (0-based) waits a uniformly random time in `[0, min(max, initial * 2^n)]`
//! ("full jitter", as in the AWS architecture blog's comparison): many clients that lost the
//! same venue at the same moment spread out instead of reconnecting in lockstep. The attempt
//! count starts over once a connection has stayed up and delivered data for `max`.

/// Backoff state of one connection.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial_ns: u64,
    max_ns: u64,
    attempt: u32,
    rng: fastrand::Rng,
}

impl Backoff {
    /// `initial_ns` doubling up to `max_ns`; `seed` makes the jitter reproducible in tests.
    pub fn new(initial_ns: u64, max_ns: u64, seed: u64) -> Backoff {
        Backoff {
            initial_ns: initial_ns.max(1),
            max_ns: max_ns.max(initial_ns).max(1),
            attempt: 0,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// The ceiling of the next delay.
    pub fn ceiling_ns(&self) -> u64 {
        let shift = self.attempt.min(40);
        self.initial_ns
            .saturating_mul(1u64 << shift)
            .min(self.max_ns)
    }

    /// The delay before the next attempt; counts the attempt.
    pub fn next_delay_ns(&mut self) -> u64 {
        let ceiling = self.ceiling_ns();
        self.attempt = self.attempt.saturating_add(1);
        self.rng.u64(0..=ceiling)
    }

    /// Consecutive delays handed out since the last reset.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// A connection proved healthy: start again from `initial`.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The cap.
    pub fn max_ns(&self) -> u64 {
        self.max_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(1_000, 30_000, 7);
        let ceilings: Vec<u64> = (0..7)
            .map(|_| {
                let c = b.ceiling_ns();
                b.next_delay_ns();
                c
            })
            .collect();
        assert_eq!(
            ceilings,
            [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]
        );
        b.reset();
        assert_eq!(b.ceiling_ns(), 1_000);
    }

    #[test]
    fn jitter_spreads_delays() {
        let mut b = Backoff::new(1_000_000_000, 30_000_000_000, 1);
        let delays: Vec<u64> = (0..200)
            .map(|_| {
                b.reset();
                b.next_delay_ns()
            })
            .collect();
        let low = delays.iter().filter(|d| **d < 500_000_000).count();
        // Uniform on [0, 1 s]: about half below 0.5 s; 200 draws make 60..140 a safe band.
        assert!((60..=140).contains(&low), "{low} of 200 below half");
        assert!(delays.iter().all(|d| *d <= 1_000_000_000));
    }

    proptest! {
        #[test]
        fn never_above_the_ceiling(initial in 1u64..10_000_000_000, max in 1u64..100_000_000_000, seed: u64, n in 0usize..80) {
            let mut b = Backoff::new(initial, max, seed);
            for _ in 0..n {
                let c = b.ceiling_ns();
                prop_assert!(c <= b.max_ns());
                prop_assert!(b.next_delay_ns() <= c);
            }
        }
    }
}
