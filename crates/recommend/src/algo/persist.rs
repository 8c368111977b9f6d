//! The on-disk model format: what the service stores, loads and hot-swaps.
//!
//! Layout: the magic bytes `TLRM`, a little-endian `u16` format version, then the
//! [`ModelBundle`] encoded with `postcard`. Postcard because its wire format is specified and
//! stable since 1.0 (bincode's 2.x format differs from 1.x and the project is no longer
//! maintained), it is compact (varints, raw little-endian floats) and it is plain serde, so
//! every model type just derives `Serialize`. The version is checked before decoding, so an
//! old binary refuses a newer file with a clear error instead of misreading it.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use super::{AlgoConfig, AlgoError, IdMap, Model, Result};

const MAGIC: &[u8; 4] = b"TLRM";

/// Bump when any persisted type changes shape (2: content and embedding models keep
/// neighbour lists instead of vectors).
pub const FORMAT_VERSION: u16 = 2;

/// A trained model with everything needed to serve it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelBundle {
    /// The configuration it was trained with.
    pub config: AlgoConfig,
    /// External user ids of the model's user indices.
    pub users: IdMap,
    /// External item ids of the model's item indices.
    pub items: IdMap,
    /// Seconds since the Unix epoch at training time.
    pub trained_at: i64,
    /// The model.
    pub model: Model,
}

impl ModelBundle {
    /// Encodes the bundle with its header.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(1 << 16);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        let body = postcard::to_stdvec(self).map_err(|e| AlgoError::Persist(e.to_string()))?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Decodes a bundle written by [`ModelBundle::to_bytes`] of the same format version.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < 6 || &bytes[..4] != MAGIC {
            return Err(AlgoError::Persist("not a Tailor model file".into()));
        }
        let version = u16::from_le_bytes([bytes[4], bytes[5]]);
        if version != FORMAT_VERSION {
            return Err(AlgoError::Persist(format!(
                "format version {version}, this build reads version {FORMAT_VERSION}"
            )));
        }
        postcard::from_bytes(&bytes[6..]).map_err(|e| AlgoError::Persist(e.to_string()))
    }

    /// Writes the bundle.
    pub fn save(&self, mut writer: impl Write) -> Result<()> {
        writer.write_all(&self.to_bytes()?)?;
        Ok(())
    }

    /// Reads a bundle.
    pub fn load(mut reader: impl Read) -> Result<Self> {
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes)?;
        Self::from_bytes(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use indicatif::ProgressBar;

    use super::*;
    use crate::algo::{
        Catalog, ItemMeta, Query, Recommender, TrainData, fixtures::tiny, rules::RulesConfig,
    };

    fn catalog() -> Catalog {
        let meta = |title: &str, e: [f32; 2]| ItemMeta {
            category: Some("c".into()),
            title: title.into(),
            embedding: Some(e.to_vec()),
            ..ItemMeta::default()
        };
        Catalog {
            items: vec![
                meta("red shoes", [1.0, 0.0]),
                meta("blue shoes", [1.0, 0.1]),
                meta("red hat", [0.0, 1.0]),
                meta("green hat", [0.1, 1.0]),
                meta("chess", [1.0, 1.0]),
            ],
        }
    }

    #[test]
    fn every_algorithm_round_trips_with_identical_recommendations() {
        let m = tiny();
        let catalog = catalog();
        let data = TrainData {
            interactions: &m,
            catalog: Some(&catalog),
        };
        for name in AlgoConfig::NAMES {
            let mut config = AlgoConfig::by_name(name).unwrap();
            if let AlgoConfig::Rules(c) = &mut config {
                *c = RulesConfig {
                    min_support: 0.0,
                    min_confidence: 0.0,
                    ..RulesConfig::default()
                };
            }
            let model = config.fit(data, &ProgressBar::hidden()).unwrap();
            let bundle = ModelBundle {
                config: config.clone(),
                users: m.users.clone(),
                items: m.items.clone(),
                trained_at: 1,
                model,
            };
            let mut file = Vec::new();
            bundle.save(&mut file).unwrap();
            let back = ModelBundle::load(file.as_slice()).unwrap();
            assert_eq!(back.config, config, "{name}");
            assert_eq!(back.items.get("i3"), Some(3));
            for query in [Query::known(1, &[0, 1, 2]), Query::anonymous(&[3])] {
                assert_eq!(
                    back.model.recommend(&query, 3, query.history),
                    bundle.model.recommend(&query, 3, query.history),
                    "{name}"
                );
            }
            assert_eq!(
                back.model.similar_items(0, 3),
                bundle.model.similar_items(0, 3),
                "{name}"
            );
        }
    }

    #[test]
    fn foreign_and_future_files_are_refused() {
        assert!(ModelBundle::from_bytes(b"PK\x03\x04").is_err());
        let mut bytes = b"TLRM".to_vec();
        bytes.extend_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        let err = ModelBundle::from_bytes(&bytes).unwrap_err().to_string();
        assert!(err.contains("format version"), "{err}");
    }
}
