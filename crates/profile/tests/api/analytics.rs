//! Behaviour analytics over the API.

use tailor_kit::time::{DAY, now_micros, to_timestamp};
use tailor_proto::common::v1::{Money, TimeRange};
use tailor_proto::events::v1::BehaviorType;
use tailor_proto::profile::v1 as pb;

use crate::helpers::{TestApp, days_ago, event, record, violations};

fn window(days: i64) -> Option<TimeRange> {
    let now = now_micros();
    Some(TimeRange {
        start_time: Some(to_timestamp(now - days * DAY)),
        end_time: Some(to_timestamp(now + 60_000_000)),
    })
}

fn at(mut e: pb::BehaviorEvent, days: f64) -> pb::BehaviorEvent {
    e.occurred_at = Some(days_ago(days));
    e
}

#[tokio::test]
async fn funnel_active_users_retention_and_trends_come_from_stored_events() {
    for app in TestApp::every_backend().await {
        let mut buy = event("f3", "u1", BehaviorType::Purchase, "a", "toys/lego");
        buy.unit_price = Some(Money {
            amount_minor: 100,
            currency: "CNY".into(),
        });
        record(
            &app,
            vec![
                // u1: view → cart → purchase of item a on three consecutive days
                at(event("f1", "u1", BehaviorType::View, "a", "toys/lego"), 3.0),
                at(
                    event("f2", "u1", BehaviorType::AddToCart, "a", "toys/lego"),
                    2.0,
                ),
                at(buy, 1.0),
                // u2: view only
                at(event("f4", "u2", BehaviorType::View, "b", "books"), 2.0),
                // activity 10 days ago, for the trend comparison
                at(event("f5", "u3", BehaviorType::View, "c", "books"), 10.0),
                at(event("f6", "u3", BehaviorType::View, "d", "books"), 10.0),
            ],
        )
        .await;
        let mut client = app.admin();

        let funnel = client
            .get_funnel(pb::GetFunnelRequest {
                time_range: window(7),
                steps: vec![],
                category: String::new(),
                by_category: true,
            })
            .await
            .unwrap()
            .into_inner();
        let users: Vec<i64> = funnel
            .overall
            .unwrap()
            .steps
            .iter()
            .map(|s| s.users)
            .collect();
        assert_eq!(users, vec![2, 1, 1], "{}", app.label);
        assert_eq!(funnel.categories.len(), 2);

        let toys_only = client
            .get_funnel(pb::GetFunnelRequest {
                time_range: window(7),
                steps: vec![BehaviorType::View as i32, BehaviorType::Purchase as i32],
                category: "Toys".into(),
                by_category: false,
            })
            .await
            .unwrap()
            .into_inner();
        let users: Vec<i64> = toys_only
            .overall
            .unwrap()
            .steps
            .iter()
            .map(|s| s.users)
            .collect();
        assert_eq!(users, vec![1, 1]);

        let dau = client
            .get_active_users(pb::GetActiveUsersRequest {
                time_range: window(4),
            })
            .await
            .unwrap()
            .into_inner()
            .days;
        assert!(dau.len() >= 4);
        assert_eq!(
            dau.iter().map(|d| d.active_users).sum::<i64>(),
            4,
            "u1 on 3 days, u2 on 1"
        );

        let retention = client
            .get_retention(pb::GetRetentionRequest {
                cohort_range: window(12),
                max_day: 5,
            })
            .await
            .unwrap()
            .into_inner()
            .cohorts;
        let total: i64 = retention.iter().map(|c| c.size).sum();
        assert_eq!(total, 3);
        assert!(retention.iter().all(|c| c.retained.first() == Some(&1.0)));

        let trending = client
            .list_trending_categories(pb::ListTrendingCategoriesRequest {
                time_range: window(7),
                page_size: 5,
            })
            .await
            .unwrap()
            .into_inner()
            .categories;
        assert_eq!(trending[0].category, "toys", "{trending:?}");
        assert!(trending[0].growth > 1.0);
    }
}

#[tokio::test]
async fn analytics_windows_are_bounded_and_required() {
    let app = TestApp::sqlite().await;
    let mut client = app.admin();
    let status = client
        .get_funnel(pb::GetFunnelRequest {
            time_range: window(400),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&status), vec!["time_range"]);
    let status = client
        .get_active_users(pb::GetActiveUsersRequest { time_range: None })
        .await
        .unwrap_err();
    assert_eq!(violations(&status), vec!["time_range"]);
    let status = client
        .get_funnel(pb::GetFunnelRequest {
            time_range: window(3),
            steps: vec![99],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&status), vec!["steps[0]"]);
}
