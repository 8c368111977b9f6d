//! `recommend.*`: the recommend service (`tailor.recommend.v1.RecommendService`), called
//! directly as a trusted service: reads with `recommend:read` (acting on its own, for any
//! user), catalog writes with `recommend:admin`.
//!
//! - `recommend.recommend`: a Zipf user's recommendations for a placement, with the context
//!   items that placement has (the product on a product page, the cart, the purchase).
//! - `recommend.list_similar_items`: items similar to a Zipf item.
//! - `recommend.upsert_items`: a batch of the population's catalogue (ids, category paths,
//!   brands, prices, titles in English or Chinese, image embeddings), items 1, 2, 3, … in
//!   turn by default: how a benchmark seeds the catalog the other operations ask about.

use std::collections::BTreeSet;
use std::sync::Arc;

use prost::Message as _;
use rand::Rng as _;
use serde::Deserialize;
use tailor_proto::common::v1::Money;
use tailor_proto::recommend::v1 as pb;
use tailor_proto::recommend::v1::recommend_service_client::RecommendServiceClient;

use super::{
    Auth, Call, Generator, ItemIds, ItemPicker, Operation, Params, Pick, Reply, Step, UserPicker,
    check, params, skim,
};
use crate::population::{Population, mix};
use crate::target::{Channel, Connection};

/// Largest message either way (a batch of 500 items with 512-float embeddings is about 1.2 MB).
const MAX_MESSAGE_BYTES: usize = 16 << 20;
/// Most embedding floats in one UpsertItems call: the services take 8 MB messages.
const MAX_EMBEDDING_FLOATS: usize = 1_500_000;

/// `recommend.recommend`.
pub(crate) const RECOMMEND: Operation = Operation {
    name: "recommend.recommend",
    target: "recommend",
    about: "Recommend for a `placement` (home, product_page, cart, post_purchase), Zipf users and context items",
    auth: Auth::Service(&["recommend:read"]),
    check: check::<RecommendParams>,
    build: build_recommend,
};

/// `recommend.list_similar_items`.
pub(crate) const LIST_SIMILAR_ITEMS: Operation = Operation {
    name: "recommend.list_similar_items",
    target: "recommend",
    about: "ListSimilarItems of a Zipf item (ids per `item_format`)",
    auth: Auth::Service(&["recommend:read"]),
    check: check::<SimilarParams>,
    build: build_similar,
};

/// `recommend.upsert_items`.
pub(crate) const UPSERT_ITEMS: Operation = Operation {
    name: "recommend.upsert_items",
    target: "recommend",
    about: "UpsertItems: `batch` items of the population's catalogue, in turn (seeds the catalog)",
    auth: Auth::Service(&["recommend:admin"]),
    check: check::<UpsertParams>,
    build: build_upsert,
};

