//! List: the caller's media, newest first, a page at a time, with filters. The cursor is opaque to
//! clients and bound to its owner and its query: it cannot page through another owner's list.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::describe::{EntityLink, Tag, parse_entity_id, parse_entity_type};
use crate::domain::{MediaId, MediaKind, MediaStatus, OwnerId, format_time, parse_time};
use crate::ports::{ListPosition, ListQuery, RepoError, StoreError};
use crate::service::{FlushOnDrop, MediaService, MediaView};

/// Items per page when the request does not say.
pub const DEFAULT_LIMIT: usize = 20;
/// Most items per page.
pub const MAX_LIMIT: usize = 100;

/// Refusals and failures of a list request.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// A query parameter is malformed.
    #[error("{param}: {message}")]
    Invalid {
        /// The parameter's name.
        param: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The cursor is malformed, or belongs to another owner or another query.
    #[error("{0}")]
    InvalidCursor(&'static str),
    /// Storage failed (signing a URL).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The repository failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// A parsed list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest {
    /// Items per page, 1..=100.
    pub limit: usize,
    /// The opaque cursor of the previous page.
    pub cursor: Option<String>,
    /// What to list.
    pub query: ListQuery,
    /// False when the date bounds leave nothing to list (`createdAfter` >= `createdBefore`).
    pub satisfiable: bool,
}

fn invalid(param: &'static str, message: impl Into<String>) -> ListError {
    ListError::Invalid {
        param,
        message: message.into(),
    }
}

impl ListRequest {
    /// Parses the query string's parameters (`param(name)` gives a parameter's value). Unknown
    /// parameters are ignored.
    pub fn parse<'a>(param: impl Fn(&str) -> Option<&'a str>) -> Result<Self, ListError> {
        let limit = match param("limit") {
            None => DEFAULT_LIMIT,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| invalid("limit", format!("must be an integer 1-{MAX_LIMIT}")))?,
        };
        let statuses = match param("status") {
            None => vec![
                MediaStatus::Pending,
                MediaStatus::Ready,
                MediaStatus::Rejected,
            ],
            Some(v) => match MediaStatus::parse(v) {
                Ok(st @ (MediaStatus::Pending | MediaStatus::Ready | MediaStatus::Rejected)) => {
                    vec![st]
                }
                _ => return Err(invalid("status", "must be pending, ready or rejected")),
            },
        };
        let content_types = param("kind")
            .map(|v| {
                MediaKind::parse(v)
                    .map(MediaKind::content_types)
                    .map_err(|e| invalid("kind", e.0))
            })
            .transpose()?;
        let tag = param("tag")
            .map(|v| Tag::parse(v).map_err(|e| invalid("tag", e.0)))
            .transpose()?;
        let entity = match (param("entityType"), param("entityId")) {
            (None, None) => None,
            (Some(t), Some(id)) => Some(EntityLink {
                entity_type: parse_entity_type(t).map_err(|e| invalid("entityType", e.0))?,
                id: parse_entity_id(id).map_err(|e| invalid("entityId", e.0))?,
            }),
            (Some(_), None) => return Err(invalid("entityId", "is required with entityType")),
            (None, Some(_)) => return Err(invalid("entityType", "is required with entityId")),
        };
        let time = |name: &'static str| {
            param(name)
                .map(|v| parse_time(v).map_err(|_| invalid(name, "must be an RFC 3339 timestamp")))
                .transpose()
        };
        let after = time("createdAfter")?;
        let before = time("createdBefore")?;
        // Both bounds are exclusive; records are stored to the millisecond, so they become the
        // inclusive millisecond bounds a key condition can use.
        let ms = time::Duration::milliseconds(1);
        let created_from = after.map(|t| floor_ms(t).checked_add(ms));
        let created_until = before.map(|t| ceil_ms(t).and_then(|c| c.checked_sub(ms)));
        let satisfiable = !matches!(created_from, Some(None))
            && !matches!(created_until, Some(None))
            && match (created_from.flatten(), created_until.flatten()) {
                (Some(from), Some(until)) => from <= until,
                _ => true,
            };
        Ok(Self {
            limit,
            cursor: param("cursor").map(str::to_owned),
            query: ListQuery {
                statuses,
                content_types,
                tag,
                entity,
                created_from: created_from.flatten(),
                created_until: created_until.flatten(),
            },
            satisfiable,
        })
    }
}

