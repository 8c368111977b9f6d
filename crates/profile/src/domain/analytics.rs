//! Behaviour analytics computed from stored events: conversion funnels, daily active users,
//! cohort retention and trending categories. Pure functions over rows the store streams in.

use std::collections::{BTreeMap, HashMap, HashSet};

use tailor_kit::time::{DAY, Micros, utc_date};

use super::event::{BehaviorKind, top_level};
use crate::config::EventWeights;

/// One event as funnels need it.
#[derive(Debug, Clone)]
pub struct FunnelRow {
    /// User.
    pub user_id: String,
    /// Item.
    pub item_id: String,
    /// Behaviour.
    pub kind: BehaviorKind,
    /// Category path ("" when unknown).
    pub category: String,
}

/// Users reaching each step.
#[derive(Debug, Clone, PartialEq)]
pub struct Funnel {
    /// (step, users reaching it).
    pub steps: Vec<(BehaviorKind, i64)>,
}

impl Funnel {
    /// users[i] / users[i-1] (1 for the first step, 0 when the previous is 0).
    pub fn conversion_from_previous(&self, i: usize) -> f64 {
        match i {
            0 => 1.0,
            _ => ratio(self.steps[i].1, self.steps[i - 1].1),
        }
    }

    /// users[i] / users[0].
    pub fn conversion_from_first(&self, i: usize) -> f64 {
        ratio(self.steps[i].1, self.steps.first().map_or(0, |s| s.1))
    }
}

