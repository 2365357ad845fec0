//! Where `add_pieces` reads a piece's bytes from: a local file, zeros, or an HTTP URL
//! fetched the way damocles fetches it.
//!
//! A URL is first asked for without credentials and without following redirects. A
//! redirect (the manager's `/piecestore/<cid>` sending the worker on to the market) is
//! followed once, with `Authorization: Bearer $PIECE_FETCHER_TOKEN` and
//! `X-VENUS-API-NAMESPACE: v1.IMarket`, so the token reaches the market and nobody else.
//! Unlike the reference, a piece that ends before its payload size is an error rather
//! than being padded with zeros into a sector whose data commitment would then not match
//! the deal.

use std::fs::File;
use std::io::{self, Read};
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::tasks::PieceSource;

/// The environment variable holding the token sent to the market after a redirect; the
/// built-in processors read it ([`crate::RealProofs::from_environment`]).
pub const PIECE_FETCHER_TOKEN_ENVIRONMENT: &str = "PIECE_FETCHER_TOKEN";

/// The API namespace header the market expects on a piece request.
pub const MARKET_NAMESPACE_HEADER: (&str, &str) = ("X-VENUS-API-NAMESPACE", "v1.IMarket");

/// How long connecting to a piece server and waiting for its response headers may take.
/// The body itself may take as long as the processor's timeout allows.
const PIECE_SERVER_TIMEOUT: Duration = Duration::from_secs(60);

/// Opens a piece's payload: exactly `payload_size` bytes, or an error once it is clear
/// that the source holds fewer. `piece_fetcher_token` is sent to the market when a URL
/// redirects there.
pub fn open_payload(
    source: &PieceSource,
    payload_size: u64,
    piece_fetcher_token: Option<&str>,
) -> anyhow::Result<Box<dyn Read>> {
    let (reader, name): (Box<dyn Read>, String) = match source {
        PieceSource::Pledge => return Ok(Box::new(io::repeat(0).take(payload_size))),
        PieceSource::Local(path) => {
            let file =
                File::open(path).with_context(|| format!("open the piece {}", path.display()))?;
            (Box::new(file), path.display().to_string())
        }
        PieceSource::Url(url) => (fetch(url, piece_fetcher_token)?, url.clone()),
    };
    Ok(Box::new(ExactPayload {
        inner: reader,
        remaining: payload_size,
        expected: payload_size,
        name,
    }))
}

/// Starts the download of `url`, following one redirect with the market's credentials.
fn fetch(url: &str, piece_fetcher_token: Option<&str>) -> anyhow::Result<Box<dyn Read>> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_connect(Some(PIECE_SERVER_TIMEOUT))
        .timeout_recv_response(Some(PIECE_SERVER_TIMEOUT))
        .build()
        .into();
    let first = agent
        .get(url)
        .call()
        .with_context(|| format!("request the piece {url}"))?;
    let response = if first.status().is_redirection() {
        let location = first
            .headers()
            .get("location")
            .and_then(|value| value.to_str().ok())
            .with_context(|| {
                format!(
                    "{url} answered {} without a usable Location header",
                    first.status()
                )
            })?;
        let target = resolve_location(url, location);
        let mut request = agent
            .get(&target)
            .header(MARKET_NAMESPACE_HEADER.0, MARKET_NAMESPACE_HEADER.1);
        if let Some(token) = piece_fetcher_token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let redirected = request
            .call()
            .with_context(|| format!("request the piece {target} (redirected from {url})"))?;
        if redirected.status().is_redirection() {
            bail!(
                "{target} (redirected from {url}) redirected again; a piece is followed through one redirect only"
            );
        }
        redirected
    } else {
        first
    };
    let status = response.status();
    if !status.is_success() {
        let hint = if status.as_u16() == 401 || status.as_u16() == 403 {
            format!("; check {PIECE_FETCHER_TOKEN_ENVIRONMENT} in the worker's environment")
        } else {
            String::new()
        };
        bail!("the piece server answered {status} for {url}{hint}");
    }
    Ok(Box::new(response.into_body().into_reader()))
}

/// A `Location` may be relative; it is resolved against the URL that sent it.
fn resolve_location(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_owned();
    }
    let after_scheme = base.find("://").map_or(0, |index| index + 3);
    let authority_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |index| after_scheme + index);
    if location.starts_with('/') {
        format!("{}{location}", &base[..authority_end])
    } else {
        let directory_end = base.rfind('/').filter(|index| *index >= authority_end);
        match directory_end {
            Some(index) => format!("{}{location}", &base[..=index]),
            None => format!("{}/{location}", &base[..authority_end]),
        }
    }
}

/// Reads exactly `expected` bytes of `inner`, failing if it ends sooner.
struct ExactPayload {
    inner: Box<dyn Read>,
    remaining: u64,
    expected: u64,
    name: String,
}

impl Read for ExactPayload {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buffer.is_empty() {
            return Ok(0);
        }
        let wanted = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        let limit = buffer.len().min(wanted);
        let read = self.inner.read(&mut buffer[..limit])?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the piece {} ended after {} of its {} payload bytes",
                    self.name,
                    self.expected - self.remaining,
                    self.expected
                ),
            ));
        }
        self.remaining -= read as u64;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_resolved_against_the_url_that_sent_them() {
        let base = "http://manager:1789/piecestore/baga1";
        assert_eq!(
            resolve_location(base, "http://market:41235/piece/baga1"),
            "http://market:41235/piece/baga1"
        );
        assert_eq!(
            resolve_location(base, "/market/baga1"),
            "http://manager:1789/market/baga1"
        );
        assert_eq!(
            resolve_location(base, "other"),
            "http://manager:1789/piecestore/other"
        );
        assert_eq!(
            resolve_location("http://manager:1789", "x"),
            "http://manager:1789/x"
        );
    }

    #[test]
    fn a_short_piece_is_an_error_and_a_long_one_is_cut_at_its_payload_size() {
        let directory = tempfile::tempdir().expect("create a temporary directory");
        let path = directory.path().join("piece");
        std::fs::write(&path, [7u8; 100]).expect("write a piece");
        let source = PieceSource::Local(path);
        let mut read = Vec::new();
        open_payload(&source, 60, None)
            .expect("open")
            .read_to_end(&mut read)
            .expect("read 60 bytes");
        assert_eq!(read, [7u8; 60]);
        let error = open_payload(&source, 101, None)
            .expect("open")
            .read_to_end(&mut Vec::new())
            .expect_err("the piece is one byte short");
        assert!(
            error.to_string().contains("ended after 100 of its 101"),
            "{error}"
        );
        let mut zeros = Vec::new();
        open_payload(&PieceSource::Pledge, 5, None)
            .expect("open")
            .read_to_end(&mut zeros)
            .expect("read zeros");
        assert_eq!(zeros, [0u8; 5]);
    }
}
