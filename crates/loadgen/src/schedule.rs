//! The open-loop schedule and how latency is measured against it.
//!
//! At a constant rate `r`, request `i` is *intended* to start at `i / r` after the phase
//! began, whatever happened to earlier requests (wrk2's model). Its latency is measured from
//! that intended start, not from when it was actually sent: when the server stalls, the
//! requests that should have been sent during the stall are charged for the wait, exactly as
//! the users who would have sent them would have experienced it. Measuring from the actual
//! send instead ("coordinated omission") hides a stall behind a single slow sample.

use std::time::Duration;

/// A constant-rate schedule of intended start times.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    rate: f64,
}

impl Schedule {
    /// A schedule of `rate` requests per second.
    pub fn new(rate: f64) -> Result<Self, String> {
        if rate.is_finite() && rate > 0.0 && rate <= 10_000_000.0 {
            Ok(Self { rate })
        } else {
            Err(format!(
                "rate {rate} must be a positive number of requests per second"
            ))
        }
    }

    /// Requests per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Intended start of request `i`, from the start of the phase. Computed from `i` rather
    /// than by adding intervals, so rounding never accumulates into drift.
    pub fn offset(&self, i: u64) -> Duration {
        Duration::from_nanos((i as f64 * 1e9 / self.rate).round() as u64)
    }

    /// How many requests are intended to start before `elapsed`.
    pub fn count_before(&self, elapsed: Duration) -> u64 {
        // The smallest i with offset(i) >= elapsed.
        let approx = (elapsed.as_secs_f64() * self.rate).ceil() as u64;
        let mut i = approx.saturating_sub(1);
        while self.offset(i) < elapsed {
            i += 1;
        }
        i
    }
}

/// Latency of a request that was intended to start at `intended` and completed at `done`
/// (both measured from the same origin): the coordinated-omission-safe measure.
pub fn latency(intended: Duration, done: Duration) -> Duration {
    done.saturating_sub(intended)
}

#[cfg(test)]
mod tests {
    use hdrhistogram::Histogram;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn intended_starts_are_evenly_spaced_without_drift() {
        let s = Schedule::new(1000.0).unwrap();
        assert_eq!(s.offset(0), Duration::ZERO);
        assert_eq!(s.offset(1), MS);
        assert_eq!(s.offset(1000), Duration::from_secs(1));
        assert_eq!(s.offset(3_600_000), Duration::from_secs(3600));
        let third = Schedule::new(3.0).unwrap();
        assert_eq!(third.offset(1), Duration::from_nanos(333_333_333));
        assert_eq!(third.offset(2), Duration::from_nanos(666_666_667));
        assert_eq!(
            third.offset(3),
            Duration::from_secs(1),
            "no accumulated rounding"
        );
    }

    #[test]
    fn counts_match_offsets() {
        for rate in [1.0, 3.0, 7.5, 1000.0, 12_345.0] {
            let s = Schedule::new(rate).unwrap();
            for ms in [0, 1, 10, 333, 1000, 2500] {
                let d = Duration::from_millis(ms);
                let n = s.count_before(d);
                assert!(n == 0 || s.offset(n - 1) < d, "rate {rate}, {ms} ms");
                assert!(s.offset(n) >= d, "rate {rate}, {ms} ms");
            }
        }
        assert_eq!(
            Schedule::new(100.0)
                .unwrap()
                .count_before(Duration::from_secs(2)),
            200
        );
    }

    #[test]
    fn bad_rates_are_refused() {
        assert!(Schedule::new(0.0).is_err());
        assert!(Schedule::new(-5.0).is_err());
        assert!(Schedule::new(f64::NAN).is_err());
    }

    /// A server that answers in 1 ms but freezes for one second at t = 1 s, driven at
    /// 100 requests/s for 3 s over one connection (one request at a time, FIFO).
    struct Stalling {
        free_at: Duration,
    }

    impl Stalling {
        /// Completion time of a request the server receives at `at`.
        fn serve(&mut self, at: Duration) -> Duration {
            let mut start = at.max(self.free_at);
            if (Duration::from_secs(1)..Duration::from_secs(2)).contains(&start) {
                start = Duration::from_secs(2);
            }
            self.free_at = start + MS;
            self.free_at
        }
    }

    fn histogram() -> Histogram<u64> {
        Histogram::new_with_bounds(1, 60_000_000, 3).unwrap()
    }

    #[test]
    fn a_stall_shows_in_corrected_latency_but_hides_in_the_naive_one() {
        let schedule = Schedule::new(100.0).unwrap();
        let n = schedule.count_before(Duration::from_secs(3));
        assert_eq!(n, 300);

        // Open loop, measured from the intended start (what the engine does).
        let mut server = Stalling {
            free_at: Duration::ZERO,
        };
        let mut corrected = histogram();
        for i in 0..n {
            let intended = schedule.offset(i);
            let done = server.serve(intended);
            corrected
                .record(latency(intended, done).as_micros() as u64)
                .unwrap();
        }

        // A client that waits for each answer before sending the next and times from the
        // send: the requests due during the stall are simply never sent on time.
        let mut server = Stalling {
            free_at: Duration::ZERO,
        };
        let mut naive = histogram();
        let mut previous_done = Duration::ZERO;
        for i in 0..n {
            let sent = schedule.offset(i).max(previous_done);
            let done = server.serve(sent);
            naive
                .record(latency(sent, done).as_micros() as u64)
                .unwrap();
            previous_done = done;
        }

        let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        // Both saw the same one-second maximum...
        assert!(ms(&corrected, 1.0) >= 999.0 && ms(&naive, 1.0) >= 999.0);
        // ...but only the corrected measure charges the ~100 requests due during the
        // stall: a third of all requests waited, on average half a second.
        assert!(ms(&naive, 0.99) <= 1.1, "naive p99 {}", ms(&naive, 0.99));
        assert!(
            ms(&corrected, 0.99) >= 900.0,
            "p99 {}",
            ms(&corrected, 0.99)
        );
        assert!(
            ms(&corrected, 0.75) >= 200.0,
            "p75 {}",
            ms(&corrected, 0.75)
        );
        assert!(ms(&corrected, 0.5) <= 1.1, "p50 {}", ms(&corrected, 0.5));
        let mean_ms = corrected.mean() / 1000.0;
        assert!((150.0..200.0).contains(&mean_ms), "mean {mean_ms}");
    }
}
