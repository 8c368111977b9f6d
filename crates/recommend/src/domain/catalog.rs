//! Catalog items: what a valid item is, and the in-memory catalog every request reads (kept
//! in step with the database by applying changes since the last look, so every replica sees
//! every write).

use foldhash::HashMap;
use std::sync::{Arc, RwLock};

use tailor_kit::grpc::status::FieldViolations;
use tailor_kit::time::Micros;

/// A price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money {
    /// Minor units.
    pub amount_minor: i64,
    /// ISO-4217 code.
    pub currency: String,
}

/// A catalog item.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Item {
    /// Id.
    pub item_id: String,
    /// `tailor.recommend.v1.ItemKind` number.
    pub kind: i32,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Category path, normalised (lower case, "/"-separated).
    pub category: String,
    /// Brand.
    pub brand: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Price.
    pub price: Option<Money>,
    /// Can be bought or shown.
    pub available: bool,
    /// Units in stock.
    pub stock: i64,
    /// Image embedding (empty when none).
    pub embedding: Vec<f32>,
    /// Image URL.
    pub image_url: String,
    /// Last change.
    pub updated_at: Micros,
}

impl Item {
    /// The top-level category.
    pub fn top_category(&self) -> &str {
        self.category.split('/').next().unwrap_or_default()
    }
}

/// Largest embedding accepted.
const MAX_EMBEDDING: usize = 4096;

/// Checks and normalises an item; violations are reported under `items[index]`.
pub fn normalise(mut item: Item, index: usize, violations: &mut FieldViolations) -> Item {
    let at = |f: &str| format!("items[{index}].{f}");
    item.item_id = item.item_id.trim().to_owned();
    if item.item_id.is_empty()
        || item.item_id.len() > 128
        || item.item_id.chars().any(char::is_control)
    {
        violations.add(
            at("item_id"),
            "must be 1-128 bytes without control characters",
        );
    }
    if item.title.trim().is_empty() {
        violations.add(at("title"), "must be set");
    }
    if item.title.len() > 1_000 {
        violations.add(at("title"), "must be at most 1000 bytes");
    }
    if item.description.len() > 20_000 {
        violations.add(at("description"), "must be at most 20000 bytes");
    }
    if item.tags.len() > 64 {
        violations.add(at("tags"), "at most 64 tags");
    }
    if let Some(price) = &item.price {
        if price.amount_minor < 0 {
            violations.add(at("price.amount_minor"), "must not be negative");
        }
        if !(price.currency.len() == 3 && price.currency.bytes().all(|b| b.is_ascii_uppercase())) {
            violations.add(at("price.currency"), "must be an ISO-4217 code such as CNY");
        }
    }
    if item.stock < 0 {
        violations.add(at("stock"), "must not be negative");
    }
    if item.embedding.len() > MAX_EMBEDDING || item.embedding.iter().any(|x| !x.is_finite()) {
        violations.add(
            at("image_embedding"),
            format!("must be at most {MAX_EMBEDDING} finite numbers"),
        );
    }
    item.category = item
        .category
        .split('/')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join("/");
    item.brand = item.brand.trim().to_owned();
    item.tags = item
        .tags
        .iter()
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    item
}

/// How long a write may take between taking its stamp and committing (and how far replicas'
/// clocks may disagree): a read of changes at time T has seen every change stamped before
/// T minus this, so the next read starts there, not at the newest stamp seen. Starting at the
/// newest stamp would miss late commits; starting at "newest stamp minus this" would re-read
/// the last few seconds of a catalog import on every poll, forever.
const COMMIT_WINDOW: Micros = 5 * tailor_kit::time::SECOND;

/// The catalog in memory: every live item by id (foldhash: looked up for every item of every
/// page, by ids callers send), and how far it is in step with the database.
#[derive(Debug, Default)]
pub struct Catalog {
    items: RwLock<HashMap<String, Arc<Item>>>,
    synced: RwLock<Micros>,
}

/// A read-locked view of the catalog's items.
pub struct CatalogView<'a>(std::sync::RwLockReadGuard<'a, HashMap<String, Arc<Item>>>);

impl CatalogView<'_> {
    /// One item.
    pub fn get(&self, item_id: &str) -> Option<&Arc<Item>> {
        self.0.get(item_id)
    }
}

impl Catalog {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Item>>> {
        self.items
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One item.
    pub fn get(&self, item_id: &str) -> Option<Arc<Item>> {
        self.read().get(item_id).cloned()
    }

    /// The item table, read-locked once for a caller that resolves many ids (a list's
    /// candidates); drop it before calling other catalog methods.
    pub fn view(&self) -> CatalogView<'_> {
        CatalogView(self.read())
    }

