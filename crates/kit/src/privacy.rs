//! Shared pieces of the privacy participant contract (`tailor.privacy.v1`): the scope its
//! callers need and a builder for the structured records an export returns.

use std::collections::BTreeMap;

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value};
use tailor_proto::privacy::v1::DataRecord;

use crate::time::{Micros, to_timestamp};

/// Scope a service needs to export or erase users' data.
pub const SCOPE: &str = "privacy";

/// Builds one exported record field by field.
#[derive(Debug, Default)]
pub struct RecordBuilder {
    fields: BTreeMap<String, Value>,
}

fn value(kind: Kind) -> Value {
    Value { kind: Some(kind) }
}

impl RecordBuilder {
    /// An empty record.
    pub fn new() -> Self {
        Self::default()
    }

    /// A text field.
    pub fn text(mut self, name: &str, v: impl Into<String>) -> Self {
        self.fields
            .insert(name.to_owned(), value(Kind::StringValue(v.into())));
        self
    }

    /// A text field, when present.
    pub fn opt_text(self, name: &str, v: Option<&str>) -> Self {
        match v {
            Some(v) => self.text(name, v),
            None => self,
        }
    }

    /// A number field.
    pub fn number(mut self, name: &str, v: f64) -> Self {
        self.fields
            .insert(name.to_owned(), value(Kind::NumberValue(v)));
        self
    }

    /// An integer field (JSON numbers are doubles; ids and money beyond 2^53 go as text).
    pub fn int(self, name: &str, v: i64) -> Self {
        if v.unsigned_abs() < (1 << 53) {
            self.number(name, v as f64)
        } else {
            self.text(name, v.to_string())
        }
    }

    /// A boolean field.
    pub fn boolean(mut self, name: &str, v: bool) -> Self {
        self.fields
            .insert(name.to_owned(), value(Kind::BoolValue(v)));
        self
    }

    /// A time field, as RFC 3339 text.
    pub fn time(self, name: &str, micros: Micros) -> Self {
        match chrono::DateTime::from_timestamp_micros(micros) {
            Some(t) => self.text(name, t.to_rfc3339()),
            None => self.int(name, micros),
        }
    }

    /// A list of texts.
    pub fn texts(mut self, name: &str, items: &[String]) -> Self {
        let values = items
            .iter()
            .map(|s| value(Kind::StringValue(s.clone())))
            .collect();
        self.fields.insert(
            name.to_owned(),
            value(Kind::ListValue(ListValue { values })),
        );
        self
    }

    /// A nested record.
    pub fn nested(mut self, name: &str, inner: RecordBuilder) -> Self {
        self.fields.insert(
            name.to_owned(),
            value(Kind::StructValue(Struct {
                fields: inner.fields.into_iter().collect(),
            })),
        );
        self
    }

    /// The finished record.
    pub fn build(self, collection: &str, record_id: &str, created: Option<Micros>) -> DataRecord {
        DataRecord {
            collection: collection.to_owned(),
            record_id: record_id.to_owned(),
            fields: Some(Struct {
                fields: self.fields.into_iter().collect(),
            }),
            create_time: created.map(to_timestamp),
        }
    }
}
