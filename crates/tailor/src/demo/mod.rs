//! `tailor demo seed`: fills a running system with a catalog and a month of shoppers, through
//! the services' public APIs (as the catalog owner and the app would), then trains the
//! recommendation models so the storefront is personalized at once.
//!
//! - [`catalog`]: the built-in catalog (or goodbooks books, read by [`goodbooks`]);
//! - [`shoppers`]: who the simulated shoppers are and what they do.
//!
//! Seeding twice with the same `--seed`, `--days` and catalog stores nothing twice: event ids
//! are stable and the profile service drops repeats.

pub mod catalog;
pub mod goodbooks;
pub mod shoppers;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use futures::{StreamExt as _, TryStreamExt as _};
use indicatif::{ProgressBar, ProgressStyle};
use tailor_kit::auth::{TokenIssuer, TokenSource};
use tailor_kit::grpc::client::{Outbound, UpstreamSettings};
use tailor_kit::time::now_micros;
use tailor_proto::common::v1::Money;
use tailor_proto::profile::v1 as ppb;
use tailor_proto::profile::v1::profile_service_client::ProfileServiceClient;
use tailor_proto::recommend::v1 as rpb;
use tailor_proto::recommend::v1::recommend_service_client::RecommendServiceClient;

use self::catalog::{CURRENCY, Catalog, Product};
use self::shoppers::{Event, Shopper};
use crate::settings::Settings;

/// Events per RecordEvents call (the profile service accepts 1,000 by default).
const EVENT_BATCH: usize = 500;
/// Items per UpsertItems call (the recommend service accepts 1,000).
const ITEM_BATCH: usize = 500;
/// Calls in flight at once: enough to keep both services busy on a small machine.
const IN_FLIGHT: usize = 4;

/// Options of `tailor demo seed`.
#[derive(Debug, Clone, clap::Args)]
pub struct SeedArgs {
    /// Simulated shoppers (`shopper-0001` …).
    #[arg(long, default_value_t = 300)]
    pub users: usize,
    /// Days of history before now.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Seed of the shoppers (the built-in catalog is always the same).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Use the goodbooks-10k books (a directory holding books.csv) as the catalog.
    #[arg(long, value_name = "DIR")]
    pub goodbooks: Option<PathBuf>,
    /// The profile service; default: the gateway's `upstreams.profile.url` setting.
    #[arg(long, value_name = "URL")]
    pub profile_url: Option<String>,
    /// The recommend service; default: the gateway's `upstreams.recommend.url` setting.
    #[arg(long, value_name = "URL")]
    pub recommend_url: Option<String>,
    /// Skip training the models after seeding.
    #[arg(long)]
    pub no_train: bool,
}

/// What a seeding run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeedReport {
    /// Items upserted.
    pub items: usize,
    /// Shoppers simulated.
    pub users: usize,
    /// Events sent.
    pub events: usize,
    /// Events the profile service stored.
    pub accepted: usize,
    /// Events it already had.
    pub duplicates: usize,
    /// The model version trained, unless `--no-train`.
    pub model: Option<rpb::ModelVersion>,
}

/// Seeds the services at the URLs of `args` (or `settings`), showing progress.
pub async fn seed(settings: &Settings, args: &SeedArgs) -> anyhow::Result<SeedReport> {
    let catalog = match &args.goodbooks {
        Some(dir) => goodbooks::load(dir)?,
        None => catalog::builtin(),
    };
    let upstreams = &settings.gateway.upstreams;
    let tokens = TokenSource::new(TokenIssuer::new(
        &settings.auth,
        "demo",
        &[
            tailor_profile::api::WRITE_SCOPE,
            tailor_recommend::api::ADMIN_SCOPE,
        ],
    )?);
    let connect = |url: &Option<String>, default: &UpstreamSettings| {
        let mut upstream = default.clone();
        if let Some(url) = url {
            upstream.url.clone_from(url);
        }
        // Training a large catalog takes longer than a serving call may.
        upstream.timeout = Duration::from_secs(60);
        Outbound::to(&upstream, tokens.clone())
    };
    let mut recommend =
        RecommendServiceClient::new(connect(&args.recommend_url, &upstreams.recommend)?);
    let profile = ProfileServiceClient::new(connect(&args.profile_url, &upstreams.profile)?);

    let mut report = SeedReport {
        items: upload_catalog(&mut recommend, &catalog).await?,
        users: args.users,
        ..SeedReport::default()
    };
    let now = now_micros();
    let bar = bar(
        args.users as u64,
        "shoppers {bar:30} {pos}/{len} [{elapsed_precise}, {eta} left] {msg}",
    );
    // Shoppers are simulated lazily, a few at a time, so memory stays flat for any --users.
    let mut sent = futures::stream::iter(0..args.users)
        .map(|index| {
            let (shopper, events) = shoppers::simulate(&catalog, args.seed, index, args.days, now);
            send_shopper(profile.clone(), &catalog, shopper, events)
        })
        .buffer_unordered(IN_FLIGHT);
    while let Some(result) = sent.try_next().await? {
        report.events += result.events;
        report.accepted += result.accepted;
        report.duplicates += result.duplicates;
        bar.inc(1);
        bar.set_message(format!("{} events", report.events));
    }
    bar.finish();

    if !args.no_train {
        report.model = Some(train(&mut recommend).await?);
    }
    Ok(report)
}

