//! The standard server stack over real gRPC: health follows dependencies, the auth
//! interceptor refuses bad credentials, reflection lists what is served, and in-process calls
//! meet the same stack as network ones.
#![allow(clippy::unwrap_used)] // test helpers, not only #[test] fns, may unwrap

use std::time::Duration;

use tailor_kit::auth::{AuthSettings, Authenticate, TokenIssuer, TokenSource};
use tailor_kit::grpc::client::Outbound;
use tailor_kit::grpc::health::{Check, watch};
use tailor_kit::grpc::in_process::InProcess;
use tailor_kit::grpc::server::{Health, ServerSettings, serve};
use tailor_kit::shutdown::CancellationToken;
use tailor_kit::testing::{channel_to, init_for_tests, tokens, verifier};
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

const SERVICE: &str = "tailor.test.v1.TestService";

async fn spawn(
    routes: tonic::service::Routes,
    health: Health,
) -> (std::net::SocketAddr, CancellationToken) {
    spawn_with(routes, health, ServerSettings::default()).await
}

async fn spawn_with(
    routes: tonic::service::Routes,
    health: Health,
    settings: ServerSettings,
) -> (std::net::SocketAddr, CancellationToken) {
    spawn_published(routes, health, settings, InProcess::new()).await
}

/// Serves, also publishing the routes in `slot`; returns once they are published.
async fn spawn_published(
    routes: tonic::service::Routes,
    health: Health,
    settings: ServerSettings,
    slot: InProcess,
) -> (std::net::SocketAddr, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let published = slot.clone();
    tokio::spawn(async move {
        serve(
            listener,
            &settings,
            routes,
            &health,
            &published,
            stopped.cancelled_owned(),
        )
        .await
    });
    while !slot.is_published() {
        tokio::task::yield_now().await;
    }
    (addr, stop)
}

async fn status(addr: std::net::SocketAddr, service: &str) -> ServingStatus {
    let mut client = HealthClient::new(channel_to(addr));
    let response = client
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap();
    response.into_inner().status()
}

#[tokio::test]
async fn health_is_not_serving_until_dependencies_answer_and_on_shutdown() {
    init_for_tests();
    let health = Health::new(&[SERVICE]).await;
    let (addr, stop) = spawn(tonic::service::Routes::default(), health.clone()).await;
    assert_eq!(status(addr, SERVICE).await, ServingStatus::NotServing);

    let (ready_tx, ready_rx) = tokio::sync::watch::channel(false);
    let check = Check::new("fake dependency", move || {
        let ready = *ready_rx.borrow();
        async move { if ready { Ok(()) } else { anyhow::bail!("down") } }
    });
    let watching = CancellationToken::new();
    tokio::spawn(watch(
        health.clone(),
        vec![check],
        Duration::from_millis(20),
        watching.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(status(addr, SERVICE).await, ServingStatus::NotServing);
    ready_tx.send(true).unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(status(addr, SERVICE).await, ServingStatus::Serving);
    assert_eq!(status(addr, "").await, ServingStatus::Serving);
    ready_tx.send(false).unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(status(addr, SERVICE).await, ServingStatus::NotServing);
    watching.cancel();
    stop.cancel();
}

/// Reflection stands in for an API here, guarded by the interceptor like one (the
/// server's own reflection is off so the routes do not clash).
async fn guarded_server() -> (std::net::SocketAddr, CancellationToken) {
    guarded_server_published(InProcess::new()).await
}

async fn guarded_server_published(slot: InProcess) -> (std::net::SocketAddr, CancellationToken) {
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tailor_proto::FILE_DESCRIPTOR_SET)
        .build_v1()
        .unwrap();
    let guarded = InterceptedService::new(reflection, Authenticate::new(verifier()));
    let settings = ServerSettings {
        reflection: false,
        ..ServerSettings::default()
    };
    spawn_published(
        tonic::service::Routes::new(guarded),
        Health::new(&[]).await,
        settings,
        slot,
    )
    .await
}

async fn list_services<T>(
    client: &mut ServerReflectionClient<T>,
    request: tonic::Request<()>,
) -> Result<(), tonic::Status>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let (metadata, extensions, ()) = request.into_parts();
    let message = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let request =
        tonic::Request::from_parts(metadata, extensions, tokio_stream::iter(vec![message]));
    let mut stream = client.server_reflection_info(request).await?.into_inner();
    stream.message().await?;
    Ok(())
}

