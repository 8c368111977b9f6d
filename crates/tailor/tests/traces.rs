//! One trace across processes: the gateway and the services run as separate `tailor`
//! processes exporting OTLP to a collector this test starts; one call through the gateway
//! must produce spans that share one trace id, with every hop's parent link right.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

const BIN: &str = env!("CARGO_BIN_EXE_tailor");

/// The test's OTLP collector: keeps every span with the service that sent it.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<(String, Span)>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref())
                .map(|v| format!("{:?}", v.value))
                .unwrap_or_default();
            for scope in resource.scope_spans {
                for span in scope.spans {
                    spans.push((service.clone(), span));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(roles: &[&str], env: &[(String, String)], dir: &std::path::Path, name: &str) -> Process {
    let mut command = Command::new(BIN);
    command
        .arg("serve")
        .args(roles)
        .current_dir(dir)
        .env_remove("REDIS_URL")
        // Export quickly: the test waits for the spans.
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .stdout(std::fs::File::create(dir.join(format!("{name}.out"))).unwrap())
        .stderr(std::fs::File::create(dir.join(format!("{name}.err"))).unwrap());
    for (key, value) in env {
        command.env(key, value);
    }
    Process(command.spawn().unwrap())
}

fn wait_serving(port: u16) {
    for _ in 0..300 {
        let ok = Command::new(BIN)
            .args(["health", "--addr", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        if ok {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("port {port} never became SERVING");
}

fn name(span: &Span) -> &str {
    &span.name
}

#[tokio::test]
async fn one_call_through_the_gateway_is_one_trace_across_processes() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp = listener.local_addr().unwrap();
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(collector.clone()))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(server);

    let dir = tempfile::tempdir().unwrap();
    let (profile, recommend, gateway) = (free_port(), free_port(), free_port());
    let env: Vec<(String, String)> = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}")),
        (
            "TAILOR_PROFILE__SERVER__LISTEN",
            format!("127.0.0.1:{profile}"),
        ),
        (
            "TAILOR_RECOMMEND__SERVER__LISTEN",
            format!("127.0.0.1:{recommend}"),
        ),
        (
            "TAILOR_GATEWAY__SERVER__LISTEN",
            format!("127.0.0.1:{gateway}"),
        ),
        (
            "TAILOR_GATEWAY__UPSTREAMS__PROFILE__URL",
            format!("http://127.0.0.1:{profile}"),
        ),
        (
            "TAILOR_GATEWAY__UPSTREAMS__RECOMMEND__URL",
            format!("http://127.0.0.1:{recommend}"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let services = start(&["profile", "recommend"], &env, dir.path(), "services");
    let edge = start(&["gateway"], &env, dir.path(), "gateway");
    wait_serving(profile);
    wait_serving(recommend);
    wait_serving(gateway);

    let mut app = tailor_proto::mobile::v1::mobile_service_client::MobileServiceClient::new(
        tailor_kit::testing::channel_to(([127, 0, 0, 1], gateway).into()),
    );
    let mut request =
        tonic::Request::new(tailor_proto::mobile::v1::GetHomeFeedRequest { device_class: 0 });
    request
        .metadata_mut()
        .insert("x-device-id", "trace-test".parse().unwrap());
    app.get_home_feed(request).await.unwrap();

    // Wait for the gateway's server span and the backends' server spans of its trace.
    let mut trace = Vec::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let spans = collector.spans.lock().unwrap().clone();
        let Some((_, root)) = spans
            .iter()
            .find(|(_, s)| name(s) == "tailor.mobile.v1.MobileService/GetHomeFeed")
        else {
            continue;
        };
        trace = spans
            .iter()
            .filter(|(_, s)| s.trace_id == root.trace_id)
            .cloned()
            .collect();
        let backends = trace
            .iter()
            .filter(|(_, s)| {
                s.kind == SpanKind::Server as i32 && !name(s).starts_with("tailor.mobile")
            })
            .count();
        if backends >= 2 && trace.iter().any(|(_, s)| name(s) == "db") {
            break;
        }
    }
    drop(edge);
    drop(services);

    assert!(!trace.is_empty(), "no trace reached the collector");
    let by_id: HashMap<Vec<u8>, &Span> =
        trace.iter().map(|(_, s)| (s.span_id.clone(), s)).collect();
    let root = trace
        .iter()
        .find(|(_, s)| name(s) == "tailor.mobile.v1.MobileService/GetHomeFeed")
        .unwrap();
    assert!(
        root.1.parent_span_id.is_empty(),
        "the app's call starts the trace"
    );
    let processes: std::collections::HashSet<&str> =
        trace.iter().map(|(service, _)| service.as_str()).collect();
    assert!(
        processes.len() >= 2,
        "spans from both processes: {processes:?}"
    );

    // Every backend server span's parent is a gateway client span for the same RPC.
    let backend_servers: Vec<&Span> = trace
        .iter()
        .map(|(_, s)| s)
        .filter(|s| s.kind == SpanKind::Server as i32 && !name(s).starts_with("tailor.mobile"))
        .collect();
    for server in &backend_servers {
        let parent = by_id
            .get(&server.parent_span_id)
            .unwrap_or_else(|| panic!("{} has no parent in the trace", server.name));
        assert_eq!(
            parent.kind,
            SpanKind::Client as i32,
            "{} is called from a client span",
            server.name
        );
        assert_eq!(
            parent.name, server.name,
            "the client span names the same RPC"
        );
        let grandparent = by_id.get(&parent.parent_span_id).unwrap();
        assert_eq!(grandparent.trace_id, root.1.trace_id);
    }
    let rpcs: Vec<&str> = backend_servers.iter().map(|s| s.name.as_str()).collect();
    assert!(
        rpcs.contains(&"tailor.profile.v1.ProfileService/GetProfile"),
        "{rpcs:?}"
    );
    assert!(
        rpcs.iter().any(|r| r.starts_with("tailor.recommend.v1")),
        "{rpcs:?}"
    );

    // Database work hangs under the server span of the service that did it.
    let db = trace
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.name == "db")
        .expect("database spans in the trace");
    let mut ancestor = by_id.get(&db.parent_span_id).copied();
    while let Some(span) = ancestor {
        if span.kind == SpanKind::Server as i32 {
            break;
        }
        ancestor = by_id.get(&span.parent_span_id).copied();
    }
    assert!(
        ancestor.is_some_and(|s| !s.name.starts_with("tailor.mobile")),
        "a db span sits under a backend's server span"
    );
}
