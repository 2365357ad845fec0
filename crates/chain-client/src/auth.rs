//! API tokens as Lotus issues them: HS256 JWTs whose payload is
//! `{"Allow": ["read", "write", "sign", "admin"]}`.
//!
//! Permissions are not hierarchical (a token lists each one it has). The devnet and the
//! sector manager both serve tokens of this form, so a token written for one verifies the
//! same way in the other; what a request without a token may do is each server's rule. The JWT framing is three base64url parts; the signature is HMAC-SHA256
//! from the RustCrypto crates.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// One Lotus API permission.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// Read chain state.
    Read,
    /// Send signed messages and change node state.
    Write,
    /// Sign with the node's wallet.
    Sign,
    /// Administer the node (issue tokens).
    Admin,
}

impl Permission {
    /// All four, as an admin token carries them.
    pub const ALL: [Permission; 4] = [
        Permission::Read,
        Permission::Write,
        Permission::Sign,
        Permission::Admin,
    ];

    /// Its name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Write => "write",
            Permission::Sign => "sign",
            Permission::Admin => "admin",
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Payload {
    #[serde(rename = "Allow")]
    allow: Vec<Permission>,
}

/// A token that cannot be accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the token is not valid: {0}")]
pub struct InvalidToken(pub String);

/// Issues and verifies tokens with one secret. Clones share what they verified.
#[derive(Clone)]
pub struct TokenAuthority {
    secret: Vec<u8>,
    /// Tokens that verified, with their permissions: a server sees the same few tokens
    /// on every call, and a Lotus token never expires, so each is checked once (the
    /// signature, two base64 decodes and a JSON parse were about 5 % of a busy manager's
    /// time). Forged tokens are never kept.
    verified: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<Permission>>>>,
}

/// How many verified tokens are remembered; past this the memory starts afresh.
const MAXIMUM_VERIFIED_TOKENS: usize = 256;

impl std::fmt::Debug for TokenAuthority {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("TokenAuthority(<secret>)")
    }
}

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

impl TokenAuthority {
    /// An authority with `secret` (keep it on disk so tokens survive restarts).
    pub fn new(secret: Vec<u8>) -> TokenAuthority {
        TokenAuthority {
            secret,
            verified: std::sync::Arc::default(),
        }
    }

    fn with_verified<T>(
        &self,
        use_verified: impl FnOnce(&mut std::collections::HashMap<String, Vec<Permission>>) -> T,
    ) -> T {
        // A panic while holding the lock leaves a plain map behind, still consistent.
        let mut verified = self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        use_verified(&mut verified)
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts a key of any length, so this cannot fail.
        <Hmac<Sha256> as hmac::Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
    }

    /// A token granting `permissions`.
    pub fn issue(&self, permissions: &[Permission]) -> String {
        let payload = serde_json::to_string(&Payload {
            allow: permissions.to_vec(),
        })
        .unwrap_or_default();
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(HEADER),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{signature}")
    }

    /// The permissions `token` grants, if this authority issued it.
    pub fn verify(&self, token: &str) -> Result<Vec<Permission>, InvalidToken> {
        if let Some(permissions) = self.with_verified(|verified| verified.get(token).cloned()) {
            return Ok(permissions);
        }
        let permissions = self.verify_signature_and_payload(token)?;
        self.with_verified(|verified| {
            if verified.len() >= MAXIMUM_VERIFIED_TOKENS {
                verified.clear();
            }
            verified.insert(token.to_owned(), permissions.clone());
        });
        Ok(permissions)
    }

    fn verify_signature_and_payload(&self, token: &str) -> Result<Vec<Permission>, InvalidToken> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(InvalidToken("a JWT has three parts".to_owned()));
        };
        let signing_input = format!("{header}.{payload}");
        let header = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| InvalidToken("the header is not base64url".to_owned()))?;
        let header: serde_json::Value = serde_json::from_slice(&header)
            .map_err(|_| InvalidToken("the header is not JSON".to_owned()))?;
        if header.get("alg").and_then(serde_json::Value::as_str) != Some("HS256") {
            return Err(InvalidToken("only HS256 tokens are accepted".to_owned()));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| InvalidToken("the signature is not base64url".to_owned()))?;
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| InvalidToken("the signature does not match".to_owned()))?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| InvalidToken("the payload is not base64url".to_owned()))?;
        let payload: Payload = serde_json::from_slice(&payload).map_err(|error| {
            InvalidToken(format!("the payload is not a Lotus payload: {error}"))
        })?;
        Ok(payload.allow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_with_their_permissions_and_forgeries_do_not() {
        let authority = TokenAuthority::new(b"a secret".to_vec());
        let token = authority.issue(&[Permission::Read, Permission::Sign]);
        assert_eq!(
            authority.verify(&token),
            Ok(vec![Permission::Read, Permission::Sign])
        );
        let payload = token.split('.').nth(1).expect("a payload");
        let decoded = URL_SAFE_NO_PAD.decode(payload).expect("base64url");
        assert_eq!(decoded, br#"{"Allow":["read","sign"]}"#);

        let other = TokenAuthority::new(b"another secret".to_vec());
        assert!(
            other.verify(&token).is_err(),
            "another secret's token is refused"
        );
        let forged_payload = URL_SAFE_NO_PAD.encode(r#"{"Allow":["read","write","sign","admin"]}"#);
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
        assert!(
            authority.verify(&forged).is_err(),
            "a changed payload is refused"
        );
        assert!(authority.verify("not-a-token").is_err());
    }

    /// Verified tokens are remembered; the memory never lets a forgery in, and past its
    /// size it starts afresh without refusing anything valid.
    #[test]
    fn remembered_tokens_answer_the_same_and_forgeries_stay_refused() {
        let authority = TokenAuthority::new(b"a secret".to_vec());
        let shared = authority.clone();
        let token = authority.issue(&[Permission::Read, Permission::Write]);
        for _ in 0..3 {
            assert_eq!(
                shared.verify(&token),
                Ok(vec![Permission::Read, Permission::Write])
            );
        }
        let mut forged = token.clone();
        forged.push('A');
        for _ in 0..3 {
            assert!(shared.verify(&forged).is_err(), "a changed signature");
        }
        assert!(
            TokenAuthority::new(b"another secret".to_vec())
                .verify(&token)
                .is_err(),
            "another authority remembers nothing of this one's tokens"
        );
        let tokens: Vec<String> = (0..MAXIMUM_VERIFIED_TOKENS + 10)
            .map(|index| {
                let permissions = if index % 2 == 0 {
                    vec![Permission::Read]
                } else {
                    vec![Permission::Admin]
                };
                // Each token differs: the same permissions in a longer list.
                let mut listed = permissions.clone();
                listed.extend(std::iter::repeat_n(permissions[0], index));
                authority.issue(&listed)
            })
            .collect();
        for (index, token) in tokens.iter().enumerate() {
            let permissions = authority.verify(token).expect("an issued token verifies");
            assert_eq!(permissions.len(), index + 1);
        }
        assert!(
            authority.with_verified(|verified| verified.len()) <= MAXIMUM_VERIFIED_TOKENS,
            "the memory stays within its size"
        );
    }
}
