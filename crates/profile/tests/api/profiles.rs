//! Profiles, attributes, recent items, segments and consent over the API.

use std::time::Duration;

use prost::Message as _;
use tailor_kit::events::{envelope, topics};
use tailor_proto::common::v1::Money;
use tailor_proto::events::v1::{BehaviorType, ConsentChanged};
use tailor_proto::profile::v1 as pb;
use tailor_proto::profile::v1::segment_condition::Condition;

use crate::helpers::{TestApp, days_ago, event, profile, record, violations};

fn weight(p: &pb::Profile, dimension: pb::InterestDimension, key: &str) -> f64 {
    p.interests
        .iter()
        .find(|i| i.dimension == dimension as i32 && i.key == key)
        .map_or(0.0, |i| i.weight)
}

#[tokio::test]
async fn the_profile_reflects_interests_and_purchases() {
    for app in TestApp::every_backend().await {
        // Half-life 14 days: a view 14 days ago counts 0.5, a purchase (8 × quantity 1) now 8.
        let mut old_view = event(
            "v1",
            "frank",
            BehaviorType::View,
            "phone-1",
            "Electronics/Phones",
        );
        old_view.occurred_at = Some(days_ago(14.0));
        let mut buy = event(
            "b1",
            "frank",
            BehaviorType::Purchase,
            "phone-1",
            "electronics/phones",
        );
        buy.unit_price = Some(Money {
            amount_minor: 250_000,
            currency: "CNY".into(),
        });
        buy.item.as_mut().unwrap().brand = "Acme".into();
        record(&app, vec![old_view, buy]).await;

        let p = profile(&app, "frank").await;
        let phones = weight(&p, pb::InterestDimension::Category, "electronics/phones");
        assert!((phones - 8.5).abs() < 0.01, "{}: {phones}", app.label);
        assert!((weight(&p, pb::InterestDimension::Category, "electronics") - 8.5).abs() < 0.01);
        assert!((weight(&p, pb::InterestDimension::Brand, "acme") - 8.0).abs() < 0.01);
        let rfm = p.rfm.unwrap();
        assert_eq!(rfm.frequency, 1);
        assert_eq!(rfm.monetary.unwrap().amount_minor, 250_000);
        assert_eq!(rfm.recency_score, 5);
        assert_eq!(p.spending_tier, pb::SpendingTier::High as i32);
        // First seen 14 days ago (beyond the 7 "new" days), active today.
        assert_eq!(p.lifecycle_segment, pb::LifecycleSegment::Active as i32);
        assert!(p.personalization_allowed);
        let total: f64 = p.dimensions.iter().map(|d| d.weight).sum();
        assert!((total - 1.0).abs() < 1e-9);
    }
}

#[tokio::test]
async fn an_unknown_user_gets_an_empty_new_profile() {
    let app = TestApp::sqlite().await;
    let p = profile(&app, "nobody").await;
    assert_eq!(p.event_count, 0);
    assert_eq!(p.lifecycle_segment, pb::LifecycleSegment::New as i32);
    assert!(p.interests.is_empty());
}

#[tokio::test]
async fn attributes_are_updated_by_mask() {
    let app = TestApp::sqlite().await;
    let mut client = app.admin();
    let set = |attributes, paths: &[&str]| pb::UpdateUserAttributesRequest {
        user_id: "gina".into(),
        attributes: Some(attributes),
        update_mask: Some(prost_types::FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        }),
        request_id: "r1".into(),
    };
    client
        .update_user_attributes(set(
            pb::UserAttributes {
                gender: pb::Gender::Female as i32,
                age_band: pb::AgeBand::AgeBand2534 as i32,
                region: "CN-31".into(),
                occupation: "engineer".into(),
            },
            &[],
        ))
        .await
        .unwrap();
    let after = client
        .update_user_attributes(set(
            pb::UserAttributes {
                region: "CN-11".into(),
                ..Default::default()
            },
            &["region"],
        ))
        .await
        .unwrap()
        .into_inner()
        .attributes
        .unwrap();
    assert_eq!(after.region, "CN-11");
    assert_eq!(
        after.occupation, "engineer",
        "fields outside the mask are kept"
    );
    assert_eq!(
        profile(&app, "gina").await.attributes.unwrap().gender,
        pb::Gender::Female as i32
    );

    let status = client
        .update_user_attributes(set(
            pb::UserAttributes {
                gender: 42,
                ..Default::default()
            },
            &["shoe_size"],
        ))
        .await
        .unwrap_err();
    assert_eq!(
        violations(&status),
        vec!["attributes.gender", "update_mask.paths[0]"]
    );
}