fn floor_ms(t: OffsetDateTime) -> OffsetDateTime {
    let extra = t.nanosecond() % 1_000_000;
    t - time::Duration::nanoseconds(i64::from(extra))
}

fn ceil_ms(t: OffsetDateTime) -> Option<OffsetDateTime> {
    let floor = floor_ms(t);
    if floor == t {
        Some(t)
    } else {
        floor.checked_add(time::Duration::milliseconds(1))
    }
}

/// One page of the caller's media.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse {
    /// The media, newest first.
    pub items: Vec<MediaView>,
    /// The cursor of the next page, or `null` at the end.
    pub next_cursor: Option<String>,
}

/// What a cursor holds. Clients see it as opaque base64url.
#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    /// Format version.
    v: u8,
    /// A fingerprint of the owner.
    o: String,
    /// A fingerprint of the query (filters and date bounds).
    q: String,
    /// `createdAt` of the position.
    t: String,
    /// The position's media id.
    i: String,
}

fn fingerprint(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

fn query_fingerprint(q: &ListQuery) -> String {
    fingerprint(&format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        q.statuses,
        q.content_types,
        q.tag.as_ref().map(Tag::as_str),
        q.entity.as_ref().map(|e| (&e.entity_type, &e.id)),
        q.created_from.map(format_time),
        q.created_until.map(format_time)
    ))
}

fn encode_cursor(owner: &OwnerId, q: &ListQuery, p: &ListPosition) -> String {
    let c = Cursor {
        v: 1,
        o: fingerprint(owner.as_str()),
        q: query_fingerprint(q),
        t: p.created_at.clone(),
        i: p.id.to_string(),
    };
    // Serialising a struct of strings cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap_or_default())
}

