//! Where the node is and how to authenticate: the `TOKEN:/ip4/…/tcp/1234/http` connection
//! string Lotus tools use (`FULLNODE_API_INFO`), or a plain URL.

use std::fmt;

/// A node's JSON-RPC endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The HTTP URL of the JSON-RPC handler (`http://127.0.0.1:1234/rpc/v1`).
    pub http_url: String,
    /// The WebSocket URL of the same handler (`ws://127.0.0.1:1234/rpc/v1`).
    pub websocket_url: String,
    /// The JWT sent as `Authorization: Bearer`; none means the node's anonymous `read`.
    pub token: Option<String>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token is a credential: it never reaches a log.
        formatter
            .debug_struct("Endpoint")
            .field("http_url", &self.http_url)
            .field("websocket_url", &self.websocket_url)
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

/// A connection string that cannot be understood.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{given:?} is not a node connection string: {reason}; write TOKEN:/ip4/127.0.0.1/tcp/1234/http or http://127.0.0.1:1234/rpc/v1"
)]
pub struct EndpointError {
    /// What was given (with any token removed).
    pub given: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Endpoint {
    /// Parses `TOKEN:/ip4/1.2.3.4/tcp/1234/http`, `/dns/node/tcp/1234/ws`, `TOKEN:http://…` or
    /// `http://…`. The API version path defaults to `/rpc/v1`.
    pub fn parse(connection: &str) -> Result<Endpoint, EndpointError> {
        let connection = connection.trim();
        let looks_like_address = |text: &str| {
            text.starts_with('/')
                || text.starts_with("http://")
                || text.starts_with("https://")
                || text.starts_with("ws://")
                || text.starts_with("wss://")
        };
        let (token, address) = if looks_like_address(connection) {
            (None, connection)
        } else {
            match connection.split_once(':') {
                Some((token, address)) if looks_like_address(address) && !token.is_empty() => {
                    (Some(token.to_owned()), address)
                }
                _ => {
                    return Err(EndpointError {
                        given: "<hidden>".to_owned(),
                        reason: "it is neither an address nor TOKEN:address".to_owned(),
                    });
                }
            }
        };
        let fail = |reason: &str| EndpointError {
            given: address.to_owned(),
            reason: reason.to_owned(),
        };
        let (secure, host_port, path) = if address.starts_with('/') {
            parse_multiaddr(address).map_err(|reason| fail(&reason))?
        } else {
            let (scheme, rest) = address
                .split_once("://")
                .ok_or_else(|| fail("the URL has no scheme"))?;
            let secure = scheme == "https" || scheme == "wss";
            let (host_port, path) = match rest.find('/') {
                Some(index) => (rest[..index].to_owned(), rest[index..].to_owned()),
                None => (rest.to_owned(), String::new()),
            };
            if host_port.is_empty() {
                return Err(fail("the URL has no host"));
            }
            (secure, host_port, path)
        };
        let path = if path.is_empty() || path == "/" {
            "/rpc/v1".to_owned()
        } else {
            path
        };
        let (http, websocket) = if secure {
            ("https", "wss")
        } else {
            ("http", "ws")
        };
        Ok(Endpoint {
            http_url: format!("{http}://{host_port}{path}"),
            websocket_url: format!("{websocket}://{host_port}{path}"),
            token,
        })
    }
}

/// Reads `/ip4/A/tcp/P/http`, `/ip6/A/tcp/P/ws`, `/dns/H/tcp/P/https`… into (secure,
/// `host:port`, path).
fn parse_multiaddr(address: &str) -> Result<(bool, String, String), String> {
    let parts: Vec<&str> = address.trim_start_matches('/').split('/').collect();
    let mut host = None;
    let mut port = None;
    let mut secure = false;
    let mut index = 0;
    while index < parts.len() {
        let value = parts.get(index + 1).copied();
        match parts[index] {
            "ip4" | "dns" | "dns4" | "dns6" => {
                host = Some(value.ok_or("a host is missing")?.to_owned());
                index += 2;
            }
            "ip6" => {
                host = Some(format!("[{}]", value.ok_or("an IPv6 address is missing")?));
                index += 2;
            }
            "tcp" => {
                let text = value.ok_or("a port is missing")?;
                port = Some(
                    text.parse::<u16>()
                        .map_err(|_| format!("{text:?} is not a port"))?,
                );
                index += 2;
            }
            "http" | "ws" => index += 1,
            "https" | "wss" | "tls" => {
                secure = true;
                index += 1;
            }
            other => return Err(format!("the multiaddr part {other:?} is not supported")),
        }
    }
    let host = host.ok_or("the multiaddr names no host (/ip4, /ip6 or /dns)")?;
    let port = port.ok_or("the multiaddr names no port (/tcp/PORT)")?;
    Ok((secure, format!("{host}:{port}"), String::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lotus_connection_strings_and_urls_are_understood() {
        let endpoint = Endpoint::parse("eyJhbGciOiJIUzI1NiJ9.e30.sig:/ip4/127.0.0.1/tcp/1234/http")
            .expect("a lotus connection string");
        assert_eq!(endpoint.http_url, "http://127.0.0.1:1234/rpc/v1");
        assert_eq!(endpoint.websocket_url, "ws://127.0.0.1:1234/rpc/v1");
        assert_eq!(
            endpoint.token.as_deref(),
            Some("eyJhbGciOiJIUzI1NiJ9.e30.sig")
        );
        assert!(
            !format!("{endpoint:?}").contains("sig"),
            "the token is hidden"
        );

        let endpoint = Endpoint::parse("/dns/lotus.internal/tcp/443/https").expect("dns, TLS");
        assert_eq!(endpoint.http_url, "https://lotus.internal:443/rpc/v1");
        assert_eq!(endpoint.token, None);

        let endpoint = Endpoint::parse("/ip6/::1/tcp/1234/ws").expect("IPv6");
        assert_eq!(endpoint.websocket_url, "ws://[::1]:1234/rpc/v1");

        let endpoint = Endpoint::parse("TOKEN:http://10.0.0.5:1234/rpc/v0").expect("a URL");
        assert_eq!(endpoint.http_url, "http://10.0.0.5:1234/rpc/v0");
        assert_eq!(endpoint.token.as_deref(), Some("TOKEN"));

        for bad in [
            "",
            "token-only",
            "TOKEN:/ip4/1.2.3.4/http",
            "/ip4/1.2.3.4/tcp/x/http",
            "/unix/sock",
        ] {
            let error = Endpoint::parse(bad).expect_err(bad);
            assert!(
                error
                    .to_string()
                    .contains("TOKEN:/ip4/127.0.0.1/tcp/1234/http"),
                "{error}"
            );
        }
    }
}
