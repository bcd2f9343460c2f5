//! A media record as a DynamoDB item, and back.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use media_core::describe::{Descriptive, EntityLink, Tag};
use media_core::domain::{
    ContentType, Media, MediaId, MediaStatus, ObjectKey, OwnerId, StoredDerivative, format_time,
    parse_time,
};
use media_core::ports::{CleanupQueue, RepoError};
use time::OffsetDateTime;

use super::TTL_ATTRIBUTE;

const TTL_BACKSTOP: time::Duration = time::Duration::days(1);

/// The attributes that hold the descriptive fields (removed when a field is unset).
pub(super) const DESCRIPTIVE_ATTRIBUTES: [&str; 7] = [
    "alt",
    "title",
    "description",
    "tags",
    "entityType",
    "entityId",
    "entityKey",
];

/// The TTL attribute of a pending record due at `due`: a backstop a day later (epoch seconds).
pub(super) fn ttl_backstop(due: OffsetDateTime) -> AttributeValue {
    AttributeValue::N((due + TTL_BACKSTOP).unix_timestamp().to_string())
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn status(st: MediaStatus) -> AttributeValue {
    s(st.as_str())
}

pub(super) fn json<T: serde::Serialize>(v: &T) -> AttributeValue {
    // Serialising plain data structs cannot fail; an empty object is a safe fallback.
    s(serde_json::to_string(v).unwrap_or_else(|_| "{}".to_owned()))
}

/// The partition key of the `by-entity` index: the owner, the entity's type and id, joined by a
/// character none of them may contain (all three refuse control characters).
pub(super) fn entity_key(owner: &OwnerId, entity: &EntityLink) -> String {
    format!(
        "{}\u{1f}{}\u{1f}{}",
        owner.as_str(),
        entity.entity_type,
        entity.id
    )
}

/// The descriptive fields as attributes: those that are set, and the names of those that are not.
pub(super) fn descriptive_attributes(
    owner: &OwnerId,
    d: &Descriptive,
) -> (Vec<(&'static str, AttributeValue)>, Vec<&'static str>) {
    let mut set = Vec::new();
    let mut text = |name: &'static str, v: &Option<String>| {
        if let Some(v) = v {
            set.push((name, s(v)));
        }
    };
    text("alt", &d.alt);
    text("title", &d.title);
    text("description", &d.description);
    if !d.tags.is_empty() {
        let tags = d.tags.iter().map(|t| s(t.as_str())).collect();
        set.push(("tags", AttributeValue::L(tags)));
    }
    if let Some(e) = &d.entity {
        set.push(("entityType", s(&e.entity_type)));
        set.push(("entityId", s(&e.id)));
        set.push(("entityKey", s(entity_key(owner, e))));
    }
    let unset = DESCRIPTIVE_ATTRIBUTES
        .into_iter()
        .filter(|a| !set.iter().any(|(name, _)| name == a))
        .collect();
    (set, unset)
}

/// The due time of records that must be purged at once (expired uploads): before every real time.
pub(super) const PURGE_NOW: &str = "0000-00-00T00:00:00.000Z";

pub(super) fn to_item(m: &Media) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        ("id".to_owned(), s(m.id.as_str())),
        ("ownerId".to_owned(), s(m.owner.as_str())),
        ("status".to_owned(), status(m.status)),
        ("filename".to_owned(), s(&m.filename)),
        ("contentType".to_owned(), s(m.content_type.mime())),
        ("size".to_owned(), n(m.size)),
        ("objectKey".to_owned(), s(m.key.as_str())),
        ("createdAt".to_owned(), s(format_time(m.created_at))),
        ("updatedAt".to_owned(), s(format_time(m.updated_at))),
        ("version".to_owned(), n(m.version)),
    ]);
    if let Some(t) = m.expires_at {
        item.insert("expiresAt".to_owned(), s(format_time(t)));
        if m.status == MediaStatus::Pending {
            item.insert(
                "gcQueue".to_owned(),
                s(CleanupQueue::Pending.partition(&m.id)),
            );
            item.insert("gcDue".to_owned(), s(format_time(t)));
            // DynamoDB's TTL attribute (epoch seconds): a backstop a day after the pending expiry,
            // so that cleanup, which also removes the upload, normally gets there first.
            item.insert(TTL_ATTRIBUTE.to_owned(), ttl_backstop(t));
        }
    }
    if let Some(k) = &m.served_original {
        item.insert("servedKey".to_owned(), s(k.as_str()));
    }
    if let Some(size) = m.served_size {
        item.insert("servedSize".to_owned(), n(size));
    }
    if let Some(t) = m.deleted_at {
        item.insert("deletedAt".to_owned(), s(format_time(t)));
    }
    if let Some(st) = m.deleted_from {
        item.insert("deletedFrom".to_owned(), status(st));
    }
    if m.holds_quota {
        item.insert("holdsQuota".to_owned(), AttributeValue::Bool(true));
    }
    if let Some(id) = &m.upload_id {
        item.insert("uploadId".to_owned(), s(id));
    }
    if let Some(meta) = &m.metadata {
        item.insert("metadata".to_owned(), json(meta));
    }
    if !m.derivatives.is_empty() {
        item.insert("derivatives".to_owned(), json(&m.derivatives));
    }
    if let Some(r) = &m.rejection {
        item.insert("rejection".to_owned(), json(r));
    }
    let (descriptive, _) = descriptive_attributes(&m.owner, &m.describe);
    for (name, value) in descriptive {
        item.insert(name.to_owned(), value);
    }
    item
}

