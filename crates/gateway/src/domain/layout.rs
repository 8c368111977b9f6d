//! Layout rules: which modules a viewer sees, in which order, with which theme, and how
//! dense — chosen by the first configured rule whose conditions match the viewer's segment
//! and device, then sized by the device class.

use serde::{Deserialize, Serialize};
use tailor_kit::config::{ConfigError, Validate, key};

use super::{DeviceClass, ModuleKind, Viewer, ViewerProfile};

/// Image sizes of a layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageSize {
    /// Thumbnails.
    Small,
    /// Medium.
    Medium,
    /// Large.
    Large,
}

/// How dense a device class is.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceProfile {
    /// Items per module.
    pub items_per_module: usize,
    /// Image size.
    pub image_size: ImageSize,
    /// Grid columns.
    pub columns: u32,
}

/// Density per device class.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceProfiles {
    /// Phones.
    pub phone: DeviceProfile,
    /// Tablets.
    pub tablet: DeviceProfile,
    /// Low-end phones: fewer items, smaller images.
    pub low_end: DeviceProfile,
}

impl Default for DeviceProfiles {
    fn default() -> Self {
        Self {
            phone: DeviceProfile {
                items_per_module: 10,
                image_size: ImageSize::Medium,
                columns: 2,
            },
            tablet: DeviceProfile {
                items_per_module: 16,
                image_size: ImageSize::Large,
                columns: 4,
            },
            low_end: DeviceProfile {
                items_per_module: 6,
                image_size: ImageSize::Small,
                columns: 2,
            },
        }
    }
}

/// When a rule applies; every non-empty condition must hold.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Conditions {
    /// Signed in (true) or anonymous (false); unset: either.
    pub signed_in: Option<bool>,
    /// Lifecycle segment is one of these.
    pub lifecycle: Vec<String>,
    /// Spending tier is one of these.
    pub spending_tier: Vec<String>,
    /// Device class is one of these.
    pub device: Vec<DeviceClass>,
}

/// One layout rule.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LayoutRule {
    /// For logs and tests.
    pub name: String,
    /// When it applies.
    #[serde(default)]
    pub when: Conditions,
    /// Modules in display order.
    pub modules: Vec<ModuleKind>,
    /// Theme name for the app.
    pub theme: String,
}

/// Layout configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LayoutSettings {
    /// Rules, first match wins; the last should match everyone.
    pub rules: Vec<LayoutRule>,
    /// Density per device class.
    pub devices: DeviceProfiles,
}

fn rule(name: &str, when: Conditions, modules: &[ModuleKind], theme: &str) -> LayoutRule {
    LayoutRule {
        name: name.to_owned(),
        when,
        modules: modules.to_vec(),
        theme: theme.to_owned(),
    }
}

impl Default for LayoutSettings {
    fn default() -> Self {
        use ModuleKind::*;
        Self {
            rules: vec![
                rule(
                    "anonymous",
                    Conditions {
                        signed_in: Some(false),
                        ..Conditions::default()
                    },
                    &[ForYou, RecentlyViewed, Popular],
                    "default",
                ),
                rule(
                    "newcomer",
                    Conditions {
                        lifecycle: vec!["new".to_owned()],
                        ..Conditions::default()
                    },
                    &[Popular, ForYou, RecentlyViewed],
                    "welcome",
                ),
                rule(
                    "win-back",
                    Conditions {
                        lifecycle: vec!["at_risk".to_owned(), "churned".to_owned()],
                        ..Conditions::default()
                    },
                    &[
                        BecauseYouViewed,
                        ForYou,
                        TrendingInYourCategories,
                        RecentlyViewed,
                    ],
                    "winback",
                ),
                rule(
                    "premium",
                    Conditions {
                        spending_tier: vec!["premium".to_owned(), "high".to_owned()],
                        ..Conditions::default()
                    },
                    &[
                        ForYou,
                        BecauseYouViewed,
                        TrendingInYourCategories,
                        RecentlyViewed,
                    ],
                    "premium",
                ),
                rule(
                    "default",
                    Conditions::default(),
                    &[
                        ForYou,
                        BecauseYouViewed,
                        TrendingInYourCategories,
                        RecentlyViewed,
                    ],
                    "default",
                ),
            ],
            devices: DeviceProfiles::default(),
        }
    }
}

