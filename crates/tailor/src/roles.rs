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
    /// Recommendations: catalog, models, serving (port 50052).
    Recommend,
    /// The mobile gateway: gRPC-web and gRPC for the app, and the storefront (port 8080).
    Gateway,
}

impl Role {
    /// Every role, in start order (services before the gateway that calls them).
    pub const ALL: &'static [Role] = &[Role::Profile, Role::Recommend, Role::Gateway];

    /// Scopes of the role's own service credential (what it may do on its own, beyond
    /// acting for the user of a request).
    pub fn scopes(self) -> &'static [&'static str] {
        match self {
            Self::Profile | Self::Recommend => &[],
            Self::Gateway => &tailor_gateway::SCOPES,
        }
    }

    /// The role's name (also its OpenTelemetry service name suffix and env section).
    pub fn name(self) -> &'static str {
        match self {
            Self::Profile => "profile",
            Self::Recommend => "recommend",
            Self::Gateway => "gateway",
        }
    }

    /// How the role's gRPC server listens.
    pub fn server(self, settings: &Settings) -> &ServerSettings {
        match self {
            Self::Profile => &settings.profile.server,
            Self::Recommend => &settings.recommend.server,
            Self::Gateway => &settings.gateway.server,
        }
    }

    /// The role's own database, if it has one.
    pub fn database(self, settings: &Settings) -> Option<&DatabaseSettings> {
        match self {
            Self::Profile => Some(&settings.profile.database),
            Self::Recommend => Some(&settings.recommend.database),
            Self::Gateway => None,
        }
    }
}
