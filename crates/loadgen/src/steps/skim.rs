//! Answers read only as far as a step looks at them. The generator shares the machine's
//! cores with the system it measures, so what it spends per call is taken from the server:
//! decoding every recommended item's strings (title, description, tags, reason) into owned
//! fields was a fifth of the generator's CPU under `recommend-serve.toml`, to count items.
//! Here a list answer keeps its entries encoded, as slices of the received buffer.

use std::marker::PhantomData;

use bytes::{Buf as _, Bytes};
use http::Uri;
use http::uri::PathAndQuery;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::{Request, Status};
use tonic_prost::{ProstDecoder, ProstEncoder};

use crate::target::Channel;

/// Any answer whose field 1 is its list (`repeated ... items = 1`), entries left encoded;
/// its other fields are skipped as unknown.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct List {
    /// The entries, each still encoded.
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub items: Vec<Bytes>,
}

/// Calls `path` (`/package.Service/Method`) with `request` and reads the answer as `R`,
/// which may declare fewer fields than the real answer. Returns it with the answer's encoded
/// size, which `R` no longer knows.
pub(crate) async fn unary<Q, R>(
    channel: Channel,
    origin: Uri,
    path: &'static str,
    request: Request<Q>,
    max_message_bytes: usize,
) -> Result<(R, usize), Status>
where
    Q: prost::Message + Send + Sync + 'static,
    R: prost::Message + Default + Send + Sync + 'static,
{
    let mut grpc = tonic::client::Grpc::with_origin(channel, origin)
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes);
    grpc.ready()
        .await
        .map_err(|e| Status::unknown(format!("service was not ready: {e}")))?;
    let codec = SizedCodec::<Q, R>(PhantomData);
    let response = grpc
        .unary(request, PathAndQuery::from_static(path), codec)
        .await?;
    Ok(response.into_inner())
}

/// Requests encoded as prost does; answers decoded as `R`, with their size.
struct SizedCodec<Q, R>(PhantomData<fn() -> (Q, R)>);

impl<Q, R> Codec for SizedCodec<Q, R>
where
    Q: prost::Message + Send + 'static,
    R: prost::Message + Default + Send + 'static,
{
    type Encode = Q;
    type Decode = (R, usize);
    type Encoder = ProstEncoder<Q>;
    type Decoder = SizedDecoder<R>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        SizedDecoder(ProstDecoder::default())
    }
}

struct SizedDecoder<R>(ProstDecoder<R>);

impl<R: prost::Message + Default> Decoder for SizedDecoder<R> {
    type Item = (R, usize);
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<(R, usize)>, Status> {
        let size = buf.remaining();
        Ok(self.0.decode(buf)?.map(|answer| (answer, size)))
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;
    use tailor_proto::recommend::v1 as pb;

    use super::*;

    #[test]
    fn a_list_counts_the_entries_of_the_real_answer() {
        let item = |id: &str| pb::RecommendedItem {
            item: Some(pb::Item {
                item_id: id.to_owned(),
                title: "名字 title".to_owned(),
                tags: vec!["a".to_owned(), "b".to_owned()],
                ..pb::Item::default()
            }),
            reason: "because".to_owned(),
            ..pb::RecommendedItem::default()
        };
        let answer = pb::RecommendResponse {
            items: vec![item("1"), item("2"), item("3")],
            model_version: "v1".to_owned(),
            variant: "control".to_owned(),
            recommendation_id: "r".to_owned(),
        };
        let list = List::decode(answer.encode_to_vec().as_slice()).unwrap();
        assert_eq!(list.items.len(), 3);
        // Each entry is the item exactly as sent.
        let second = pb::RecommendedItem::decode(list.items[1].clone()).unwrap();
        assert_eq!(second, item("2"));
        assert_eq!(List::decode(&[][..]).unwrap().items.len(), 0);
    }
}
