//! Segment rules: which users marketing should target, as a conjunction of conditions over
//! profile dimensions, evaluated against profiles as of now.

use super::profile::{InterestDimension, Lifecycle, ProfileView, SpendingTier};

/// One condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Decayed interest in `key` at least `min_weight`.
    Interest {
        /// Kind of interest.
        dimension: InterestDimension,
        /// Category path (a prefix counts: "electronics" covers "electronics/phones"
        /// because parents accumulate their children's weight), brand or tag.
        key: String,
        /// Threshold.
        min_weight: f64,
    },
    /// Lifecycle is one of these.
    Lifecycle(Vec<Lifecycle>),
    /// Spending tier is one of these.
    SpendingTier(Vec<SpendingTier>),
    /// Declared region is one of these.
    Region(Vec<String>),
    /// Purchase bounds.
    Rfm {
        /// At least this many purchases in the window.
        min_frequency: Option<i64>,
        /// At least this spend in the window.
        min_monetary_minor: Option<i64>,
        /// Bought within this many days.
        max_recency_days: Option<f64>,
    },
}

/// All conditions must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rule {
    /// The conditions.
    pub conditions: Vec<Condition>,
}

impl Rule {
    /// Whether `profile` satisfies every condition.
    pub fn matches(&self, profile: &ProfileView) -> bool {
        self.conditions.iter().all(|c| c.matches(profile))
    }
}

impl Condition {
    fn matches(&self, p: &ProfileView) -> bool {
        match self {
            Self::Interest {
                dimension,
                key,
                min_weight,
            } => p
                .interests
                .iter()
                .any(|i| i.dimension == *dimension && i.key == *key && i.weight >= *min_weight),
            Self::Lifecycle(any_of) => any_of.contains(&p.lifecycle),
            Self::SpendingTier(any_of) => any_of.contains(&p.spending_tier),
            Self::Region(any_of) => any_of.contains(&p.attributes.region),
            Self::Rfm {
                min_frequency,
                min_monetary_minor,
                max_recency_days,
            } => {
                min_frequency.is_none_or(|min| p.rfm.frequency >= min)
                    && min_monetary_minor.is_none_or(|min| p.rfm.monetary_minor >= min)
                    && max_recency_days
                        .is_none_or(|max| p.rfm.recency_days.is_some_and(|days| days <= max))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelSettings;
    use crate::domain::profile::{Interest, ProfileRecord};

    fn profile() -> ProfileView {
        let mut view = ProfileRecord::new("u").view(0, &ModelSettings::default());
        view.interests = vec![Interest {
            dimension: InterestDimension::Category,
            key: "electronics".into(),
            weight: 3.0,
        }];
        view.lifecycle = Lifecycle::AtRisk;
        view.attributes.region = "CN-31".into();
        view
    }

    #[test]
    fn all_conditions_must_hold() {
        let interest = |min| Condition::Interest {
            dimension: InterestDimension::Category,
            key: "electronics".into(),
            min_weight: min,
        };
        let at_risk = Condition::Lifecycle(vec![Lifecycle::AtRisk, Lifecycle::Churned]);
        assert!(
            Rule {
                conditions: vec![interest(2.0), at_risk.clone()]
            }
            .matches(&profile())
        );
        assert!(
            !Rule {
                conditions: vec![interest(4.0), at_risk]
            }
            .matches(&profile())
        );
        assert!(Rule::default().matches(&profile()));
        assert!(
            Rule {
                conditions: vec![Condition::Region(vec!["CN-31".into()])]
            }
            .matches(&profile())
        );
        assert!(
            !Rule {
                conditions: vec![Condition::SpendingTier(vec![SpendingTier::High])]
            }
            .matches(&profile())
        );
        let never_bought = Condition::Rfm {
            min_frequency: None,
            min_monetary_minor: None,
            max_recency_days: Some(30.0),
        };
        assert!(
            !Rule {
                conditions: vec![never_bought]
            }
            .matches(&profile())
        );
    }
}
