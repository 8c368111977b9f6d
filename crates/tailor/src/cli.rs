//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::roles::Role;

/// Tailor: the personalization backend for mobile e-commerce.
///
/// Start everything on this machine with `tailor serve all` (SQLite files under ./data,
/// in-process cache and event bus: nothing else to install). In production, run one role
/// per deployment with PostgreSQL and Redis (see deploy/README.md).
#[derive(Debug, Parser)]
#[command(name = "tailor", version, propagate_version = true)]
pub struct Cli {
    /// TOML configuration file; environment variables TAILOR_<SECTION>__<KEY> override it.
    #[arg(long, global = true, env = "TAILOR_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run services: `tailor serve all`, or name them: `tailor serve profile recommend`.
    Serve {
        /// `all`, or one or more of: profile, recommend, gateway.
        #[arg(required = true, value_name = "ROLE|all")]
        roles: Vec<String>,
    },
    /// Apply database migrations of the named roles (default: all) and exit.
    Migrate {
        /// Roles to migrate; all when omitted.
        roles: Vec<Role>,
    },
    /// Mint a development token: a service token (default), or with `--user` an app user's
    /// token for the gateway.
    Token {
        /// The service the token speaks for.
        #[arg(long, default_value = "dev")]
        service: String,
        /// Scopes, e.g. `--scope profile:read --scope profile:write`.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Mint an app user token for this user instead (signed with the gateway's secret).
        #[arg(long, conflicts_with_all = ["service", "scopes"])]
        user: Option<String>,
    },
    /// Evaluate recommendation algorithms offline on an interaction file (Recall, NDCG,
    /// coverage, fit time, memory), on the protocol of shared/data/README.md.
    Eval(tailor_recommend::eval::EvalArgs),
    /// Train the recommendation models now from the recommend database and make them active
    /// (running recommend services pick the new version up).
    Train,
    /// Bulk-import interaction history into the recommend database.
    Import {
        /// `user item [rating [timestamp]]` per line; comma, tab or whitespace separated;
        /// optional header; `.gz` accepted.
        #[arg(long)]
        input: PathBuf,
        /// Behaviour the rows record: view, click, add-to-cart, purchase or share.
        #[arg(long, default_value = "view")]
        kind: ImportKind,
    },
    /// Drive running services with load from a scenario file (open or closed loop, rate
    /// sweeps), with the in-process echo ceiling measured in the same run.
    Loadgen(Box<tailor_loadgen::LoadgenArgs>),
    /// Two builds' `loadgen --json` reports of one scenario side by side: per load level,
    /// before and after with the p99 ratio, and optionally the plot of both.
    LoadgenCompare(tailor_loadgen::compare::CompareArgs),
    /// Demo data for a running system.
    #[command(subcommand)]
    Demo(DemoCommand),
    /// Check a server's grpc.health.v1 status; exit 0 when SERVING (for container probes).
    Health {
        /// host:port of the server.
        #[arg(long, default_value = "127.0.0.1:50051")]
        addr: SocketAddr,
        /// Service name to check; empty means the whole server.
        #[arg(long, default_value = "")]
        service: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 3)]
        timeout: u64,
    },
}

/// `tailor demo …`.
#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Fill running profile and recommend services with a catalog and simulated shoppers'
    /// history (through their gRPC APIs), then train the models.
    Seed(crate::demo::SeedArgs),
}

/// Behaviours an import can record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportKind {
    /// Item views.
    View,
    /// Clicks.
    Click,
    /// Additions to cart.
    AddToCart,
    /// Purchases.
    Purchase,
    /// Shares.
    Share,
}

impl ImportKind {
    /// The `tailor.events.v1.BehaviorType` number.
    pub fn number(self) -> i32 {
        match self {
            Self::View => 1,
            Self::Click => 3,
            Self::AddToCart => 4,
            Self::Purchase => 6,
            Self::Share => 8,
        }
    }
}

/// `all` or role names → roles, in start order.
pub fn parse_roles(names: &[String]) -> Result<Vec<Role>, String> {
    use clap::ValueEnum as _;
    if names.iter().any(|n| n == "all") {
        return Ok(Role::ALL.to_vec());
    }
    let mut roles = Vec::new();
    for name in names {
        let role = Role::from_str(name, true).map_err(|_| {
            let known: Vec<&str> = Role::ALL.iter().map(|r| r.name()).collect();
            format!(
                "unknown role `{name}`; expected `all` or one of: {}",
                known.join(", ")
            )
        })?;
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    roles.sort();
    Ok(roles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_with_all_and_duplicates() {
        assert_eq!(parse_roles(&["all".into()]).unwrap(), Role::ALL.to_vec());
        assert_eq!(
            parse_roles(&["profile".into(), "profile".into()]).unwrap(),
            vec![Role::Profile]
        );
        assert!(
            parse_roles(&["billing".into()])
                .unwrap_err()
                .contains("unknown role `billing`")
        );
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
