//! The recommend service as other teams and the profile service use it: freshness through
//! the event bus, hot-swaps under load, clear errors, data subject requests.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use tailor_e2e::System;
use tailor_proto::events::v1::BehaviorType;
use tailor_proto::profile::v1 as ppb;
use tailor_proto::recommend::v1 as pb;
use tonic::Code;
use tonic_types::StatusExt as _;

fn home(user: &str) -> pb::RecommendRequest {
    pb::RecommendRequest {
        user_id: user.to_owned(),
        placement: pb::Placement::Home as i32,
        page_size: 5,
        ..Default::default()
    }
}

fn ids(response: &pb::RecommendResponse) -> Vec<String> {
    response
        .items
        .iter()
        .map(|r| r.item.as_ref().unwrap().item_id.clone())
        .collect()
}

#[tokio::test]
async fn an_ingested_event_changes_the_next_recommendations_within_a_second() {
    let system = System::start_trained().await;
    let mut recommend = system.recommend_admin();
    let before = recommend
        .recommend(home("fresh-user"))
        .await
        .unwrap()
        .into_inner();

    let sent = Instant::now();
    system
        .profile_admin()
        .record_events(ppb::RecordEventsRequest {
            events: vec![ppb::BehaviorEvent {
                event_id: "f1".into(),
                user_id: "fresh-user".into(),
                r#type: BehaviorType::View as i32,
                occurred_at: Some(tailor_kit::time::to_timestamp(
                    tailor_kit::time::now_micros(),
                )),
                item_id: "electronics-3".into(),
                ..Default::default()
            }],
        })
        .await
        .unwrap();
    let mut after = before.clone();
    while sent.elapsed() < Duration::from_secs(1) {
        after = recommend
            .recommend(home("fresh-user"))
            .await
            .unwrap()
            .into_inner();
        if ids(&after) != ids(&before) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_ne!(
        ids(&after),
        ids(&before),
        "{}: no change within a second",
        system.label
    );
    // Nobody ever touched the Soundbar: only content similarity can relate it to the rest.
    let audio = after
        .items
        .iter()
        .filter(|r| r.item.as_ref().unwrap().category == "electronics/audio")
        .count();
    assert!(audio >= 3, "led by the viewed category: {:?}", ids(&after));
    assert!(
        after
            .items
            .iter()
            .any(|r| r.reason == "Because you viewed Soundbar"),
        "{:?}",
        after.items.iter().map(|r| &r.reason).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn hot_swapping_models_under_concurrent_requests_drops_none() {
    let system = System::start_trained().await;
    let stop = tailor_kit::shutdown::CancellationToken::new();
    let mut workers = Vec::new();
    for w in 0..4 {
        let mut client = system.recommend_admin();
        let stop = stop.clone();
        workers.push(tokio::spawn(async move {
            let (mut ok, mut failed, mut empty) = (0, 0, 0);
            while !stop.is_cancelled() {
                match client.recommend(home(&format!("shopper-{w}"))).await {
                    Ok(r) if r.get_ref().items.is_empty() => empty += 1,
                    Ok(_) => ok += 1,
                    Err(_) => failed += 1,
                }
            }
            (ok, failed, empty)
        }));
    }
    let mut versions = Vec::new();
    for _ in 0..2 {
        system.train().await;
        let models = system
            .recommend_admin()
            .list_models(pb::ListModelsRequest {
                page_size: 10,
                page_token: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .models;
        versions.push(models.into_iter().find(|m| m.active).unwrap().version);
    }
    stop.cancel();
    let mut total = 0;
    for worker in workers {
        let (ok, failed, empty) = worker.await.unwrap();
        assert_eq!(
            (failed, empty),
            (0, 0),
            "every request during the swaps was served"
        );
        total += ok;
    }
    assert!(total > 0);
    assert_ne!(versions[0], versions[1], "two swaps happened");
}

#[tokio::test]
async fn bad_requests_get_clear_statuses_and_unknown_users_a_cold_start() {
    let system = System::start_trained().await;
    let mut client = system.recommend_admin();

    let status = client
        .recommend(pb::RecommendRequest {
            user_id: "u".into(),
            placement: 0,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<String> = status
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["placement"]);

    let status = client
        .recommend(pb::RecommendRequest {
            page_size: -1,
            placement: 99,
            ..home("")
        })
        .await
        .unwrap_err();
    let fields: Vec<String> = status
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["user_id", "placement", "page_size"]);

    // 0 means the default size, more than the maximum is clamped (AIP-158).
    let default = client
        .recommend(pb::RecommendRequest {
            page_size: 0,
            ..home("stranger")
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        default.items.len() > 5,
        "default page of 20 (catalog permitting): {}",
        default.items.len()
    );
    let huge = client
        .recommend(pb::RecommendRequest {
            page_size: 1_000_000,
            ..home("stranger")
        })
        .await
        .unwrap()
        .into_inner();
    assert!(huge.items.len() <= 100);
    assert!(
        huge.items
            .iter()
            .all(|r| r.reason_kind == pb::ReasonKind::Popular as i32),
        "cold start is popularity"
    );

    let status = client
        .list_similar_items(pb::ListSimilarItemsRequest {
            item_id: "no-such-item".into(),
            page_size: 5,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    let status = client
        .upsert_items(pb::UpsertItemsRequest {
            items: vec![pb::Item {
                item_id: "x".into(),
                title: String::new(),
                ..Default::default()
            }],
            request_id: "r".into(),
        })
        .await
        .unwrap_err();
    let fields: Vec<String> = status
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["items[0].title"]);

    let mut outsider =
        tailor_proto::recommend::v1::recommend_service_client::RecommendServiceClient::new(
            tailor_kit::grpc::client::Outbound::new(
                tailor_kit::testing::channel_to(system.recommend),
                tailor_kit::testing::tokens("analytics", &[]),
            ),
        );
    let status = outsider.recommend(home("shopper-0")).await.unwrap_err();
    assert_eq!(
        status.code(),
        Code::PermissionDenied,
        "another user's recommendations need a scope"
    );
}

#[tokio::test]
async fn erasing_a_user_removes_their_interactions_and_stops_using_what_models_learned() {
    use tailor_proto::privacy::v1 as prv;
    let system = System::start_trained().await;
    assert!(system.recommend_interactions("shopper-1").await > 0);
    let mut privacy = prv::privacy_participant_service_client::PrivacyParticipantServiceClient::new(
        tailor_kit::grpc::client::Outbound::new(
            tailor_kit::testing::channel_to(system.recommend),
            tailor_kit::testing::tokens("privacy", &["privacy"]),
        ),
    );
    let erased = privacy
        .erase_user_data(prv::EraseUserDataRequest {
            user_id: "shopper-1".into(),
            request_id: "dsr".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let counts: Vec<(String, i64)> = erased
        .erased
        .into_iter()
        .map(|c| (c.collection, c.count))
        .collect();
    assert!(
        counts.contains(&("interaction".to_owned(), 3)),
        "{counts:?}"
    );
    assert!(
        counts.contains(&("model_state".to_owned(), 1)),
        "{counts:?}"
    );
    assert_eq!(system.recommend_interactions("shopper-1").await, 0);
    let after = system
        .recommend_admin()
        .recommend(home("shopper-1"))
        .await
        .unwrap()
        .into_inner();
    assert!(
        after
            .items
            .iter()
            .all(|r| r.reason_kind == pb::ReasonKind::Popular as i32),
        "an erased user is a stranger again"
    );
}