fn client(conn: &Connection) -> RecommendServiceClient<Channel> {
    RecommendServiceClient::with_origin(conn.channel(), conn.origin().clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

fn check_page_size(page_size: i32) -> Result<(), String> {
    if (1..=100).contains(&page_size) {
        Ok(())
    } else {
        Err("page_size: must be between 1 and 100".to_owned())
    }
}

/// The call of a list read (`Recommend`, `ListSimilarItems`): its answer is counted, not
/// decoded (see `skim`).
fn listed<Q>(conn: &Connection, path: &'static str, request: Q) -> Call
where
    Q: prost::Message + Send + Sync + 'static,
{
    let (channel, origin) = (conn.channel(), conn.origin().clone());
    Call {
        request_bytes: request.encoded_len(),
        send: Box::pin(async move {
            let (list, response_bytes) = skim::unary::<_, skim::List>(
                channel,
                origin,
                path,
                tonic::Request::new(request),
                MAX_MESSAGE_BYTES,
            )
            .await?;
            Ok(Reply {
                items: 1,
                response_bytes,
                empty: list.items.is_empty(),
                ..Reply::default()
            })
        }),
    }
}

/// Where the recommendations are shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Placement {
    /// The home feed: no context.
    #[default]
    Home,
    /// A product page: the product.
    ProductPage,
    /// The cart: one to three items.
    Cart,
    /// After a purchase: one or two items.
    PostPurchase,
}

impl Placement {
    fn wire(self) -> i32 {
        match self {
            Self::Home => pb::Placement::Home as i32,
            Self::ProductPage => pb::Placement::ProductPage as i32,
            Self::Cart => pb::Placement::Cart as i32,
            Self::PostPurchase => pb::Placement::PostPurchase as i32,
        }
    }

    /// How many context items a request at this placement has.
    fn context(self, generator: &mut Generator) -> usize {
        match self {
            Self::Home => 0,
            Self::ProductPage => 1,
            Self::Cart => generator.rng.random_range(1..=3),
            Self::PostPurchase => generator.rng.random_range(1..=2),
        }
    }
}

/// Parameters of `recommend.recommend`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RecommendParams {
    /// `home`, `product_page`, `cart` or `post_purchase`.
    placement: Placement,
    /// How users are picked.
    users: Pick,
    /// Items wanted.
    page_size: i32,
    /// How context items are picked.
    items: Pick,
    /// Item ids as the catalog spells them, `{}` the rank (default: the population's).
    item_format: Option<String>,
}

impl Default for RecommendParams {
    fn default() -> Self {
        Self {
            placement: Placement::Home,
            users: Pick::Zipf,
            page_size: 20,
            items: Pick::Zipf,
            item_format: None,
        }
    }
}

impl Params for RecommendParams {
    fn validate(&self) -> Result<(), String> {
        check_page_size(self.page_size)?;
        ItemIds::new(self.item_format.as_deref()).map(|_| ())
    }
}

fn build_recommend(table: &toml::Table, conn: &Arc<Connection>) -> anyhow::Result<Arc<dyn Step>> {
    let p: RecommendParams = params(table).map_err(anyhow::Error::msg)?;
    Ok(Arc::new(Recommend {
        conn: conn.clone(),
        placement: p.placement,
        users: UserPicker::new(p.users),
        page_size: p.page_size,
        items: ItemPicker::new(p.items),
        ids: ItemIds::new(p.item_format.as_deref()).map_err(anyhow::Error::msg)?,
    }))
}

struct Recommend {
    conn: Arc<Connection>,
    placement: Placement,
    users: UserPicker,
    page_size: i32,
    items: ItemPicker,
    ids: ItemIds,
}

impl Step for Recommend {
    fn prepare(&self, generator: &mut Generator) -> Call {
        let context = (0..self.placement.context(generator))
            .map(|_| {
                let rank = self.items.pick(generator);
                generator.item_id(&self.ids, rank)
            })
            .collect();
        let request = pb::RecommendRequest {
            user_id: generator.user(&self.users),
            placement: self.placement.wire(),
            page_size: self.page_size,
            context_item_ids: context,
            ..pb::RecommendRequest::default()
        };
        listed(
            &self.conn,
            "/tailor.recommend.v1.RecommendService/Recommend",
            request,
        )
    }
}

/// Parameters of `recommend.list_similar_items`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct SimilarParams {
    /// How items are picked.
    items: Pick,
    /// Item ids as the catalog spells them, `{}` the rank (default: the population's).
    item_format: Option<String>,
    /// Items wanted.
    page_size: i32,
}

impl Default for SimilarParams {
    fn default() -> Self {
        Self {
            items: Pick::Zipf,
            item_format: None,
            page_size: 20,
        }
    }
}

impl Params for SimilarParams {
    fn validate(&self) -> Result<(), String> {
        check_page_size(self.page_size)?;
        ItemIds::new(self.item_format.as_deref()).map(|_| ())
    }
}

