//! The in-process bus of the embedded default: the same delivery contract as Redis Streams
//! (consumer groups, acknowledgements, redelivery of messages left unacknowledged too long,
//! dead letters) inside one process. Messages live in memory: a process crash loses what the
//! relay already moved out of the outbox, so production runs on Redis.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::Delivery;

/// Messages kept for a topic no group has subscribed to yet.
const UNSUBSCRIBED_CAPACITY: usize = 100_000;

/// See the module docs. Cheap to clone; clones share the topics.
#[derive(Clone, Debug)]
pub struct MemoryBus {
    topics: Arc<Mutex<HashMap<String, Topic>>>,
    reclaim_idle: Duration,
    block: Duration,
}

#[derive(Debug)]
struct Topic {
    /// (id, payload), ids increasing from 1.
    messages: VecDeque<(u64, Bytes)>,
    next_id: u64,
    groups: HashMap<String, Group>,
    notify: Arc<Notify>,
}

#[derive(Debug, Default)]
struct Group {
    /// The next message id never delivered to this group.
    next: u64,
    /// Delivered, not yet acknowledged: id → (delivered at, attempts).
    pending: BTreeMap<u64, (Instant, u64)>,
}

impl Topic {
    fn new() -> Self {
        Self {
            messages: VecDeque::new(),
            next_id: 1,
            groups: HashMap::new(),
            notify: Arc::new(Notify::new()),
        }
    }

    fn payload(&self, id: u64) -> Option<&Bytes> {
        let first = self.messages.front()?.0;
        let index = usize::try_from(id.checked_sub(first)?).ok()?;
        self.messages.get(index).map(|(_, payload)| payload)
    }

    /// Drops messages every group has acknowledged (or, with no group, the oldest beyond
    /// the capacity).
    fn trim(&mut self) {
        let keep_from = if self.groups.is_empty() {
            let excess = self.messages.len().saturating_sub(UNSUBSCRIBED_CAPACITY);
            self.messages
                .get(excess)
                .map_or(self.next_id, |(id, _)| *id)
        } else {
            self.groups
                .values()
                .map(|g| {
                    g.pending
                        .keys()
                        .next()
                        .copied()
                        .unwrap_or(g.next)
                        .min(g.next)
                })
                .min()
                .unwrap_or(self.next_id)
        };
        while self.messages.front().is_some_and(|(id, _)| *id < keep_from) {
            self.messages.pop_front();
        }
    }
}

