//! Download grants: the owner hands out a link (`GET /api/v1/download/{token}`, no JWT) that
//! downloads one media a bounded number of times until it expires. The token, 256 random bits,
//! is the capability; only its SHA-256 is stored, and the grant's id is the first half of that
//! hash, so a grant is found from its token with one key lookup and the token cannot be rebuilt
//! from anything stored or shown.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::domain::{MediaId, MediaStatus, OwnerId, format_time};
use crate::ports::{GrantUse, RepoError, StoreError};
use crate::service::{MediaError, MediaService};

/// Shortest grant lifetime, seconds.
pub const MIN_EXPIRES_IN: i64 = 60;
/// Longest grant lifetime, seconds (30 days).
pub const MAX_EXPIRES_IN: i64 = 30 * 24 * 3600;
/// Most downloads one grant may allow.
pub const MAX_DOWNLOADS: u32 = 1000;
/// Longest label, characters.
pub const MAX_LABEL_CHARS: usize = 200;

/// A grant's id: 32 lowercase hex digits, the first half of its token's SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GrantId(String);

impl GrantId {
    /// Accepts exactly 32 lowercase hex digits.
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Self(s.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A grant's secret token: 32 random bytes, base64url without padding (43 characters).
#[derive(Clone, PartialEq, Eq)]
pub struct GrantToken(String);

impl std::fmt::Debug for GrantToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GrantToken(..)")
    }
}

impl GrantToken {
    /// A fresh token from the operating system's random source.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        use base64::Engine;
        Ok(Self(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        ))
    }

    /// A token as it arrives in a URL: anything but 43 base64url characters is no token.
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 43
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| Self(s.to_owned()))
    }

    /// The token as text (shown once, in the grant's URL).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its SHA-256, lowercase hex: what is stored.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }

    /// The id of the grant it belongs to.
    pub fn grant_id(&self) -> GrantId {
        GrantId(self.hash()[..32].to_owned())
    }
}

/// One download grant, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Its id.
    pub id: GrantId,
    /// The media it downloads.
    pub media_id: MediaId,
    /// The media's owner, who made it.
    pub owner: OwnerId,
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
    /// How many downloads it allows (`None`: unlimited until it expires).
    pub max_downloads: Option<u32>,
    /// How many it has served.
    pub downloads: u32,
    /// The owner's note (an order number...).
    pub label: Option<String>,
}

/// `POST /api/v1/upload/{mediaId}/grants`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantRequest {
    /// Lifetime in seconds, 60..=2592000 (required).
    pub expires_in: Option<serde_json::Value>,
    /// Downloads allowed, 1..=1000.
    pub max_downloads: Option<serde_json::Value>,
    /// A note for the owner, at most 200 characters.
    pub label: Option<serde_json::Value>,
}

/// A grant request, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedGrant {
    expires_in: i64,
    max_downloads: Option<u32>,
    label: Option<String>,
}

impl GrantRequest {
    /// Checks every field; the message names the first wrong one.
    pub fn check(self) -> Result<CheckedGrant, GrantError> {
        let invalid = |m: &str| GrantError::Invalid(m.to_owned());
        let expires_in = self
            .expires_in
            .ok_or_else(|| invalid("expiresIn is required"))?
            .as_i64()
            .filter(|s| (MIN_EXPIRES_IN..=MAX_EXPIRES_IN).contains(s))
            .ok_or_else(|| {
                invalid("expiresIn must be a whole number of seconds from 60 to 2592000")
            })?;
        let max_downloads = match self.max_downloads {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| (1..=MAX_DOWNLOADS).contains(n))
                    .ok_or_else(|| invalid("maxDownloads must be a whole number from 1 to 1000"))?,
            ),
        };
        let label = match self.label {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => {
                let s = s.trim();
                if s.chars().count() > MAX_LABEL_CHARS || s.chars().any(char::is_control) {
                    return Err(invalid(
                        "label must be at most 200 characters, without control characters",
                    ));
                }
                (!s.is_empty()).then(|| s.to_owned())
            }
            Some(_) => return Err(invalid("label must be a string")),
        };
        Ok(CheckedGrant {
            expires_in,
            max_downloads,
            label,
        })
    }
}

