//! `echo`: calls the echo service (`tailor.loadtest.v1`), the baseline every Tailor figure is
//! compared with. As a scenario step it sends `request_bytes` and asks for `reply_bytes`;
//! the baseline run mirrors each step of the scenario under test with an echo step of the
//! same request and response sizes ([`mirror`]).

use std::sync::Arc;

use prost::Message as _;
use serde::Deserialize;
use tailor_proto::loadtest::v1 as pb;
use tailor_proto::loadtest::v1::echo_service_client::EchoServiceClient;

use super::{Auth, Call, Generator, Operation, Params, Reply, Step, check, params};
use crate::target::Connection;

/// Largest message either way (mirrors of big batches included).
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// `echo`.
pub(crate) const ECHO: Operation = Operation {
    name: "echo",
    target: "echo",
    about: "tailor.loadtest.v1 Echo: request_bytes out, reply_bytes back (the RPC ceiling)",
    // Ignored by the echo server, but on the wire like every Tailor call's credential.
    auth: Auth::Service(&[]),
    check: check::<EchoParams>,
    build,
};

/// Parameters of `echo`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct EchoParams {
    /// Payload size of each request.
    request_bytes: usize,
    /// Payload size of each reply (default: the request's).
    reply_bytes: Option<usize>,
    /// Units of work each call stands for in items/s (a mirrored batch counts its events).
    items: u64,
}

impl Default for EchoParams {
    fn default() -> Self {
        Self {
            request_bytes: 64,
            reply_bytes: None,
            items: 1,
        }
    }
}

impl Params for EchoParams {
    fn validate(&self) -> Result<(), String> {
        let max = MAX_MESSAGE_BYTES / 2;
        if self.request_bytes > max || self.reply_bytes.is_some_and(|r| r > max) {
            return Err(format!("request_bytes and reply_bytes: at most {max}"));
        }
        Ok(())
    }
}

fn build(table: &toml::Table, conn: &Arc<Connection>) -> anyhow::Result<Arc<dyn Step>> {
    let p: EchoParams = params(table).map_err(anyhow::Error::msg)?;
    Ok(mirror(
        conn,
        p.request_bytes,
        p.reply_bytes.unwrap_or(p.request_bytes),
        p.items,
    ))
}

/// An echo step whose messages have the given encoded sizes (approximately: the payload is
/// sized so the whole message matches) and that counts `items` per call.
pub fn mirror(
    conn: &Arc<Connection>,
    request_bytes: usize,
    reply_bytes: usize,
    items: u64,
) -> Arc<dyn Step> {
    Arc::new(EchoStep {
        conn: conn.clone(),
        payload: payload_for(request_bytes),
        reply_bytes: u32::try_from(payload_for(reply_bytes)).unwrap_or(u32::MAX),
        items,
    })
}

/// Payload length that makes an echo message about `bytes` long once encoded (tag, length
/// and the reply-size field take a few bytes).
fn payload_for(bytes: usize) -> usize {
    bytes.saturating_sub(8)
}

struct EchoStep {
    conn: Arc<Connection>,
    payload: usize,
    reply_bytes: u32,
    items: u64,
}

impl Step for EchoStep {
    fn prepare(&self, _gen: &mut Generator) -> Call {
        let request = pb::EchoRequest {
            payload: vec![0x5a; self.payload],
            reply_bytes: self.reply_bytes,
        };
        let request_bytes = request.encoded_len();
        let mut client =
            EchoServiceClient::with_origin(self.conn.channel(), self.conn.origin().clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let items = self.items;
        Call {
            request_bytes,
            send: Box::pin(async move {
                let response = client.echo(request).await?.into_inner();
                Ok(Reply {
                    items,
                    response_bytes: response.encoded_len(),
                    ..Reply::default()
                })
            }),
        }
    }
}
