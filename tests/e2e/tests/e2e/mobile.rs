//! The mobile app's journey through the gateway, over gRPC-web as a browser speaks it and
//! over plain gRPC as native apps do.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tailor_e2e::System;
use tailor_proto::mobile::v1 as pb;
use tonic::Request;

fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

fn module(feed: &pb::HomeFeed, kind: pb::ModuleKind) -> Option<&pb::FeedModule> {
    feed.modules.iter().find(|m| m.kind == kind as i32)
}

fn ids(module: Option<&pb::FeedModule>) -> Vec<String> {
    module
        .map(|m| m.items.iter().map(|c| c.item_id.clone()).collect())
        .unwrap_or_default()
}

fn event(id: &str, kind: pb::EventKind, item: &str) -> pb::TrackEvent {
    pb::TrackEvent {
        event_id: id.to_owned(),
        kind: kind as i32,
        occurred_at: Some(tailor_kit::time::to_timestamp(
            tailor_kit::time::now_micros(),
        )),
        item_id: item.to_owned(),
        session_id: "s1".to_owned(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_signed_in_user_browses_and_the_next_home_feed_reflects_it() {
    let system = System::start_trained().await;
    let token = system.user_token("ada").await;
    let mut app = system.web_client();

    let first = app
        .get_home_feed(with_token(
            pb::GetHomeFeedRequest {
                device_class: pb::DeviceClass::Phone as i32,
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .feed
        .unwrap();
    assert!(!first.modules.is_empty(), "{}", system.label);
    let layout = first.layout.clone().unwrap();
    assert_eq!(
        layout.theme, "welcome",
        "a brand-new user gets the newcomer layout"
    );
    assert!(ids(module(&first, pb::ModuleKind::Popular)).len() >= 3);
    assert!(ids(module(&first, pb::ModuleKind::RecentlyViewed)).is_empty());

    let page = app
        .get_product_page(with_token(
            pb::GetProductPageRequest {
                item_id: "books-0".into(),
                device_class: 0,
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.product.unwrap().title, "Dune");
    let similar = page.similar.unwrap();
    assert_eq!(similar.state, pb::ModuleState::Ready as i32);
    assert!(
        similar
            .items
            .iter()
            .all(|c| c.category.starts_with("books")),
        "{:?}",
        similar.items
    );

    let tracked = app
        .track_events(with_token(
            pb::TrackEventsRequest {
                events: vec![
                    event("e1", pb::EventKind::Click, "books-0"),
                    event("e2", pb::EventKind::View, "books-0"),
                    event("e3", pb::EventKind::AddToCart, "books-0"),
                ],
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(tracked.accepted_count, 3, "{:?}", tracked.rejected);

    // The change travels profile → bus → recommend; the next feed shows it.
    let mut next = first.clone();
    for _ in 0..40 {
        next = app
            .get_home_feed(with_token(
                pb::GetHomeFeedRequest {
                    device_class: pb::DeviceClass::Phone as i32,
                },
                &token,
            ))
            .await
            .unwrap()
            .into_inner()
            .feed
            .unwrap();
        let explained = module(&next, pb::ModuleKind::ForYou)
            .is_some_and(|m| m.items.iter().any(|c| c.reason.contains("Dune")));
        if ids(module(&next, pb::ModuleKind::RecentlyViewed)) == ["books-0"] && explained {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        ids(module(&next, pb::ModuleKind::RecentlyViewed)),
        ["books-0"]
    );
    let for_you = module(&next, pb::ModuleKind::ForYou).unwrap();
    let reasons: Vec<&str> = for_you.items.iter().map(|c| c.reason.as_str()).collect();
    assert!(
        reasons.iter().any(|r| r.contains("Dune")),
        "explained by the viewed book: {reasons:?}"
    );
    assert_ne!(
        ids(Some(for_you)),
        ids(module(&first, pb::ModuleKind::ForYou))
    );
}

#[tokio::test]
async fn anonymous_devices_browse_over_plain_grpc_and_low_end_devices_get_less() {
    let system = System::start_trained().await;
    let mut app = system.grpc_client();
    let mut request = Request::new(pb::GetHomeFeedRequest {
        device_class: pb::DeviceClass::LowEnd as i32,
    });
    request
        .metadata_mut()
        .insert("x-device-id", "device-42".parse().unwrap());
    let feed = app
        .get_home_feed(request)
        .await
        .unwrap()
        .into_inner()
        .feed
        .unwrap();
    let layout = feed.layout.unwrap();
    assert_eq!(layout.image_size, pb::ImageSize::Small as i32);
    assert!(feed.modules.iter().all(|m| m.items.len() <= 6));
    assert!(
        feed.modules
            .iter()
            .any(|m| m.state == pb::ModuleState::Ready as i32)
    );
}

#[tokio::test]
async fn the_feed_stream_delivers_a_new_feed_after_activity() {
    let system = System::start_trained().await;
    let token = system.user_token("grace").await;
    let mut app = system.web_client();
    let mut stream = app
        .stream_home_feed(with_token(
            pb::StreamHomeFeedRequest { device_class: 0 },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap().feed.unwrap();
    assert!(ids(module(&first, pb::ModuleKind::RecentlyViewed)).is_empty());
    app.track_events(with_token(
        pb::TrackEventsRequest {
            events: vec![event("g1", pb::EventKind::View, "home-0")],
        },
        &token,
    ))
    .await
    .unwrap();
    let next = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let feed = stream.message().await.unwrap().unwrap().feed.unwrap();
            if ids(module(&feed, pb::ModuleKind::RecentlyViewed)) == ["home-0"] {
                return feed;
            }
        }
    })
    .await
    .expect("a new feed arrives on the stream after the event");
    assert!(next.generate_time.unwrap().seconds >= first.generate_time.unwrap().seconds);
}

#[tokio::test]
async fn the_home_feed_degrades_module_by_module_when_recommend_is_down() {
    let mut system = System::start_trained().await;
    system.stop("recommend").await;
    let token = system.user_token("lin").await;
    let mut app = system.web_client();
    let mut request = with_token(pb::GetHomeFeedRequest { device_class: 0 }, &token);
    // The app's own deadline: the screen must come back within it.
    request.set_timeout(Duration::from_secs(2));
    let feed = app
        .get_home_feed(request)
        .await
        .expect("the screen still answers")
        .into_inner()
        .feed
        .unwrap();
    let for_you = module(&feed, pb::ModuleKind::ForYou)
        .or(feed.modules.first())
        .unwrap();
    assert_eq!(for_you.state, pb::ModuleState::Unavailable as i32);
    assert!(
        feed.layout.is_some(),
        "layout still chosen from the profile"
    );
}

#[tokio::test]
async fn lists_that_are_the_same_for_everyone_are_fetched_once_for_all_viewers() {
    let mut system = System::start_trained().await;
    let mut app = system.web_client();
    let page = |token: String| {
        with_token(
            pb::GetProductPageRequest {
                item_id: "books-0".into(),
                device_class: 0,
            },
            &token,
        )
    };
    let first = app
        .get_product_page(page(system.user_token("ada").await))
        .await
        .unwrap()
        .into_inner();
    let similar = first.similar.unwrap();
    assert_eq!(
        similar.state,
        pb::ModuleState::Ready as i32,
        "{}",
        system.label
    );

    // With recommend gone, another viewer still gets the lists fetched for the first one
    // (and the product itself from the product cache).
    system.stop("recommend").await;
    let second = app
        .get_product_page(page(system.user_token("grace").await))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.similar.unwrap(), similar, "{}", system.label);
    assert_eq!(second.bought_together, first.bought_together);
}
