//! The `tailor` binary's library: every command, so `main` only parses and dispatches.
//!
//! # Layout
//! - [`cli`]: the command line.
//! - [`settings`]: the settings tree of every role.
//! - [`roles`]: the services the binary can run.
//! - [`serve`]: running roles (and migrating their databases).
//! - [`ops`]: dev tokens, health checks, training and imports.
//! - [`demo`]: `tailor demo seed`, demo data for a running system.

pub mod cli;
pub mod demo;
pub mod ops;
pub mod roles;
pub mod serve;
pub mod settings;

use std::process::ExitCode;
use std::time::Duration;

use tailor_kit::config::EXIT_CONFIG;

use crate::cli::Command;

/// Runs one command with validated settings.
#[allow(clippy::print_stdout)] // tokens and health answers are the commands' output
pub async fn run(command: Command, settings: settings::Settings) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve { roles } => {
            let roles = match cli::parse_roles(&roles) {
                Ok(roles) => roles,
                Err(err) => {
                    eprintln!("tailor: {err}");
                    return Ok(ExitCode::from(EXIT_CONFIG as u8));
                }
            };
            if let Err(err) = settings.validate_roles(&roles) {
                eprintln!("tailor: {err}");
                return Ok(ExitCode::from(EXIT_CONFIG as u8));
            }
            let name = match roles.as_slice() {
                [one] => format!("tailor-{}", one.name()),
                _ => "tailor".to_owned(),
            };
            let telemetry = tailor_kit::telemetry::init(&name, &settings.telemetry)?;
            let stop = tailor_kit::shutdown::on_signal();
            serve::serve(settings, &roles, &telemetry, stop).await?;
            tracing::info!("stopped cleanly");
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate { roles } => {
            let _telemetry = tailor_kit::telemetry::init("tailor-migrate", &settings.telemetry)?;
            let roles = if roles.is_empty() {
                roles::Role::ALL.to_vec()
            } else {
                roles
            };
            serve::migrate(&settings, &roles).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Token {
            service,
            scopes,
            user,
        } => {
            let token = match user {
                Some(user) => ops::user_token(&settings.gateway.jwt, &user).await?,
                None => ops::token(&settings.auth, &service, &scopes)?,
            };
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval(args) => {
            let mut out = std::io::stdout();
            tailor_recommend::eval::run(&args, &mut out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Train => {
            let _telemetry = tailor_kit::telemetry::init("tailor-train", &settings.telemetry)?;
            let row = ops::train(&settings.recommend).await?;
            println!(
                "model set {} trained on {} interactions in {:.1}s: {}",
                row.version, row.interactions, row.train_seconds, row.metrics
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Import { input, kind } => {
            let _telemetry = tailor_kit::telemetry::init("tailor-import", &settings.telemetry)?;
            let report = ops::import(&settings.recommend, &input, kind.number()).await?;
            println!(
                "read {} rows, stored {} new interactions",
                report.read, report.inserted
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Loadgen(args) => {
            let mut out = std::io::stdout().lock();
            tailor_loadgen::run(*args, &mut out).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::LoadgenCompare(args) => {
            tailor_loadgen::compare::run(&args, &mut std::io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(cli::DemoCommand::Seed(args)) => {
            let _telemetry = tailor_kit::telemetry::init("tailor-demo", &settings.telemetry)?;
            let report = demo::seed(&settings, &args).await?;
            println!(
                "seeded {} items and {} shoppers: {} events sent, {} stored, {} already there",
                report.items, report.users, report.events, report.accepted, report.duplicates
            );
            if let Some(model) = report.model {
                println!(
                    "model set {} trained on {} interactions ({} users, {} items)",
                    model.version, model.interactions, model.users, model.items
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Health {
            addr,
            service,
            timeout,
        } => {
            let status = ops::health(addr, &service, Duration::from_secs(timeout)).await?;
            println!("{}", status.as_str_name());
            Ok(
                if status == tonic_health::pb::health_check_response::ServingStatus::Serving {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                },
            )
        }
    }
}
