//! The gateway as the internet's door: identity, isolation between users, rate limits, CORS.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use forged::{expired_token, foreign_token};
use tailor_e2e::{System, catalog};
use tailor_proto::mobile::v1 as pb;
use tonic::{Code, Request};
use tonic_types::StatusExt as _;

/// Tokens a client could forge or replay.
mod forged {
    use std::time::Duration;

    use tailor_gateway::auth::UserAuth;
    use tailor_gateway::config::JwtSettings;

    /// Signed with another secret.
    pub(crate) async fn foreign_token(user: &str) -> String {
        let settings = JwtSettings {
            hs256_secret: Some(
                "somebody-elses-secret-that-is-long-enough"
                    .to_owned()
                    .into(),
            ),
            ..JwtSettings::default()
        };
        UserAuth::new(&settings)
            .await
            .unwrap()
            .mint(user, Duration::from_secs(600))
            .unwrap()
    }

    /// Right key, wrong audience.
    pub(crate) async fn wrong_audience(user: &str) -> String {
        let settings = JwtSettings {
            audience: "another-app".to_owned(),
            ..JwtSettings::default()
        };
        UserAuth::new(&settings)
            .await
            .unwrap()
            .mint(user, Duration::from_secs(600))
            .unwrap()
    }

    /// Right key, expired an hour ago (beyond the leeway).
    pub(crate) async fn expired_token(user: &str) -> String {
        // Minting cannot back-date, so the claims are written by hand.
        let now = jsonwebtoken::get_current_timestamp();
        let claims = serde_json::json!({
            "sub": user, "iss": "tailor-dev", "aud": "tailor-mobile", "exp": now - 3600, "iat": now - 7200
        });
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(
                tailor_gateway::config::DEV_JWT_SECRET.as_bytes(),
            ),
        )
        .unwrap()
    }
}

fn request<T>(message: T, token: Option<&str>, device: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    if let Some(device) = device {
        request
            .metadata_mut()
            .insert("x-device-id", device.parse().unwrap());
    }
    request
}

#[tokio::test]
async fn missing_forged_expired_and_foreign_audience_tokens_are_unauthenticated() {
    let system = System::start().await;
    let mut app = system.web_client();
    let feed = || pb::GetHomeFeedRequest { device_class: 0 };
    let cases = [
        ("no identity at all", None),
        ("garbage", Some("not-a-jwt".to_owned())),
        ("forged", Some(foreign_token("eve").await)),
        ("expired", Some(expired_token("eve").await)),
        ("wrong audience", Some(forged::wrong_audience("eve").await)),
    ];
    for (what, token) in cases {
        // A bad token is an error even with a device id: never a fall-back to anonymous.
        let device = token.as_ref().map(|_| "d1");
        let status = app
            .get_home_feed(request(feed(), token.as_deref(), device))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{what}: {status:?}");
    }
    let ok = app
        .get_home_feed(request(feed(), Some(&system.user_token("eve").await), None))
        .await;
    assert!(ok.is_ok());
}

#[tokio::test]
async fn a_user_cannot_reach_another_users_data() {
    let system = System::start().await;
    system.load_catalog(catalog()).await;
    let alice = system.user_token("alice").await;
    let mut app = system.web_client();
    // Alice's app tries to act for Bob by adding the internal user header itself.
    let mut sneaky = request(
        pb::TrackEventsRequest {
            events: vec![pb::TrackEvent {
                event_id: "x1".into(),
                kind: pb::EventKind::View as i32,
                occurred_at: Some(tailor_kit::time::to_timestamp(
                    tailor_kit::time::now_micros(),
                )),
                item_id: "books-0".into(),
                ..Default::default()
            }],
        },
        Some(&alice),
        None,
    );
    sneaky
        .metadata_mut()
        .insert("x-tailor-user-id", "bob".parse().unwrap());
    let tracked = app.track_events(sneaky).await.unwrap().into_inner();
    assert_eq!(tracked.accepted_count, 1);

    use tailor_proto::profile::v1 as ppb;
    let mut profiles = system.profile_admin();
    let count = |user: &str| {
        let mut profiles = profiles.clone();
        let user = user.to_owned();
        async move {
            profiles
                .get_profile(ppb::GetProfileRequest { user_id: user })
                .await
                .unwrap()
                .into_inner()
                .profile
                .unwrap()
                .event_count
        }
    };
    assert_eq!(count("alice").await, 1, "the event is Alice's");
    assert_eq!(count("bob").await, 0, "Bob is untouched");
    let _ = &mut profiles;
}

