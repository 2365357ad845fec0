//! Embeds the admin page (`web-admin/static/`) into the manager: every file there becomes
//! an entry of a generated table, so the binary serves the page with nothing beside it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(directory: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(directory)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest.join("../../web-admin/static").canonicalize()?;
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &mut files)?;
    files.sort();
    let mut table =
        String::from("/// The admin page's files: path below `web-admin/static/`, bytes.\n");
    table.push_str("pub(crate) static ASSETS: &[(&str, &[u8])] = &[\n");
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let relative = file
            .strip_prefix(&root)?
            .to_str()
            .ok_or("a web-admin file name is not UTF-8")?
            .replace('\\', "/");
        writeln!(
            table,
            "    ({relative:?}, include_bytes!({:?})),",
            file.display().to_string()
        )?;
    }
    table.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("web_admin_assets.rs");
    std::fs::write(out, table)?;
    Ok(())
}
