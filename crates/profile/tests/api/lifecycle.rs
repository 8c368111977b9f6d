//! Lifecycle segments as stored and published: the writer's change detection, the sweep that
//! moves users whose segment changed with time alone, and the indexed columns those rely on. Driven
//! through the use-cases with explicit clocks (the gRPC edge always uses the real one).

use std::sync::Arc;
use std::time::Duration;

use sqlx::Row as _;
use tailor_kit::cache::Cache;
use tailor_kit::events::outbox::RelayWaker;
use tailor_kit::events::{decode_envelope, topics, unpack};
use tailor_kit::testing::TestDb;
use tailor_kit::time::{DAY, Micros, now_micros};
use tailor_profile::domain::event::RawEvent;
use tailor_profile::domain::profiles::Profiles;
use tailor_profile::store::Store;
use tailor_profile::{MIGRATIONS, Settings};
use tailor_proto::events::v1::ProfileSegmentChanged;

const HOUR: Micros = DAY / 24;

async fn databases() -> Vec<TestDb> {
    tailor_kit::testing::init_for_tests();
    TestDb::every_backend(&MIGRATIONS).await.unwrap()
}

fn profiles(db: &TestDb) -> Profiles {
    Profiles::new(
        Store::new(db.db.clone()),
        Cache::new(None, "profile:record", Duration::from_secs(60), 1_000),
        Arc::new(Settings::default()),
        RelayWaker::default(),
    )
}

/// `user` viewed an item at `at`, recorded an hour later.
async fn view(profiles: &Profiles, user: &str, at: Micros) {
    let raw = RawEvent {
        event_id: format!("{user}-{at}"),
        user_id: user.to_owned(),
        kind: 1,
        occurred_at: Some(at),
        item_id: "i1".to_owned(),
        category: "books".to_owned(),
        ..RawEvent::default()
    };
    let report = profiles
        .record(vec![raw], None, at + HOUR, 0)
        .await
        .unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
}

/// The stored (segment, last_event_at, last_event_day) of `user`.
async fn stored(db: &TestDb, user: &str) -> (String, i64, i64) {
    let row = sqlx::query(
        "SELECT lifecycle, last_event_at, last_event_day FROM user_profile WHERE user_id = $1",
    )
    .bind(user)
    .fetch_one(db.db.pool())
    .await
    .unwrap();
    (
        row.try_get(0).unwrap(),
        row.try_get(1).unwrap(),
        row.try_get(2).unwrap(),
    )
}

/// The segment changes enqueued for publishing so far, in order: (user, previous, segment).
/// No relay runs here, so the outbox keeps them all.
async fn segment_changes(db: &TestDb) -> Vec<(String, String, String)> {
    let rows = sqlx::query("SELECT envelope FROM outbox WHERE topic = $1 ORDER BY outbox_id")
        .bind(topics::PROFILE_SEGMENT_CHANGED)
        .fetch_all(db.db.pool())
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            let envelope = decode_envelope(&row.try_get::<Vec<u8>, _>(0).unwrap()).unwrap();
            let change: ProfileSegmentChanged = unpack(&envelope).unwrap();
            (change.user_id, change.previous_segment, change.segment)
        })
        .collect()
}

fn change(user: &str, previous: &str, segment: &str) -> (String, String, String) {
    (user.to_owned(), previous.to_owned(), segment.to_owned())
}

#[tokio::test]
async fn indexed_columns_follow_every_write_whether_or_not_it_assigns_them() {
    // Noon of a day ninety days ago: every event below stays clear of day boundaries.
    let t0 = (now_micros() - 90 * DAY).div_euclid(DAY) * DAY + 12 * HOUR;
    for db in databases().await {
        let profiles = profiles(&db);
        // (event time, stored segment, stored day) after each write, and why.
        for (at, segment, day, why) in [
            (t0, "new", t0 / DAY, "first event"),
            (
                t0 + HOUR,
                "new",
                t0 / DAY,
                "same day and segment: not assigned",
            ),
            (
                t0 + 2 * DAY,
                "new",
                t0 / DAY + 2,
                "a later day: the day moves",
            ),
            (
                t0 + 10 * DAY,
                "active",
                t0 / DAY + 10,
                "past the new days: both move",
            ),
        ] {
            view(&profiles, "ada", at).await;
            assert_eq!(
                stored(&db, "ada").await,
                (segment.to_owned(), at, day),
                "{}: {why}",
                db.label
            );
        }
        assert_eq!(
            segment_changes(&db).await,
            [change("ada", "", "new"), change("ada", "new", "active")],
            "{}: published once per change",
            db.label
        );
    }
}

#[tokio::test]
async fn the_sweep_moves_exactly_the_users_whose_segment_time_changed() {
    let settings = Settings::default();
    let lc = &settings.model.lifecycle;
    // The sweep runs at noon, so the active cutoff (a whole number of days earlier) is at
    // noon too, and events a minute either side of it share their day.
    let sweep_at = now_micros().div_euclid(DAY) * DAY + 12 * HOUR;
    let cutoff = sweep_at - Micros::from(lc.active_days) * DAY;
    let minute = HOUR / 60;
    for db in databases().await {
        let profiles = profiles(&db);
        // Active when recorded (first seen long before), each idle since a given moment.
        for (user, last) in [
            ("idle", cutoff - 5 * DAY),
            ("just-idle", cutoff - minute),
            ("not-yet", cutoff + minute),
            ("busy", sweep_at - DAY),
        ] {
            view(&profiles, user, cutoff - 20 * DAY).await;
            view(&profiles, user, last).await;
            assert_eq!(stored(&db, user).await.0, "active", "{}: {user}", db.label);
        }
        // New when recorded, past the new days at the sweep.
        view(&profiles, "newcomer", sweep_at - 8 * DAY).await;
        assert_eq!(stored(&db, "newcomer").await.0, "new", "{}", db.label);

        let published = segment_changes(&db).await.len();
        let changed = profiles.sweep_lifecycles(sweep_at).await.unwrap();
        assert_eq!(changed, 3, "{}", db.label);
        let mut swept = segment_changes(&db).await.split_off(published);
        swept.sort();
        assert_eq!(
            swept,
            [
                change("idle", "active", "at_risk"),
                change("just-idle", "active", "at_risk"),
                change("newcomer", "new", "active"),
            ],
            "{}",
            db.label
        );
        for (user, segment) in [
            ("idle", "at_risk"),
            ("just-idle", "at_risk"),
            ("not-yet", "active"),
            ("busy", "active"),
            ("newcomer", "active"),
        ] {
            assert_eq!(stored(&db, user).await.0, segment, "{}: {user}", db.label);
        }
        assert_eq!(
            profiles.sweep_lifecycles(sweep_at).await.unwrap(),
            0,
            "{}: nothing left to move",
            db.label
        );
    }
}
