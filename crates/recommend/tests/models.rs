//! Stored model sets across builds: an active set this build cannot decode (written in an
//! older format before an upgrade) must not keep the service from starting; it serves without
//! a model and trains one it can read.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tailor_kit::shutdown::CancellationToken;
use tailor_kit::testing::TestDb;
use tailor_kit::time::{SECOND, now_micros};
use tailor_recommend::Settings;
use tailor_recommend::domain::Placement;
use tailor_recommend::domain::catalog::Item;
use tailor_recommend::domain::recommender::{EventReach, RecommendInput, Recommender};
use tailor_recommend::store::{ModelRow, NewInteraction, Store};

fn home(user: &str) -> RecommendInput {
    RecommendInput {
        user_id: user.to_owned(),
        placement: Some(Placement::Home),
        page_size: 5,
        ..RecommendInput::default()
    }
}

/// Ten items and thirty shoppers who viewed five of them each.
async fn seed(store: &Store) {
    let items: Vec<Item> = (0..10)
        .map(|i| Item {
            item_id: format!("item-{i}"),
            title: format!("Item {i}"),
            category: "books".into(),
            available: true,
            stock: 10,
            ..Item::default()
        })
        .collect();
    let now = now_micros();
    let interactions: Vec<NewInteraction> = (0..30)
        .flat_map(|u| {
            (0..5).map(move |k| NewInteraction {
                user_id: format!("user-{u}"),
                event_id: format!("e-{u}-{k}"),
                item_id: format!("item-{}", (u + k) % 10),
                kind: 1,
                weight: 1.0,
                occurred_at: now - (u * 5 + k) * SECOND,
            })
        })
        .collect();
    let mut tx = store.db().begin_write().await.unwrap();
    store.upsert_items(&mut tx, &items, now).await.unwrap();
    store
        .insert_interactions(&mut tx, &interactions)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn an_unreadable_active_model_set_is_replaced_by_training_and_serving_goes_on() {
    let test = TestDb::fresh(&tailor_recommend::MIGRATIONS).await.unwrap();
    let store = Store::new(test.db.clone());
    seed(&store).await;
    let older = ModelRow {
        version: "written-by-an-older-build".into(),
        created_at: now_micros(),
        active: true,
        metrics: "{}".into(),
        interactions: 150,
        users: 30,
        items: 10,
        train_seconds: 0.1,
    };
    // The model-set header with format version 1, which this build no longer reads.
    store
        .save_model(&older, b"TLMS\x01\x00an older encoding", 3)
        .await
        .unwrap();

    let mut settings = Settings::default();
    settings.training.holdout = false;
    settings.training.catalog_debounce = Duration::from_millis(10);
    let recommender = Recommender::load(store.clone(), Arc::new(settings), EventReach::SharedBus)
        .await
        .unwrap();
    assert_eq!(recommender.models().version, "none", "{}", test.label);
    recommender.recommend(home("user-1")).await.unwrap();

    let stop = CancellationToken::new();
    let background = tokio::spawn(recommender.clone().run_background(stop.clone()));
    let started = Instant::now();
    while recommender.models().version == "none" {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{}: no model set trained",
            test.label
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    background.await.unwrap();

    let active = store.active_version().await.unwrap().unwrap();
    assert_ne!(active, older.version);
    assert_eq!(recommender.models().version, active);
    let served = recommender.recommend(home("user-1")).await.unwrap();
    assert_eq!(served.model_version, active);
    assert!(!served.items.is_empty(), "{}", test.label);
}
