//! Writing accepted behaviour with group commit: the calls that arrive while a write
//! transaction runs are committed together in the next one. A transaction's fixed cost (a dozen
//! round trips to the database, the commit) is then paid once per group rather than per call,
//! and a busy user's profile is loaded, folded and saved once per group. Under light load a
//! group is one call and nothing waits; every call still returns only once its events are
//! durable. SQLite has one writer, so one writer task; PostgreSQL commits in parallel, so
//! `ingest.writers` tasks each commit the groups of their own share of the users.
//!
//! The writer keeps the decoded profiles it saved ([`KeptProfiles`]): a busy user's next
//! group reads only the row's revision, not its state, when the kept copy is that revision.
//! Every profile write checks and bumps the revision, so a copy is never trusted after anyone
//! else wrote the row, and concurrent writers cannot overwrite each other's profiles unseen
//! (the group is then tried again).
//!
//! Duplicates are rare, so a group is folded and its profiles encoded while the database
//! inserts its events, on the bet that all of them are new; a lost bet rolls the transaction
//! back and commits the group again the exact way (see [`Writer`]'s `commit`). Folding a
//! group's events into profiles, on two threads when it is large, is in `fold`.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::FutureExt as _;
use tailor_kit::cache::Cache;
use tailor_kit::db::Backend;
use tailor_kit::events::outbox::RelayWaker;
use tailor_kit::time::Micros;
use tokio::sync::{mpsc, oneshot};

use self::fold::{Group, Loaded, is_priced_purchase, price_deltas, sentiment_deltas};
use super::event::BehaviorEvent;
use super::kept::KeptProfiles;
use super::profile::{Lifecycle, ProfileRecord};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::events;
use crate::store::{IndexedColumns, Store, Tx};

mod fold;

/// Calls waiting for the writer; beyond it callers wait to enqueue (back pressure).
const QUEUE: usize = 1024;
/// Times a group is committed again after losing a race for a new user's profile row.
const CONFLICT_RETRIES: usize = 3;

/// What became of one call's valid events.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Events newly stored.
    pub accepted: usize,
    /// Events stored before (or by an earlier call of the same group).
    pub duplicates: usize,
}

struct Call {
    events: Vec<BehaviorEvent>,
    now: Micros,
    reply: oneshot::Sender<Result<Written>>,
}

/// The door to the writer task. Cheap to clone; the task ends when the last clone is dropped.
#[derive(Clone)]
pub struct Ingest {
    /// One queue per writer task; a user's events always go to the same one.
    writers: Arc<[mpsc::Sender<Call>]>,
}

impl Ingest {
    /// Starts the writer tasks (on the current Tokio runtime).
    pub fn start(writer: Writer) -> Self {
        let count = match writer.store.db().backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => writer.settings.ingest.writers,
        };
        let writer = Arc::new(writer);
        let writers = (0..count)
            .map(|_| {
                let (calls, queue) = mpsc::channel(QUEUE);
                tokio::spawn(writer.clone().run(queue));
                calls
            })
            .collect();
        Self { writers }
    }

    /// Stores `events` (valid, distinct), folds them into profiles and publishes them,
    /// received at `now`; returns once they are committed.
    ///
    /// With several writers the events are split by user: concurrent transactions then never
    /// wait for each other's profile rows (a busy user is in every batch) nor race to create
    /// the same new user. Each part commits on its own; should one fail, the call fails and
    /// a retry counts the parts already stored as duplicates.
    pub async fn write(&self, events: Vec<BehaviorEvent>, now: Micros) -> Result<Written> {
        let mut parts: Vec<Vec<BehaviorEvent>> = vec![Vec::new(); self.writers.len()];
        for event in events {
            parts[writer_of(&event.user_id, self.writers.len())].push(event);
        }
        let stopped = || Error::Internal(anyhow::anyhow!("the ingestion writer stopped"));
        let mut replies = Vec::with_capacity(parts.len());
        for (writer, events) in self.writers.iter().zip(parts) {
            if events.is_empty() {
                continue;
            }
            let (reply, written) = oneshot::channel();
            writer
                .send(Call { events, now, reply })
                .await
                .map_err(|_| stopped())?;
            replies.push(written);
        }
        let mut total = Written::default();
        for written in futures::future::join_all(replies).await {
            let written = written.map_err(|_| stopped())??;
            total.accepted += written.accepted;
            total.duplicates += written.duplicates;
        }
        Ok(total)
    }
}

