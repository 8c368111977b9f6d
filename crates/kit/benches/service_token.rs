//! The service credential every outgoing call carries (the gateway's calls to its upstreams,
//! the load generator's calls): the cached `authorization` header, against building it from
//! the cached token on every call as before.

use std::hint::black_box;
use std::sync::{Arc, Mutex};

use criterion::{Criterion, criterion_group, criterion_main};
use tailor_kit::auth::{AuthSettings, TokenIssuer, TokenSource};

fn bench_authorization(c: &mut Criterion) {
    let scopes = ["profile:read", "recommend:read"];
    let issuer = TokenIssuer::new(&AuthSettings::default(), "gateway", &scopes)
        .expect("the development settings mint tokens");
    let (token, _) = issuer.mint().expect("minting");
    let cached: Mutex<Option<Arc<str>>> = Mutex::new(Some(token.into()));
    let source = TokenSource::new(issuer.clone());

    let mut group = c.benchmark_group("authorization");
    group.bench_function("cached_header", |b| {
        b.iter(|| black_box(&source).authorization().expect("cached"))
    });
    group.bench_function("built_per_call", |b| {
        b.iter(|| {
            let token = black_box(&cached).lock().expect("unpoisoned").clone();
            let token = token.expect("cached");
            let mut value = http::HeaderValue::from_str(&format!("Bearer {token}")).expect("ascii");
            value.set_sensitive(true);
            value
        })
    });
    // Clients are cloned per call: the source's clone against its issuer's (deep) clone.
    group.bench_function("clone_source", |b| b.iter(|| black_box(&source).clone()));
    group.bench_function("clone_issuer", |b| b.iter(|| black_box(&issuer).clone()));
    group.finish();
}

criterion_group!(benches, bench_authorization);
criterion_main!(benches);
