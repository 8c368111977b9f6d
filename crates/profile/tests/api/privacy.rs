//! The privacy participant contract: export everything, erase everything.

use tailor_proto::events::v1::BehaviorType;
use tailor_proto::privacy::v1 as pb;
use tonic::Code;

use crate::helpers::{TestApp, event, profile, record};

async fn export_all(app: &TestApp, user: &str) -> Vec<pb::DataRecord> {
    let mut records = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .privacy()
            .export_user_data(pb::ExportUserDataRequest {
                user_id: user.into(),
                page_size: 2,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.service, "profile");
        records.extend(page.records);
        if page.next_page_token.is_empty() {
            return records;
        }
        token = page.next_page_token;
    }
}

#[tokio::test]
async fn export_returns_everything_and_erase_leaves_nothing() {
    for app in TestApp::every_backend().await {
        let mut review = event("x3", "kim", BehaviorType::Review, "i2", "books");
        review.rating = 5;
        review.review_text = "质量很好，非常满意".into();
        record(
            &app,
            vec![
                event("x1", "kim", BehaviorType::View, "i1", "books"),
                event("x2", "kim", BehaviorType::Click, "i2", "books"),
                review,
                event("y1", "lee", BehaviorType::View, "i1", "books"),
            ],
        )
        .await;
        let exported = export_all(&app, "kim").await;
        let collections: Vec<(&str, &str)> = exported
            .iter()
            .map(|r| (r.collection.as_str(), r.record_id.as_str()))
            .collect();
        assert_eq!(
            collections,
            vec![
                ("profile", "kim"),
                ("behavior_event", "x1"),
                ("behavior_event", "x2"),
                ("behavior_event", "x3")
            ],
            "{}",
            app.label
        );
        let review_fields = &exported[3].fields.as_ref().unwrap().fields;
        assert!(review_fields.contains_key("review_text"));

        let erased = app
            .privacy()
            .erase_user_data(pb::EraseUserDataRequest {
                user_id: "kim".into(),
                request_id: "dsr-1".into(),
            })
            .await
            .unwrap()
            .into_inner();
        let counts: Vec<(&str, i64)> = erased
            .erased
            .iter()
            .map(|c| (c.collection.as_str(), c.count))
            .collect();
        assert_eq!(counts, vec![("behavior_event", 3), ("profile", 1)]);
        assert!(export_all(&app, "kim").await.is_empty());
        assert_eq!(
            profile(&app, "kim").await.event_count,
            0,
            "no stale cache after erasure"
        );
        assert_eq!(
            profile(&app, "lee").await.event_count,
            1,
            "others untouched"
        );

        let again = app
            .privacy()
            .erase_user_data(pb::EraseUserDataRequest {
                user_id: "kim".into(),
                request_id: "dsr-1".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            again.erased.iter().all(|c| c.count == 0),
            "erasure is idempotent"
        );

        // What ingestion kept in memory about kim went with the erasure: a new event starts
        // a new profile.
        record(
            &app,
            vec![event("x4", "kim", BehaviorType::View, "i9", "toys")],
        )
        .await;
        let reborn = profile(&app, "kim").await;
        assert_eq!(reborn.event_count, 1, "{}", app.label);
        let categories: Vec<&str> = reborn
            .interests
            .iter()
            .filter(|i| {
                i.dimension == tailor_proto::profile::v1::InterestDimension::Category as i32
            })
            .map(|i| i.key.as_str())
            .collect();
        assert_eq!(categories, vec!["toys"], "{}", app.label);
    }
}

#[tokio::test]
async fn only_the_privacy_scope_may_export() {
    let app = TestApp::sqlite().await;
    let channel = tailor_kit::grpc::client::Outbound::new(
        tailor_kit::testing::channel_to(app.addr),
        tailor_kit::testing::tokens("gateway", &["profile:read"]),
    );
    let mut client =
        pb::privacy_participant_service_client::PrivacyParticipantServiceClient::new(channel);
    let status = client
        .export_user_data(pb::ExportUserDataRequest {
            user_id: "kim".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}
