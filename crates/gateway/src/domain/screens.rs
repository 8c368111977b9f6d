//! The gateway's use-cases: the screens of the app, each assembled from several backend
//! calls made in parallel within one time budget, and event tracking.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tailor_kit::time::Micros;
use tokio::sync::watch;
use tonic::{Code, Status};

use super::feed::{Feed, Fetched, Module, ModuleState, TitleContext, assemble};
use super::layout::LayoutSettings;
use super::{Card, DeviceClass, ModuleKind, Money, Product, Viewer, ViewerProfile};
use crate::upstream::{Budget, Upstream};

/// An app event on its way to the profile service.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrackedEvent {
    /// Client event id.
    pub event_id: String,
    /// `tailor.events.v1.BehaviorType` number.
    pub kind: i32,
    /// Device time.
    pub occurred_at: Option<Micros>,
    /// Item.
    pub item_id: String,
    /// Search text.
    pub query: String,
    /// Quantity.
    pub quantity: i32,
    /// Unit price.
    pub unit_price: Option<Money>,
    /// Rating.
    pub rating: i32,
    /// Review text.
    pub review_text: String,
    /// App session.
    pub session_id: String,
}

/// What the profile service did with tracked events.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ingested {
    /// Stored.
    pub accepted: i32,
    /// Seen before.
    pub duplicates: i32,
    /// (index, field, reason) of refused events.
    pub rejected: Vec<(i32, String, String)>,
}

/// A product page.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductPage {
    /// The product.
    pub product: Product,
    /// Similar items.
    pub similar: Module,
    /// Bought together.
    pub bought_together: Module,
}

/// Wakes a viewer's feed streams when their activity may have changed the feed.
#[derive(Clone, Default)]
pub struct FeedChanges {
    senders: Arc<Mutex<HashMap<String, watch::Sender<u64>>>>,
}