/// The writer (of `writers`) that commits `user`'s events.
fn writer_of(user: &str, writers: usize) -> usize {
    use std::hash::{BuildHasher as _, BuildHasherDefault, DefaultHasher};
    // A fixed hash: the same user always lands on the same writer.
    let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(user);
    (hash % writers as u64) as usize
}

/// Commits groups of calls to `store`, invalidating `cache` and waking `relay` after each.
pub struct Writer {
    pub(super) store: Store,
    pub(super) cache: Cache<ProfileRecord>,
    pub(super) kept: KeptProfiles,
    pub(super) settings: Arc<Settings>,
    pub(super) relay: RelayWaker,
}

impl Writer {
    async fn run(self: Arc<Self>, mut queue: mpsc::Receiver<Call>) {
        let max_events = self.settings.ingest.max_group_events;
        loop {
            let Some(first) = queue.recv().await else {
                return;
            };
            let mut size = first.events.len();
            let mut group = vec![first];
            while size < max_events {
                let Ok(call) = queue.try_recv() else { break };
                size += call.events.len();
                group.push(call);
            }
            let now = group.iter().map(|c| c.now).max().unwrap_or_default();
            let calls: Vec<&[BehaviorEvent]> = group.iter().map(|c| c.events.as_slice()).collect();
            let mut outcome = self.commit_caught(&calls, now).await;
            for _ in 0..CONFLICT_RETRIES {
                // Only another process's writer can have raced for a new user's row.
                if !matches!(outcome, Err(Error::Conflict(_))) {
                    break;
                }
                outcome = self.commit_caught(&calls, now).await;
            }
            match outcome {
                Ok(written) => {
                    for (call, written) in group.into_iter().zip(written) {
                        // The caller may have gone (deadline): its events are stored anyway.
                        let _ = call.reply.send(Ok(written));
                    }
                }
                Err(err) => {
                    // Nothing of the group was committed; each call learns why.
                    let err = Arc::new(err);
                    for call in group {
                        let _ = call.reply.send(Err(Error::Shared(err.clone())));
                    }
                }
            }
        }
    }