/// A grant as the API shows it (never its token).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantView {
    /// Its id.
    pub grant_id: String,
    /// The media.
    pub media_id: String,
    /// When it stops working.
    pub expires_at: String,
    /// Downloads allowed (`null`: unlimited until it expires).
    pub max_downloads: Option<u32>,
    /// Downloads served.
    pub downloads: u32,
    /// The owner's note.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// When it was made.
    pub created_at: String,
    /// The link, only in the answer that created it (the token is not stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl GrantView {
    fn of(g: &Grant, url: Option<String>) -> Self {
        Self {
            grant_id: g.id.as_str().to_owned(),
            media_id: g.media_id.as_str().to_owned(),
            expires_at: format_time(g.expires_at),
            max_downloads: g.max_downloads,
            downloads: g.downloads,
            label: g.label.clone(),
            created_at: format_time(g.created_at),
            url,
        }
    }
}

/// A list of grants.
#[derive(Debug, Clone, Serialize)]
pub struct GrantList {
    /// Newest first.
    pub items: Vec<GrantView>,
}

/// Why a grant call failed.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// The request body is wrong.
    #[error("{0}")]
    Invalid(String),
    /// The media (or grant) is not the caller's, or does not exist.
    #[error("not found")]
    NotFound,
    /// The media is still pending.
    #[error("the media is not processed yet")]
    NotReady,
    /// An unknown or revoked token.
    #[error("no such download link")]
    UnknownToken,
    /// The grant expired.
    #[error("this download link has expired")]
    Expired,
    /// The grant served all its downloads.
    #[error("this download link has been used up")]
    Exhausted,
    /// No random bytes for a token.
    #[error("no randomness for a token")]
    Random(#[source] getrandom::Error),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The repository failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl From<MediaError> for GrantError {
    fn from(e: MediaError) -> Self {
        match e {
            MediaError::Store(e) => Self::Store(e),
            MediaError::Repo(e) => Self::Repo(e),
            _ => Self::NotFound,
        }
    }
}

impl MediaService {
    /// Makes a grant for the caller's ready media; `api_base` is the API's URL (scheme and
    /// host), which the link is built on.
    pub async fn create_grant(
        &self,
        owner: &OwnerId,
        id: &MediaId,
        request: CheckedGrant,
        api_base: &str,
    ) -> Result<GrantView, GrantError> {
        let media = self.owned(owner, id).await?;
        match media.status {
            MediaStatus::Ready => {}
            MediaStatus::Pending => return Err(GrantError::NotReady),
            _ => return Err(GrantError::NotFound),
        }
        let token = GrantToken::generate().map_err(GrantError::Random)?;
        let now = OffsetDateTime::now_utc();
        let grant = Grant {
            id: token.grant_id(),
            media_id: id.clone(),
            owner: owner.clone(),
            token_hash: token.hash(),
            created_at: now,
            expires_at: now + Duration::seconds(request.expires_in),
            max_downloads: request.max_downloads,
            downloads: 0,
            label: request.label,
        };
        self.grants.create(&grant).await?;
        let url = format!(
            "{}/api/v1/download/{}",
            api_base.trim_end_matches('/'),
            token.as_str()
        );
        Ok(GrantView::of(&grant, Some(url)))
    }

    /// The grants of the caller's media, newest first.
    pub async fn list_grants(
        &self,
        owner: &OwnerId,
        id: &MediaId,
    ) -> Result<GrantList, GrantError> {
        self.owned(owner, id).await?;
        let mut grants = self.grants.list(id).await?;
        grants.sort_by_key(|g| std::cmp::Reverse(g.created_at));
        Ok(GrantList {
            items: grants.iter().map(|g| GrantView::of(g, None)).collect(),
        })
    }