fn build_similar(table: &toml::Table, conn: &Arc<Connection>) -> anyhow::Result<Arc<dyn Step>> {
    let p: SimilarParams = params(table).map_err(anyhow::Error::msg)?;
    Ok(Arc::new(Similar {
        conn: conn.clone(),
        items: ItemPicker::new(p.items),
        ids: ItemIds::new(p.item_format.as_deref()).map_err(anyhow::Error::msg)?,
        page_size: p.page_size,
    }))
}

struct Similar {
    conn: Arc<Connection>,
    items: ItemPicker,
    ids: ItemIds,
    page_size: i32,
}

impl Step for Similar {
    fn prepare(&self, generator: &mut Generator) -> Call {
        let rank = self.items.pick(generator);
        let request = pb::ListSimilarItemsRequest {
            item_id: generator.item_id(&self.ids, rank),
            page_size: self.page_size,
        };
        listed(
            &self.conn,
            "/tailor.recommend.v1.RecommendService/ListSimilarItems",
            request,
        )
    }
}

/// Parameters of `recommend.upsert_items`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct UpsertParams {
    /// Items per call (the service takes at most 1000).
    batch: usize,
    /// Which items: in turn (seeding) by default; `zipf` rewrites popular items, as price
    /// and stock updates do.
    items: Pick,
    /// Item ids, `{}` the rank (default: the population's).
    item_format: Option<String>,
    /// Length of each item's image embedding (0: none). Without them the embedding source
    /// trains on nothing and product pages skip its work.
    embedding_dim: usize,
}

impl Default for UpsertParams {
    /// Embeddings as long as a CLIP-sized vision model's.
    fn default() -> Self {
        Self {
            batch: 500,
            items: Pick::Sequential,
            item_format: None,
            embedding_dim: 512,
        }
    }
}

impl Params for UpsertParams {
    fn validate(&self) -> Result<(), String> {
        if !(1..=1000).contains(&self.batch) {
            return Err("batch: must be between 1 and 1000 (the service's limit)".to_owned());
        }
        if self.embedding_dim > 4096 {
            return Err("embedding_dim: at most 4096 (the service's limit)".to_owned());
        }
        if self.batch * self.embedding_dim > MAX_EMBEDDING_FLOATS {
            return Err(format!(
                "batch × embedding_dim: at most {MAX_EMBEDDING_FLOATS} floats per call (8 MB messages)"
            ));
        }
        ItemIds::new(self.item_format.as_deref()).map(|_| ())
    }
}

fn build_upsert(table: &toml::Table, conn: &Arc<Connection>) -> anyhow::Result<Arc<dyn Step>> {
    let p: UpsertParams = params(table).map_err(anyhow::Error::msg)?;
    Ok(Arc::new(Upsert {
        conn: conn.clone(),
        batch: p.batch,
        items: ItemPicker::new(p.items),
        ids: ItemIds::new(p.item_format.as_deref()).map_err(anyhow::Error::msg)?,
        embedding_dim: p.embedding_dim,
    }))
}

struct Upsert {
    conn: Arc<Connection>,
    batch: usize,
    items: ItemPicker,
    ids: ItemIds,
    embedding_dim: usize,
}

