//! The admin page in a real browser: `sealcluster devnet` (fake proofs, two sealing
//! threads) as a process, and `web-admin/tests/browser.mjs` driving Debian's Chromium
//! through playwright-core against its manager. The page lists a sealing sector and its
//! history; a read-only token cannot pause a worker's thread (the manager refuses, and the
//! worker's own admin API shows the thread running); an admin token pauses and resumes it.
//!
//! It needs Node.js, `/usr/bin/chromium` and `npm ci` run in `web-admin/` (`.ci/run`
//! installs them). `UPDATE_SCREENSHOTS=1` writes the page's screenshots into `docs/`.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// Stops the cluster when the test ends, however it ends.
struct Cluster(Child);

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The text after `marker` up to the next space, in `line`.
fn word_after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let rest = &line[line.find(marker)? + marker.len()..];
    rest.split_whitespace().next()
}

#[test]
fn the_admin_page_lists_sectors_and_only_an_admin_pauses_a_thread() {
    let web_admin = repository().join("web-admin");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        Path::new(&chromium).exists() && web_admin.join("node_modules/playwright-core").exists(),
        "the browser test needs Debian's chromium ({chromium}) and playwright-core: \
         `apt-get install chromium` and `npm ci --prefix web-admin` (.ci/run does both)"
    );
    let home = tempfile::tempdir().expect("a home");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sealcluster"))
        .arg("devnet")
        .arg("--home")
        .arg(home.path())
        .args([
            "--fake-proofs",
            "--keep-running",
            "--sectors",
            "1000",
            "--threads",
            "2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sealcluster devnet");
    let stdout = child.stdout.take().expect("its output");
    let cluster = Cluster(child);

    // The manager's address and the worker's admin API, from what the command prints.
    let (mut page, mut worker_admin) = (None, None);
    let mut printed = String::new();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let Ok(line) = line else { break };
        printed.push_str(&line);
        printed.push('\n');
        if let Some(url) = word_after(&line, "admin page at ") {
            page = Some(url.to_owned());
        }
        if let Some(address) = word_after(&line, "admin API ") {
            worker_admin = Some(format!("http://{}/", address.trim_end_matches(')')));
        }
        if page.is_some() && worker_admin.is_some() {
            break;
        }
    }
    // The command keeps printing progress; a closed pipe would end it.
    std::thread::spawn(move || lines.for_each(drop));
    let (Some(page), Some(worker_admin)) = (page, worker_admin) else {
        panic!("sealcluster devnet did not print its addresses:\n{printed}");
    };
    // The worker's admin API listens once the daemon has claimed its stores.
    let address = worker_admin
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let waiting = Instant::now();
    while std::net::TcpStream::connect(&address).is_err() {
        assert!(
            waiting.elapsed() < std::time::Duration::from_secs(60),
            "the worker's admin API at {address} never answered:\n{printed}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let read = |path: &str| {
        std::fs::read_to_string(home.path().join(path))
            .unwrap_or_else(|error| panic!("read {path}: {error}"))
            .trim()
            .to_owned()
    };

    let mut browser = Command::new("node");
    browser
        .arg(web_admin.join("tests/browser.mjs"))
        .current_dir(&web_admin)
        .env("ADMIN_URL", &page)
        .env("READ_TOKEN", read("manager/read.token"))
        .env("ADMIN_TOKEN", read("manager/token"))
        .env("WORKER_NAME", "devnet-worker")
        .env("WORKER_ADMIN_URL", &worker_admin)
        .env(
            "WORKER_ADMIN_TOKEN",
            read("worker/sealing-worker-admin.token"),
        )
        .env("CHROMIUM", &chromium);
    if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        browser.env("SCREENSHOT_DIR", repository().join("docs"));
    }
    let started = Instant::now();
    let output = browser
        .output()
        .expect("run node web-admin/tests/browser.mjs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "the browser test failed after {:?}:\n{report}\ncluster log:\n{}",
        started.elapsed(),
        std::fs::read_to_string(home.path().join("sealcluster.log"))
            .unwrap_or_default()
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(report.contains("all checks passed"), "{report}");
    drop(cluster);
}
