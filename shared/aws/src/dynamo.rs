//! [`DynamoMediaRepository`]: the media repository port on one DynamoDB table.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use media_core::domain::{
    ContentType, ImageMetadata, Media, MediaId, MediaStatus, ObjectKey, OwnerId, Rejection,
    StoredDerivative, format_time, parse_time,
};
use media_core::ports::{CleanupQueue, MediaRepository, RepoError, Transition};
use time::OffsetDateTime;

/// Name of the index that lists an owner's media newest first.
pub const OWNER_INDEX: &str = "by-owner";
/// Name of the sparse index that holds cleanup's work lists.
pub const CLEANUP_INDEX: &str = "cleanup-due";
/// The table's TTL attribute (`TimeToLiveSpecification` in template.yaml): set on pending records.
pub const TTL_ATTRIBUTE: &str = "expiresAtEpoch";
const TTL_BACKSTOP: time::Duration = time::Duration::days(1);

/// [`MediaRepository`] on one DynamoDB table: key `id`; index `by-owner` (`ownerId`, `createdAt`);
/// sparse index `cleanup-due` (`gcQueue`, `gcDue`) holding only records cleanup must act on.
#[derive(Debug, Clone)]
pub struct DynamoMediaRepository {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoMediaRepository {
    /// The repository on `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Runs a conditional update of `id`, mapping a failed condition to [`Transition::Conflict`].
    async fn transition(
        &self,
        operation: &'static str,
        id: &MediaId,
        update: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<Transition, RepoError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(id.as_str()))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_names("#s", "status");
        for (name, value) in values {
            req = req.expression_attribute_values(name, value);
        }
        conditional(operation, req.send().await)
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn status(st: MediaStatus) -> AttributeValue {
    s(st.as_str())
}

fn json<T: serde::Serialize>(v: &T) -> AttributeValue {
    // Serialising plain data structs cannot fail; an empty object is a safe fallback.
    s(serde_json::to_string(v).unwrap_or_else(|_| "{}".to_owned()))
}

/// The due time of records that must be purged at once (expired uploads): before every real time.
const PURGE_NOW: &str = "0000-00-00T00:00:00.000Z";

fn to_item(m: &Media) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        ("id".to_owned(), s(m.id.as_str())),
        ("ownerId".to_owned(), s(m.owner.as_str())),
        ("status".to_owned(), status(m.status)),
        ("filename".to_owned(), s(&m.filename)),
        ("contentType".to_owned(), s(m.content_type.mime())),
        ("size".to_owned(), AttributeValue::N(m.size.to_string())),
        ("objectKey".to_owned(), s(m.key.as_str())),
        ("createdAt".to_owned(), s(format_time(m.created_at))),
        ("updatedAt".to_owned(), s(format_time(m.updated_at))),
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
            let ttl = (t + TTL_BACKSTOP).unix_timestamp();
            item.insert(TTL_ATTRIBUTE.to_owned(), AttributeValue::N(ttl.to_string()));
        }
    }
    if let Some(k) = &m.served_original {
        item.insert("servedKey".to_owned(), s(k.as_str()));
    }
    if let Some(n) = m.served_size {
        item.insert("servedSize".to_owned(), AttributeValue::N(n.to_string()));
    }
    if let Some(t) = m.deleted_at {
        item.insert("deletedAt".to_owned(), s(format_time(t)));
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
    item
}

fn from_item(item: &HashMap<String, AttributeValue>) -> Result<Media, RepoError> {
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
    Ok(Media {
        id: MediaId::parse(&id_text).map_err(|e| bad(e.to_string()))?,
        owner: OwnerId::parse(req("ownerId")?).map_err(|e| bad(e.to_string()))?,
        status: MediaStatus::parse(req("status")?).map_err(|e| bad(e.to_string()))?,
        filename: req("filename")?.to_owned(),
        content_type: ContentType::parse(req("contentType")?).map_err(|e| bad(e.to_string()))?,
        size: item
            .get("size")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad("missing size".into()))?,
        key: ObjectKey::from_raw(req("objectKey")?),
        created_at: time_of("createdAt")?.ok_or_else(|| bad("missing createdAt".into()))?,
        updated_at: time_of("updatedAt")?.ok_or_else(|| bad("missing updatedAt".into()))?,
        expires_at: time_of("expiresAt")?,
        deleted_at: time_of("deletedAt")?,
        served_original: text("servedKey").map(ObjectKey::from_raw),
        served_size: item
            .get("servedSize")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok()),
        metadata: parse_json(text("metadata")).map_err(bad)?,
        derivatives: parse_json::<BTreeMap<String, StoredDerivative>>(text("derivatives"))
            .map_err(bad)?
            .unwrap_or_default(),
        rejection: parse_json(text("rejection")).map_err(bad)?,
    })
}

/// The outcome of a conditional write: a failed condition is [`Transition::Conflict`], any other
/// error a backend failure.
fn conditional<T, E, R>(
    operation: &'static str,
    result: Result<T, aws_sdk_dynamodb::error::SdkError<E, R>>,
) -> Result<Transition, RepoError>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(Transition::Applied),
        Err(e)
            if e.as_service_error().and_then(|s| s.code())
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(Transition::Conflict)
        }
        Err(e) => Err(backend(operation)(Box::new(e))),
    }
}

