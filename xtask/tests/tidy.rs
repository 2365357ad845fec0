//! Enforces the house rules on the whole workspace as part of `cargo test`.

use xtask::{
    allows_without_reason, clippy_problems, crates_missing_from_architecture,
    files_without_module_doc, formatting_problems, lines_containing, workspace_root,
};

fn assert_none(what: &str, hits: Vec<String>) {
    assert!(hits.is_empty(), "{what}:\n{}", hits.join("\n"));
}

#[test]
fn every_rust_file_starts_with_a_module_doc_line() {
    assert_none(
        "these files must start with a `//!` line saying why they exist",
        files_without_module_doc(&workspace_root()),
    );
}

#[test]
fn no_test_is_ignored() {
    let attribute = ["#[", "ignore"].concat();
    assert_none(
        "ignored tests hide failures; make them pass or delete them",
        lines_containing(&workspace_root(), &attribute, false),
    );
}

#[test]
fn no_placeholder_macro_ships_outside_tests() {
    let root = workspace_root();
    let mut hits = lines_containing(&root, &["to", "do!("].concat(), true);
    hits.extend(lines_containing(
        &root,
        &["unimpl", "emented!("].concat(),
        true,
    ));
    assert_none("a placeholder is not an implementation", hits);
}

#[test]
fn every_allow_gives_a_reason() {
    assert_none(
        "write `#[allow(lint, reason = \"…\")]` so the next reader knows why",
        allows_without_reason(&workspace_root()),
    );
}

#[test]
fn every_crate_is_described_in_the_architecture_map() {
    assert_none(
        "ARCHITECTURE.md must name each crate's directory in backticks",
        crates_missing_from_architecture(&workspace_root()),
    );
}

#[test]
fn the_workspace_is_formatted() {
    if let Err(problem) = formatting_problems(&workspace_root()) {
        panic!("{problem}");
    }
}

#[test]
fn clippy_has_nothing_to_say() {
    if let Err(problem) = clippy_problems(&workspace_root()) {
        panic!("{problem}");
    }
}

#[test]
fn the_checks_can_fail() {
    // Each check must be able to find something, or a clean result means nothing. Build a
    // small tree that breaks every rule and make sure each check reports it.
    let directory = std::env::temp_dir().join(format!("xtask-tidy-{}", std::process::id()));
    let source = directory.join("crates").join("broken").join("src");
    std::fs::create_dir_all(&source).expect("create a scratch tree");
    std::fs::write(
        directory.join("crates").join("broken").join("Cargo.toml"),
        "[package]\nname = \"broken\"\n",
    )
    .expect("write a scratch manifest");
    std::fs::write(directory.join("ARCHITECTURE.md"), "# nothing here\n").expect("write");
    let body = format!(
        "fn main() {{}}\n{}\n#[test]\n{}\nfn skipped() {{ {} }}\n",
        ["#[", "allow(dead_code)]"].concat(),
        ["#[", "ignore]"].concat(),
        ["to", "do!()"].concat()
    );
    std::fs::write(source.join("main.rs"), body).expect("write a scratch source");

    assert_eq!(files_without_module_doc(&directory).len(), 1);
    assert_eq!(
        lines_containing(&directory, &["#[", "ignore"].concat(), false).len(),
        1
    );
    assert_eq!(
        lines_containing(&directory, &["to", "do!("].concat(), true).len(),
        1
    );
    assert_eq!(allows_without_reason(&directory).len(), 1);
    assert_eq!(
        crates_missing_from_architecture(&directory),
        vec!["broken (crates/broken)".to_owned()]
    );
    std::fs::remove_dir_all(&directory).expect("remove the scratch tree");
}