impl FeedChanges {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<u64>>> {
        self.senders
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A receiver that changes whenever `viewer` acts.
    pub fn subscribe(&self, viewer: &str) -> watch::Receiver<u64> {
        let mut senders = self.lock();
        senders.retain(|_, s| s.receiver_count() > 0);
        senders
            .entry(viewer.to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Tells `viewer`'s streams to refresh.
    pub fn notify(&self, viewer: &str) {
        if let Some(sender) = self.lock().get(viewer) {
            sender.send_modify(|n| *n += 1);
        }
    }
}

/// Largest number of events in one TrackEvents call.
pub const MAX_TRACKED: usize = 200;

/// A list that is the same for every viewer, so one fetch serves them all for a while.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum SharedList {
    Popular {
        category: Option<String>,
        trending: bool,
        limit: usize,
    },
    Similar {
        item_id: String,
        limit: usize,
    },
    BoughtTogether {
        item_id: String,
        limit: usize,
    },
}

/// How long a shared list is reused: popularity and similarity change with training (hourly),
/// availability within seconds, and the product cards themselves are cached for 60 s.
const SHARED_LIST_TTL: Duration = Duration::from_secs(10);

/// The screens.
#[derive(Clone)]
pub struct Screens {
    upstream: Upstream,
    layout: Arc<LayoutSettings>,
    products: moka::future::Cache<String, Product>,
    lists: moka::future::Cache<SharedList, Arc<Vec<Card>>>,
    changes: FeedChanges,
}

impl Screens {
    /// Screens over `upstream` with `layout` rules.
    pub fn new(upstream: Upstream, layout: LayoutSettings) -> Self {
        Self {
            upstream,
            layout: Arc::new(layout),
            // Catalog details change rarely; a short TTL keeps prices and availability fresh.
            products: moka::future::Cache::builder()
                .max_capacity(50_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
            lists: moka::future::Cache::builder()
                .max_capacity(50_000)
                .time_to_live(SHARED_LIST_TTL)
                .build(),
            changes: FeedChanges::default(),
        }
    }

    /// Feed change notifications.
    pub fn changes(&self) -> &FeedChanges {
        &self.changes
    }

    /// The home feed of `viewer` on `device`, within `budget`. Never fails: a module whose
    /// backend is slow or down is marked unavailable.
    pub async fn home_feed(&self, viewer: &Viewer, device: DeviceClass, budget: Budget) -> Feed {
        let user = viewer.backend_id();
        let wanted = self
            .layout
            .devices
            .tablet
            .items_per_module
            .max(self.layout.devices.phone.items_per_module);
        // Phase 1: what the plan depends on, plus "for you" speculatively (nearly every plan
        // has it), in parallel.
        let (profile, recent, for_you) = tokio::join!(
            within(&budget, self.upstream.viewer_profile(&user, &budget)),
            within(&budget, self.upstream.recent_items(&user, wanted, &budget)),
            within(
                &budget,
                self.upstream.recommend_home(&user, wanted, &budget)
            ),
        );
        let profile = profile.unwrap_or_else(|status| {
            tracing::warn!(code = ?status.code(), "profile unavailable, using the default layout");
            ViewerProfile::default()
        });
        let plan = self.layout.plan(viewer, &profile, device);
        let recent = recent.ok();

        // Phase 2: the modules that depend on phase 1, in parallel.
        let needs = |kind| plan.modules.contains(&kind);
        let last_viewed = recent.as_ref().and_then(|r| r.first().cloned());
        let trending_category = profile.top_categories.first().cloned();
        let (recent_products, because, trending, popular) = tokio::join!(
            async {
                match &recent {
                    Some(ids)
                        if needs(ModuleKind::RecentlyViewed)
                            || needs(ModuleKind::BecauseYouViewed) =>
                    {
                        Some(within(&budget, self.products(&user, ids, &budget)).await)
                    }
                    _ => None,
                }
            },
            async {
                match &last_viewed {
                    Some(item) if needs(ModuleKind::BecauseYouViewed) => Some(
                        within(
                            &budget,
                            self.shared_list(
                                &user,
                                SharedList::Similar {
                                    item_id: item.clone(),
                                    limit: wanted,
                                },
                                &budget,
                            ),
                        )
                        .await,
                    ),
                    _ => None,
                }
            },
            async {
                if needs(ModuleKind::TrendingInYourCategories) {
                    Some(
                        within(
                            &budget,
                            self.shared_list(
                                &user,
                                SharedList::Popular {
                                    category: trending_category.clone(),
                                    trending: true,
                                    limit: wanted,
                                },
                                &budget,
                            ),
                        )
                        .await,
                    )
                } else {
                    None
                }
            },
            async {
                if needs(ModuleKind::Popular) {
                    Some(
                        within(
                            &budget,
                            self.shared_list(
                                &user,
                                SharedList::Popular {
                                    category: None,
                                    trending: false,
                                    limit: wanted,
                                },
                                &budget,
                            ),
                        )
                        .await,
                    )
                } else {
                    None
                }
            },
        );

        let because_title = match (&last_viewed, &recent_products) {
            (Some(item), Some(Ok(products))) => products
                .iter()
                .find(|p| &p.card.item_id == item)
                .map(|p| p.card.title.clone()),
            _ => None,
        };
        let fetched = |r: Option<Result<Vec<super::Card>, Status>>| match r {
            Some(Ok(cards)) => Fetched::Items(cards),
            // Nothing to base the module on (e.g. no recent views yet): empty, not broken.
            None => Fetched::Items(Vec::new()),
            Some(Err(_)) => Fetched::Unavailable,
        };
        let variant = for_you.as_ref().map(|(_, v)| v.clone()).unwrap_or_default();
        let results = vec![
            (
                ModuleKind::ForYou,
                match for_you {
                    Ok((cards, _)) => Fetched::Items(cards),
                    Err(_) => Fetched::Unavailable,
                },
            ),
            (
                ModuleKind::RecentlyViewed,
                match (recent.is_some(), recent_products) {
                    (false, _) => Fetched::Unavailable,
                    (true, products) => fetched(
                        products.map(|r| r.map(|ps| ps.into_iter().map(|p| p.card).collect())),
                    ),
                },
            ),
            (
                ModuleKind::BecauseYouViewed,
                if recent.is_none() {
                    Fetched::Unavailable
                } else {
                    fetched(because)
                },
            ),
            (ModuleKind::TrendingInYourCategories, fetched(trending)),
            (ModuleKind::Popular, fetched(popular)),
        ];
        let context = TitleContext {
            because_you_viewed: because_title,
            trending_category,
        };
        assemble(&plan, results, &context, variant)
    }

    /// `list` from the shared-list cache, or fetched from recommend (concurrent misses of one
    /// list wait for a single fetch). Failures are not kept.
    async fn shared_list(
        &self,
        user: &str,
        list: SharedList,
        budget: &Budget,
    ) -> Result<Vec<Card>, Status> {
        let fetch = async {
            match &list {
                SharedList::Popular {
                    category,
                    trending,
                    limit,
                } => {
                    self.upstream
                        .popular(user, category.as_deref(), *trending, *limit, budget)
                        .await
                }
                SharedList::Similar { item_id, limit } => {
                    self.upstream.similar(user, item_id, *limit, budget).await
                }
                SharedList::BoughtTogether { item_id, limit } => {
                    self.upstream
                        .bought_together(user, item_id, *limit, budget)
                        .await
                }
            }
            .map(Arc::new)
        };
        self.lists
            .try_get_with_by_ref(&list, fetch)
            .await
            .map(|cards| cards.as_ref().clone())
            .map_err(|status| status.as_ref().clone())
    }

    /// Products by id, from the short-lived cache or the catalog.
    async fn products(
        &self,
        user: &str,
        ids: &[String],
        budget: &Budget,
    ) -> Result<Vec<Product>, Status> {
        let mut found: HashMap<String, Product> = HashMap::new();
        let mut missing = Vec::new();
        for id in ids {
            match self.products.get(id).await {
                Some(p) => {
                    found.insert(id.clone(), p);
                }
                None => missing.push(id.clone()),
            }
        }
        if !missing.is_empty() {
            for p in self.upstream.products(user, &missing, budget).await? {
                self.products
                    .insert(p.card.item_id.clone(), p.clone())
                    .await;
                found.insert(p.card.item_id.clone(), p);
            }
        }
        Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
    }

    /// The product page of `item_id`. The product itself is required; the two modules
    /// degrade on their own.
    pub async fn product_page(
        &self,
        viewer: &Viewer,
        item_id: &str,
        device: DeviceClass,
        budget: Budget,
    ) -> Result<ProductPage, Status> {
        let user = viewer.backend_id();
        let n = self
            .layout
            .plan(viewer, &ViewerProfile::default(), device)
            .items_per_module;
        let ids = [item_id.to_owned()];
        let (product, similar, together) = tokio::join!(
            within(&budget, self.products(&user, &ids, &budget)),
            within(
                &budget,
                self.shared_list(
                    &user,
                    SharedList::Similar {
                        item_id: item_id.to_owned(),
                        limit: n,
                    },
                    &budget,
                )
            ),
            within(
                &budget,
                self.shared_list(
                    &user,
                    SharedList::BoughtTogether {
                        item_id: item_id.to_owned(),
                        limit: n,
                    },
                    &budget
                )
            ),
        );
        let product = product?
            .into_iter()
            .next()
            .ok_or_else(|| Status::not_found(format!("no product {item_id}")))?;
        let module = |kind, title: &str, r: Result<Vec<super::Card>, Status>| {
            let (items, state) = match r {
                Ok(items) if items.is_empty() => (items, ModuleState::Empty),
                Ok(mut items) => {
                    items.truncate(n);
                    (items, ModuleState::Ready)
                }
                Err(_) => (Vec::new(), ModuleState::Unavailable),
            };
            Module {
                kind,
                title: title.to_owned(),
                items,
                state,
            }
        };
        Ok(ProductPage {
            product,
            similar: module(ModuleKind::BecauseYouViewed, "Similar items", similar),
            bought_together: module(ModuleKind::ForYou, "Frequently bought together", together),
        })
    }

    /// Forwards the viewer's events to the profile service, with each item's category,
    /// brand and tags from the catalog (left out when the catalog cannot answer in time:
    /// the events matter more than their enrichment).
    pub async fn track(
        &self,
        viewer: &Viewer,
        events: Vec<TrackedEvent>,
        budget: Budget,
    ) -> Result<Ingested, Status> {
        if events.len() > MAX_TRACKED {
            return Err(tailor_kit::grpc::status::invalid_argument(
                "events",
                format!("at most {MAX_TRACKED} events per call"),
            ));
        }
        let user = viewer.backend_id();
        let mut ids: Vec<String> = events
            .iter()
            .map(|e| e.item_id.clone())
            .filter(|i| !i.is_empty())
            .collect();
        ids.sort();
        ids.dedup();
        let products: HashMap<String, Product> = match within(
            &budget,
            self.products(&user, &ids, &budget),
        )
        .await
        {
            Ok(products) => products
                .into_iter()
                .map(|p| (p.card.item_id.clone(), p))
                .collect(),
            Err(status) => {
                tracing::warn!(code = ?status.code(), "catalog unavailable, tracking without item context");
                HashMap::new()
            }
        };
        let enriched = events
            .into_iter()
            .map(|e| {
                let product = products.get(&e.item_id).cloned();
                (e, product)
            })
            .collect();
        let ingested = within(
            &budget,
            self.upstream.record_events(&user, enriched, &budget),
        )
        .await?;
        if ingested.accepted > 0 {
            self.changes.notify(&user);
        }
        Ok(ingested)
    }
}

/// Runs `call` within what is left of `budget`.
async fn within<T>(
    budget: &Budget,
    call: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    match tokio::time::timeout(budget.remaining(), call).await {
        Ok(result) => result,
        Err(_) => Err(Status::new(
            Code::DeadlineExceeded,
            "backend did not answer in time",
        )),
    }
}
