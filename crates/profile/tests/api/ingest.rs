//! Ingestion: per-event validation, duplicates, durability, streaming, publishing, limits.

use std::collections::BTreeMap;
use std::time::Duration;

use prost::Message as _;
use tailor_kit::events::{decode_envelope, topics, unpack};
use tailor_kit::testing::TestDb;
use tailor_kit::time::now_micros;
use tailor_profile::MIGRATIONS;
use tailor_profile::domain::profile::ProfileRecord;
use tailor_profile::error::Error;
use tailor_profile::store::Store;
use tailor_proto::common::v1::Money;
use tailor_proto::events::v1::{BehaviorRecorded, BehaviorType};
use tailor_proto::profile::v1 as pb;
use tonic::{Code, Status};

use crate::helpers::{TestApp, days_ago, event, profile, record, violations};

#[tokio::test]
async fn a_mixed_batch_rejects_exactly_the_bad_events_and_keeps_the_rest() {
    for app in TestApp::every_backend().await {
        let mut bad_rating = event("e2", "alice", BehaviorType::Review, "i1", "books");
        bad_rating.rating = 9;
        let mut future = event("e4", "alice", BehaviorType::View, "i2", "books");
        future.occurred_at = Some(days_ago(-1.0));
        let mut negative_price = event("e5", "alice", BehaviorType::Purchase, "i3", "books");
        negative_price.unit_price = Some(Money {
            amount_minor: -100,
            currency: "CNY".into(),
        });
        let events = vec![
            event("e1", "alice", BehaviorType::View, "i1", "books"),
            bad_rating,
            event("e3", "alice", BehaviorType::Click, "i2", "books"),
            future,
            negative_price,
            event("e6", "bob", BehaviorType::AddToCart, "i3", "toys"),
        ];
        let response = record(&app, events).await;
        assert_eq!(response.accepted_count, 3, "{}", app.label);
        assert_eq!(response.duplicate_count, 0);
        let rejected: Vec<(i32, &str, &str)> = response
            .rejected
            .iter()
            .map(|r| (r.index, r.event_id.as_str(), r.field.as_str()))
            .collect();
        assert_eq!(
            rejected,
            vec![
                (1, "e2", "rating"),
                (3, "e4", "occurred_at"),
                (4, "e5", "unit_price.amount_minor")
            ]
        );
        assert!(response.rejected[1].reason.contains("future"));
        assert_eq!(profile(&app, "alice").await.event_count, 2);
        assert_eq!(profile(&app, "bob").await.event_count, 1);
    }
}

#[tokio::test]
async fn duplicate_event_ids_are_counted_once() {
    for app in TestApp::every_backend().await {
        let batch = || {
            vec![
                event("d1", "carol", BehaviorType::View, "i1", "books"),
                event("d2", "carol", BehaviorType::View, "i2", "books"),
                event("d1", "carol", BehaviorType::View, "i1", "books"),
            ]
        };
        let first = record(&app, batch()).await;
        assert_eq!(
            (first.accepted_count, first.duplicate_count),
            (2, 1),
            "{}",
            app.label
        );
        let again = record(&app, batch()).await;
        assert_eq!((again.accepted_count, again.duplicate_count), (0, 3));
        // The same event id for another user is another event.
        let other = record(
            &app,
            vec![event("d1", "dave", BehaviorType::View, "i1", "books")],
        )
        .await;
        assert_eq!(other.accepted_count, 1);
        assert_eq!(profile(&app, "carol").await.event_count, 2);
    }
}

#[tokio::test]
async fn a_batch_with_duplicates_folds_only_its_new_events_into_profiles() {
    // The writer folds a group while the database inserts it, taking every event to be new:
    // profiles must still end as if the duplicates had never been sent.
    for app in TestApp::every_backend().await {
        let view = |id: &str, user: &str, item: &str, category: &str| {
            event(id, user, BehaviorType::View, item, category)
        };
        let cart =
            |id: &str, user: &str| event(id, user, BehaviorType::AddToCart, "i2", "books/novels");
        for user in ["xena", "yuri", "zack"] {
            record(&app, vec![view("a", user, "i1", "books"), cart("b", user)]).await;
        }
        let response = record(
            &app,
            vec![
                cart("b", "xena"), // stored before
                view("c", "xena", "i3", "toys"),
                view("d", "xena", "i4", "toys/cars"),
                view("d", "xena", "i4", "toys/cars"), // twice in the batch
                view("c", "yuri", "i3", "toys"),
                view("d", "yuri", "i4", "toys/cars"),
                view("a", "zack", "i1", "books"), // only duplicates
            ],
        )
        .await;
        assert_eq!(
            (response.accepted_count, response.duplicate_count),
            (4, 3),
            "{}",
            app.label
        );
        let interests = |p: &pb::Profile| -> BTreeMap<(i32, String), f64> {
            p.interests
                .iter()
                .map(|i| ((i.dimension, i.key.clone()), i.weight))
                .collect()
        };
        let (xena, yuri) = (profile(&app, "xena").await, profile(&app, "yuri").await);
        assert_eq!(
            (xena.event_count, yuri.event_count),
            (4, 4),
            "{}",
            app.label
        );
        let (xena, yuri) = (interests(&xena), interests(&yuri));
        assert_eq!(
            xena.keys().collect::<Vec<_>>(),
            yuri.keys().collect::<Vec<_>>()
        );
        for (key, weight) in &xena {
            // Sent microseconds apart: the same weights but for decay over that time.
            assert!(
                (weight - yuri[key]).abs() < 1e-6 * weight,
                "{key:?}: {weight} {}",
                yuri[key]
            );
        }
        assert_eq!(profile(&app, "zack").await.event_count, 2, "{}", app.label);
    }
}