fn ratio(a: i64, b: i64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Ordered funnels over `rows`, which must come sorted by (user, item, time): a user
/// reaches step k when, for some item, they did steps 1..=k in that order. Returns the
/// overall funnel and one per top-level category (largest first).
pub fn funnel(
    rows: impl IntoIterator<Item = FunnelRow>,
    steps: &[BehaviorKind],
) -> (Funnel, Vec<(String, Funnel)>) {
    // Deepest step reached per user, overall and per top-level category.
    let mut overall: HashMap<String, usize> = HashMap::new();
    let mut by_category: HashMap<String, HashMap<String, usize>> = HashMap::new();
    let mut current: Option<(String, String)> = None;
    let mut reached = 0usize;
    let mut category = String::new();
    let mut flush = |user: &str, category: &str, reached: usize| {
        if reached == 0 {
            return;
        }
        let deepest = overall.entry(user.to_owned()).or_default();
        *deepest = (*deepest).max(reached);
        let per = by_category
            .entry(top_level(category).to_owned())
            .or_default()
            .entry(user.to_owned())
            .or_default();
        *per = (*per).max(reached);
    };
    for row in rows {
        let key = (row.user_id.clone(), row.item_id.clone());
        if current.as_ref() != Some(&key) {
            if let Some((user, _)) = &current {
                flush(user, &category, reached);
            }
            current = Some(key);
            reached = 0;
            category = row.category.clone();
        }
        if reached < steps.len() && steps[reached] == row.kind {
            reached += 1;
        }
        if category.is_empty() {
            category = row.category.clone();
        }
    }
    if let Some((user, _)) = &current {
        flush(user, &category, reached);
    }
    let to_funnel = |deepest: &HashMap<String, usize>| Funnel {
        steps: steps
            .iter()
            .enumerate()
            .map(|(i, step)| (*step, deepest.values().filter(|d| **d > i).count() as i64))
            .collect(),
    };
    let mut categories: Vec<(String, Funnel)> = by_category
        .iter()
        .filter(|(c, _)| !c.is_empty())
        .map(|(c, d)| (c.clone(), to_funnel(d)))
        .collect();
    categories.sort_by(|a, b| {
        b.1.steps
            .first()
            .map(|s| s.1)
            .cmp(&a.1.steps.first().map(|s| s.1))
            .then_with(|| a.0.cmp(&b.0))
    });
    (to_funnel(&overall), categories)
}

/// Daily active users for each UTC day of [start, end), zero-filled, oldest first.
pub fn daily_series(counts: &HashMap<i64, i64>, start: Micros, end: Micros) -> Vec<(String, i64)> {
    let first = start.div_euclid(DAY);
    let last = (end - 1).div_euclid(DAY);
    (first..=last)
        .map(|day| (utc_date(day * DAY), counts.get(&day).copied().unwrap_or(0)))
        .collect()
}

/// A cohort: users first seen on `date`, and the share active on each later day.
#[derive(Debug, Clone, PartialEq)]
pub struct Cohort {
    /// "YYYY-MM-DD".
    pub date: String,
    /// Cohort size.
    pub size: i64,
    /// retained[d]: share active d days after the first day (retained[0] = 1).
    pub retained: Vec<f64>,
}

/// Cohort retention. `first_seen` gives each cohort member's first day (epoch day number);
/// `active` every (user, epoch day) with activity. Only days up to `today` are reported.
pub fn retention(
    first_seen: &[(String, i64)],
    active: &HashSet<(String, i64)>,
    max_day: i64,
    today: i64,
) -> Vec<Cohort> {
    let mut cohorts: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
    for (user, day) in first_seen {
        cohorts.entry(*day).or_default().push(user);
    }
    cohorts
        .into_iter()
        .map(|(day, users)| {
            let size = users.len() as i64;
            let last = max_day.min(today - day);
            let retained = (0..=last.max(0))
                .map(|d| {
                    let n = users
                        .iter()
                        .filter(|u| d == 0 || active.contains(&((**u).to_owned(), day + d)))
                        .count();
                    ratio(n as i64, size)
                })
                .collect();
            Cohort {
                date: utc_date(day * DAY),
                size,
                retained,
            }
        })
        .collect()
}

/// A category's weighted activity now and before.
#[derive(Debug, Clone, PartialEq)]
pub struct Trending {
    /// Top-level category.
    pub category: String,
    /// Weighted events in the window.
    pub score: f64,
    /// Weighted events in the previous window.
    pub previous_score: f64,
    /// (score + 1) / (previous + 1).
    pub growth: f64,
}

/// Ranks top-level categories by growth × log(1 + score), so a category going from 1 to 3
/// events does not outrank one going from 1 000 to 2 000. `rows`: (category, kind, in the
/// current window?, count).
pub fn trending(
    rows: impl IntoIterator<Item = (String, BehaviorKind, bool, i64)>,
    weights: &EventWeights,
    limit: usize,
) -> Vec<Trending> {
    let mut scores: HashMap<String, (f64, f64)> = HashMap::new();
    for (category, kind, current, count) in rows {
        if category.is_empty() {
            continue;
        }
        let w = kind_weight(kind, weights) * count as f64;
        let entry = scores.entry(top_level(&category).to_owned()).or_default();
        if current {
            entry.0 += w;
        } else {
            entry.1 += w;
        }
    }
    let mut out: Vec<Trending> = scores
        .into_iter()
        .filter(|(_, (score, _))| *score > 0.0)
        .map(|(category, (score, previous_score))| Trending {
            category,
            score,
            previous_score,
            growth: (score + 1.0) / (previous_score + 1.0),
        })
        .collect();
    let rank = |t: &Trending| t.growth * (1.0 + t.score).ln();
    out.sort_by(|a, b| {
        rank(b)
            .total_cmp(&rank(a))
            .then_with(|| a.category.cmp(&b.category))
    });
    out.truncate(limit);
    out
}

fn kind_weight(kind: BehaviorKind, w: &EventWeights) -> f64 {
    // Trending counts attention, so negative signals count as attention too.
    match kind {
        BehaviorKind::View => w.view,
        BehaviorKind::Search => w.search,
        BehaviorKind::Click => w.click,
        BehaviorKind::AddToCart => w.add_to_cart,
        BehaviorKind::RemoveFromCart => w.remove_from_cart.abs(),
        BehaviorKind::Purchase => w.purchase,
        BehaviorKind::Review => w.review,
        BehaviorKind::Share => w.share,
    }
    .max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(user: &str, item: &str, kind: BehaviorKind, category: &str) -> FunnelRow {
        FunnelRow {
            user_id: user.into(),
            item_id: item.into(),
            kind,
            category: category.into(),
        }
    }

    #[test]
    fn funnel_counts_users_reaching_each_step_in_order_per_item() {
        use BehaviorKind::*;
        let rows = vec![
            // u1 views and buys item a (cart in between): reaches 3
            row("u1", "a", View, "books/novels"),
            row("u1", "a", AddToCart, ""),
            row("u1", "a", Purchase, ""),
            // u2 carts before viewing b: cart does not count, reaches 1
            row("u2", "b", AddToCart, "toys"),
            row("u2", "b", View, "toys"),
            // u3 views c, carts d: no item goes further than 1
            row("u3", "c", View, "books"),
            row("u3", "d", AddToCart, "books"),
        ];
        let (overall, categories) = funnel(rows, &[View, AddToCart, Purchase]);
        assert_eq!(
            overall.steps,
            vec![(View, 3), (AddToCart, 1), (Purchase, 1)]
        );
        assert!((overall.conversion_from_previous(1) - 1.0 / 3.0).abs() < 1e-12);
        assert!((overall.conversion_from_first(2) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(categories[0].0, "books");
        assert_eq!(
            categories[0].1.steps,
            vec![(View, 2), (AddToCart, 1), (Purchase, 1)]
        );
    }

    #[test]
    fn retention_reports_shares_per_day_since_first_seen() {
        let first_seen = vec![
            ("a".to_owned(), 100),
            ("b".to_owned(), 100),
            ("c".to_owned(), 101),
        ];
        let active: HashSet<(String, i64)> = [
            ("a".to_owned(), 101),
            ("a".to_owned(), 102),
            ("b".to_owned(), 102),
        ]
        .into_iter()
        .collect();
        let cohorts = retention(&first_seen, &active, 30, 102);
        assert_eq!(cohorts.len(), 2);
        assert_eq!(cohorts[0].size, 2);
        assert_eq!(cohorts[0].retained, vec![1.0, 0.5, 1.0]);
        assert_eq!(cohorts[1].retained, vec![1.0, 0.0]);
    }

    #[test]
    fn daily_series_fills_missing_days() {
        let counts = HashMap::from([(1, 5)]);
        assert_eq!(
            daily_series(&counts, 0, 3 * DAY),
            vec![
                ("1970-01-01".into(), 0),
                ("1970-01-02".into(), 5),
                ("1970-01-03".into(), 0)
            ]
        );
    }

    #[test]
    fn trending_prefers_growth_with_volume() {
        use BehaviorKind::View;
        let rows = vec![
            ("toys/lego".to_owned(), View, true, 300),
            ("toys".to_owned(), View, false, 100),
            ("books".to_owned(), View, true, 100),
            ("books".to_owned(), View, false, 100),
            ("garden".to_owned(), View, true, 3),
        ];
        let ranked = trending(rows, &EventWeights::default(), 10);
        assert_eq!(ranked[0].category, "toys");
        assert!((ranked[0].growth - 301.0 / 101.0).abs() < 1e-12);
        assert_eq!(ranked.len(), 3);
    }
}