fn bar(len: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

async fn upload_catalog(
    recommend: &mut RecommendServiceClient<Outbound>,
    catalog: &Catalog,
) -> anyhow::Result<usize> {
    let bar = bar(
        catalog.products.len() as u64,
        "catalog  {bar:30} {pos}/{len} items",
    );
    let mut upserted = 0;
    for chunk in catalog.products.chunks(ITEM_BATCH) {
        let response = recommend
            .upsert_items(rpb::UpsertItemsRequest {
                items: chunk.iter().map(item).collect(),
                request_id: String::new(),
            })
            .await
            .context("uploading the catalog to the recommend service")?;
        upserted += usize::try_from(response.into_inner().upserted_count).unwrap_or_default();
        bar.inc(chunk.len() as u64);
    }
    bar.finish();
    Ok(upserted)
}

fn item(p: &Product) -> rpb::Item {
    rpb::Item {
        item_id: p.item_id.clone(),
        kind: rpb::ItemKind::Product.into(),
        title: p.title.clone(),
        description: p.description.clone(),
        category: p.category.clone(),
        brand: p.brand.clone(),
        tags: p.tags.clone(),
        price: Some(money(p.price_minor)),
        available: p.available,
        stock: p.stock,
        image_embedding: p.embedding.clone(),
        image_url: p.image_url.clone(),
        update_time: None,
    }
}

fn money(amount_minor: i64) -> Money {
    Money {
        amount_minor,
        currency: CURRENCY.to_owned(),
    }
}

#[derive(Debug, Default)]
struct Sent {
    events: usize,
    accepted: usize,
    duplicates: usize,
}

/// Declares the shopper's attributes, then sends their history in batches.
async fn send_shopper(
    mut profile: ProfileServiceClient<Outbound>,
    catalog: &Catalog,
    shopper: Shopper,
    events: Vec<Event>,
) -> anyhow::Result<Sent> {
    profile
        .update_user_attributes(ppb::UpdateUserAttributesRequest {
            user_id: shopper.user_id.clone(),
            attributes: Some(ppb::UserAttributes {
                gender: shopper.gender as i32,
                age_band: shopper.age_band as i32,
                region: shopper.region.to_owned(),
                occupation: shopper.occupation.unwrap_or_default().to_owned(),
            }),
            update_mask: None,
            request_id: String::new(),
        })
        .await
        .with_context(|| format!("declaring {}'s attributes", shopper.user_id))?;
    let mut sent = Sent::default();
    for chunk in events.chunks(EVENT_BATCH) {
        let response = profile
            .record_events(ppb::RecordEventsRequest {
                events: chunk.iter().map(|e| behavior(catalog, e)).collect(),
            })
            .await
            .with_context(|| format!("sending {}'s events", shopper.user_id))?
            .into_inner();
        // The simulation only makes valid events: a refusal is a bug worth stopping for.
        if let Some(first) = response.rejected.first() {
            bail!(
                "the profile service refused {} of {}'s events; first: {} {}",
                response.rejected.len(),
                shopper.user_id,
                first.field,
                first.reason
            );
        }
        sent.events += chunk.len();
        sent.accepted += usize::try_from(response.accepted_count).unwrap_or_default();
        sent.duplicates += usize::try_from(response.duplicate_count).unwrap_or_default();
    }
    Ok(sent)
}

fn behavior(catalog: &Catalog, e: &Event) -> ppb::BehaviorEvent {
    let product = e.item.and_then(|i| catalog.products.get(i));
    ppb::BehaviorEvent {
        event_id: e.event_id.clone(),
        user_id: e.user_id.clone(),
        r#type: e.kind as i32,
        occurred_at: Some(tailor_kit::time::to_timestamp(e.at)),
        item_id: product.map(|p| p.item_id.clone()).unwrap_or_default(),
        item: product.map(|p| ppb::ItemContext {
            category: p.category.clone(),
            brand: p.brand.clone(),
            tags: p.tags.clone(),
        }),
        query: e.query.clone().unwrap_or_default(),
        quantity: e.quantity,
        unit_price: e.unit_price.map(money),
        discounted: e.discounted,
        rating: e.rating,
        review_text: e.review_text.clone().unwrap_or_default(),
        session_id: e.session_id.clone(),
    }
}

/// Starts a training run and waits until its model version is the active one.
async fn train(
    recommend: &mut RecommendServiceClient<Outbound>,
) -> anyhow::Result<rpb::ModelVersion> {
    let before = active_model(recommend).await?.map(|m| m.version);
    let spinner = bar(0, "training {spinner} [{elapsed_precise}] {msg}");
    spinner.enable_steady_tick(Duration::from_millis(120));
    let started = recommend
        .train_models(rpb::TrainModelsRequest {
            request_id: String::new(),
        })
        .await
        .context("starting a training run")?
        .into_inner()
        .started;
    if !started {
        spinner.set_message("a run was already going; waiting for it");
    }
    // Training runs in the background of the recommend service; poll for its result.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30 * 60);
    loop {
        if let Some(model) = active_model(recommend).await?
            && Some(&model.version) != before.as_ref()
        {
            spinner.finish_and_clear();
            return Ok(model);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("training did not finish within 30 minutes; see the recommend service's log");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn active_model(
    recommend: &mut RecommendServiceClient<Outbound>,
) -> anyhow::Result<Option<rpb::ModelVersion>> {
    let models = recommend
        .list_models(rpb::ListModelsRequest {
            page_size: 5,
            page_token: String::new(),
        })
        .await
        .context("listing model versions")?
        .into_inner()
        .models;
    Ok(models.into_iter().find(|m| m.active))
}
