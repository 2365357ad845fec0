//! The workspace's house rules as functions, so `cargo test` enforces them.
//!
//! Each check walks the source tree and returns the places that break a rule, one line
//! each with a path and a line number; `tests/tidy.rs` asserts that every list is empty.
//! The rules: every Rust file starts with a `//!` line saying why it exists; no test is
//! ignored; no placeholder macro ships outside tests; every `allow` gives a reason; every
//! crate is described in ARCHITECTURE.md; formatting is `cargo fmt` clean; clippy,
//! with each crate's bans, has nothing to say.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Directories never scanned: build output and fuzzing artefacts.
const SKIPPED_DIRECTORIES: &[&str] = &[
    "target",
    ".git",
    "corpus",
    "artifacts",
    "coverage",
    "node_modules",
];

/// Every file under `root` whose name ends with `extension`, sorted.
pub fn files_with_extension(root: &Path, extension: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(directory) = pending.pop() {
        let Ok(entries) = fs::read_dir(&directory) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !SKIPPED_DIRECTORIES.contains(&name.as_str()) {
                    pending.push(path);
                }
            } else if name.ends_with(extension) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

fn is_test_file(root: &Path, path: &Path) -> bool {
    path.strip_prefix(root)
        .unwrap_or(path)
        .components()
        .any(|component| component.as_os_str() == "tests" || component.as_os_str() == "benches")
}

/// Rust files whose first non-blank line is not a `//!` doc line.
pub fn files_without_module_doc(root: &Path) -> Vec<String> {
    files_with_extension(root, ".rs")
        .into_iter()
        .filter(|path| {
            let text = read(path);
            let first = text
                .lines()
                .find(|line| !line.trim().is_empty())
                .unwrap_or("");
            !first.starts_with("//!")
        })
        .map(|path| relative(root, &path))
        .collect()
}

/// Lines anywhere that contain `needle`, optionally skipping test files.
pub fn lines_containing(root: &Path, needle: &str, skip_tests: bool) -> Vec<String> {
    let mut hits = Vec::new();
    for path in files_with_extension(root, ".rs") {
        if skip_tests && is_test_file(root, &path) {
            continue;
        }
        for (index, line) in read(&path).lines().enumerate() {
            if line.contains(needle) {
                hits.push(format!(
                    "{}:{}: {}",
                    relative(root, &path),
                    index + 1,
                    line.trim()
                ));
            }
        }
    }
    hits
}

/// `#[allow(…)]` and `#![allow(…)]` attributes that give no `reason = "…"`, read to their
/// closing bracket since rustfmt may wrap them over several lines.
pub fn allows_without_reason(root: &Path) -> Vec<String> {
    let attribute = ["#[", "allow("].concat();
    let inner_attribute = ["#![", "allow("].concat();
    let mut hits = Vec::new();
    for path in files_with_extension(root, ".rs") {
        let text = read(&path);
        let lines: Vec<&str> = text.lines().collect();
        for (index, line) in lines.iter().enumerate() {
            if !line.contains(&attribute) && !line.contains(&inner_attribute) {
                continue;
            }
            let whole: String = lines[index..]
                .iter()
                .take(8)
                .scan(false, |closed, line| {
                    if *closed {
                        return None;
                    }
                    *closed = line.contains(']');
                    Some(*line)
                })
                .collect::<Vec<_>>()
                .join(" ");
            if !whole.contains("reason") {
                hits.push(format!(
                    "{}:{}: {}",
                    relative(root, &path),
                    index + 1,
                    line.trim()
                ));
            }
        }
    }
    hits
}

/// Package names of every crate in the workspace and of the fuzz crate.
pub fn crate_names(root: &Path) -> Vec<(String, String)> {
    let mut names = Vec::new();
    for manifest in files_with_extension(root, "Cargo.toml") {
        let text = read(&manifest);
        let in_package = text.split("[package]").nth(1).unwrap_or("");
        let name = in_package
            .lines()
            .find_map(|line| line.trim().strip_prefix("name = "))
            .map(|name| name.trim_matches('"').to_owned());
        if let Some(name) = name {
            let directory = manifest
                .parent()
                .map(|dir| relative(root, dir))
                .unwrap_or_default();
            names.push((name, directory));
        }
    }
    names
}

/// Crates that ARCHITECTURE.md does not mention by directory.
pub fn crates_missing_from_architecture(root: &Path) -> Vec<String> {
    let architecture = read(&root.join("ARCHITECTURE.md"));
    crate_names(root)
        .into_iter()
        .filter(|(_, directory)| !architecture.contains(&format!("`{directory}`")))
        .map(|(name, directory)| format!("{name} ({directory})"))
        .collect()
}

/// What `cargo clippy --workspace --all-targets -- -D warnings` says, which includes the
/// bans in each crate's `clippy.toml` (such as sector-fsm's ban on clocks and files).
pub fn clippy_problems(root: &Path) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(&cargo)
        .args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--quiet",
            "--",
            "-D",
            "warnings",
        ])
        .current_dir(root)
        .output()
        .map_err(|error| format!("could not run `cargo clippy`: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`cargo clippy --workspace --all-targets -- -D warnings` failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// What `cargo fmt --check` (and rustfmt on the fuzz crate, outside the workspace) says.
pub fn formatting_problems(root: &Path) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let workspace = Command::new(&cargo)
        .args(["fmt", "--all", "--", "--check"])
        .current_dir(root)
        .output()
        .map_err(|error| format!("could not run `cargo fmt`: {error}"))?;
    if !workspace.status.success() {
        return Err(format!(
            "`cargo fmt --all -- --check` failed; run `cargo fmt --all`:\n{}{}",
            String::from_utf8_lossy(&workspace.stdout),
            String::from_utf8_lossy(&workspace.stderr)
        ));
    }
    let fuzz_manifest = root.join("fuzz").join("Cargo.toml");
    if fuzz_manifest.exists() {
        let fuzz = Command::new(&cargo)
            .args(["fmt", "--manifest-path"])
            .arg(&fuzz_manifest)
            .args(["--", "--check"])
            .current_dir(root)
            .output()
            .map_err(|error| format!("could not run `cargo fmt` on fuzz/: {error}"))?;
        if !fuzz.status.success() {
            return Err(format!(
                "fuzz/ is not formatted; run `cargo fmt --manifest-path fuzz/Cargo.toml`:\n{}{}",
                String::from_utf8_lossy(&fuzz.stdout),
                String::from_utf8_lossy(&fuzz.stderr)
            ));
        }
    }
    Ok(())
}