    /// [`Self::commit`]; a panic must not take ingestion down with it: its group fails, the
    /// next runs.
    async fn commit_caught(&self, calls: &[&[BehaviorEvent]], now: Micros) -> Result<Vec<Written>> {
        AssertUnwindSafe(self.commit(calls, now))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| {
                Err(Error::Internal(anyhow::anyhow!(
                    "the ingestion writer panicked"
                )))
            })
    }

    /// One transaction for `calls`: stores the new events, folds them into their users'
    /// profiles, updates price and sentiment statistics, publishes through the outbox.
    ///
    /// Duplicates are rare, so the group is first committed on the bet that every event is
    /// new ([`Self::commit_all_new`]); when the database stored fewer, that transaction is
    /// rolled back and the group committed again exactly ([`Self::commit_new_ones`]).
    async fn commit(&self, calls: &[&[BehaviorEvent]], now: Micros) -> Result<Vec<Written>> {
        let group = Group::of(calls);
        if self.commit_all_new(&group, now).await? {
            let mut written = vec![Written::default(); calls.len()];
            for call in &group.call_of {
                written[*call].accepted += 1;
            }
            return Ok(written);
        }
        self.commit_new_ones(&group, now).await
    }

    /// Commits `group` if every event of it is new, folding and encoding the profiles while
    /// the database inserts the events: SQLite runs statements on a thread of its own, and
    /// each side would otherwise wait for the other. Returns false, having committed
    /// nothing, when some event was stored before (or is in the group twice).
    async fn commit_all_new(&self, group: &Group<'_>, now: Micros) -> Result<bool> {
        let events = &group.events;
        let mut tx = self.store.db().begin_write().await?;
        let mut loaded = self.load(&mut tx, events).await?;
        let (stored, states) = {
            let insert = std::pin::pin!(self.store.insert_new_events(&mut tx, &group.all, now));
            let mut insert = Alongside::new(insert);
            insert.nudge().await; // sends the first statement
            let states = std::future::poll_fn(|cx| {
                Poll::Ready(loaded.fold_and_encode(events, &self.settings, || insert.poll(cx)))
            })
            .await;
            (insert.finish().await?, states)
        };
        if stored < events.len() {
            // Dropping the transaction rolls it back; the profiles taken out of the kept
            // copies are read again from their rows.
            return Ok(false);
        }
        self.save_and_publish(tx, loaded, states, events, now)
            .await?;
        Ok(true)
    }

    /// Commits `group` whatever was stored before: inserts its events first and folds the
    /// ones that were new.
    async fn commit_new_ones(&self, group: &Group<'_>, now: Micros) -> Result<Vec<Written>> {
        let mut tx = self.store.db().begin_write().await?;
        let mut inserted = self.store.insert_events(&mut tx, &group.all, now).await?;
        // An event is the call's own when it was new and no earlier call in the group had it.
        let mut written = vec![Written::default(); group.calls];
        let mut batch = Vec::with_capacity(group.all.len());
        for (call, (event, polarity)) in group.call_of.iter().zip(&group.events) {
            if inserted.remove(&(event.user_id.clone(), event.event_id.clone())) {
                written[*call].accepted += 1;
                batch.push((*event, *polarity));
            } else {
                written[*call].duplicates += 1;
            }
        }
        if batch.is_empty() {
            tx.commit().await?;
            return Ok(written);
        }
        let mut loaded = self.load(&mut tx, &batch).await?;
        let states = loaded.fold_and_encode(&batch, &self.settings, || {});
        self.save_and_publish(tx, loaded, states, &batch, now)
            .await?;
        Ok(written)
    }

    /// Reads what folding `events` needs: their users' profiles and the typical prices of
    /// the categories they buy in.
    async fn load<'e>(
        &self,
        tx: &mut Tx,
        events: &[(&'e BehaviorEvent, Option<f32>)],
    ) -> Result<Loaded<'e>> {
        // Sorted, so concurrent batches lock and insert profile rows in the same order
        // (PostgreSQL would otherwise deadlock two batches sharing users).
        let mut users: Vec<&str> = events.iter().map(|(e, _)| e.user_id.as_str()).collect();
        users.sort_unstable();
        users.dedup();
        let records = self.load_profiles(tx, &users).await?;
        let stored = records
            .iter()
            .map(|(user, record)| (user.clone(), IndexedColumns::of(record)))
            .collect();
        let currency = self.settings.ingest.reporting_currency.as_str();
        let categories: Vec<&str> = events
            .iter()
            .filter(|(e, _)| is_priced_purchase(e, currency))
            .filter_map(|(e, _)| e.category.as_deref())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let typical = self.store.typical_prices(tx, &categories).await?;
        Ok(Loaded {
            users,
            records,
            stored,
            typical,
        })
    }

    /// The rest of a group's transaction once its new events (`batch`) are stored and folded
    /// (`states` holds the encoded states of `loaded`'s profiles): saves the profiles, adds to
    /// the price and sentiment statistics, publishes, commits.
    async fn save_and_publish(
        &self,
        mut tx: Tx,
        loaded: Loaded<'_>,
        states: HashMap<&str, Vec<u8>>,
        batch: &[(&BehaviorEvent, Option<f32>)],
        now: Micros,
    ) -> Result<()> {
        let Loaded {
            users,
            mut records,
            stored,
            ..
        } = loaded;
        let model = &self.settings.model;
        let mut changed_segments = Vec::new();
        for user in &users {
            let Some(record) = records.get_mut(*user) else {
                continue;
            };
            let (first_seen, last_event) = record
                .state
                .as_ref()
                .map_or((0, 0), |s| (s.first_seen_at, s.last_event_at));
            let segment = Lifecycle::at(first_seen, last_event, now, model).as_str();
            if record.lifecycle != segment {
                changed_segments.push((record.user_id.clone(), record.lifecycle.clone(), segment));
                segment.clone_into(&mut record.lifecycle);
            }
        }

        let store = &self.store;
        let to_save: Vec<(&ProfileRecord, &[u8])> = users
            .iter()
            .filter_map(|u| Some((records.get(*u)?, states.get(*u)?.as_slice())))
            .collect();
        store
            .save_profiles_over(&mut tx, &to_save, &stored, now)
            .await?;
        let currency = self.settings.ingest.reporting_currency.as_str();
        store
            .add_category_prices(&mut tx, &price_deltas(batch, currency))
            .await?;
        store
            .add_item_sentiment(&mut tx, &sentiment_deltas(batch))
            .await?;
        let published: Vec<&BehaviorEvent> = batch
            .iter()
            .map(|(event, _)| *event)
            .filter(|e| {
                records
                    .get(&e.user_id)
                    .is_some_and(|r| r.personalization_allowed)
            })
            .collect();
        if !published.is_empty() {
            events::enqueue_behaviors(&mut tx, &published).await?;
        }
        events::enqueue_segment_changes(&mut tx, &changed_segments).await?;
        // Kept before the commit, while the rows are still ours: an erasure waits for the
        // commit, so its forgetting comes after. Should the commit fail, the copies are one
        // revision ahead of the rows and never trusted.
        for (_, mut record) in records {
            record.revision += 1;
            self.kept.keep(record);
        }
        tx.commit().await?;

        self.cache.invalidate(&users).await;
        self.relay.wake();
        Ok(())
    }

    /// The stored profiles of `users` (sorted), locked: the kept copies that are current,
    /// the rest read from the database.
    async fn load_profiles(
        &self,
        tx: &mut Tx,
        users: &[&str],
    ) -> Result<HashMap<String, ProfileRecord>> {
        let revisions = self.store.lock_profile_revisions(tx, users).await?;
        let mut records = HashMap::with_capacity(users.len());
        let mut stale = Vec::new();
        for user in users {
            let Some(&revision) = revisions.get(*user) else {
                // Not stored (new, or erased): whatever was kept is gone.
                self.kept.forget(&[user]);
                continue;
            };
            match self.kept.take(user, revision) {
                Some(record) => {
                    records.insert(record.user_id.clone(), record);
                }
                None => stale.push(*user),
            }
        }
        if !stale.is_empty() {
            records.extend(self.store.load_profiles_for_update(tx, &stale).await?);
        }
        Ok(records)
    }
}

/// A future driven alongside synchronous work: [`Self::nudge`] between pieces of the work
/// lets it progress (send its next statement) without waiting for it.
struct Alongside<'a, F: Future> {
    future: Pin<&'a mut F>,
    output: Option<F::Output>,
}

impl<'a, F: Future> Alongside<'a, F> {
    fn new(future: Pin<&'a mut F>) -> Self {
        Self {
            future,
            output: None,
        }
    }

    /// Polls the future once, unless it is done.
    async fn nudge(&mut self) {
        std::future::poll_fn(|cx| {
            self.poll(cx);
            Poll::Ready(())
        })
        .await;
    }

    /// [`Self::nudge`] from synchronous code running inside the task's poll (`cx`).
    fn poll(&mut self, cx: &mut Context<'_>) {
        if self.output.is_none()
            && let Poll::Ready(output) = self.future.as_mut().poll(cx)
        {
            self.output = Some(output);
        }
    }

    /// The future's output, waiting for it if it is not done yet.
    async fn finish(mut self) -> F::Output {
        match self.output.take() {
            Some(output) => output,
            None => self.future.await,
        }
    }
}
