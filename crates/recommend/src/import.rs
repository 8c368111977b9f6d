//! `tailor import`: bulk-loads interaction history from a file (the format `tailor eval`
//! reads: `user item [rating [timestamp]]`, comma/tab/space separated, optional header,
//! `.gz` accepted) into the recommend service's database, with progress.

use std::path::Path;

use indicatif::ProgressBar;
use tailor_kit::time::{Micros, SECOND, now_micros};

use crate::config::BehaviorWeights;
use crate::domain::recommender::behavior_weight;
use crate::eval::input::read_table;
use crate::store::{NewInteraction, Store};

/// Rows written per transaction.
const BATCH: usize = 5_000;

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportReport {
    /// Rows read.
    pub read: usize,
    /// Interactions stored (rows already imported are skipped).
    pub inserted: u64,
}

/// Imports `path` as interactions of behaviour `kind` (a `tailor.events.v1.BehaviorType`
/// number; 1 = view, 6 = purchase). Rows without a timestamp are spaced one second apart
/// ending now, so file order is time order. Re-importing the same file inserts nothing new:
/// each row's id is its line number in the file.
pub async fn import(
    store: &Store,
    path: &Path,
    kind: i32,
    weights: &BehaviorWeights,
    progress: &ProgressBar,
) -> anyhow::Result<ImportReport> {
    let table = read_table(path)?;
    let weight = behavior_weight(kind, 5, weights)
        .ok_or_else(|| anyhow::anyhow!("behaviour type {kind} is not an interest signal"))?;
    let n = table.rows.len();
    let now = now_micros();
    progress.set_length(n as u64);
    let mut inserted = 0;
    for (chunk_index, chunk) in table.rows.chunks(BATCH).enumerate() {
        let rows: Vec<NewInteraction> = chunk
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let line = chunk_index * BATCH + i;
                let at: Micros = match row.timestamp {
                    Some(seconds) => seconds.saturating_mul(SECOND),
                    None => now - i64::try_from(n - line).unwrap_or(0) * SECOND,
                };
                NewInteraction {
                    user_id: row.user.clone(),
                    event_id: format!("import:{line}"),
                    item_id: row.item.clone(),
                    kind,
                    weight,
                    occurred_at: at,
                }
            })
            .collect();
        let mut tx = store.db().begin_write().await?;
        inserted += store.insert_interactions(&mut tx, &rows).await?;
        tx.commit().await?;
        progress.inc(chunk.len() as u64);
    }
    progress.finish();
    Ok(ImportReport { read: n, inserted })
}