#[tokio::test]
async fn calls_without_a_valid_service_token_are_unauthenticated() {
    init_for_tests();
    let (addr, stop) = guarded_server().await;

    let mut anonymous = ServerReflectionClient::new(channel_to(addr));
    let err = list_services(&mut anonymous, tonic::Request::new(()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    let mut with_user_only = tonic::Request::new(());
    with_user_only
        .metadata_mut()
        .insert("x-tailor-user-id", "alice".parse().unwrap());
    let err = list_services(&mut anonymous, with_user_only)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    let forged_settings = AuthSettings {
        service_secret: Some(
            "a-completely-different-secret-of-enough-length"
                .to_owned()
                .into(),
        ),
        ..AuthSettings::default()
    };
    let forged = TokenSource::new(TokenIssuer::new(&forged_settings, "gateway", &[]).unwrap());
    let mut forged_client = ServerReflectionClient::new(Outbound::new(channel_to(addr), forged));
    let err = list_services(&mut forged_client, tonic::Request::new(()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    let mut good =
        ServerReflectionClient::new(Outbound::new(channel_to(addr), tokens("gateway", &[])));
    list_services(&mut good, tonic::Request::new(()))
        .await
        .unwrap();
    stop.cancel();
}

#[tokio::test]
async fn reflection_lists_the_served_services() {
    init_for_tests();
    let health = Health::new(&["tailor.profile.v1.ProfileService"]).await;
    let (addr, stop) = spawn(tonic::service::Routes::default(), health).await;
    let mut client = ServerReflectionClient::new(channel_to(addr));
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"tailor.profile.v1.ProfileService".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );
    stop.cancel();
}

/// An address nothing listens on: a call that reaches the server did not go there.
async fn nowhere() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn in_process_calls_skip_the_network_but_not_authentication() {
    init_for_tests();
    let slot = InProcess::new();
    let (_addr, stop) = guarded_server_published(slot.clone()).await;
    let dead = nowhere().await;

    let mut good = ServerReflectionClient::new(
        Outbound::new(channel_to(dead), tokens("gateway", &[])).or_in_process(slot.clone()),
    );
    list_services(&mut good, tonic::Request::new(()))
        .await
        .unwrap();

    let forged_settings = AuthSettings {
        service_secret: Some(
            "another-secret-entirely-of-sufficient-length"
                .to_owned()
                .into(),
        ),
        ..AuthSettings::default()
    };
    let forged = TokenSource::new(TokenIssuer::new(&forged_settings, "gateway", &[]).unwrap());
    let mut forged_client = ServerReflectionClient::new(
        Outbound::new(channel_to(dead), forged).or_in_process(slot.clone()),
    );
    let err = list_services(&mut forged_client, tonic::Request::new(()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    // A stopped role takes its routes down: calls go to the channel, and fail as calls to a
    // stopped server do.
    stop.cancel();
    while slot.is_published() {
        tokio::task::yield_now().await;
    }
    let err = list_services(&mut good, tonic::Request::new(()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
}

/// An RPC that holds its concurrency slot for a while, then answers UNIMPLEMENTED.
#[derive(Clone)]
struct Slow(Duration);

impl tonic::server::NamedService for Slow {
    const NAME: &'static str = "tailor.test.v1.Slow";
}

impl tower::Service<http::Request<tonic::body::Body>> for Slow {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<tonic::body::Body>) -> Self::Future {
        let delay = self.0;
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            Ok(tonic::Status::unimplemented("slow").into_http())
        })
    }
}

async fn call_slow(outbound: Outbound) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(outbound);
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    grpc.unary(
        tonic::Request::new(()),
        "/tailor.test.v1.Slow/Call".parse().unwrap(),
        codec,
    )
    .await
    .unwrap_err()
}

#[tokio::test]
async fn in_process_calls_share_the_servers_concurrency_budget_and_timeout() {
    init_for_tests();
    let slot = InProcess::new();
    let settings = ServerSettings {
        concurrency_limit: 1,
        request_timeout: Duration::from_millis(300),
        ..ServerSettings::default()
    };
    let routes = tonic::service::Routes::new(Slow(Duration::from_millis(200)));
    let (addr, stop) =
        spawn_published(routes, Health::new(&[]).await, settings, slot.clone()).await;
    let over_network = Outbound::new(channel_to(addr), tokens("gateway", &[]));
    let in_process =
        Outbound::new(channel_to(nowhere().await), tokens("gateway", &[])).or_in_process(slot);

    // One call over the network takes the only slot; an in-process call meanwhile is shed.
    let held = tokio::spawn(call_slow(over_network));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        call_slow(in_process.clone()).await.code(),
        Code::ResourceExhausted
    );
    assert_eq!(held.await.unwrap().code(), Code::Unimplemented);
    // With the slot free again, the in-process call runs (and reaches the service).
    assert_eq!(
        call_slow(in_process.clone()).await.code(),
        Code::Unimplemented
    );
    stop.cancel();

    let slot = InProcess::new();
    let settings = ServerSettings {
        request_timeout: Duration::from_millis(50),
        ..ServerSettings::default()
    };
    let routes = tonic::service::Routes::new(Slow(Duration::from_secs(5)));
    let (_addr, stop) =
        spawn_published(routes, Health::new(&[]).await, settings, slot.clone()).await;
    let in_process =
        Outbound::new(channel_to(nowhere().await), tokens("gateway", &[])).or_in_process(slot);
    // The server's request timeout ends it, with the status tonic's server gives.
    assert_eq!(call_slow(in_process).await.code(), Code::Cancelled);
    stop.cancel();
}
