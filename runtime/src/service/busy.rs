//! How long a delivery whose event is busy (claimed by another member,
//! or held by another batch of this process) waits before it comes again.

use std::time::Duration;

/// How long a delivery whose event is claimed elsewhere waits before it
/// comes again. A copy handled by a live member finishes within moments,
/// but a claim whose holder died holds until its lease ends: the wait
/// doubles with each delivery, from `base` up to [`BUSY_WAIT_CAP`] (or
/// the lease, if shorter), so that waiting out a dead holder's lease (60 s
/// by default) costs about 35 deliveries rather than the broker's
/// `max_deliveries` (100, which then dead-letters). The cap keeps the
/// delivery coming often enough to be taken soon after the lease ends.
pub(super) fn busy_delay(base: Duration, lease: Duration, attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(20);
    base.saturating_mul(1 << doublings)
        .min(BUSY_WAIT_CAP.min(lease))
        .max(base)
}

/// The longest a busy delivery waits between two deliveries.
const BUSY_WAIT_CAP: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::busy_delay;
    use std::time::Duration;

    #[test]
    fn a_busy_delivery_waits_longer_each_time_up_to_the_lease() {
        let (base, lease) = (Duration::from_millis(50), Duration::from_secs(60));
        let delays: Vec<u128> = (1..=8)
            .map(|a| busy_delay(base, lease, a).as_millis())
            .collect();
        assert_eq!(delays, [50, 100, 200, 400, 800, 1600, 2000, 2000]);
        // Waiting out a whole lease takes about 35 deliveries, well under
        // the hundred of `max_deliveries`.
        let waited: Duration = (1..=36).map(|a| busy_delay(base, lease, a)).sum();
        assert!(waited > lease, "{waited:?}");
        assert_eq!(busy_delay(base, lease, 0), base);
        assert_eq!(busy_delay(base, lease, u32::MAX).as_secs(), 2);
        // A lease shorter than the cap caps the wait.
        let short = Duration::from_millis(300);
        assert_eq!(busy_delay(base, short, 10), short);
    }
}