    /// Items present, in the order asked.
    pub fn get_many(&self, ids: &[String]) -> Vec<Arc<Item>> {
        let items = self.read();
        ids.iter().filter_map(|id| items.get(id).cloned()).collect()
    }

    /// Every item, sorted by id (training wants a stable order).
    pub fn all(&self) -> Vec<Arc<Item>> {
        let mut all: Vec<Arc<Item>> = self.read().values().cloned().collect();
        all.sort_by(|a, b| a.item_id.cmp(&b.item_id));
        all
    }

    /// Number of live items.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether there is no item.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Changes read from the database, upserts (`Some`) and deletions (`None`) with their
    /// stamps, by a read that started at `read_started`. A change not newer than the item
    /// held (read again, or by a poll that overlapped a later one) neither swaps the item nor
    /// takes the write lock.
    pub fn apply(&self, changes: Vec<(String, Option<Item>, Micros)>, read_started: Micros) {
        let seen_before = read_started.saturating_sub(COMMIT_WINDOW);
        let fresh: Vec<_> = {
            let items = self.read();
            changes
                .into_iter()
                .filter(|(id, item, stamp)| match (items.get(id), item) {
                    (Some(old), _) => old.updated_at < *stamp,
                    (None, deleted) => deleted.is_some(),
                })
                .collect()
        };
        if !fresh.is_empty() {
            let mut items = self
                .items
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (id, item, _) in fresh {
                match item {
                    Some(item) => items.insert(id, Arc::new(item)),
                    None => items.remove(&id),
                };
            }
        }
        let mut synced = self
            .synced
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *synced = (*synced).max(seen_before);
    }

    /// Where the next read of changes starts: every change stamped before it is applied.
    pub fn synced_before(&self) -> Micros {
        *self
            .synced
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_normalised_and_checked() {
        let mut v = FieldViolations::new();
        let item = normalise(
            Item {
                item_id: " i1 ".into(),
                title: "Tea".into(),
                category: " Home//Kitchen/ ".into(),
                tags: vec![" Green ".into(), " ".into()],
                ..Item::default()
            },
            0,
            &mut v,
        );
        assert!(v.is_empty());
        assert_eq!(item.item_id, "i1");
        assert_eq!(item.category, "home/kitchen");
        assert_eq!(item.tags, vec!["green"]);
        assert_eq!(item.top_category(), "home");

        let mut v = FieldViolations::new();
        normalise(
            Item {
                price: Some(Money {
                    amount_minor: -1,
                    currency: "rmb".into(),
                }),
                embedding: vec![f32::NAN],
                ..Item::default()
            },
            3,
            &mut v,
        );
        let fields: Vec<&str> = v.iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            vec![
                "items[3].item_id",
                "items[3].title",
                "items[3].price.amount_minor",
                "items[3].price.currency",
                "items[3].image_embedding"
            ]
        );
    }

    #[test]
    fn changes_apply_in_any_repetition() {
        let catalog = Catalog::default();
        let item = Item {
            item_id: "a".into(),
            title: "A".into(),
            ..Item::default()
        };
        let stamped = |title: &str, at: Micros| Item {
            title: title.into(),
            updated_at: at,
            ..item.clone()
        };
        catalog.apply(
            vec![("a".into(), Some(stamped("A", 5)), 5)],
            100 + COMMIT_WINDOW,
        );
        let first = catalog.get("a").expect("applied");
        catalog.apply(
            vec![("a".into(), Some(stamped("A", 5)), 5)],
            90 + COMMIT_WINDOW,
        );
        assert!(
            Arc::ptr_eq(&first, &catalog.get("a").expect("kept")),
            "a change read again is not re-applied"
        );
        assert_eq!(catalog.synced_before(), 100, "never moves back");
        catalog.apply(
            vec![("a".into(), Some(stamped("B", 6)), 6)],
            110 + COMMIT_WINDOW,
        );
        assert_eq!(catalog.get("a").expect("updated").title, "B");
        catalog.apply(
            vec![("a".into(), Some(stamped("A", 5)), 5)],
            110 + COMMIT_WINDOW,
        );
        assert_eq!(
            catalog.get("a").expect("kept").title,
            "B",
            "an older read loses"
        );
        catalog.apply(vec![("a".into(), None, 7)], 120 + COMMIT_WINDOW);
        catalog.apply(vec![("a".into(), None, 7)], 120 + COMMIT_WINDOW);
        assert!(catalog.get("a").is_none());
        assert_eq!(catalog.len(), 0);
        assert_eq!(catalog.synced_before(), 120);
    }
}