#[tokio::test]
async fn the_rate_limit_trips_with_retry_information_and_recovers() {
    let mut settings = tailor_gateway::Settings::default();
    settings.rate_limit.per_user_per_second = 5;
    settings.rate_limit.per_user_burst = 2;
    let system = System::start_with(settings).await;
    let app = system.grpc_client();
    let call = || {
        let mut app = app.clone();
        async move {
            app.get_product_page(request(
                pb::GetProductPageRequest {
                    item_id: "nothing".into(),
                    device_class: 0,
                },
                None,
                Some("rate-test"),
            ))
            .await
        }
    };
    let mut refused = None;
    for _ in 0..10 {
        match call().await {
            Err(status) if status.code() == Code::ResourceExhausted => {
                refused = Some(status);
                break;
            }
            _ => {}
        }
    }
    let refused = refused.expect("the limit trips within the burst");
    let retry = refused
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .expect("retry information");
    assert!(retry > Duration::ZERO && retry <= Duration::from_secs(1));
    tokio::time::sleep(retry + Duration::from_millis(50)).await;
    let after = call().await;
    assert!(
        !matches!(after, Err(ref s) if s.code() == Code::ResourceExhausted),
        "recovered: {after:?}"
    );
}

#[tokio::test]
async fn cors_preflight_answers_listed_origins_only() {
    use http_body_util::Empty;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let system = System::start().await;
    let client: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let preflight = |origin: &str| {
        http::Request::builder()
            .method("OPTIONS")
            .uri(format!(
                "http://{}/tailor.mobile.v1.MobileService/GetHomeFeed",
                system.gateway
            ))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,x-grpc-web,authorization",
            )
            .body(Empty::new())
            .unwrap()
    };
    let listed = client
        .request(preflight("http://localhost:8080"))
        .await
        .unwrap();
    assert_eq!(
        listed.headers()["access-control-allow-origin"],
        "http://localhost:8080"
    );
    let allowed = listed.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        allowed.contains("x-grpc-web") && allowed.contains("authorization"),
        "{allowed}"
    );
    let unlisted = client
        .request(preflight("https://evil.example"))
        .await
        .unwrap();
    assert!(
        unlisted
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "the browser will refuse"
    );
}

#[tokio::test]
async fn grpc_web_responses_carry_status_in_body_trailers_and_expose_headers_to_browsers() {
    use http_body_util::{BodyExt as _, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    use prost::Message as _;

    let system = System::start().await;
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let message = pb::GetHomeFeedRequest { device_class: 0 }.encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(&message);
    let request = http::Request::builder()
        .method("POST")
        .uri(format!(
            "http://{}/tailor.mobile.v1.MobileService/GetHomeFeed",
            system.gateway
        ))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header("origin", "http://localhost:8080")
        .header("x-device-id", "wire-test")
        .body(Full::new(bytes::Bytes::from(frame)))
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/grpc-web+proto"
    );
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    for header in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        assert!(exposed.contains(header), "{exposed}");
    }
    let body = response.into_body().collect().await.unwrap().to_bytes();
    // A data frame (flag 0) with the response, then a trailer frame (flag 0x80).
    assert_eq!(body[0], 0);
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    let feed = pb::GetHomeFeedResponse::decode(&body[5..5 + len]).unwrap();
    assert!(feed.feed.is_some());
    let trailer = &body[5 + len..];
    assert_eq!(trailer[0], 0x80);
    let text = String::from_utf8_lossy(&trailer[5..]).to_lowercase();
    assert!(text.contains("grpc-status:0"), "{text}");
}
