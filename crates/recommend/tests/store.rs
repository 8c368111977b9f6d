//! The recommend store's contract on every backend: SQLite always, PostgreSQL when
//! `DATABASE_URL` is set (as in CI).
#![allow(clippy::unwrap_used)]

use tailor_kit::testing::TestDb;
use tailor_recommend::MIGRATIONS;
use tailor_recommend::store::{NewInteraction, Store};

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