fn backend(
    operation: &'static str,
) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> RepoError {
    move |source| RepoError::Backend { operation, source }
}

#[async_trait]
impl MediaRepository for DynamoMediaRepository {
    async fn create(&self, media: &Media) -> Result<Transition, RepoError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(media)))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await;
        conditional("create a media record", result)
    }

    async fn get(&self, id: &MediaId) -> Result<Option<Media>, RepoError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", s(id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("read a media record")(Box::new(e)))?;
        out.item().map(from_item).transpose()
    }

    async fn list_by_owner(&self, owner: &OwnerId, limit: usize) -> Result<Vec<Media>, RepoError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(OWNER_INDEX)
            .key_condition_expression("ownerId = :o")
            .expression_attribute_values(":o", s(owner.as_str()))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| backend("list an owner's media")(Box::new(e)))?;
        out.items().iter().map(from_item).collect()
    }

    async fn mark_ready(
        &self,
        id: &MediaId,
        served_original: &ObjectKey,
        served_size: u64,
        metadata: &ImageMetadata,
        derivatives: &BTreeMap<String, StoredDerivative>,
        now: OffsetDateTime,
    ) -> Result<Transition, RepoError> {
        self.transition(
            "mark media ready",
            id,
            "SET #s = :ready, servedKey = :k, servedSize = :n, metadata = :m, derivatives = :d, updatedAt = :now REMOVE gcQueue, gcDue, expiresAt, expiresAtEpoch",
            "#s = :pending",
            vec![
                (":ready", status(MediaStatus::Ready)),
                (":pending", status(MediaStatus::Pending)),
                (":k", s(served_original.as_str())),
                (":n", AttributeValue::N(served_size.to_string())),
                (":m", json(metadata)),
                (":d", json(derivatives)),
                (":now", s(format_time(now))),
            ],
        )
        .await
    }

    async fn mark_rejected(
        &self,
        id: &MediaId,
        rejection: &Rejection,
        now: OffsetDateTime,
    ) -> Result<Transition, RepoError> {
        self.transition(
            "mark media rejected",
            id,
            "SET #s = :rejected, rejection = :r, updatedAt = :now REMOVE gcQueue, gcDue, expiresAt, expiresAtEpoch",
            "#s = :pending",
            vec![
                (":rejected", status(MediaStatus::Rejected)),
                (":pending", status(MediaStatus::Pending)),
                (":r", json(rejection)),
                (":now", s(format_time(now))),
            ],
        )
        .await
    }

    async fn soft_delete(
        &self,
        id: &MediaId,
        owner: &OwnerId,
        now: OffsetDateTime,
    ) -> Result<Transition, RepoError> {
        let queue = CleanupQueue::Purge.partition(id);
        self.transition(
            "soft-delete media",
            id,
            "SET #s = :deleted, deletedAt = :now, updatedAt = :now, gcQueue = :purge, gcDue = :now REMOVE expiresAt, expiresAtEpoch",
            "ownerId = :owner AND #s IN (:pending, :ready, :rejected)",
            vec![
                (":deleted", status(MediaStatus::Deleted)),
                (":pending", status(MediaStatus::Pending)),
                (":ready", status(MediaStatus::Ready)),
                (":rejected", status(MediaStatus::Rejected)),
                (":owner", s(owner.as_str())),
                (":purge", s(queue)),
                (":now", s(format_time(now))),
            ],
        )
        .await
    }

    async fn expire(&self, id: &MediaId, now: OffsetDateTime) -> Result<Transition, RepoError> {
        let queue = CleanupQueue::Purge.partition(id);
        self.transition(
            "expire a pending upload",
            id,
            "SET #s = :expired, updatedAt = :now, gcQueue = :purge, gcDue = :due",
            "#s = :pending",
            vec![
                (":expired", status(MediaStatus::Expired)),
                (":pending", status(MediaStatus::Pending)),
                (":purge", s(queue)),
                (":due", s(PURGE_NOW)),
                (":now", s(format_time(now))),
            ],
        )
        .await
    }

    async fn remove(&self, id: &MediaId) -> Result<Transition, RepoError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("id", s(id.as_str()))
            .condition_expression("#s IN (:deleted, :expired)")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":deleted", status(MediaStatus::Deleted))
            .expression_attribute_values(":expired", status(MediaStatus::Expired))
            .send()
            .await;
        conditional("remove a media record", result)
    }

    async fn due(
        &self,
        partition: &str,
        due: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Media>, RepoError> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(CLEANUP_INDEX)
                .key_condition_expression("gcQueue = :q AND gcDue <= :due")
                .expression_attribute_values(":q", s(partition))
                .expression_attribute_values(":due", s(format_time(due)))
                .set_exclusive_start_key(start)
                .limit(
                    i32::try_from(limit.saturating_sub(found.len()).clamp(1, 1000)).unwrap_or(1000),
                )
                .send()
                .await
                .map_err(|e| backend("query cleanup work")(Box::new(e)))?;
            for item in out.items() {
                found.push(from_item(item)?);
            }
            start = out.last_evaluated_key().cloned();
            if start.is_none() || found.len() >= limit {
                found.truncate(limit);
                return Ok(found);
            }
        }
    }
}