#[tokio::test]
async fn concurrent_calls_sharing_events_store_each_once() {
    // Calls that overlap in time are committed together (group commit): an event sent by
    // several of them is stored and counted once, whichever call it lands in.
    for app in TestApp::every_backend().await {
        let calls = (0..20).map(|k| {
            let mut events: Vec<pb::BehaviorEvent> = (k..k + 10)
                .map(|j| event(&format!("c{j}"), "zoe", BehaviorType::View, "i1", "books"))
                .collect();
            events.push(event(
                "own",
                &format!("u{k}"),
                BehaviorType::View,
                "i2",
                "toys",
            ));
            record(&app, events)
        });
        let responses = futures::future::join_all(calls).await;
        let accepted: i32 = responses.iter().map(|r| r.accepted_count).sum();
        let duplicates: i32 = responses.iter().map(|r| r.duplicate_count).sum();
        assert_eq!(accepted, 29 + 20, "{}", app.label);
        assert_eq!(duplicates, 20 * 10 - 29, "{}", app.label);
        assert_eq!(profile(&app, "zoe").await.event_count, 29, "{}", app.label);
        assert_eq!(profile(&app, "u7").await.event_count, 1, "{}", app.label);
    }
}

#[tokio::test]
async fn a_batch_above_the_limit_is_refused_whole() {
    let app = TestApp::sqlite().await;
    let events: Vec<pb::BehaviorEvent> = (0..1001)
        .map(|i| event(&format!("e{i}"), "u", BehaviorType::View, "i", "c"))
        .collect();
    let status = app
        .admin()
        .record_events(pb::RecordEventsRequest { events })
        .await
        .unwrap_err();
    assert_eq!(violations(&status), vec!["events"]);
}

#[tokio::test]
async fn events_arrive_in_chunks_over_a_client_stream() {
    for app in TestApp::every_backend().await {
        let chunks: Vec<pb::StreamEventsRequest> = (0..5)
            .map(|c| pb::StreamEventsRequest {
                events: (0..100)
                    .map(|i| {
                        let mut e = event(
                            &format!("s{c}-{i}"),
                            &format!("user{}", i % 7),
                            BehaviorType::View,
                            "i",
                            "c",
                        );
                        if i == 50 {
                            e.event_id.clear();
                        }
                        e
                    })
                    .collect(),
            })
            .collect();
        let summary = app
            .admin()
            .stream_events(tokio_stream::iter(chunks))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(summary.accepted_count, 495, "{}", app.label);
        assert_eq!(summary.rejected_count, 5);
        let indices: Vec<i32> = summary.rejected.iter().map(|r| r.index).collect();
        assert_eq!(
            indices,
            vec![50, 150, 250, 350, 450],
            "positions count across the stream"
        );
    }
}