impl MemoryBus {
    /// A bus that redelivers messages left unacknowledged for `reclaim_idle`, whose
    /// consumers wait up to `block` for new messages.
    pub fn new(reclaim_idle: Duration, block: Duration) -> Self {
        Self {
            topics: Arc::new(Mutex::new(HashMap::new())),
            reclaim_idle,
            block,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Topic>> {
        // A panic while holding the lock cannot leave a topic half-updated in a way that
        // matters more than losing the bus, so keep going with the data.
        self.topics
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn publish(&self, topic: &str, payloads: &[Bytes]) {
        let mut topics = self.lock();
        let topic = topics.entry(topic.to_owned()).or_insert_with(Topic::new);
        for payload in payloads {
            let id = topic.next_id;
            topic.next_id += 1;
            topic.messages.push_back((id, payload.clone()));
        }
        topic.trim();
        topic.notify.notify_waiters();
    }

    pub(super) fn subscribe(&self, topic_name: &str, group: &str) -> MemorySubscription {
        let mut topics = self.lock();
        let topic = topics
            .entry(topic_name.to_owned())
            .or_insert_with(Topic::new);
        let oldest = topic.messages.front().map_or(topic.next_id, |(id, _)| *id);
        topic
            .groups
            .entry(group.to_owned())
            .or_insert_with(|| Group {
                next: oldest,
                pending: BTreeMap::new(),
            });
        MemorySubscription {
            bus: self.clone(),
            topic: topic_name.to_owned(),
            group: group.to_owned(),
            block: self.block,
        }
    }

    /// Messages in `topic` (dead-letter streams are `<topic>.dead`), for tests and tools.
    pub fn len(&self, topic: &str) -> usize {
        self.lock().get(topic).map_or(0, |t| t.messages.len())
    }

    /// Whether `topic` holds no message.
    pub fn is_empty(&self, topic: &str) -> bool {
        self.len(topic) == 0
    }
}

/// A consumer's membership in a group of the in-process bus.
#[derive(Debug)]
pub struct MemorySubscription {
    bus: MemoryBus,
    topic: String,
    group: String,
    block: Duration,
}

impl MemorySubscription {
    pub(super) async fn next_batch(&mut self, max: usize) -> Vec<Delivery> {
        let deadline = Instant::now() + self.block;
        loop {
            let notify = {
                let mut topics = self.bus.lock();
                let Some(topic) = topics.get_mut(&self.topic) else {
                    return Vec::new();
                };
                let batch = self.take(topic, max);
                if !batch.is_empty() {
                    return batch;
                }
                topic.notify.clone()
            };
            let notified = notify.notified();
            tokio::pin!(notified);
            // Registered before re-checking, so a publish in between is not missed.
            notified.as_mut().enable();
            {
                let mut topics = self.bus.lock();
                if let Some(topic) = topics.get_mut(&self.topic) {
                    let batch = self.take(topic, max);
                    if !batch.is_empty() {
                        return batch;
                    }
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Vec::new();
            }
            let _ = tokio::time::timeout(deadline - now, notified).await;
        }
    }

    fn take(&self, topic: &mut Topic, max: usize) -> Vec<Delivery> {
        let now = Instant::now();
        let reclaim_idle = self.bus.reclaim_idle;
        let Some(group) = topic.groups.get_mut(&self.group) else {
            return Vec::new();
        };
        let mut ids = Vec::new();
        for (id, (delivered_at, attempts)) in group.pending.iter_mut() {
            if ids.len() >= max {
                break;
            }
            if now.duration_since(*delivered_at) >= reclaim_idle {
                *delivered_at = now;
                *attempts += 1;
                ids.push((*id, *attempts));
            }
        }
        while ids.len() < max && group.next < topic.next_id {
            let id = group.next;
            group.next += 1;
            group.pending.insert(id, (now, 1));
            ids.push((id, 1));
        }
        ids.into_iter()
            .filter_map(|(id, attempts)| {
                topic.payload(id).map(|payload| Delivery {
                    id: id.to_string(),
                    payload: payload.clone(),
                    attempts,
                })
            })
            .collect()
    }

    pub(super) fn ack(&mut self, ids: &[String]) {
        let mut topics = self.bus.lock();
        if let Some(topic) = topics.get_mut(&self.topic) {
            if let Some(group) = topic.groups.get_mut(&self.group) {
                for id in ids.iter().filter_map(|id| id.parse::<u64>().ok()) {
                    group.pending.remove(&id);
                }
            }
            topic.trim();
        }
    }

    pub(super) fn dead_letter(&mut self, delivery: &Delivery, reason: &str) {
        tracing::error!(topic = %self.topic, id = %delivery.id, reason, "event moved to the dead-letter stream");
        self.bus.publish(
            &format!("{}.dead", self.topic),
            std::slice::from_ref(&delivery.payload),
        );
        self.ack(std::slice::from_ref(&delivery.id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payloads(n: usize) -> Vec<Bytes> {
        (0..n).map(|i| Bytes::from(format!("m{i}"))).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn groups_each_get_every_message_and_consumers_share_a_group() {
        let bus = MemoryBus::new(Duration::from_secs(30), Duration::from_millis(500));
        bus.publish("t", &payloads(3));
        let mut a1 = bus.subscribe("t", "a");
        let mut a2 = bus.subscribe("t", "a");
        let mut b = bus.subscribe("t", "b");
        let first = a1.next_batch(2).await;
        let second = a2.next_batch(10).await;
        assert_eq!(first.len() + second.len(), 3);
        assert_eq!(b.next_batch(10).await.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn unacknowledged_messages_are_redelivered_after_the_idle_time() {
        let bus = MemoryBus::new(Duration::from_secs(30), Duration::from_millis(500));
        bus.publish("t", &payloads(1));
        let mut dead_consumer = bus.subscribe("t", "g");
        let got = dead_consumer.next_batch(10).await;
        assert_eq!(got[0].attempts, 1);
        drop(dead_consumer);

        let mut survivor = bus.subscribe("t", "g");
        assert!(survivor.next_batch(10).await.is_empty());
        tokio::time::advance(Duration::from_secs(31)).await;
        let again = survivor.next_batch(10).await;
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempts, 2);
        survivor.ack(&[again[0].id.clone()]);
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(survivor.next_batch(10).await.is_empty());
        assert!(bus.is_empty("t"), "acknowledged messages are trimmed");
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_consumer_wakes_on_publish() {
        let bus = MemoryBus::new(Duration::from_secs(30), Duration::from_millis(500));
        let mut sub = bus.subscribe("t", "g");
        let publisher = bus.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            publisher.publish("t", &payloads(1));
        });
        assert_eq!(sub.next_batch(10).await.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn dead_letters_leave_the_stream() {
        let bus = MemoryBus::new(Duration::from_secs(30), Duration::from_millis(500));
        bus.publish("t", &payloads(1));
        let mut sub = bus.subscribe("t", "g");
        let got = sub.next_batch(1).await;
        sub.dead_letter(&got[0], "poison");
        assert_eq!(bus.len("t.dead"), 1);
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(sub.next_batch(1).await.is_empty());
    }
}
