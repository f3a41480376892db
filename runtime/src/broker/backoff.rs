//! Exponential back-off with jitter.

use std::time::Duration;

/// Exponential back-off: `initial`, doubled for every further attempt, at
/// most `max`, then stretched by a random factor in `[1, 1 + jitter]` so
/// that many consumers failing together do not retry in lockstep. The
/// delay is never shorter than the exponential value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The delay before the first retry.
    pub initial: Duration,
    /// The longest delay (before jitter).
    pub max: Duration,
    /// The largest random stretch, as a fraction of the delay (0 = none).
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            jitter: 0.25,
        }
    }
}

impl Backoff {
    /// Back-off from `initial`, capped at 30 s, with 25 % jitter.
    pub fn exponential(initial: Duration) -> Self {
        Backoff {
            initial,
            ..Backoff::default()
        }
    }

    /// The delay before retry number `retry` (1 for the first retry).
    pub fn delay(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(32);
        let base = self
            .initial
            .saturating_mul(1u32 << doublings.min(31))
            .min(self.max.max(self.initial));
        if self.jitter > 0.0 {
            base.mul_f64(1.0 + fastrand::f64() * self.jitter)
        } else {
            base
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_within_jitter_and_cap() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            jitter: 0.25,
        };
        for (retry, base) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (40, 1000),
        ] {
            let d = b.delay(retry).as_millis();
            assert!(d >= base && d <= base * 5 / 4, "retry {retry}: {d} ms");
        }
        let exact = Backoff { jitter: 0.0, ..b };
        assert_eq!(exact.delay(2), Duration::from_millis(200));
    }
}
