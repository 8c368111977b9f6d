//! Exponentially decaying weights: an event of weight `w` at time `t` counts
//! `w · 2^(−(now − t) / half_life)` at time `now`.
//!
//! A weight is kept as its value at a reference time (the latest event seen), so adding an
//! event is O(1) and the order in which events arrive does not matter: adding a late event
//! discounts it to the reference time instead of moving the reference back.

use tailor_kit::time::Micros;

/// A decaying sum: its value at `at`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Decayed {
    /// Value of the sum at `at`.
    #[prost(double, tag = "1")]
    pub weight: f64,
    /// Reference time, unix microseconds.
    #[prost(int64, tag = "2")]
    pub at: Micros,
}

/// `2^(−Δt / half_life)` for `Δt = later − earlier ≥ 0`.
fn factor(earlier: Micros, later: Micros, half_life: Micros) -> f64 {
    let dt = (later - earlier).max(0) as f64;
    (-dt / half_life.max(1) as f64).exp2()
}

impl Decayed {
    /// Adds an event of weight `w` at time `t`.
    pub fn add(&mut self, w: f64, t: Micros, half_life: Micros) {
        if self.weight == 0.0 && self.at == 0 {
            *self = Self { weight: w, at: t };
        } else if t >= self.at {
            self.weight = self.weight * factor(self.at, t, half_life) + w;
            self.at = t;
        } else {
            self.weight += w * factor(t, self.at, half_life);
        }
    }

    /// The value at `now` (never negative: removals cannot make an interest a dislike).
    pub fn value_at(&self, now: Micros, half_life: Micros) -> f64 {
        if now >= self.at {
            (self.weight * factor(self.at, now, half_life)).max(0.0)
        } else {
            // Asked about the past: undo decay (rare; clocks disagree by a little).
            (self.weight / factor(now, self.at, half_life)).max(0.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const DAY: Micros = tailor_kit::time::DAY;

    #[test]
    fn one_half_life_halves_the_weight() {
        let mut d = Decayed::default();
        d.add(8.0, 0, 14 * DAY);
        assert!((d.value_at(14 * DAY, 14 * DAY) - 4.0).abs() < 1e-12);
        assert!((d.value_at(28 * DAY, 14 * DAY) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn hand_computed_sum_of_two_events() {
        // 1 at day 0 and 4 at day 7, half-life 7 days, read at day 14:
        // 1·2^-2 + 4·2^-1 = 0.25 + 2 = 2.25
        let mut d = Decayed::default();
        d.add(1.0, 0, 7 * DAY);
        d.add(4.0, 7 * DAY, 7 * DAY);
        assert!((d.value_at(14 * DAY, 7 * DAY) - 2.25).abs() < 1e-12);
    }

    proptest! {
        /// Whatever the arrival order, the value equals the closed form Σ wᵢ·2^(−(now−tᵢ)/h).
        #[test]
        fn matches_the_closed_form_in_any_order(
            events in prop::collection::vec((0.0f64..10.0, 0i64..(200 * DAY)), 1..40),
            half_life_days in 1i64..60,
            reversed in any::<bool>(),
        ) {
            let h = half_life_days * DAY;
            let now = 250 * DAY;
            let mut ordered = events.clone();
            if reversed { ordered.reverse(); }
            let mut d = Decayed::default();
            for (w, t) in &ordered {
                d.add(*w, *t, h);
            }
            let expected: f64 = events
                .iter()
                .map(|(w, t)| w * (-((now - t) as f64) / h as f64).exp2())
                .sum();
            prop_assert!((d.value_at(now, h) - expected).abs() <= 1e-9 * expected.max(1.0));
        }
    }
}
