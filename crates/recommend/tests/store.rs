//! The recommend store's contract on every backend: SQLite always, PostgreSQL when
//! `DATABASE_URL` is set (as in CI).
#![allow(clippy::unwrap_used)]

use tailor_kit::testing::TestDb;
use tailor_recommend::MIGRATIONS;
use tailor_recommend::store::{Exposure, NewInteraction, Store};

fn touch(user: &str, event: &str, item: &str, at: i64) -> NewInteraction {
    NewInteraction {
        user_id: user.to_owned(),
        event_id: event.to_owned(),
        item_id: item.to_owned(),
        kind: 1,
        weight: 1.5,
        occurred_at: at,
    }
}

#[tokio::test]
async fn the_user_state_reads_consent_erasure_and_the_newest_history_together() {
    for t in TestDb::every_backend(&MIGRATIONS).await.unwrap() {
        let label = t.label;
        let store = Store::new(t.db.clone());

        let nobody = store.user_state("nobody", 50).await.unwrap();
        assert!(
            nobody.allowed,
            "{label}: no consent decision counts as allowed"
        );
        assert!(!nobody.erased && nobody.history.is_empty(), "{label}");

        let mut tx = t.db.begin_write().await.unwrap();
        store
            .insert_interactions(
                &mut tx,
                &[
                    touch("u1", "e1", "old", 10),
                    touch("u1", "e2", "newest", 30),
                    touch("u1", "e3", "middle", 20),
                    touch("u2", "e4", "theirs", 40),
                ],
            )
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let u1 = store.user_state("u1", 2).await.unwrap();
        let items: Vec<&str> = u1.history.iter().map(|h| h.item_id.as_str()).collect();
        assert_eq!(
            items,
            ["newest", "middle"],
            "{label}: newest first, limited"
        );
        assert_eq!(
            (u1.history[0].kind, u1.history[0].weight, u1.history[0].at),
            (1, 1.5, 30)
        );
        assert!(u1.allowed && !u1.erased, "{label}");

        let mut tx = t.db.begin_write().await.unwrap();
        assert!(store.save_consent(&mut tx, "u1", false, 1).await.unwrap());
        tx.commit().await.unwrap();
        let withdrawn = store.user_state("u1", 50).await.unwrap();
        assert!(!withdrawn.allowed, "{label}");
        assert!(
            withdrawn.history.is_empty(),
            "{label}: no history without consent"
        );

        let mut tx = t.db.begin_write().await.unwrap();
        assert!(store.save_consent(&mut tx, "u1", true, 2).await.unwrap());
        tx.commit().await.unwrap();
        assert_eq!(
            store.user_state("u1", 50).await.unwrap().history.len(),
            3,
            "{label}"
        );

        let mut tx = t.db.begin_write().await.unwrap();
        store.erase_user(&mut tx, "u2", 50).await.unwrap();
        tx.commit().await.unwrap();
        let erased = store.user_state("u2", 50).await.unwrap();
        assert!(erased.erased && erased.allowed, "{label}");
        assert!(erased.history.is_empty(), "{label}");
        assert!(!store.user_state("u1", 50).await.unwrap().erased, "{label}");
    }
}

#[tokio::test]
async fn deferred_exposures_and_regions_are_saved_together_and_exported() {
    for t in TestDb::every_backend(&MIGRATIONS).await.unwrap() {
        let label = t.label;
        let store = Store::new(t.db.clone());
        // More exposures than one statement binds, and a user's region given twice.
        let exposures: Vec<Exposure> = (0..4_500)
            .map(|n| Exposure {
                recommendation_id: format!("r{n}"),
                user_id: if n % 2 == 0 { "u1" } else { "u2" }.to_owned(),
                placement: "home".to_owned(),
                experiment: String::new(),
                variant: String::new(),
                model_version: "v1".to_owned(),
                items: vec!["a".to_owned(), "b".to_owned()],
                created_at: n,
            })
            .collect();
        let regions = [
            ("u1".to_owned(), "CN-31".to_owned()),
            ("u2".to_owned(), "CN-11".to_owned()),
        ];
        store.save_deferred(&exposures, &regions).await.unwrap();
        store
            .save_deferred(&exposures[..1], &[("u1".to_owned(), "CN-44".to_owned())])
            .await
            .unwrap();
        store.save_deferred(&[], &[]).await.unwrap();

        let (saved, region) = store.user_extras("u1").await.unwrap();
        assert_eq!(
            saved.len(),
            2_250,
            "{label}: the repeated exposure is stored once"
        );
        assert_eq!(saved[0].recommendation_id, "r0", "{label}");
        assert_eq!(saved[0].items, ["a", "b"], "{label}");
        assert_eq!(
            region.as_deref(),
            Some("CN-44"),
            "{label}: the newest region"
        );
        assert_eq!(
            store.user_extras("u2").await.unwrap().0.len(),
            2_250,
            "{label}"
        );
    }
}
