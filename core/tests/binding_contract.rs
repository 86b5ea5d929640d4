//! The contract both bindings are tested against (`tests/binding-vectors.json`, its
//! `contract` element) agrees with the core, and the README's settings table is the one the
//! core generates (`UPDATE_README=1 cargo test -p vendorgate --test binding_contract` rewrites
//! it).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;
use vendorgate::config::settings::settings_table;
use vendorgate::config::SETTINGS;
use vendorgate::error::{reason_classes, ErrorClass, REASONS};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn contract() -> Value {
    let text = std::fs::read_to_string(repo().join("tests/binding-vectors.json")).unwrap();
    let all: Vec<Value> = serde_json::from_str(&text).unwrap();
    all.into_iter()
        .find_map(|v| v.get("contract").cloned())
        .expect("the vectors have a contract element")
}

#[test]
fn every_reason_raises_the_class_the_contract_names() {
    let c = contract();
    let table: BTreeMap<String, String> =
        serde_json::from_value(c["error_classes"].clone()).unwrap();
    let core: BTreeMap<String, String> = reason_classes()
        .into_iter()
        .map(|(r, class)| (r.to_string(), class.name().to_string()))
        .collect();
    assert_eq!(table, core);
    assert_eq!(table.len(), REASONS.len());
    for row in c["unknown_reason"].as_array().unwrap() {
        let class = ErrorClass::of_reason(
            row["reason"].as_str().unwrap(),
            row["status"].as_u64().unwrap() as u16,
        );
        assert_eq!(class.name(), row["class"].as_str().unwrap());
    }
}

#[test]
fn the_class_tree_is_the_contract_tree() {
    let c = contract();
    let parents: BTreeMap<String, String> =
        serde_json::from_value(c["class_parents"].clone()).unwrap();
    let core: BTreeMap<String, String> = ErrorClass::ALL
        .iter()
        .filter_map(|k| {
            k.parent()
                .map(|p| (k.name().to_string(), p.name().to_string()))
        })
        .collect();
    assert_eq!(parents, core);
}

#[test]
fn settings_keys_and_defaults_are_the_contract() {
    let c = contract();
    let keys: Vec<String> = serde_json::from_value(c["settings_keys"].clone()).unwrap();
    let core: Vec<String> = SETTINGS.iter().map(|s| s.key.to_string()).collect();
    assert_eq!(keys, core);
    assert_eq!(
        c["audit_default_limit"].as_u64(),
        Some(vendorgate::client::AUDIT_DEFAULT_LIMIT as u64)
    );
    // The contract's config is valid settings; its rejected ones are refused naming the key.
    let settings: vendorgate::config::Settings =
        serde_json::from_value(c["config"]["settings"].clone()).unwrap();
    vendorgate::Config::from_layers(&[&settings], &|_| None).unwrap();
    for r in c["config"]["rejected"].as_array().unwrap() {
        let err = vendorgate::config::Settings::from_json(&r["settings"].to_string())
            .and_then(|s| vendorgate::Config::from_layers(&[&s], &|_| None))
            .unwrap_err()
            .to_string();
        assert!(err.contains(r["message_has"].as_str().unwrap()), "{err}");
    }
}

#[test]
fn the_readme_settings_table_is_generated() {
    let path = repo().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (start, end) = ("<!-- settings:start -->\n", "<!-- settings:end -->");
    let a = readme.find(start).expect("README has the settings markers") + start.len();
    let b = readme.find(end).unwrap();
    let table = settings_table();
    if std::env::var_os("UPDATE_README").is_some() {
        let new = format!("{}{}{}", &readme[..a], table, &readme[b..]);
        std::fs::write(&path, new).unwrap();
        return;
    }
    assert_eq!(
        &readme[a..b],
        table,
        "the README's settings table is stale: UPDATE_README=1 cargo test -p vendorgate --test binding_contract"
    );
}
