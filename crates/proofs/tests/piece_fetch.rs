//! `add_pieces` with pieces behind HTTP URLs, against a real HTTP server on loopback that
//! behaves like the manager's piece store redirecting to a market: the redirect is
//! followed with the token and namespace header, the staged sector equals the one staged
//! from a local copy of the piece, and a short, missing or unauthorised piece is an
//! error naming the cause.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use proofs::{ProofBackend as _, RealProofs};
use serde_json::{Value, json};

const TOKEN: &str = "market-token-1";
const PAYLOAD_BYTES: usize = 1000;

fn payload() -> Vec<u8> {
    (0..PAYLOAD_BYTES)
        .map(|index| (index * 13 % 251) as u8)
        .collect()
}

/// One request as the server saw it: its path and headers (names in lower case).
#[derive(Clone, Debug)]
struct SeenRequest {
    path: String,
    headers: Vec<(String, String)>,
}

impl SeenRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// A small HTTP/1.1 server: `/piecestore/<name>` redirects to `/market/<name>`, which
/// wants the token; `/market/short` sends too few bytes; anything else is 404.
struct PieceServer {
    origin: String,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
}

impl PieceServer {
    fn start() -> PieceServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let origin = format!(
            "http://{}",
            listener.local_addr().expect("the bound address")
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorder = Arc::clone(&seen);
        std::thread::spawn(move || {
            // The test makes a handful of requests; the thread ends with the process.
            for stream in listener.incoming().take(64) {
                let Ok(stream) = stream else { continue };
                answer(stream, &recorder);
            }
        });
        PieceServer { origin, seen }
    }

    fn seen(&self) -> Vec<SeenRequest> {
        self.seen.lock().expect("the request log").clone()
    }
}

fn answer(stream: TcpStream, recorder: &Mutex<Vec<SeenRequest>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.trim_end().split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let request = SeenRequest { path, headers };
    recorder
        .lock()
        .expect("the request log")
        .push(request.clone());
    let authorised = request.header("authorization") == Some(&format!("Bearer {TOKEN}"))
        && request.header("x-venus-api-namespace") == Some("v1.IMarket");
    let (status, extra, body): (&str, String, Vec<u8>) =
        if let Some(name) = request.path.strip_prefix("/piecestore/") {
            (
                "302 Found",
                format!("Location: /market/{name}\r\n"),
                Vec::new(),
            )
        } else if let Some(name) = request.path.strip_prefix("/market/") {
            if !authorised {
                ("401 Unauthorized", String::new(), Vec::new())
            } else if name == "short" {
                ("200 OK", String::new(), payload()[..400].to_vec())
            } else {
                ("200 OK", String::new(), payload())
            }
        } else {
            ("404 Not Found", String::new(), Vec::new())
        };
    let mut stream = stream;
    let head = format!(
        "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

fn add_pieces(
    backend: &RealProofs,
    piece_file: Value,
    staged: &std::path::Path,
) -> Result<Value, String> {
    backend.run(
        "add_pieces",
        json!({
            "seal_proof_type": "StackedDrg2KiBV1_1",
            "pieces": [{"piece_file": piece_file, "payload_size": PAYLOAD_BYTES, "piece_size": 2048}],
            "staged_filepath": staged,
        }),
    )
}

#[test]
fn a_piece_behind_a_redirect_is_fetched_with_the_market_token_and_staged_like_a_local_one() {
    let server = PieceServer::start();
    let directory = tempfile::tempdir().expect("create a temporary directory");
    let backend = RealProofs {
        piece_fetcher_token: Some(TOKEN.to_owned()),
    };

    let local = directory.path().join("piece");
    std::fs::write(&local, payload()).expect("write the local piece");
    let from_disk = add_pieces(
        &backend,
        json!({"local": local}),
        &directory.path().join("staged-local"),
    )
    .expect("stage the local piece");
    let url = format!("{}/piecestore/deal-1", server.origin);
    let from_http = add_pieces(
        &backend,
        json!({"url": url}),
        &directory.path().join("staged-http"),
    )
    .expect("stage the piece from HTTP");
    assert_eq!(from_http, from_disk, "the same piece commitment");
    assert_eq!(
        std::fs::read(directory.path().join("staged-http")).expect("read"),
        std::fs::read(directory.path().join("staged-local")).expect("read"),
        "the same staged bytes"
    );

    let seen = server.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].path, "/piecestore/deal-1");
    assert_eq!(
        seen[0].header("authorization"),
        None,
        "the token is not sent to the first server"
    );
    assert_eq!(seen[1].path, "/market/deal-1");
    assert_eq!(
        seen[1].header("authorization"),
        Some("Bearer market-token-1")
    );
    assert_eq!(seen[1].header("x-venus-api-namespace"), Some("v1.IMarket"));
}

#[test]
fn short_missing_and_unauthorised_pieces_fail_with_their_cause() {
    let server = PieceServer::start();
    let directory = tempfile::tempdir().expect("create a temporary directory");
    let staged = directory.path().join("staged");
    let with_token = RealProofs {
        piece_fetcher_token: Some(TOKEN.to_owned()),
    };
    let short = add_pieces(
        &with_token,
        json!({"url": format!("{}/piecestore/short", server.origin)}),
        &staged,
    )
    .expect_err("a short piece fails");
    assert!(
        short.contains("ended after 400 of its 1000 payload bytes"),
        "{short}"
    );

    let missing = add_pieces(
        &with_token,
        json!({"url": format!("{}/nothing", server.origin)}),
        &staged,
    )
    .expect_err("a missing piece fails");
    assert!(missing.contains("404"), "{missing}");

    let unauthorised = add_pieces(
        &RealProofs::default(),
        json!({"url": format!("{}/piecestore/deal-1", server.origin)}),
        &staged,
    )
    .expect_err("no token, no piece");
    assert!(
        unauthorised.contains("401") && unauthorised.contains("PIECE_FETCHER_TOKEN"),
        "{unauthorised}"
    );

    let unreachable = add_pieces(
        &with_token,
        json!({"url": "http://127.0.0.1:9/piece"}),
        &staged,
    )
    .expect_err("nobody listens on the discard port");
    assert!(
        unreachable.contains("request the piece http://127.0.0.1:9/piece"),
        "{unreachable}"
    );
}