fn decode_cursor(owner: &OwnerId, q: &ListQuery, text: &str) -> Result<ListPosition, ListError> {
    let malformed = ListError::InvalidCursor("the cursor is malformed");
    if text.len() > 512 {
        return Err(malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| ListError::InvalidCursor("the cursor is malformed"))?;
    let c: Cursor = serde_json::from_slice(&bytes)
        .map_err(|_| ListError::InvalidCursor("the cursor is malformed"))?;
    let created = parse_time(&c.t).ok();
    let id = MediaId::parse(&c.i).ok();
    let (1, Some(created), Some(id)) = (c.v, created, id) else {
        return Err(malformed);
    };
    if c.o != fingerprint(owner.as_str()) {
        return Err(ListError::InvalidCursor(
            "the cursor belongs to another list",
        ));
    }
    if c.q != query_fingerprint(q) {
        return Err(ListError::InvalidCursor(
            "the cursor belongs to a list with other filters",
        ));
    }
    Ok(ListPosition {
        created_at: format_time(created),
        id,
    })
}

impl MediaService {
    /// A page of the caller's media (never deleted ones), newest first.
    pub async fn list_media(
        &self,
        owner: &OwnerId,
        req: ListRequest,
    ) -> Result<ListResponse, ListError> {
        let _flush = FlushOnDrop(&self.metrics);
        let start = req
            .cursor
            .as_deref()
            .map(|c| decode_cursor(owner, &req.query, c))
            .transpose()?;
        if !req.satisfiable {
            return Ok(ListResponse {
                items: Vec::new(),
                next_cursor: None,
            });
        }
        let page = self
            .repo
            .list(owner, &req.query, start.as_ref(), req.limit)
            .await?;
        let mut items = Vec::with_capacity(page.items.len());
        for media in page.items {
            items.push(self.view(media).await?);
        }
        Ok(ListResponse {
            items,
            next_cursor: page.next.map(|p| encode_cursor(owner, &req.query, &p)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> Result<ListRequest, ListError> {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        ListRequest::parse(|k| map.get(k).copied())
    }

    fn param_of(r: Result<ListRequest, ListError>) -> &'static str {
        match r {
            Err(ListError::Invalid { param, .. }) => param,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn defaults_and_limits() {
        let r = parse(&[]).unwrap();
        assert_eq!(r.limit, 20);
        assert_eq!(r.query.statuses.len(), 3);
        assert!(r.satisfiable);
        assert_eq!(parse(&[("limit", "100")]).unwrap().limit, 100);
        for bad in ["0", "101", "-1", "x", "1.5", ""] {
            assert_eq!(param_of(parse(&[("limit", bad)])), "limit", "{bad}");
        }
        for bad in ["deleted", "expired", "READY", ""] {
            assert_eq!(param_of(parse(&[("status", bad)])), "status", "{bad}");
        }
        assert_eq!(param_of(parse(&[("kind", "movie")])), "kind");
        assert_eq!(param_of(parse(&[("tag", "a/b")])), "tag");
        assert_eq!(param_of(parse(&[("entityType", "product")])), "entityId");
        assert_eq!(param_of(parse(&[("entityId", "1")])), "entityType");
        assert_eq!(
            param_of(parse(&[("entityType", "Product"), ("entityId", "1")])),
            "entityType"
        );
        assert_eq!(
            param_of(parse(&[("createdAfter", "yesterday")])),
            "createdAfter"
        );
        assert_eq!(
            param_of(parse(&[("createdBefore", "2026-01-01")])),
            "createdBefore"
        );
        assert_eq!(
            parse(&[("tag", " Red ")])
                .unwrap()
                .query
                .tag
                .map(String::from)
                .as_deref(),
            Some("red")
        );
    }

    #[test]
    fn exclusive_date_bounds_become_inclusive_milliseconds() {
        let r = parse(&[
            ("createdAfter", "2026-01-01T10:00:00+02:00"),
            ("createdBefore", "2026-01-01T09:00:00.0005Z"),
        ])
        .unwrap();
        assert_eq!(
            r.query.created_from.map(format_time).as_deref(),
            Some("2026-01-01T08:00:00.001Z")
        );
        assert_eq!(
            r.query.created_until.map(format_time).as_deref(),
            Some("2026-01-01T09:00:00.000Z")
        );
        assert!(r.satisfiable);
        let r = parse(&[("createdBefore", "2026-01-01T09:00:00Z")]).unwrap();
        assert_eq!(
            r.query.created_until.map(format_time).as_deref(),
            Some("2026-01-01T08:59:59.999Z")
        );
        // Bounds that leave nothing between them: an empty list, not an error.
        let r = parse(&[
            ("createdAfter", "2026-01-01T09:00:00Z"),
            ("createdBefore", "2026-01-01T09:00:00.001Z"),
        ])
        .unwrap();
        assert!(!r.satisfiable);
        assert!(
            !parse(&[("createdAfter", "9999-12-31T23:59:59.9999Z")])
                .unwrap()
                .satisfiable
        );
    }

    #[test]
    fn cursors_are_bound_to_their_owner_and_query() {
        let alice = OwnerId::parse("alice").unwrap();
        let bob = OwnerId::parse("bob").unwrap();
        let q = parse(&[("tag", "red")]).unwrap().query;
        let p = ListPosition {
            created_at: "2026-01-01T00:00:00.000Z".into(),
            id: MediaId::generate(),
        };
        let c = encode_cursor(&alice, &q, &p);
        assert_eq!(decode_cursor(&alice, &q, &c).unwrap(), p);
        assert!(matches!(
            decode_cursor(&bob, &q, &c),
            Err(ListError::InvalidCursor(_))
        ));
        let other = parse(&[("tag", "blue")]).unwrap().query;
        assert!(matches!(
            decode_cursor(&alice, &other, &c),
            Err(ListError::InvalidCursor(_))
        ));
        for bad in [
            "",
            "x",
            "!!!!",
            &URL_SAFE_NO_PAD.encode("{}"),
            &"A".repeat(600),
        ] {
            assert!(
                matches!(
                    decode_cursor(&alice, &q, bad),
                    Err(ListError::InvalidCursor(_))
                ),
                "{bad}"
            );
        }
        // A well-formed cursor with a bad position is malformed too.
        let forged = URL_SAFE_NO_PAD.encode(
            serde_json::json!({"v":1,"o":fingerprint("alice"),"q":query_fingerprint(&q),"t":"x","i":"y"})
                .to_string(),
        );
        assert!(matches!(
            decode_cursor(&alice, &q, &forged),
            Err(ListError::InvalidCursor(_))
        ));
    }
}