impl Validate for LayoutSettings {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if self.rules.is_empty() {
            return Err(ConfigError::invalid(
                key(prefix, "rules"),
                "at least one rule is needed",
            ));
        }
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.modules.is_empty() {
                return Err(ConfigError::invalid(
                    key(prefix, &format!("rules[{i}].modules")),
                    "list at least one module",
                ));
            }
        }
        for (name, device) in [
            ("phone", &self.devices.phone),
            ("tablet", &self.devices.tablet),
            ("low_end", &self.devices.low_end),
        ] {
            tailor_kit::config::check_range(
                &key(prefix, &format!("devices.{name}")),
                "items_per_module",
                device.items_per_module,
                1..=100,
            )?;
        }
        Ok(())
    }
}

/// The layout chosen for one viewer.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Rule that matched.
    pub rule: String,
    /// Modules in order.
    pub modules: Vec<ModuleKind>,
    /// Theme.
    pub theme: String,
    /// Items per module.
    pub items_per_module: usize,
    /// Image size.
    pub image_size: ImageSize,
    /// Grid columns.
    pub columns: u32,
}

impl Conditions {
    fn matches(&self, viewer: &Viewer, profile: &ViewerProfile, device: DeviceClass) -> bool {
        self.signed_in.is_none_or(|s| s == viewer.is_signed_in())
            && (self.lifecycle.is_empty() || self.lifecycle.contains(&profile.lifecycle))
            && (self.spending_tier.is_empty()
                || self.spending_tier.contains(&profile.spending_tier))
            && (self.device.is_empty() || self.device.contains(&device))
    }
}

impl LayoutSettings {
    /// The plan for a viewer with `profile` (empty when the profile is unknown or
    /// unavailable) on `device`.
    pub fn plan(&self, viewer: &Viewer, profile: &ViewerProfile, device: DeviceClass) -> Plan {
        let chosen = self
            .rules
            .iter()
            .find(|r| r.when.matches(viewer, profile, device))
            .or(self.rules.last());
        let density = match device {
            DeviceClass::Phone => &self.devices.phone,
            DeviceClass::Tablet => &self.devices.tablet,
            DeviceClass::LowEnd => &self.devices.low_end,
        };
        Plan {
            rule: chosen.map(|r| r.name.clone()).unwrap_or_default(),
            modules: chosen
                .map(|r| r.modules.clone())
                .unwrap_or_else(|| vec![ModuleKind::Popular]),
            theme: chosen
                .map(|r| r.theme.clone())
                .unwrap_or_else(|| "default".to_owned()),
            items_per_module: density.items_per_module,
            image_size: density.image_size,
            columns: density.columns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(lifecycle: &str, tier: &str) -> ViewerProfile {
        ViewerProfile {
            lifecycle: lifecycle.to_owned(),
            spending_tier: tier.to_owned(),
            top_categories: vec![],
        }
    }

    #[test]
    fn rules_pick_modules_and_theme_by_segment() {
        let layout = LayoutSettings::default();
        let user = Viewer::User("u".into());
        let device = Viewer::Device("d".into());
        assert_eq!(
            layout
                .plan(&device, &ViewerProfile::default(), DeviceClass::Phone)
                .rule,
            "anonymous"
        );
        assert_eq!(
            layout
                .plan(&user, &profile("new", ""), DeviceClass::Phone)
                .theme,
            "welcome"
        );
        let winback = layout.plan(&user, &profile("churned", "high"), DeviceClass::Phone);
        assert_eq!(winback.rule, "win-back", "earlier rules win");
        assert_eq!(winback.modules[0], ModuleKind::BecauseYouViewed);
        assert_eq!(
            layout
                .plan(&user, &profile("active", "premium"), DeviceClass::Phone)
                .theme,
            "premium"
        );
        assert_eq!(
            layout
                .plan(&user, &profile("active", "low"), DeviceClass::Phone)
                .rule,
            "default"
        );
    }

    #[test]
    fn device_class_sets_density() {
        let layout = LayoutSettings::default();
        let user = Viewer::User("u".into());
        let low = layout.plan(&user, &profile("active", ""), DeviceClass::LowEnd);
        let tablet = layout.plan(&user, &profile("active", ""), DeviceClass::Tablet);
        assert!(low.items_per_module < tablet.items_per_module);
        assert_eq!(low.image_size, ImageSize::Small);
        assert_eq!(tablet.columns, 4);
    }
}
