//! Plain HTTP on the gateway's port: the storefront page (a gRPC-web client of this very
//! gateway, built from `crates/gateway/web`) and, in development, user tokens for it.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::auth::UserAuth;

const INDEX_HTML: &str = include_str!("../web/dist/index.html");
const APP_JS: &str = include_str!("../web/dist/app.js");
const APP_CSS: &str = include_str!("../web/dist/app.css");

/// Lifetime of development user tokens.
const DEV_TOKEN_TTL: Duration = Duration::from_secs(3600);

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The storefront's routes, plus `GET /dev/token?user=ID` when `dev_tokens` is on.
pub fn routes(auth: UserAuth, dev_tokens: bool) -> axum::Router {
    let router = axum::Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/index.html",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        );
    if dev_tokens {
        router.route("/dev/token", get(dev_token).with_state(auth))
    } else {
        router
    }
}

async fn dev_token(
    State(auth): State<UserAuth>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let user = query.get("user").map(|u| u.trim()).unwrap_or_default();
    if user.is_empty()
        || user.len() > 64
        || !user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
    {
        return (
            StatusCode::BAD_REQUEST,
            "user must be 1-64 letters, digits or -_.@",
        )
            .into_response();
    }
    match auth.mint(user, DEV_TOKEN_TTL) {
        Ok(token) => {
            axum::Json(serde_json::json!({ "token": token, "user": user })).into_response()
        }
        Err(err) => {
            tracing::error!(
                error = format!("{err:#}"),
                "minting a development token failed"
            );
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
