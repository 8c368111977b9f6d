//! The roles the binary can play: one per service. Adding a service means adding a variant
//! here and a match arm in [`crate::serve::run_role`].

use clap::ValueEnum;
use tailor_kit::db::DatabaseSettings;
use tailor_kit::grpc::server::ServerSettings;

use crate::settings::Settings;

/// A service this binary can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum)]
pub enum Role {
    /// User profiles: behaviour ingestion, profiles, segments, analytics (port 50051).
    Profile,
}

impl Role {
    /// Every role, in start order (services before the gateway that calls them).
    pub const ALL: &'static [Role] = &[Role::Profile];

    /// The role's name (also its OpenTelemetry service name suffix and env section).
    pub fn name(self) -> &'static str {
        match self {
            Self::Profile => "profile",
        }
    }

    /// How the role's gRPC server listens.
    pub fn server(self, settings: &Settings) -> &ServerSettings {
        match self {
            Self::Profile => &settings.profile.server,
        }
    }

    /// The role's own database, if it has one.
    pub fn database(self, settings: &Settings) -> Option<&DatabaseSettings> {
        match self {
            Self::Profile => Some(&settings.profile.database),
        }
    }
}
