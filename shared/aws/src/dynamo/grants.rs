//! [`GrantStore`] on the media table: one item per grant, `id` = `grant#<grantId>`, found from its
//! token by that key, and listed per media by the sparse index `grants-by-media` (`grantMedia`,
//! `createdAt`). Grant items carry none of the attributes the other indexes are keyed on, so they
//! never appear in an owner's list or cleanup's work lists.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use media_core::domain::{MediaId, OwnerId, format_time, parse_time};
use media_core::grants::{Grant, GrantId};
use media_core::ports::{GrantStore, GrantUse, RepoError};
use time::OffsetDateTime;

use super::item::{n, s};
use super::{TTL_ATTRIBUTE, backend};

/// Name of the sparse index that lists a media's grants.
pub const GRANT_INDEX: &str = "grants-by-media";
/// How long a grant item outlives its expiry (so the owner still sees it listed), before the
/// table's TTL removes it.
const KEEP_AFTER_EXPIRY_SECONDS: i64 = 7 * 24 * 3600;
/// Most grants one list or revocation reads (10 pages of 1000).
const MAX_PAGES: usize = 10;

/// Download grants on the media table.
#[derive(Debug, Clone)]
pub struct DynamoGrantStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoGrantStore {
    /// The store on `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// A grant's item as stored, read strongly consistent.
    async fn item(
        &self,
        id: &GrantId,
    ) -> Result<Option<HashMap<String, AttributeValue>>, RepoError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", s(key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("read a grant")(Box::new(e)))?;
        Ok(out.item().cloned())
    }

    async fn media_grants(&self, media: &MediaId) -> Result<Vec<Grant>, RepoError> {
        let mut out = Vec::new();
        let mut start = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GRANT_INDEX)
                .key_condition_expression("grantMedia = :m")
                .expression_attribute_values(":m", s(media.as_str()))
                .scan_index_forward(false)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| backend("list a media's grants")(Box::new(e)))?;
            for item in page.items() {
                out.push(from_item(item)?);
            }
            match page.last_evaluated_key() {
                Some(key) => start = Some(key.clone()),
                None => break,
            }
        }
        Ok(out)
    }
}

fn key(id: &GrantId) -> String {
    format!("grant#{}", id.as_str())
}

fn millis(t: OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

fn to_item(g: &Grant) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        ("id".to_owned(), s(key(&g.id))),
        ("grantMedia".to_owned(), s(g.media_id.as_str())),
        ("grantOwner".to_owned(), s(g.owner.as_str())),
        ("tokenHash".to_owned(), s(&g.token_hash)),
        ("createdAt".to_owned(), s(format_time(g.created_at))),
        ("expiresAt".to_owned(), s(format_time(g.expires_at))),
        ("expiresAtMs".to_owned(), n(millis(g.expires_at))),
        ("downloads".to_owned(), n(u64::from(g.downloads))),
        (
            TTL_ATTRIBUTE.to_owned(),
            n(
                u64::try_from(g.expires_at.unix_timestamp() + KEEP_AFTER_EXPIRY_SECONDS)
                    .unwrap_or(0),
            ),
        ),
    ]);
    if let Some(max) = g.max_downloads {
        item.insert("maxDownloads".to_owned(), n(u64::from(max)));
    }
    if let Some(label) = &g.label {
        item.insert("label".to_owned(), s(label));
    }
    item
}

fn from_item(item: &HashMap<String, AttributeValue>) -> Result<Grant, RepoError> {
    let id_attr = item
        .get("id")
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default();
    let bad = |reason: &str| RepoError::Malformed {
        id: id_attr.clone(),
        reason: reason.to_owned(),
    };
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok());
    let number = |name: &str| -> Result<Option<u32>, RepoError> {
        item.get(name)
            .map(|v| {
                v.as_n()
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| bad(&format!("{name} is not a number")))
            })
            .transpose()
    };
    let id = id_attr
        .strip_prefix("grant#")
        .and_then(GrantId::parse)
        .ok_or_else(|| bad("not a grant id"))?;
    let time = |name: &str| {
        text(name)
            .and_then(|t| parse_time(t).ok())
            .ok_or_else(|| bad(&format!("{name} is not a time")))
    };
    Ok(Grant {
        id,
        media_id: text("grantMedia")
            .and_then(|m| MediaId::parse(m).ok())
            .ok_or_else(|| bad("grantMedia"))?,
        owner: text("grantOwner")
            .and_then(|o| OwnerId::parse(o).ok())
            .ok_or_else(|| bad("grantOwner"))?,
        token_hash: text("tokenHash").cloned().ok_or_else(|| bad("tokenHash"))?,
        created_at: time("createdAt")?,
        expires_at: time("expiresAt")?,
        max_downloads: number("maxDownloads")?,
        downloads: number("downloads")?.unwrap_or(0),
        label: text("label").cloned(),
    })
}

