//! A real PostgreSQL server for the tests: Debian's `postgresql` binaries, a fresh data
//! directory, a loopback port, and one database per test. The server dies with the
//! test process (`setpriv --pdeathsig KILL`), so no run leaves one behind.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// A running server.
pub struct Server {
    port: u16,
    _child: Child,
    _directory: tempfile::TempDir,
    next: AtomicU32,
}

fn binaries() -> PathBuf {
    let found = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|entries| {
            entries
                .flatten()
                .map(|entry| entry.path().join("bin"))
                .filter(|bin| bin.join("postgres").is_file())
                .max()
        });
    found.unwrap_or_else(|| {
        panic!("PostgreSQL is not installed: `apt-get install postgresql` (the CI script does)")
    })
}

fn as_postgres_user(program: PathBuf) -> Command {
    let root = rustix::process::geteuid().is_root();
    let mut command = Command::new("setpriv");
    if root {
        // PostgreSQL refuses to run as root.
        command.args([
            "--reuid",
            "postgres",
            "--regid",
            "postgres",
            "--clear-groups",
        ]);
    }
    command.args(["--pdeathsig", "KILL", "--"]).arg(program);
    command
}

impl Server {
    fn start() -> Server {
        let bin = binaries();
        let directory = tempfile::tempdir().expect("a data directory");
        let data = directory.path().join("data");
        std::fs::create_dir(&data).expect("create the data directory");
        if rustix::process::geteuid().is_root() {
            let uid = rustix::process::Uid::from_raw(uid_of("postgres"));
            for path in [directory.path(), data.as_path()] {
                std::os::unix::fs::chown(path, Some(uid.as_raw()), None)
                    .expect("give the directory to postgres");
            }
        }
        let status = as_postgres_user(bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run initdb");
        assert!(status.success(), "initdb failed");
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            listener.local_addr().expect("its address").port()
        };
        let child = as_postgres_user(bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k", ""])
            .args(["-c", "fsync=off", "-c", "max_connections=200"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start postgres");
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        // Accepting connections is not yet accepting queries; ask until it answers.
        for attempt in 0.. {
            let ready = Command::new(bin.join("psql"))
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "-U",
                    "postgres",
                    "-c",
                    "SELECT 1",
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            if ready {
                break;
            }
            assert!(attempt < 200, "postgres did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Server {
            port,
            _child: child,
            _directory: directory,
            next: AtomicU32::new(0),
        }
    }

    /// A new, empty database's URL.
    pub fn fresh_database(&self) -> String {
        let name = format!(
            "test_{}_{}",
            std::process::id(),
            self.next.fetch_add(1, Ordering::Relaxed)
        );
        let status = Command::new(binaries().join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-c",
            ])
            .arg(format!("CREATE DATABASE {name}"))
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run psql");
        assert!(status.success(), "create database {name}");
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

fn uid_of(user: &str) -> u32 {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&user)).then(|| fields.get(2)?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no user {user}; the postgresql package creates it"))
}

/// The test process's server, started on first use.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(Server::start)
}
