//! A group's events and folding them into their users' profiles: pure work, no SQL, split
//! between two threads when the group is large.

use std::collections::{BTreeMap, HashMap};

use crate::config::Settings;
use crate::domain::event::{BehaviorEvent, BehaviorKind};
use crate::domain::profile::{EventContext, ProfileRecord};
use crate::store::{IndexedColumns, SentimentDelta};

/// Events folded between two nudges of the insert running meanwhile: it is one statement per
/// ~1,900 events, each sent only when the insert is polled, so it is nudged about every tenth
/// of a millisecond of folding.
const NUDGE_EVERY_EVENTS: usize = 32;
/// Groups from this many events on are folded by two threads.
const FOLD_IN_TWO_FROM: usize = 256;

/// A group's events in time order, so late arrivals still update profiles in the right order
/// (stable: a tie keeps the calls' order).
pub(super) struct Group<'e> {
    /// How many calls the group has.
    pub(super) calls: usize,
    /// Each event's call.
    pub(super) call_of: Vec<usize>,
    /// The events alone (what the insert takes).
    pub(super) all: Vec<&'e BehaviorEvent>,
    /// The events with each review's polarity (by its text's sentiment).
    pub(super) events: Vec<(&'e BehaviorEvent, Option<f32>)>,
}

impl<'e> Group<'e> {
    pub(super) fn of(calls: &[&'e [BehaviorEvent]]) -> Self {
        let mut tagged: Vec<(usize, &BehaviorEvent)> = calls
            .iter()
            .enumerate()
            .flat_map(|(call, events)| events.iter().map(move |e| (call, e)))
            .collect();
        tagged.sort_by_key(|(_, e)| e.occurred_at);
        let (call_of, all): (Vec<usize>, Vec<&BehaviorEvent>) = tagged.into_iter().unzip();
        let events = all
            .iter()
            .map(|e| {
                let polarity = (e.kind == BehaviorKind::Review).then(|| review_polarity(e));
                (*e, polarity)
            })
            .collect();
        Self {
            calls: calls.len(),
            call_of,
            all,
            events,
        }
    }
}

/// A group's users' profiles, read in its transaction, and what folding needs besides.
pub(super) struct Loaded<'e> {
    /// The users, sorted.
    pub(super) users: Vec<&'e str>,
    pub(super) records: HashMap<String, ProfileRecord>,
    /// The indexed columns of the stored rows as read (a save may leave them alone).
    pub(super) stored: HashMap<String, IndexedColumns>,
    /// Typical unit prices of the categories bought.
    pub(super) typical: HashMap<String, f64>,
}

/// One user's share of a group: the profile, its new events (in time order), and the state
/// encoded once they are folded in.
struct UserFold<'a, 'e> {
    user: &'e str,
    record: ProfileRecord,
    events: &'a [(&'e BehaviorEvent, Option<f32>)],
    state: Vec<u8>,
}

impl UserFold<'_, '_> {
    fn fold_and_encode(&mut self, typical: &HashMap<String, f64>, settings: &Settings) {
        let allowed = self.record.personalization_allowed;
        let currency = &settings.ingest.reporting_currency;
        let state = self.record.state.get_or_insert_with(Default::default);
        for (event, polarity) in self.events {
            let context = EventContext {
                typical_price: event
                    .category
                    .as_ref()
                    .and_then(|c| typical.get(c).copied()),
                polarity: *polarity,
            };
            state.apply(event, context, &settings.model, currency, allowed);
        }
        self.state = self.record.encoded_state();
    }
}

