//! Assembling a home feed: modules in the plan's order, each filled from its own backend
//! result; a module whose backend failed is marked unavailable instead of failing the feed.

use std::collections::HashSet;

use super::layout::{ImageSize, Plan};
use super::{Card, ModuleKind};

/// Whether a module could be filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleState {
    /// Items present.
    Ready,
    /// Its backend was slow or down.
    Unavailable,
    /// Nothing to show.
    Empty,
}

/// What fetching one module produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    /// Items (possibly none).
    Items(Vec<Card>),
    /// The backend failed or missed its deadline.
    Unavailable,
}

/// One module of a feed.
#[derive(Debug, Clone, PartialEq)]
pub struct Module {
    /// Kind.
    pub kind: ModuleKind,
    /// Title to display.
    pub title: String,
    /// Items.
    pub items: Vec<Card>,
    /// State.
    pub state: ModuleState,
}

/// A home feed.
#[derive(Debug, Clone, PartialEq)]
pub struct Feed {
    /// Theme.
    pub theme: String,
    /// Image size.
    pub image_size: ImageSize,
    /// Grid columns.
    pub columns: u32,
    /// Modules in order.
    pub modules: Vec<Module>,
    /// Experiment variant of the recommendations.
    pub variant: String,
}

/// Words for module titles that depend on the viewer.
#[derive(Debug, Clone, Default)]
pub struct TitleContext {
    /// Title of the item "because you viewed" refers to.
    pub because_you_viewed: Option<String>,
    /// Category "trending in your categories" is about.
    pub trending_category: Option<String>,
}

fn title(kind: ModuleKind, context: &TitleContext) -> String {
    match kind {
        ModuleKind::ForYou => "For you".to_owned(),
        ModuleKind::BecauseYouViewed => match &context.because_you_viewed {
            Some(item) => format!("Because you viewed {item}"),
            None => "Because you viewed".to_owned(),
        },
        ModuleKind::TrendingInYourCategories => match &context.trending_category {
            Some(category) => format!("Trending in {category}"),
            None => "Trending now".to_owned(),
        },
        ModuleKind::RecentlyViewed => "Recently viewed".to_owned(),
        ModuleKind::Popular => "Popular right now".to_owned(),
    }
}

/// Builds the feed from each planned module's result. An item shown by an earlier module is
/// not repeated by a later one (recently viewed excepted: repeating is its point).
pub fn assemble(
    plan: &Plan,
    results: Vec<(ModuleKind, Fetched)>,
    context: &TitleContext,
    variant: String,
) -> Feed {
    let mut shown: HashSet<String> = HashSet::new();
    let modules = plan
        .modules
        .iter()
        .map(|kind| {
            let fetched = results
                .iter()
                .find(|(k, _)| k == kind)
                .map_or(Fetched::Unavailable, |(_, f)| f.clone());
            let (items, state) = match fetched {
                Fetched::Unavailable => (Vec::new(), ModuleState::Unavailable),
                Fetched::Items(items) => {
                    let items: Vec<Card> = items
                        .into_iter()
                        .filter(|c| {
                            *kind == ModuleKind::RecentlyViewed || !shown.contains(&c.item_id)
                        })
                        .take(plan.items_per_module)
                        .collect();
                    if *kind != ModuleKind::RecentlyViewed {
                        shown.extend(items.iter().map(|c| c.item_id.clone()));
                    }
                    let state = if items.is_empty() {
                        ModuleState::Empty
                    } else {
                        ModuleState::Ready
                    };
                    (items, state)
                }
            };
            Module {
                kind: *kind,
                title: title(*kind, context),
                items,
                state,
            }
        })
        .collect();
    Feed {
        theme: plan.theme.clone(),
        image_size: plan.image_size,
        columns: plan.columns,
        modules,
        variant,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(id: &str) -> Card {
        Card {
            item_id: id.to_owned(),
            title: id.to_uppercase(),
            price: None,
            image_url: String::new(),
            category: String::new(),
            brand: String::new(),
            reason: String::new(),
        }
    }

    fn plan(modules: &[ModuleKind]) -> Plan {
        Plan {
            rule: "t".into(),
            modules: modules.to_vec(),
            theme: "default".into(),
            items_per_module: 2,
            image_size: ImageSize::Medium,
            columns: 2,
        }
    }

    #[test]
    fn a_failed_module_is_marked_and_the_rest_is_served() {
        use ModuleKind::*;
        let results = vec![
            (ForYou, Fetched::Unavailable),
            (
                Popular,
                Fetched::Items(vec![card("a"), card("b"), card("c")]),
            ),
            (RecentlyViewed, Fetched::Items(vec![])),
        ];
        let feed = assemble(
            &plan(&[ForYou, Popular, RecentlyViewed]),
            results,
            &TitleContext::default(),
            String::new(),
        );
        let states: Vec<ModuleState> = feed.modules.iter().map(|m| m.state).collect();
        assert_eq!(
            states,
            vec![
                ModuleState::Unavailable,
                ModuleState::Ready,
                ModuleState::Empty
            ]
        );
        assert_eq!(
            feed.modules[1].items.len(),
            2,
            "trimmed to the device's density"
        );
    }

    #[test]
    fn items_are_not_repeated_across_modules_except_recently_viewed() {
        use ModuleKind::*;
        let results = vec![
            (ForYou, Fetched::Items(vec![card("a"), card("b")])),
            (
                Popular,
                Fetched::Items(vec![card("a"), card("c"), card("d")]),
            ),
            (RecentlyViewed, Fetched::Items(vec![card("a")])),
        ];
        let context = TitleContext {
            because_you_viewed: Some("Kindle".into()),
            trending_category: None,
        };
        let feed = assemble(
            &plan(&[ForYou, Popular, RecentlyViewed]),
            results,
            &context,
            "v1".into(),
        );
        let ids = |i: usize| {
            feed.modules[i]
                .items
                .iter()
                .map(|c| c.item_id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(1), vec!["c", "d"]);
        assert_eq!(ids(2), vec!["a"]);
        assert_eq!(
            title(BecauseYouViewed, &context),
            "Because you viewed Kindle"
        );
    }
}