pub(super) fn from_item(item: &HashMap<String, AttributeValue>) -> Result<Media, RepoError> {
    let id_text = item
        .get("id")
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default();
    let bad = |reason: String| RepoError::Malformed {
        id: id_text.clone(),
        reason,
    };
    let text = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
    };
    let number = |name: &str| -> Option<u64> {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
    };
    let req = |name: &str| text(name).ok_or_else(|| bad(format!("missing {name}")));
    let time_of = |name: &str| -> Result<Option<OffsetDateTime>, RepoError> {
        text(name)
            .map(parse_time)
            .transpose()
            .map_err(|e| bad(e.to_string()))
    };
    fn parse_json<T: serde::de::DeserializeOwned>(raw: Option<&str>) -> Result<Option<T>, String> {
        raw.map(serde_json::from_str)
            .transpose()
            .map_err(|e| e.to_string())
    }
    let tags = match item.get("tags") {
        None => Vec::new(),
        Some(v) => v
            .as_l()
            .map_err(|_| bad("tags is not a list".into()))?
            .iter()
            .map(|t| {
                t.as_s()
                    .map_err(|_| "a tag is not a string".to_owned())
                    .and_then(|t| Tag::parse(t).map_err(|e| e.to_string()))
            })
            .collect::<Result<_, _>>()
            .map_err(bad)?,
    };
    let entity = match (text("entityType"), text("entityId")) {
        (Some(t), Some(id)) => Some(EntityLink::parse(t, id).map_err(|e| bad(e.to_string()))?),
        _ => None,
    };
    Ok(Media {
        id: MediaId::parse(&id_text).map_err(|e| bad(e.to_string()))?,
        owner: OwnerId::parse(req("ownerId")?).map_err(|e| bad(e.to_string()))?,
        status: MediaStatus::parse(req("status")?).map_err(|e| bad(e.to_string()))?,
        filename: req("filename")?.to_owned(),
        content_type: ContentType::parse(req("contentType")?).map_err(|e| bad(e.to_string()))?,
        size: number("size").ok_or_else(|| bad("missing size".into()))?,
        key: ObjectKey::from_raw(req("objectKey")?),
        created_at: time_of("createdAt")?.ok_or_else(|| bad("missing createdAt".into()))?,
        updated_at: time_of("updatedAt")?.ok_or_else(|| bad("missing updatedAt".into()))?,
        expires_at: time_of("expiresAt")?,
        deleted_at: time_of("deletedAt")?,
        served_original: text("servedKey").map(ObjectKey::from_raw),
        served_size: number("servedSize"),
        metadata: parse_json(text("metadata")).map_err(bad)?,
        derivatives: parse_json::<BTreeMap<String, StoredDerivative>>(text("derivatives"))
            .map_err(bad)?
            .unwrap_or_default(),
        rejection: parse_json(text("rejection")).map_err(bad)?,
        describe: Descriptive {
            alt: text("alt").map(str::to_owned),
            title: text("title").map(str::to_owned),
            description: text("description").map(str::to_owned),
            tags,
            entity,
        },
        // Records written before versions existed count as their first version.
        version: number("version").unwrap_or(1),
        deleted_from: text("deletedFrom")
            .map(MediaStatus::parse)
            .transpose()
            .map_err(|e| bad(e.to_string()))?,
        holds_quota: item
            .get("holdsQuota")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        upload_id: text("uploadId").map(str::to_owned),
    })
}