/// Product names of a top-level category, in English and Chinese.
fn nouns(top: &str) -> [(&'static str, &'static str); 3] {
    match top {
        "electronics" => [
            ("Wireless Earbuds", "无线耳机"),
            ("Phone Case", "手机壳"),
            ("Power Bank", "充电宝"),
        ],
        "fashion" => [
            ("Summer Dress", "夏季连衣裙"),
            ("Running Shoes", "跑步鞋"),
            ("Denim Jacket", "牛仔外套"),
        ],
        "beauty" => [
            ("Face Cream", "面霜"),
            ("Lipstick", "口红"),
            ("Sunscreen", "防晒霜"),
        ],
        "sports" => [
            ("Yoga Mat", "瑜伽垫"),
            ("Dumbbell Set", "哑铃套装"),
            ("Cycling Gloves", "骑行手套"),
        ],
        "toys" => [
            ("Building Blocks", "积木"),
            ("Plush Toy", "毛绒玩具"),
            ("Jigsaw Puzzle", "拼图"),
        ],
        "books" => [
            ("Novel", "小说"),
            ("Cookbook", "菜谱"),
            ("Picture Book", "儿童绘本"),
        ],
        "grocery" => [
            ("Green Tea", "绿茶"),
            ("Instant Noodles", "方便面"),
            ("Olive Oil", "橄榄油"),
        ],
        "baby" => [
            ("Diapers", "纸尿裤"),
            ("Baby Bottle", "奶瓶"),
            ("Stroller", "婴儿车"),
        ],
        "pets" => [
            ("Cat Food", "猫粮"),
            ("Dog Leash", "狗绳"),
            ("Cat Litter", "猫砂"),
        ],
        "auto" => [
            ("Phone Mount", "车载手机支架"),
            ("Seat Cushion", "汽车坐垫"),
            ("Dash Cam", "行车记录仪"),
        ],
        "garden" => [
            ("Flower Pot", "花盆"),
            ("Garden Hose", "浇水软管"),
            ("Seed Kit", "种子套装"),
        ],
        _ => [
            ("Thermos Cup", "保温杯"),
            ("Bed Sheet Set", "床单四件套"),
            ("Desk Lamp", "台灯"),
        ],
    }
}

/// A value in [-1, 1) from a hash.
fn unit(h: u64) -> f32 {
    ((h >> 40) as f32 / (1u64 << 23) as f32) - 1.0
}

