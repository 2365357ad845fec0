//! The admin page's files, embedded at build time from `web-admin/static/` and served at
//! `/`, so an operator needs nothing beside the binary to open it in a browser.
//!
//! With `SECTOR_MANAGER_WEB_ADMIN_DIR` set, files are read from that directory instead,
//! so the page can be changed and reloaded without rebuilding the manager.

use std::borrow::Cow;

include!(concat!(env!("OUT_DIR"), "/web_admin_assets.rs"));

/// The variable naming a directory to serve the page from instead of the embedded copy.
pub const WEB_ADMIN_DIR_VARIABLE: &str = "SECTOR_MANAGER_WEB_ADMIN_DIR";

/// The content type a file's name implies.
pub(crate) fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, extension)| extension) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// The file at the request path `path` (`/` is `index.html`), or `None`.
pub(crate) fn asset(path: &str) -> Option<Cow<'static, [u8]>> {
    let relative = path.trim_start_matches('/');
    let relative = if relative.is_empty() {
        "index.html"
    } else {
        relative
    };
    // Only plain names below the page's directory: no way up, no hidden files.
    if relative
        .split('/')
        .any(|part| part.is_empty() || part.starts_with('.'))
    {
        return None;
    }
    if let Some(directory) = std::env::var_os(WEB_ADMIN_DIR_VARIABLE) {
        return std::fs::read(std::path::Path::new(&directory).join(relative))
            .ok()
            .map(Cow::Owned);
    }
    ASSETS
        .iter()
        .find(|(name, _)| *name == relative)
        .map(|(_, bytes)| Cow::Borrowed(*bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_embedded_and_paths_cannot_escape() {
        assert!(asset("/").is_some_and(|bytes| bytes.starts_with(b"<!doctype html>")));
        assert!(asset("/index.html").is_some());
        assert!(asset("/../Cargo.toml").is_none());
        assert!(asset("/.hidden").is_none());
        assert!(asset("/nothing-here.js").is_none());
        assert_eq!(content_type("app.js"), "text/javascript; charset=utf-8");
    }
}