#[tokio::test]
async fn recent_items_are_newest_first_and_distinct() {
    let app = TestApp::sqlite().await;
    let mut events = Vec::new();
    for (i, item) in ["a", "b", "a", "c"].iter().enumerate() {
        let mut e = event(&format!("r{i}"), "hana", BehaviorType::View, item, "c");
        e.occurred_at = Some(days_ago(1.0 - i as f64 * 0.1));
        events.push(e);
    }
    record(&app, events).await;
    let items = app
        .admin()
        .list_recent_items(pb::ListRecentItemsRequest {
            user_id: "hana".into(),
            page_size: 2,
        })
        .await
        .unwrap()
        .into_inner()
        .items;
    let ids: Vec<&str> = items.iter().map(|i| i.item_id.as_str()).collect();
    assert_eq!(ids, vec!["c", "a"]);
}

#[tokio::test]
async fn segments_are_paginated_and_filtered() {
    for app in TestApp::every_backend().await {
        let mut events = Vec::new();
        for u in 0..25 {
            let category = if u % 2 == 0 { "garden/tools" } else { "books" };
            events.push(event(
                &format!("s{u}"),
                &format!("user-{u:02}"),
                BehaviorType::AddToCart,
                "i",
                category,
            ));
        }
        record(&app, events).await;
        let rule = pb::SegmentRule {
            conditions: vec![
                pb::SegmentCondition {
                    condition: Some(Condition::Interest(pb::InterestCondition {
                        dimension: pb::InterestDimension::Category as i32,
                        key: "Garden".into(),
                        min_weight: 3.0,
                    })),
                },
                pb::SegmentCondition {
                    condition: Some(Condition::Lifecycle(pb::LifecycleCondition {
                        any_of: vec![pb::LifecycleSegment::New as i32],
                    })),
                },
            ],
        };
        let mut all = Vec::new();
        let mut token = String::new();
        loop {
            let page = app
                .admin()
                .query_segment(pb::QuerySegmentRequest {
                    rule: Some(rule.clone()),
                    page_size: 5,
                    page_token: token.clone(),
                })
                .await
                .unwrap()
                .into_inner();
            assert!(page.user_ids.len() <= 5);
            all.extend(page.user_ids);
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        let expected: Vec<String> = (0..25).step_by(2).map(|u| format!("user-{u:02}")).collect();
        assert_eq!(all, expected, "{}", app.label);
    }
}

#[tokio::test]
async fn bad_segment_rules_and_tokens_name_their_fields() {
    let app = TestApp::sqlite().await;
    let status = app
        .admin()
        .query_segment(pb::QuerySegmentRequest {
            rule: Some(pb::SegmentRule {
                conditions: vec![
                    pb::SegmentCondition {
                        condition: Some(Condition::Interest(pb::InterestCondition {
                            dimension: 0,
                            key: String::new(),
                            min_weight: -1.0,
                        })),
                    },
                    pb::SegmentCondition { condition: None },
                ],
            }),
            page_size: -3,
            page_token: "not-a-token".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violations(&status),
        vec![
            "rule.conditions[0].interest.dimension",
            "rule.conditions[0].interest.key",
            "rule.conditions[0].interest.min_weight",
            "rule.conditions[1]",
            "page_size",
            "page_token",
        ]
    );
}

#[tokio::test]
async fn withdrawing_consent_stops_behavioural_personalization() {
    for app in TestApp::every_backend().await {
        record(
            &app,
            vec![event("c1", "ivan", BehaviorType::Click, "i", "books")],
        )
        .await;
        assert!(!profile(&app, "ivan").await.interests.is_empty());
        let consent = ConsentChanged {
            user_id: "ivan".into(),
            purpose: "personalization".into(),
            granted: false,
            version: 1,
        };
        let payload = envelope("privacy", "ivan", &consent).encode_to_vec();
        app.bus
            .publish(topics::PRIVACY_CONSENT_CHANGED, &[payload.into()])
            .await
            .unwrap();
        let mut p = profile(&app, "ivan").await;
        for _ in 0..100 {
            if !p.personalization_allowed {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            p = profile(&app, "ivan").await;
        }
        assert!(!p.personalization_allowed, "{}", app.label);
        assert!(p.interests.is_empty());
        record(
            &app,
            vec![event("c2", "ivan", BehaviorType::Click, "i", "books")],
        )
        .await;
        let p = profile(&app, "ivan").await;
        assert!(
            p.interests.is_empty(),
            "new behaviour is not turned into interests"
        );
        assert_eq!(p.event_count, 2);
    }
}

#[tokio::test]
async fn profiles_survive_a_restart() {
    for app in TestApp::every_backend().await {
        record(
            &app,
            vec![event("k1", "jane", BehaviorType::Purchase, "i", "toys")],
        )
        .await;
        // A busy shopper's state is long enough to be stored compressed.
        let busy: Vec<_> = (0..30)
            .map(|i| {
                let (item, category) = (format!("item-{i}"), format!("toys/kind-{i}"));
                event(
                    &format!("m{i}"),
                    "max",
                    BehaviorType::View,
                    &item,
                    &category,
                )
            })
            .collect();
        record(&app, busy).await;
        let before = profile(&app, "jane").await;
        let busy_before = interest_keys(&profile(&app, "max").await);
        let recent_before = recent_ids(&app, "max").await;
        let app = app.restart().await;
        let after = profile(&app, "jane").await;
        assert_eq!(after.event_count, before.event_count);
        assert_eq!(after.interests.len(), before.interests.len());
        assert_eq!(after.rfm.unwrap().frequency, 1);
        let busy_after = profile(&app, "max").await;
        assert_eq!(busy_after.event_count, 30);
        assert_eq!(interest_keys(&busy_after), busy_before);
        assert_eq!(recent_ids(&app, "max").await, recent_before);
    }
}

fn interest_keys(profile: &pb::Profile) -> Vec<(i32, String)> {
    let mut keys: Vec<_> = profile
        .interests
        .iter()
        .map(|i| (i.dimension, i.key.clone()))
        .collect();
    keys.sort();
    keys
}

async fn recent_ids(app: &TestApp, user: &str) -> Vec<String> {
    let response = app
        .admin()
        .list_recent_items(pb::ListRecentItemsRequest {
            user_id: user.to_owned(),
            page_size: 100,
        })
        .await
        .unwrap()
        .into_inner();
    response.items.into_iter().map(|i| i.item_id).collect()
}

#[tokio::test]
async fn missing_and_malformed_arguments_are_invalid() {
    let app = TestApp::sqlite().await;
    let mut client = app.admin();
    let status = client
        .get_profile(pb::GetProfileRequest {
            user_id: " ".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&status), vec!["user_id"]);
    let status = client
        .list_recent_items(pb::ListRecentItemsRequest {
            user_id: "u".into(),
            page_size: -1,
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&status), vec!["page_size"]);
    let status = client
        .get_item_sentiment(pb::GetItemSentimentRequest {
            item_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&status), vec!["item_id"]);
}
