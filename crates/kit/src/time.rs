//! Time as integer microseconds since the Unix epoch (portable across SQLite and PostgreSQL
//! columns), and conversions to and from `google.protobuf.Timestamp`.

use prost_types::Timestamp;

/// Microseconds since the Unix epoch.
pub type Micros = i64;

/// Microseconds in one second.
pub const SECOND: Micros = 1_000_000;
/// Microseconds in one day.
pub const DAY: Micros = 86_400 * SECOND;

/// The current time.
pub fn now_micros() -> Micros {
    chrono::Utc::now().timestamp_micros()
}

/// A protobuf timestamp for `micros`.
pub fn to_timestamp(micros: Micros) -> Timestamp {
    Timestamp {
        seconds: micros.div_euclid(SECOND),
        nanos: (micros.rem_euclid(SECOND) * 1000) as i32,
    }
}

/// Microseconds for a protobuf timestamp, or `None` when it is out of range or malformed.
pub fn from_timestamp(ts: &Timestamp) -> Option<Micros> {
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return None;
    }
    ts.seconds
        .checked_mul(SECOND)?
        .checked_add(i64::from(ts.nanos) / 1000)
}

/// The UTC day (`YYYY-MM-DD`) containing `micros`.
pub fn utc_date(micros: Micros) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn timestamps_round_trip(micros in -4_000_000_000_000_000i64..4_000_000_000_000_000) {
            prop_assert_eq!(from_timestamp(&to_timestamp(micros)), Some(micros));
        }
    }

    #[test]
    fn malformed_timestamps_are_refused() {
        assert_eq!(
            from_timestamp(&Timestamp {
                seconds: 1,
                nanos: -1
            }),
            None
        );
        assert_eq!(
            from_timestamp(&Timestamp {
                seconds: i64::MAX,
                nanos: 0
            }),
            None
        );
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(DAY - 1), "1970-01-01");
        assert_eq!(utc_date(DAY), "1970-01-02");
    }
}
