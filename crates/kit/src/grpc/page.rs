//! AIP-158 pagination: page sizes with a default and a maximum, and opaque page tokens.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::status::FieldViolations;

/// Prefix inside tokens, so a token from another list or version is recognised as foreign.
const VERSION: &str = "t1:";

/// The page size to use: `requested` when in range, `default` for 0, `max` when above it
/// (AIP-158 clamps rather than refuses); negative sizes are a caller error.
pub fn page_size(
    requested: i32,
    default: usize,
    max: usize,
    violations: &mut FieldViolations,
) -> usize {
    match usize::try_from(requested) {
        Ok(0) => default,
        Ok(n) => n.min(max),
        Err(_) => {
            violations.add("page_size", "must not be negative");
            default
        }
    }
}

/// An opaque token for `cursor`.
pub fn encode_token(cursor: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{VERSION}{cursor}"))
}

/// The cursor inside `token` (`None` for the empty token of a first page).
pub fn decode_token(token: &str, violations: &mut FieldViolations) -> Option<String> {
    if token.is_empty() {
        return None;
    }
    let cursor = URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix(VERSION).map(str::to_owned));
    if cursor.is_none() {
        violations.add("page_token", "is not a token returned by this service");
    }
    cursor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_foreign_ones_are_refused() {
        let mut v = FieldViolations::new();
        assert_eq!(
            decode_token(&encode_token("user-42"), &mut v).as_deref(),
            Some("user-42")
        );
        assert_eq!(decode_token("", &mut v), None);
        assert!(v.is_empty());
        assert_eq!(decode_token("garbage!", &mut v), None);
        assert!(!v.is_empty());
    }

    #[test]
    fn sizes_default_clamp_and_refuse_negatives() {
        let mut v = FieldViolations::new();
        assert_eq!(page_size(0, 20, 100, &mut v), 20);
        assert_eq!(page_size(500, 20, 100, &mut v), 100);
        assert_eq!(page_size(7, 20, 100, &mut v), 7);
        assert!(v.is_empty());
        page_size(-1, 20, 100, &mut v);
        assert!(!v.is_empty());
    }
}