/// An L2-normalised image embedding of `dim` floats: the category's direction plus the
/// item's own, so items of a category look alike, as a vision model's vectors do.
fn embedding(category: &str, rank: u64, dim: usize) -> Vec<f32> {
    // FNV-1a of the category path.
    let category = category.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut v: Vec<f32> = (0..dim as u64)
        .map(|j| {
            0.8 * unit(mix(category ^ j.wrapping_mul(0x9e37_79b9)))
                + 0.6 * unit(mix(rank.wrapping_mul(0x1_0000_0001) ^ (j << 40)))
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// The catalog entry of the item of rank `rank` (within the catalogue): the population's
/// attributes, a title and description derived from them (a third of them in Chinese) and
/// an image embedding of `embedding_dim` floats.
fn catalog_item(
    population: &Population,
    ids: &ItemIds,
    rank: u64,
    embedding_dim: usize,
) -> pb::Item {
    let item = population.item(rank);
    let h = mix(rank ^ 0x7a11_0a5d);
    let top = item
        .category
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let (en, zh) = nouns(&top)[(h % 3) as usize];
    let chinese = (h >> 8).is_multiple_of(3);
    let title = if chinese {
        format!("{} {zh} {}", item.brand, item.tag)
    } else {
        format!("{} {en} ({})", item.brand, item.tag)
    };
    let description = if chinese {
        format!(
            "{}的{zh}，{}风格，品质保证，全国包邮。",
            item.brand, item.tag
        )
    } else {
        format!(
            "{en} by {}, in the {} style. Free delivery and 7-day returns.",
            item.brand, item.tag
        )
    };
    // A few items out of stock, as in any shop.
    let available = !(h >> 16).is_multiple_of(50);
    let id = ids.id(population, rank);
    let image_embedding = embedding(&item.category, rank, embedding_dim);
    pb::Item {
        image_url: format!("https://img.example.com/items/{id}.jpg"),
        item_id: id,
        kind: pb::ItemKind::Product as i32,
        title,
        description,
        category: item.category,
        brand: item.brand,
        tags: vec![item.tag, top],
        price: Some(Money {
            amount_minor: item.price_minor,
            currency: "CNY".to_owned(),
        }),
        available,
        stock: if available {
            1 + ((h >> 24) % 500) as i64
        } else {
            0
        },
        image_embedding,
        ..pb::Item::default()
    }
}

impl Step for Upsert {
    fn prepare(&self, generator: &mut Generator) -> Call {
        let catalogue = generator.population().spec().items;
        // One entry per item: the service refuses an id twice in a call.
        let ranks: BTreeSet<u64> = (0..self.batch)
            .map(|_| (self.items.pick(generator).max(1) - 1) % catalogue + 1)
            .collect();
        let items: Vec<pb::Item> = ranks
            .into_iter()
            .map(|rank| catalog_item(generator.population(), &self.ids, rank, self.embedding_dim))
            .collect();
        let sent = items.len() as u64;
        let request = pb::UpsertItemsRequest {
            items,
            request_id: generator.unique_id(),
        };
        let mut client = client(&self.conn);
        Call {
            request_bytes: request.encoded_len(),
            send: Box::pin(async move {
                let response = client.upsert_items(request).await?.into_inner();
                let upserted = u64::try_from(response.upserted_count).unwrap_or(0);
                Ok(Reply {
                    items: upserted,
                    rejected: sent.saturating_sub(upserted),
                    response_bytes: response.encoded_len(),
                    ..Reply::default()
                })
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::population::PopulationSpec;

    #[test]
    fn catalog_items_match_the_population_and_pass_the_services_checks() {
        let population = Population::new(&PopulationSpec::default()).unwrap();
        for rank in [1, 2, 42, 49_999] {
            let item = catalog_item(&population, &ItemIds::default(), rank, 512);
            let source = population.item(rank);
            assert_eq!(item.item_id, source.id);
            assert_eq!(item.category, source.category);
            assert_eq!(item.brand, source.brand);
            assert_eq!(
                item.price.as_ref().unwrap().amount_minor,
                source.price_minor
            );
            assert!(!item.title.trim().is_empty() && item.title.len() <= 1000);
            assert!(item.stock >= 0 && item.tags.len() <= 64);
            assert_eq!(item.image_embedding.len(), 512);
            let norm: f32 = item.image_embedding.iter().map(|x| x * x).sum();
            assert!((norm - 1.0).abs() < 1e-3, "{norm}");
        }
        let formatted = catalog_item(&population, &ItemIds::new(Some("item-{}")).unwrap(), 42, 0);
        assert!(formatted.image_embedding.is_empty());
        assert_eq!(formatted.item_id, "item-42");
        // Wrapping past the catalogue gives the same item again.
        let ids = ItemIds::new(Some("item-{}")).unwrap();
        assert_eq!(ids.id(&population, 50_042), "item-42");
    }

    #[test]
    fn items_of_a_category_look_alike() {
        let cosine = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        let (a, b) = (
            embedding("pets/pets-9", 1, 256),
            embedding("pets/pets-9", 2, 256),
        );
        let other = embedding("books/books-6", 3, 256);
        assert!(cosine(&a, &b) > 0.4, "{}", cosine(&a, &b));
        assert!(cosine(&a, &other).abs() < 0.3, "{}", cosine(&a, &other));
        assert_eq!(a, embedding("pets/pets-9", 1, 256), "deterministic");
    }

    #[test]
    fn parameters_are_checked() {
        let table = |text: &str| -> toml::Table { toml::from_str(text).unwrap() };
        assert!(check::<RecommendParams>(&table("placement = \"cart\"\npage_size = 10")).is_ok());
        assert!(check::<RecommendParams>(&table("placement = \"checkout\"")).is_err());
        assert_eq!(
            check::<SimilarParams>(&table("page_size = 0")).unwrap_err(),
            "page_size: must be between 1 and 100"
        );
        assert!(check::<UpsertParams>(&table("batch = 1001")).is_err());
        assert!(check::<UpsertParams>(&table("batch = 1000\nembedding_dim = 2048")).is_err());
        assert!(check::<UpsertParams>(&table("batch = 1000\nembedding_dim = 1024")).is_ok());
        assert!(check::<UpsertParams>(&table("items = \"zipf\"\nitem_format = \"x{}\"")).is_ok());
    }
}