impl<'e> Loaded<'e> {
    /// Folds `events` (new, in time order) into their users' profiles and encodes them;
    /// returns the encoded states by user. A profile depends only on its user's events, so
    /// a large group is split by users between this thread and a helper. `between` is called
    /// on this thread every few dozen events (the caller drives its insert with it).
    pub(super) fn fold_and_encode(
        &mut self,
        events: &[(&'e BehaviorEvent, Option<f32>)],
        settings: &Settings,
        between: impl FnMut(),
    ) -> HashMap<&'e str, Vec<u8>> {
        let helper = std::thread::Builder::new().name("ingest-fold".into());
        self.fold_and_encode_with(events, settings, between, helper)
    }

    /// [`Self::fold_and_encode`] with the helper thread made by `helper`.
    fn fold_and_encode_with(
        &mut self,
        events: &[(&'e BehaviorEvent, Option<f32>)],
        settings: &Settings,
        mut between: impl FnMut(),
        helper: std::thread::Builder,
    ) -> HashMap<&'e str, Vec<u8>> {
        // By user, each user's in time order (the sort is stable).
        let mut by_user = events.to_vec();
        by_user.sort_by(|(a, _), (b, _)| a.user_id.cmp(&b.user_id));
        let mut folds: Vec<UserFold<'_, 'e>> = by_user
            .chunk_by(|(a, _), (b, _)| a.user_id == b.user_id)
            .map(|events| {
                let user = events[0].0.user_id.as_str();
                UserFold {
                    user,
                    record: self
                        .records
                        .remove(user)
                        .unwrap_or_else(|| ProfileRecord::new(user)),
                    events,
                    state: Vec::new(),
                }
            })
            .collect();

        let typical = &self.typical;
        let mut fold_here = |folds: &mut [UserFold<'_, 'e>]| {
            let mut since_between = 0;
            for fold in folds {
                fold.fold_and_encode(typical, settings);
                since_between += fold.events.len();
                if since_between >= NUDGE_EVERY_EVENTS {
                    between();
                    since_between = 0;
                }
            }
        };
        if events.len() < FOLD_IN_TWO_FROM {
            fold_here(&mut folds);
        } else {
            // About half the events each (the busiest users have hundreds).
            let mut half = 0;
            let split = folds
                .iter()
                .position(|f| {
                    half += f.events.len();
                    half * 2 >= events.len()
                })
                .map_or(folds.len(), |i| i + 1);
            let (here, there) = folds.split_at_mut(split);
            // Handed over through a slot, so this thread can take the share back when no
            // thread can be had (the system's limit): then it folds everything itself.
            let share = std::sync::Mutex::new(Some(there));
            let take = || {
                share
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take()
            };
            std::thread::scope(|scope| {
                let helper = helper.spawn_scoped(scope, || {
                    for fold in take().into_iter().flatten() {
                        fold.fold_and_encode(typical, settings);
                    }
                });
                fold_here(here);
                match helper {
                    Ok(helper) => {
                        if let Err(panic) = helper.join() {
                            std::panic::resume_unwind(panic);
                        }
                    }
                    Err(_) => {
                        if let Some(there) = take() {
                            fold_here(there);
                        }
                    }
                }
            });
        }

        let mut states = HashMap::with_capacity(folds.len());
        for fold in folds {
            states.insert(fold.user, fold.state);
            self.records.insert(fold.user.to_owned(), fold.record);
        }
        states
    }
}

/// What `batch` adds to the typical prices of categories: (category, purchases, Σ unit price).
pub(super) fn price_deltas(
    batch: &[(&BehaviorEvent, Option<f32>)],
    currency: &str,
) -> Vec<(String, i64, i64)> {
    let mut prices: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for (event, _) in batch {
        if is_priced_purchase(event, currency)
            && let (Some(category), Some(price)) = (&event.category, &event.unit_price)
        {
            let entry = prices.entry(category).or_default();
            entry.0 += 1;
            entry.1 += price.amount_minor;
        }
    }
    prices
        .into_iter()
        .map(|(c, (n, sum))| (c.to_owned(), n, sum))
        .collect()
}

/// What the reviews in `batch` add to their items' review sums.
pub(super) fn sentiment_deltas(
    batch: &[(&BehaviorEvent, Option<f32>)],
) -> Vec<(String, SentimentDelta)> {
    let mut sentiment: BTreeMap<&str, SentimentDelta> = BTreeMap::new();
    for (event, polarity) in batch {
        if let (Some(polarity), Some(item)) = (polarity, &event.item_id) {
            let d = sentiment.entry(item).or_default();
            d.reviews += 1;
            d.polarity_sum += f64::from(*polarity);
            d.positive += i64::from(*polarity >= 0.2);
            d.negative += i64::from(*polarity <= -0.2);
            d.rating_sum += i64::from(event.rating.unwrap_or(0));
        }
    }
    sentiment
        .into_iter()
        .map(|(item, d)| (item.to_owned(), d))
        .collect()
}

/// Polarity of a review: its text's sentiment when there is text, else its rating.
fn review_polarity(event: &BehaviorEvent) -> f32 {
    match &event.review_text {
        Some(text) => tailor_text::SentimentModel::shipped().score(text).polarity,
        None => (f32::from(event.rating.unwrap_or(3)) - 3.0) / 2.0,
    }
}

/// A purchase whose price counts towards typical prices (paid in the reporting currency).
pub(super) fn is_priced_purchase(event: &BehaviorEvent, currency: &str) -> bool {
    event.kind == BehaviorKind::Purchase
        && event
            .unit_price
            .as_ref()
            .is_some_and(|p| p.currency == currency)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::Money;
    use crate::domain::profile::stored;

    /// `count` events of a few users, the first user busiest, in time order.
    fn events(count: usize) -> Vec<BehaviorEvent> {
        let kinds = [
            BehaviorKind::View,
            BehaviorKind::Click,
            BehaviorKind::AddToCart,
            BehaviorKind::Purchase,
        ];
        (0..count)
            .map(|i| {
                let kind = kinds[i % kinds.len()];
                BehaviorEvent {
                    event_id: format!("e{i}"),
                    user_id: format!("u{}", (i * i) % 7),
                    kind,
                    occurred_at: 1_800_000_000_000_000 + i as i64 * 1_000_000,
                    item_id: Some(format!("i{}", i % 13)),
                    category: Some(format!("c{}/s{}", i % 3, i % 5)),
                    brand: Some(format!("b{}", i % 4)),
                    tags: vec![format!("t{}", i % 6)],
                    query: None,
                    quantity: 1,
                    unit_price: (kind == BehaviorKind::Purchase).then(|| Money {
                        amount_minor: 1_000 + i as i64,
                        currency: "CNY".into(),
                    }),
                    discounted: i % 2 == 0,
                    rating: None,
                    review_text: None,
                    session_id: None,
                }
            })
            .collect()
    }

    #[test]
    fn folding_in_two_threads_gives_the_profiles_one_thread_gives() {
        let helper = std::thread::Builder::new();
        folds_as_one_thread_does(helper);
    }

    #[test]
    fn without_a_helper_thread_this_one_folds_everything() {
        // A stack no system can map: the helper cannot be made.
        let helper = std::thread::Builder::new().stack_size(1 << 60);
        folds_as_one_thread_does(helper);
    }

    fn folds_as_one_thread_does(helper: std::thread::Builder) {
        let settings = Settings::default();
        let events = events(3 * FOLD_IN_TWO_FROM);
        let tagged: Vec<(&BehaviorEvent, Option<f32>)> = events.iter().map(|e| (e, None)).collect();
        let typical = HashMap::from([("c1/s1".to_owned(), 1_200.0)]);
        let mut loaded = Loaded {
            users: Vec::new(),
            records: HashMap::from([("u1".to_owned(), ProfileRecord::new("u1"))]),
            stored: HashMap::new(),
            typical: typical.clone(),
        };
        let mut betweens = 0;
        let states = loaded.fold_and_encode_with(&tagged, &settings, || betweens += 1, helper);

        let mut expected: HashMap<String, ProfileRecord> = HashMap::new();
        for event in &events {
            let record = expected
                .entry(event.user_id.clone())
                .or_insert_with(|| ProfileRecord::new(&event.user_id));
            let context = EventContext {
                typical_price: event
                    .category
                    .as_ref()
                    .and_then(|c| typical.get(c).copied()),
                polarity: None,
            };
            record.state.get_or_insert_with(Default::default).apply(
                event,
                context,
                &settings.model,
                &settings.ingest.reporting_currency,
                true,
            );
        }
        assert_eq!(loaded.records, expected);
        assert_eq!(states.len(), expected.len());
        for (user, state) in states {
            // Decoded: the encoding of a hash map depends on its iteration order.
            let state = stored::decode(&state).ok();
            assert!(state == expected[user].state, "{user}'s encoded state");
        }
        assert!(betweens > 0 && betweens <= events.len() / NUDGE_EVERY_EVENTS);
    }
}
