//! Runs every case of GrowthBook's SDK test vectors for the sections experiment assignment
//! uses (vendored in `tests/data/growthbook-cases.json`, see `growthbook-PROVENANCE.md`).
//! Floats compare within 1e-6, as GrowthBook's own tests round to six decimals.

use serde_json::Value;
use tailor_recommend::experiment::{
    HashVersion, Namespace, bucket_ranges, choose_variation, equal_weights, hash, in_namespace,
};

const TOLERANCE: f64 = 1e-6;

fn cases(section: &str) -> Vec<Value> {
    let text = include_str!("data/growthbook-cases.json");
    let all: Value = serde_json::from_str(text).expect("valid JSON");
    let list = all[section].as_array().expect("section is a list").clone();
    assert!(!list.is_empty(), "section {section} is empty");
    list
}

fn float(v: &Value) -> f64 {
    v.as_f64().expect("a number")
}

fn ranges(v: &Value) -> Vec<(f64, f64)> {
    v.as_array()
        .expect("a list of ranges")
        .iter()
        .map(|r| (float(&r[0]), float(&r[1])))
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < TOLERANCE
}

#[test]
fn hash_cases() {
    for case in cases("hash") {
        let (seed, value) = (case[0].as_str().unwrap(), case[1].as_str().unwrap());
        let version = HashVersion::from_number(case[2].as_i64().unwrap());
        match (version, case[3].as_f64()) {
            (Some(v), Some(expected)) => {
                let got = hash(seed, value, v);
                assert!(close(got, expected), "{case}: got {got}");
            }
            (None, None) => {}
            _ => panic!("{case}: version and expectation disagree"),
        }
    }
}

#[test]
fn get_bucket_range_cases() {
    for case in cases("getBucketRange") {
        let args = &case[1];
        let n = args[0].as_u64().unwrap() as usize;
        let weights: Option<Vec<f64>> = args[2].as_array().map(|w| w.iter().map(float).collect());
        let got = bucket_ranges(n, float(&args[1]), weights.as_deref());
        let expected = ranges(&case[2]);
        assert_eq!(got.len(), expected.len(), "{case}");
        for (g, e) in got.iter().zip(&expected) {
            assert!(close(g.0, e.0) && close(g.1, e.1), "{case}: got {got:?}");
        }
    }
}

#[test]
fn choose_variation_cases() {
    for case in cases("chooseVariation") {
        let got = choose_variation(float(&case[1]), &ranges(&case[2]));
        let expected = case[3].as_i64().unwrap();
        assert_eq!(got.map_or(-1, |v| v as i64), expected, "{case}");
    }
}

#[test]
fn in_namespace_cases() {
    for case in cases("inNamespace") {
        let ns = &case[2];
        let namespace = Namespace {
            id: ns[0].as_str().unwrap().to_owned(),
            start: float(&ns[1]),
            end: float(&ns[2]),
        };
        let got = in_namespace(case[1].as_str().unwrap(), &namespace);
        assert_eq!(got, case[3].as_bool().unwrap(), "{case}");
    }
}

#[test]
fn get_equal_weights_cases() {
    for case in cases("getEqualWeights") {
        let got = equal_weights(case[0].as_i64().unwrap());
        let expected: Vec<f64> = case[1].as_array().unwrap().iter().map(float).collect();
        assert_eq!(got.len(), expected.len(), "{case}");
        for (g, e) in got.iter().zip(&expected) {
            assert!(close(*g, *e), "{case}: got {got:?}");
        }
    }
}
