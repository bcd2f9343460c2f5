//! The local stand-in for API Gateway's JWT authorizer: HS256 tokens signed with
//! `LOCAL_JWT_SECRET`, with `sub` and `exp` claims.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// The secret when `LOCAL_JWT_SECRET` is not set. Local use only.
pub const DEFAULT_SECRET: &str = "local-dev-secret";

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("missing bearer token")]
    Missing,
    /// Not three base64url JSON parts, or not HS256.
    #[error("malformed token")]
    Malformed,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// `exp` is in the past (or missing).
    #[error("token expired")]
    Expired,
    /// No usable `sub` claim.
    #[error("token has no subject")]
    NoSubject,
}

fn mac(secret: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!())
}

/// Signs a token for `sub` that expires at `exp` (seconds since the epoch).
pub fn sign(secret: &str, sub: &str, iat: i64, exp: i64) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "typ": "JWT"}).to_string());
    let claims = URL_SAFE_NO_PAD.encode(json!({"sub": sub, "iat": iat, "exp": exp}).to_string());
    let signing_input = format!("{header}.{claims}");
    let mut m = mac(secret);
    m.update(signing_input.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(m.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}

/// Verifies a token the way the JWT authorizer does and returns its claims as strings (the shape
/// API Gateway puts in `requestContext.authorizer.jwt.claims`).
pub fn verify(secret: &str, token: &str, now: i64) -> Result<HashMap<String, String>, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    let decode_json = |part: &str| -> Result<Value, AuthError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| AuthError::Malformed)?;
        serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed)
    };
    if decode_json(header)?.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(AuthError::Malformed);
    }
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| AuthError::Malformed)?;
    let mut m = mac(secret);
    m.update(format!("{header}.{claims}").as_bytes());
    m.verify_slice(&sig).map_err(|_| AuthError::BadSignature)?;

    let claims = decode_json(claims)?;
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(AuthError::Expired)?;
    if exp <= now {
        return Err(AuthError::Expired);
    }
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(AuthError::NoSubject)?;
    let mut out = HashMap::from([("sub".to_owned(), sub.to_owned())]);
    if let Some(obj) = claims.as_object() {
        for (k, v) in obj {
            out.entry(k.clone()).or_insert_with(|| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        }
    }
    Ok(out)
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer(header: Option<&str>) -> Result<&str, AuthError> {
    let value = header.ok_or(AuthError::Missing)?.trim();
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::Missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::Missing);
    }
    Ok(token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let t = sign("s", "alice", 100, 200);
        let claims = verify("s", &t, 150).expect("valid");
        assert_eq!(claims.get("sub").map(String::as_str), Some("alice"));
        assert_eq!(claims.get("exp").map(String::as_str), Some("200"));
    }

    #[test]
    fn bad_tokens_are_refused() {
        let t = sign("s", "alice", 100, 200);
        assert_eq!(verify("other", &t, 150), Err(AuthError::BadSignature));
        assert_eq!(verify("s", &t, 200), Err(AuthError::Expired));
        assert_eq!(verify("s", "a.b", 150), Err(AuthError::Malformed));
        let mut tampered = t.clone();
        tampered.insert(t.find('.').map_or(0, |i| i + 2), 'x');
        assert!(verify("s", &tampered, 150).is_err());
        // alg=none is refused outright.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"sub":"a","exp":999}"#)
        );
        assert_eq!(verify("s", &none, 150), Err(AuthError::Malformed));
        assert_eq!(bearer(Some("Basic abc")), Err(AuthError::Missing));
        assert_eq!(bearer(Some("Bearer abc")), Ok("abc"));
        assert_eq!(bearer(None), Err(AuthError::Missing));
    }
}
