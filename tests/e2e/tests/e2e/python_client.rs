//! The contracts from an independent client: Python's grpcio, with stubs generated from
//! `proto/` at test time (tests/e2e/python/contract_test.py), against the whole system.
//!
//! Needs a Python with the packages of tests/e2e/python/requirements.txt, named by
//! `TAILOR_PYTHON` (CI installs them into a venv and sets both it and `TAILOR_CI=1`, so there
//! the test must run); elsewhere it says it skipped.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use tailor_e2e::System;

#[tokio::test]
async fn python_grpcio_speaks_every_contract() {
    let python = std::env::var("TAILOR_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let ready = std::process::Command::new(&python)
        .args([
            "-c",
            "import grpc, grpc_tools, grpc_status, grpc_reflection, grpc_health",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !ready {
        assert!(
            std::env::var_os("TAILOR_CI").is_none(),
            "TAILOR_CI is set but {python} lacks the packages of tests/e2e/python/requirements.txt"
        );
        eprintln!(
            "python client test skipped: {python} lacks grpcio (see tests/e2e/python/requirements.txt)"
        );
        return;
    }
    let system = System::start_trained().await;
    let authorization = tailor_kit::testing::tokens(
        "python-client",
        &[
            "profile:read",
            "profile:write",
            "recommend:admin",
            "recommend:read",
        ],
    )
    .authorization()
    .unwrap();
    let service_token = authorization
        .to_str()
        .unwrap()
        .trim_start_matches("Bearer ");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/contract_test.py");
    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .env("TAILOR_GATEWAY", system.gateway.to_string())
        .env("TAILOR_PROFILE", system.profile.to_string())
        .env("TAILOR_RECOMMEND", system.recommend.to_string())
        .env("TAILOR_SERVICE_TOKEN", service_token)
        .env(
            "TAILOR_USER_TOKEN",
            system.user_token("python-app-user").await,
        )
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "contract tests failed ({}):\n{}\n{}",
        system.label,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
