//! The in-process echo server: the RPC ceiling of this machine. A bare tonic server (no
//! authentication, no observability layers, no storage) on its own tokio runtime and threads,
//! as a separate server process would be, serving gRPC and gRPC-web on one port.

use std::net::SocketAddr;

use anyhow::Context as _;
use tailor_proto::loadtest::v1 as pb;
use tailor_proto::loadtest::v1::echo_service_server::{EchoService, EchoServiceServer};
use tonic::{Request, Response, Status};

use crate::steps::echo::MAX_MESSAGE_BYTES;

/// A running echo server; stops when dropped.
#[derive(Debug)]
pub struct EchoServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EchoServer {
    /// Starts a server on `127.0.0.1:0` with `workers` runtime threads.
    pub fn start(workers: usize) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .thread_name("echo-server")
            .enable_all()
            .build()
            .context("starting the echo server's runtime")?;
        // Bound here (std, no runtime needed) so the address is known before returning;
        // start() may be called from async code, where blocking on a runtime would panic.
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").context("binding the echo server")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let service = EchoServiceServer::new(Echo)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let thread = std::thread::Builder::new()
            .name("echo-server".to_owned())
            .spawn(move || {
                let _entered = runtime.enter();
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(err) => {
                        tracing::error!(error = %err, "echo server listener");
                        return;
                    }
                };
                let serve = tonic::transport::Server::builder()
                    // gRPC-web arrives over HTTP/1.1.
                    .accept_http1(true)
                    .layer(tonic_web::GrpcWebLayer::new())
                    .add_service(service)
                    .serve_with_incoming_shutdown(
                        tonic::transport::server::TcpIncoming::from(listener)
                            .with_nodelay(Some(true)),
                        async {
                            let _ = stopped.await;
                        },
                    );
                if let Err(err) = runtime.block_on(serve) {
                    tracing::error!(error = %err, "echo server failed");
                }
            })
            .context("starting the echo server's thread")?;
        Ok(Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Joining would block an async caller; the thread ends on its own once drained.
        drop(self.thread.take());
    }
}

struct Echo;

#[tonic::async_trait]
impl EchoService for Echo {
    async fn echo(
        &self,
        request: Request<pb::EchoRequest>,
    ) -> Result<Response<pb::EchoResponse>, Status> {
        let request = request.into_inner();
        let mut payload = request.payload;
        // Bounded, so a stray request cannot make the baseline allocate gigabytes.
        let size = usize::try_from(request.reply_bytes).unwrap_or(usize::MAX);
        payload.resize(size.min(MAX_MESSAGE_BYTES / 2), 0);
        Ok(Response::new(pb::EchoResponse { payload }))
    }
}