#[tokio::test]
async fn accepted_behaviour_is_published_for_recommendation() {
    for app in TestApp::every_backend().await {
        let mut sub = app
            .bus
            .subscribe(topics::PROFILE_BEHAVIOR_RECORDED, "test-observer", "t1")
            .await
            .unwrap();
        record(
            &app,
            vec![
                event("p1", "erin", BehaviorType::View, "i1", "Books/SciFi"),
                event("p2", "erin", BehaviorType::Purchase, "i1", "books/scifi"),
            ],
        )
        .await;
        let mut behaviors = Vec::new();
        for _ in 0..50 {
            for delivery in sub.next_batch(10).await.unwrap() {
                let envelope = decode_envelope(&delivery.payload).unwrap();
                assert_eq!(envelope.producer, "profile");
                behaviors.extend(unpack::<BehaviorRecorded>(&envelope).unwrap().behaviors);
            }
            if behaviors.len() >= 2 {
                break;
            }
        }
        let items: Vec<(&str, &str, i32)> = behaviors
            .iter()
            .map(|b| (b.event_id.as_str(), b.category.as_str(), b.r#type))
            .collect();
        assert_eq!(
            items,
            vec![
                ("p1", "books/scifi", BehaviorType::View as i32),
                ("p2", "books/scifi", BehaviorType::Purchase as i32)
            ],
            "{}",
            app.label
        );
        assert!(!behaviors[0].encode_to_vec().is_empty());
    }
}

#[tokio::test]
async fn a_caller_acting_for_a_user_writes_and_reads_only_that_user() {
    let app = TestApp::sqlite().await;
    let mut alice = app.client("gateway", &[], Some("alice"));
    let response = alice
        .record_events(pb::RecordEventsRequest {
            events: vec![
                event("a1", "alice", BehaviorType::View, "i", "c"),
                event("a2", "bob", BehaviorType::View, "i", "c"),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.accepted_count, 1);
    assert_eq!(response.rejected[0].field, "user_id");

    let own = alice
        .get_profile(pb::GetProfileRequest {
            user_id: "alice".into(),
        })
        .await;
    assert!(own.is_ok());
    let other = alice
        .get_profile(pb::GetProfileRequest {
            user_id: "bob".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::PermissionDenied);

    // A service without the write scope cannot ingest on its own.
    let mut weak = app.client("catalog", &["profile:read"], None);
    let status = weak
        .record_events(pb::RecordEventsRequest { events: vec![] })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn when_every_slot_is_busy_new_calls_are_shed_not_queued() {
    let mut settings = tailor_profile::Settings::default();
    settings.server.concurrency_limit = 1;
    let app = TestApp::every_backend_with(settings).await.remove(0);
    // A client stream holds its slot until the client finishes sending.
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::StreamEventsRequest>(1);
    let mut streaming = app.admin();
    let held = tokio::spawn(async move {
        streaming
            .stream_events(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
    });
    tx.send(pb::StreamEventsRequest {
        events: vec![event("h1", "holder", BehaviorType::View, "i", "c")],
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let shed = app
        .admin()
        .get_profile(pb::GetProfileRequest {
            user_id: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(shed.code(), Code::ResourceExhausted);
    drop(tx);
    let summary = held.await.unwrap().unwrap().into_inner();
    assert_eq!(summary.accepted_count, 1);
    assert!(
        app.admin()
            .get_profile(pb::GetProfileRequest {
                user_id: "x".into()
            })
            .await
            .is_ok(),
        "capacity is back once the stream ended"
    );
}

#[tokio::test]
async fn a_profile_saved_from_a_stale_read_is_refused_not_overwritten() {
    // Every profile write is the next revision of the one it read: a writer that lost a race
    // (two groups creating the same new user on PostgreSQL) is told, never silently wins.
    for app in TestApp::every_backend().await {
        record(
            &app,
            vec![event("s1", "sam", BehaviorType::View, "i1", "books")],
        )
        .await;
        let store = Store::new(app.db.db.clone());
        let read = || async {
            let mut tx = store.db().begin_write().await.unwrap();
            let mut records = store
                .load_profiles_for_update(&mut tx, &["sam"])
                .await
                .unwrap();
            tx.rollback().await.unwrap();
            records.remove("sam").unwrap()
        };
        let (mut first, stale) = (read().await, read().await);
        first.lifecycle = "active".into();
        let store = &store;
        let save = |record: ProfileRecord| async move {
            let mut tx = store.db().begin_write().await.unwrap();
            let saved = store.save_profiles(&mut tx, &[&record], now_micros()).await;
            match saved {
                Ok(()) => tx.commit().await.unwrap(),
                Err(_) => tx.rollback().await.unwrap(),
            }
            saved
        };
        save(first).await.unwrap();
        let refused = save(stale).await.unwrap_err();
        assert!(
            matches!(refused, Error::Conflict(_)),
            "{}: {refused}",
            app.label
        );
        assert_eq!(Status::from(refused).code(), Code::Aborted);
        // Two creations of one new user: the second finds the row the first made.
        save(ProfileRecord::new("nova")).await.unwrap();
        let late = save(ProfileRecord::new("nova")).await.unwrap_err();
        assert!(matches!(late, Error::Conflict(_)), "{}", app.label);
        assert_eq!(profile(&app, "sam").await.event_count, 1, "{}", app.label);

        // Another process writes sam's profile: the ingestion writer's copy in memory is then
        // out of date and must not be folded into and saved over it.
        let mut elsewhere = read().await;
        elsewhere.state.as_mut().unwrap().event_count += 100;
        save(elsewhere).await.unwrap();
        record(
            &app,
            vec![event("s2", "sam", BehaviorType::View, "i2", "books")],
        )
        .await;
        assert_eq!(profile(&app, "sam").await.event_count, 102, "{}", app.label);
    }
}

#[tokio::test]
async fn postgres_compresses_profile_states_with_lz4() {
    // Every group rewrites its users' states; with PostgreSQL's default (pglz) compressing
    // them was a sixth of the server's time under ingestion.
    tailor_kit::testing::init_for_tests();
    let Some(db) = TestDb::postgres(&MIGRATIONS).await.unwrap() else {
        eprintln!("DATABASE_URL not set: skipped");
        return;
    };
    let method: String = sqlx::query_scalar(
        "SELECT attcompression::text FROM pg_attribute \
         WHERE attrelid = 'user_profile'::regclass AND attname = 'state'",
    )
    .fetch_one(db.db.pool())
    .await
    .unwrap();
    assert_eq!(method, "l", "lz4");
}