    /// Revokes one grant of the caller's media; revoking one already gone succeeds too (a
    /// retried call whose answer was lost must not fail).
    pub async fn revoke_grant(
        &self,
        owner: &OwnerId,
        id: &MediaId,
        grant: &GrantId,
    ) -> Result<(), GrantError> {
        self.owned(owner, id).await?;
        self.grants.revoke(id, grant).await?;
        Ok(())
    }

    /// Uses a grant: counts one download atomically (never past its maximum, never after it
    /// expires) and answers a short-lived download URL.
    pub async fn use_grant(&self, token: &str) -> Result<String, GrantError> {
        let token = GrantToken::parse(token).ok_or(GrantError::UnknownToken)?;
        let id = token.grant_id();
        // A grant whose media is not served any more (deleted, or purged) is revoked, whatever
        // the grant item says: look first, count only what can be served.
        let grant = self
            .grants
            .get(&id)
            .await?
            .filter(|g| g.token_hash == token.hash())
            .ok_or(GrantError::UnknownToken)?;
        let media = match self.repo.get(&grant.media_id).await? {
            Some(m) if m.status == MediaStatus::Ready && m.owner == grant.owner => m,
            _ => return Err(GrantError::UnknownToken),
        };
        let now = OffsetDateTime::now_utc();
        let use_id = uuid::Uuid::new_v4().simple().to_string();
        match self.grants.count_use(&id, &use_id, now).await? {
            GrantUse::Counted => {}
            GrantUse::Missing => return Err(GrantError::UnknownToken),
            GrantUse::Expired => return Err(GrantError::Expired),
            GrantUse::Exhausted => return Err(GrantError::Exhausted),
        }
        self.metrics.count("grant_download_total", &[], 1);
        self.download_url(&media)
            .await?
            .ok_or(GrantError::UnknownToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(v: serde_json::Value) -> Result<CheckedGrant, String> {
        serde_json::from_value::<GrantRequest>(v)
            .map_err(|e| e.to_string())?
            .check()
            .map_err(|e| e.to_string())
    }

    #[test]
    fn grant_requests_are_bounded() {
        assert_eq!(
            check(json!({"expiresIn": 60, "maxDownloads": 3, "label": " order 1234 "})),
            Ok(CheckedGrant {
                expires_in: 60,
                max_downloads: Some(3),
                label: Some("order 1234".into())
            })
        );
        assert!(check(json!({"expiresIn": 2_592_000})).is_ok());
        for bad in [
            json!({}),
            json!({"expiresIn": 59}),
            json!({"expiresIn": 2_592_001}),
            json!({"expiresIn": 60.5}),
            json!({"expiresIn": "60"}),
            json!({"expiresIn": 60, "maxDownloads": 0}),
            json!({"expiresIn": 60, "maxDownloads": 1001}),
            json!({"expiresIn": 60, "label": 5}),
            json!({"expiresIn": 60, "label": "a\u{0}b"}),
            json!({"expiresIn": 60, "label": "x".repeat(201)}),
            json!({"expiresIn": 60, "other": 1}),
        ] {
            assert!(check(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn tokens_are_long_random_and_hashed_into_their_grant_id() -> Result<(), getrandom::Error> {
        let a = GrantToken::generate()?;
        let b = GrantToken::generate()?;
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 43);
        assert_eq!(GrantToken::parse(a.as_str()), Some(a.clone()));
        assert_eq!(a.hash().len(), 64);
        assert!(a.hash().starts_with(a.grant_id().as_str()));
        assert_eq!(GrantId::parse(a.grant_id().as_str()), Some(a.grant_id()));
        assert!(!format!("{a:?}").contains(a.as_str()));
        for bad in [
            "",
            "short",
            &"a".repeat(44),
            &format!("{}!", "a".repeat(42)),
        ] {
            assert_eq!(GrantToken::parse(bad), None, "{bad}");
        }
        Ok(())
    }
}
