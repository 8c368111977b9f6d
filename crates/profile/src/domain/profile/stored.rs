//! How a profile's state is stored: prost-encoded and, when that is long enough to gain,
//! compressed with LZ4. A busy user's state is rewritten by every ingestion group that has
//! their events, and its bytes are written twice (the database's log, then its file): the
//! encoding's repeated key prefixes, timestamps and item ids compress to about half.
//!
//! A compressed state starts with a zero byte, which no prost encoding does (field numbers
//! start at 1), so rows written before compression, and short states, read as they are.

use prost::Message as _;

use super::ProfileState;

/// Marks a compressed state; then the length of the encoding (u32, little endian) and an
/// LZ4 block of it.
const COMPRESSED: u8 = 0;
/// The marker and the length.
const HEADER: usize = 5;
/// Shorter encodings are stored as they are: LZ4 gains little on them.
const COMPRESS_FROM: usize = 96;
/// The longest encoding stored compressed, and the longest length the reader believes (a
/// state is tens of KiB at most), so a damaged row cannot make it allocate gigabytes.
const MAX_ENCODED: usize = 64 << 20;

/// Why a stored state could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StoredStateError {
    /// The compressed form is damaged.
    #[error("compressed state is damaged: {0}")]
    Compressed(String),
    /// The encoding is not a state.
    #[error(transparent)]
    Decode(#[from] prost::DecodeError),
}

/// `state` as stored.
pub fn encode(state: &ProfileState) -> Vec<u8> {
    let encoded = state.encode_to_vec();
    // Beyond MAX_ENCODED the reader would refuse the length, so such a state stays plain.
    if !(COMPRESS_FROM..=MAX_ENCODED).contains(&encoded.len()) {
        return encoded;
    }
    let length = encoded.len() as u32; // at most MAX_ENCODED
    let mut stored = vec![0; HEADER + lz4_flex::block::get_maximum_output_size(encoded.len())];
    stored[0] = COMPRESSED;
    stored[1..HEADER].copy_from_slice(&length.to_le_bytes());
    match lz4_flex::block::compress_into(&encoded, &mut stored[HEADER..]) {
        Ok(written) if HEADER + written < encoded.len() => {
            stored.truncate(HEADER + written);
            stored
        }
        _ => encoded,
    }
}

/// The state stored as `stored` (compressed or not).
pub fn decode(stored: &[u8]) -> Result<ProfileState, StoredStateError> {
    let Some((&COMPRESSED, rest)) = stored.split_first() else {
        return Ok(ProfileState::decode(stored)?);
    };
    let damaged = |why: &str| StoredStateError::Compressed(why.to_owned());
    let (length, block) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| damaged("no length"))?;
    let length = u32::from_le_bytes(*length) as usize;
    if length > MAX_ENCODED {
        return Err(damaged("implausible length"));
    }
    let encoded = lz4_flex::block::decompress(block, length)
        .map_err(|err| StoredStateError::Compressed(err.to_string()))?;
    if encoded.len() != length {
        return Err(damaged("length differs from the one stored"));
    }
    Ok(ProfileState::decode(encoded.as_slice())?)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::decay::Decayed;
    use crate::domain::profile::RecentItem;

    /// A state like a busy shopper's: many interests, recent items.
    fn busy(interests: usize) -> ProfileState {
        let mut state = ProfileState::default();
        for i in 0..interests {
            state.interests.insert(
                format!("c:electronics/phones/{i}"),
                Decayed {
                    weight: 1.0 + i as f64 / 7.0,
                    at: 1_800_000_000_000_000 + i as i64 * 1_000_000,
                },
            );
        }
        state.recent = (0..50)
            .map(|i| RecentItem {
                item_id: format!("item-{i:05}"),
                kind: 1,
                at: 1_800_000_000_000_000 + i,
                category: "electronics/phones".into(),
            })
            .collect();
        state.event_count = 1_234;
        state
    }

    #[test]
    fn a_long_state_is_stored_compressed_and_reads_back_equal() {
        let state = busy(200);
        let plain = state.encode_to_vec();
        let stored = encode(&state);
        assert_eq!(stored[0], COMPRESSED);
        assert!(
            stored.len() * 2 < plain.len(),
            "{} bytes stored for {} encoded",
            stored.len(),
            plain.len()
        );
        assert_eq!(decode(&stored).unwrap(), state);
    }

    #[test]
    fn a_short_state_is_stored_as_encoded() {
        let state = ProfileState {
            event_count: 3,
            ..ProfileState::default()
        };
        let stored = encode(&state);
        assert_eq!(stored, state.encode_to_vec());
        assert_eq!(decode(&stored).unwrap(), state);
        assert_eq!(decode(&[]).unwrap(), ProfileState::default());
    }

    #[test]
    fn rows_written_before_compression_still_read() {
        let state = busy(200);
        assert_eq!(decode(&state.encode_to_vec()).unwrap(), state);
    }

    #[test]
    fn a_damaged_compressed_state_is_an_error() {
        let stored = encode(&busy(200));
        let truncated = &stored[..stored.len() / 2];
        assert!(matches!(
            decode(truncated),
            Err(StoredStateError::Compressed(_))
        ));
        assert!(matches!(
            decode(&[COMPRESSED, 1]),
            Err(StoredStateError::Compressed(_))
        ));
        let mut huge = stored.clone();
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode(&huge),
            Err(StoredStateError::Compressed(_))
        ));
        let mut longer = stored;
        let length = u32::from_le_bytes([longer[1], longer[2], longer[3], longer[4]]);
        longer[1..5].copy_from_slice(&(length + 10).to_le_bytes());
        assert!(decode(&longer).is_err());
    }

    proptest! {
        #[test]
        fn any_bytes_decode_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
            let mut compressed = vec![COMPRESSED];
            compressed.extend_from_slice(&bytes);
            let _ = decode(&compressed);
        }

        #[test]
        fn every_state_reads_back_as_written(interests in 0usize..300) {
            let state = busy(interests);
            prop_assert_eq!(decode(&encode(&state)).unwrap(), state);
        }
    }
}
