//! The Grafana dashboard in `deploy/` asks only for metrics the code records: every
//! `sealcluster_*` name in a panel's query is recorded somewhere in the crates' sources,
//! so renaming a metric without the dashboard fails here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn sources(directory: &Path, into: &mut String) {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, into);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            into.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
        }
    }
}

/// The metric names in a PromQL expression, without the histogram suffixes.
fn metric_names(expression: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expression;
    while let Some(start) = rest.find("sealcluster_") {
        let tail = &rest[start..];
        let end = tail
            .find(|character: char| !(character.is_ascii_alphanumeric() || character == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        names.insert(base.to_owned());
        rest = &tail[end..];
    }
    names
}

#[test]
fn every_dashboard_metric_is_recorded_by_the_code() {
    let repository = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(repository.join("deploy/grafana-dashboard.json"))
        .expect("deploy/grafana-dashboard.json");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut wanted = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            wanted.extend(metric_names(
                target["expr"].as_str().expect("an expression"),
            ));
        }
    }
    assert!(wanted.len() >= 10, "{wanted:?}");
    let mut code = String::new();
    sources(&repository.join("crates"), &mut code);
    for name in &wanted {
        assert!(
            code.contains(&format!("\"{name}\"")),
            "the dashboard asks for {name}, which no crate records"
        );
    }
}