#[async_trait]
impl GrantStore for DynamoGrantStore {
    async fn create(&self, grant: &Grant) -> Result<(), RepoError> {
        // A retried write that meets its own item finds the same token hash: nothing to do.
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(grant)))
            .condition_expression("attribute_not_exists(id) OR tokenHash = :h")
            .expression_attribute_values(":h", s(&grant.token_hash))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => Err(backend("store a grant")(Box::new(e))),
        }
    }

    async fn get(&self, id: &GrantId) -> Result<Option<Grant>, RepoError> {
        self.item(id).await?.as_ref().map(from_item).transpose()
    }

    async fn list(&self, media: &MediaId) -> Result<Vec<Grant>, RepoError> {
        self.media_grants(media).await
    }

    async fn count_use(
        &self,
        id: &GrantId,
        use_id: &str,
        now: OffsetDateTime,
    ) -> Result<GrantUse, RepoError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(key(id)))
            .update_expression("SET downloads = downloads + :one, lastUse = :u")
            .condition_expression(
                "attribute_exists(id) AND expiresAtMs > :now \
                 AND (attribute_not_exists(maxDownloads) OR downloads < maxDownloads) \
                 AND (attribute_not_exists(lastUse) OR lastUse <> :u)",
            )
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":u", s(use_id))
            .expression_attribute_values(":now", n(millis(now)))
            .send()
            .await;
        match result {
            Ok(_) => return Ok(GrantUse::Counted),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) => {}
            Err(e) => return Err(backend("count a download")(Box::new(e))),
        }
        // Which condition failed decides the answer; our own write (its answer lost, the SDK's
        // retry refused) counts as done.
        let Some(item) = self.item(id).await? else {
            return Ok(GrantUse::Missing);
        };
        if item
            .get("lastUse")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
            == Some(use_id)
        {
            return Ok(GrantUse::Counted);
        }
        // The same attribute the condition compares.
        let expires_ms = item
            .get("expiresAtMs")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        Ok(if expires_ms <= millis(now) {
            GrantUse::Expired
        } else {
            GrantUse::Exhausted
        })
    }

    async fn revoke(&self, media: &MediaId, id: &GrantId) -> Result<(), RepoError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("id", s(key(id)))
            .condition_expression("grantMedia = :m")
            .expression_attribute_values(":m", s(media.as_str()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Gone already, or another media's: nothing of this media to revoke.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(backend("revoke a grant")(Box::new(e))),
        }
    }

    async fn revoke_all(&self, media: &MediaId) -> Result<usize, RepoError> {
        let grants = self.media_grants(media).await?;
        for chunk in grants.chunks(25) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|g| {
                    DeleteRequest::builder()
                        .key("id", s(key(&g.id)))
                        .build()
                        .map(|d| WriteRequest::builder().delete_request(d).build())
                        .map_err(|e| backend("revoke a media's grants")(Box::new(e)))
                })
                .collect::<Result<_, _>>()?;
            // Unprocessed deletes are sent again, a bounded number of times.
            for _ in 0..8 {
                if requests.is_empty() {
                    break;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(|e| backend("revoke a media's grants")(Box::new(e)))?;
                requests = out
                    .unprocessed_items()
                    .and_then(|u| u.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
            }
            if !requests.is_empty() {
                return Err(backend("revoke a media's grants")(
                    "DynamoDB left deletes unprocessed".into(),
                ));
            }
        }
        Ok(grants.len())
    }
}
