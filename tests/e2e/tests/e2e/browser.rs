//! A real browser against the real system: headless Chromium, driven by Playwright, loads the
//! storefront the gateway serves; the page talks gRPC-web to the gateway; the script signs in,
//! clicks items and asserts that the feed updates (crates/gateway/web/tests/storefront.mjs).
//!
//! Needs Node.js, `npm ci` in crates/gateway/web and Debian's chromium. CI provides them and
//! sets `TAILOR_CI=1`, so there the test must run; elsewhere it says it skipped.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use tailor_e2e::System;

fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/gateway/web")
}

fn missing_prerequisite() -> Option<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    if !Path::new(&chromium).exists() {
        return Some(format!("no Chromium at {chromium}"));
    }
    if !web_dir().join("node_modules/playwright-core").exists() {
        return Some("no node_modules in crates/gateway/web (run npm ci there)".to_owned());
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Some("no node on PATH".to_owned());
    }
    None
}

#[tokio::test]
async fn the_storefront_in_a_real_browser_updates_the_feed_as_the_shopper_browses() {
    if let Some(missing) = missing_prerequisite() {
        assert!(
            std::env::var_os("TAILOR_CI").is_none(),
            "TAILOR_CI is set but {missing}"
        );
        eprintln!("browser test skipped: {missing}");
        return;
    }
    let system = System::start_trained().await;

    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/storefront");
    std::fs::create_dir_all(&shots).unwrap();
    let url = format!("http://{}", system.gateway);
    let script = web_dir().join("tests/storefront.mjs");
    let screenshot = shots.join("e2e.png");
    // The browser runs as a child process; the system keeps serving on this runtime meanwhile.
    let output = tokio::process::Command::new("node")
        .arg(&script)
        .arg(&url)
        .arg("--screenshot")
        .arg(&screenshot)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "storefront test failed ({}):\n{stdout}\n{stderr}",
        system.label
    );
    assert!(screenshot.exists());
}
