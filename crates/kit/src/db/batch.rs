//! Sizing multi-row statements (`VALUES (…), (…)` and `IN (…)` lists) so their texts recur.
//!
//! A statement's text fixes how many rows it carries, and both backends keep a prepared
//! statement per text (sqlx caches them per connection): a batch of a size never seen before
//! is parsed and planned from scratch, which for thousands of bind parameters costs more than
//! running it (a quarter of PostgreSQL's CPU under ingestion, docs/performance.md). Cut into
//! power-of-two chunks, batches of any size share a handful of large statements; only a last
//! small chunk, cheap to prepare, takes its exact size.

/// Largest number of bind parameters one statement may carry on both backends
/// (PostgreSQL's protocol limit is 65535, SQLite's default 32766).
const MAX_BIND_PARAMETERS: usize = 32_000;

/// Rows up to this many go into one statement of their exact size: a small batch stays one
/// round trip, and its statement is cheap to prepare.
const EXACT_ROWS: usize = 64;

/// `rows` cut into consecutive chunks for statements of `columns` bind parameters a row:
/// each chunk the largest power of two rows that both backends take in one statement (32,000
/// parameters) and that what is left fills, except a last one of at most 64 rows.
pub fn statement_chunks<T>(rows: &[T], columns: usize) -> impl Iterator<Item = &[T]> {
    let fits = (MAX_BIND_PARAMETERS / columns.max(1)).max(1);
    let largest = 1usize << fits.ilog2();
    let exact = EXACT_ROWS.min(fits);
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = if rest.len() <= exact {
            rest.len()
        } else {
            1 << rest.len().min(largest).ilog2()
        };
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        Some(chunk)
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    fn sizes(rows: usize, columns: usize) -> Vec<usize> {
        let rows: Vec<usize> = (0..rows).collect();
        statement_chunks(&rows, columns).map(<[_]>::len).collect()
    }

    #[test]
    fn a_small_batch_is_one_statement() {
        assert_eq!(sizes(0, 17), Vec::<usize>::new());
        assert_eq!(sizes(1, 17), [1]);
        assert_eq!(sizes(64, 17), [64]);
        assert_eq!(sizes(65, 17), [64, 1]);
    }

    #[test]
    fn a_large_batch_is_cut_into_powers_of_two_that_fit() {
        // 32,000 / 17 = 1,882 rows fit: the largest chunk is 1,024.
        assert_eq!(sizes(5_000, 17), [1024, 1024, 1024, 1024, 512, 256, 128, 8]);
        assert_eq!(sizes(2_600, 1), [2048, 512, 40]);
        // One column per row: 32,000 fit, 16,384 is the largest chunk.
        assert_eq!(sizes(40_000, 1), [16384, 16384, 4096, 2048, 1024, 64]);
        // Rows wider than the budget still go one at a time.
        assert_eq!(sizes(3, 40_000), [1, 1, 1]);
    }

    #[test]
    fn batches_of_every_size_share_few_large_statements() {
        let large: BTreeSet<usize> = (0..10_000)
            .flat_map(|rows| sizes(rows, 17))
            .filter(|&size| size > EXACT_ROWS)
            .collect();
        assert_eq!(large, BTreeSet::from([128, 256, 512, 1024]));
    }

    proptest! {
        #[test]
        fn chunks_are_the_rows_in_order_and_fit(rows in 0usize..70_000, columns in 1usize..40) {
            let all: Vec<usize> = (0..rows).collect();
            let chunks: Vec<&[usize]> = statement_chunks(&all, columns).collect();
            prop_assert_eq!(chunks.concat(), all.clone());
            for (n, chunk) in chunks.iter().enumerate() {
                prop_assert!(!chunk.is_empty());
                prop_assert!(chunk.len() * columns <= MAX_BIND_PARAMETERS);
                let last = n + 1 == chunks.len();
                prop_assert!(
                    chunk.len().is_power_of_two() || (last && chunk.len() <= EXACT_ROWS),
                    "chunk {} of {} rows", n, chunk.len()
                );
            }
        }
    }
}
