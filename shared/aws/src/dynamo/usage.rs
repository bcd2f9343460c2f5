//! Per-owner usage and presign rate windows, as items of the media table, and the transactions
//! that change a record and its owner's usage together (so a reservation is taken or given back
//! exactly once, with the state change that calls for it).
//!
//! Items: `usage#<owner>` (`files`, `bytes`) and `rate#<owner>#<window start, epoch seconds>`
//! (`requests`, with the table's TTL attribute). Neither has the attributes of any index.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use media_core::domain::OwnerId;
use media_core::ports::{Quota, RepoError, Reserved, Usage};
use time::OffsetDateTime;

use super::item::{n, s};
use super::{TTL_ATTRIBUTE, backend};

/// Attempts of a transaction that DynamoDB cancels because another one touched the same item
/// (concurrent presigns of one owner all update the owner's usage item).
const TRANSACTION_ATTEMPTS: u32 = 8;

/// How long a rate window's item outlives its window (DynamoDB's TTL removes it).
const RATE_ITEM_TTL: time::Duration = time::Duration::minutes(10);

pub(super) fn usage_key(owner: &OwnerId) -> AttributeValue {
    s(format!("usage#{}", owner.as_str()))
}

fn rate_key(owner: &OwnerId, window: OffsetDateTime) -> AttributeValue {
    s(format!(
        "rate#{}#{}",
        owner.as_str(),
        window.unix_timestamp()
    ))
}

/// A change to an owner's usage: the files and bytes to add (negative to give back) and, when
/// adding, the quota they must fit.
#[derive(Debug, Clone)]
pub(super) struct UsageChange {
    pub owner: OwnerId,
    pub files: i64,
    pub bytes: i64,
    pub quota: Option<Quota>,
}

impl UsageChange {
    /// False when the change alone is over the quota (checked before any write: the item's
    /// condition cannot catch it for an owner who has no usage item yet).
    pub fn fits_alone(&self) -> bool {
        let Some(q) = self.quota else { return true };
        let over = |limit: u64, add: i64| limit != 0 && add > 0 && add.unsigned_abs() > limit;
        !over(q.files, self.files) && !over(q.bytes, self.bytes)
    }

    /// The transaction item that applies it.
    pub fn item(&self, table: &str) -> Result<TransactWriteItem, RepoError> {
        let mut update = Update::builder()
            .table_name(table)
            .key("id", usage_key(&self.owner))
            // Placeholders for both names: `bytes` and `files` are close to DynamoDB's reserved
            // words (BYTE, FILE), and a reserved word in an expression is refused.
            .update_expression("ADD #f :f, #b :b")
            .expression_attribute_names("#f", "files")
            .expression_attribute_names("#b", "bytes")
            .expression_attribute_values(":f", AttributeValue::N(self.files.to_string()))
            .expression_attribute_values(":b", AttributeValue::N(self.bytes.to_string()));
        let mut conditions = Vec::new();
        if let Some(q) = self.quota.filter(|_| self.files > 0 || self.bytes > 0) {
            // Conditions cannot add: "usage + n <= limit" is written "usage <= limit - n".
            if q.files != 0 {
                conditions.push("(attribute_not_exists(#f) OR #f <= :fmax)");
                let max = i64::try_from(q.files).unwrap_or(i64::MAX) - self.files;
                update =
                    update.expression_attribute_values(":fmax", AttributeValue::N(max.to_string()));
            }
            if q.bytes != 0 {
                conditions.push("(attribute_not_exists(#b) OR #b <= :bmax)");
                let max = i64::try_from(q.bytes).unwrap_or(i64::MAX) - self.bytes;
                update =
                    update.expression_attribute_values(":bmax", AttributeValue::N(max.to_string()));
            }
        }
        if !conditions.is_empty() {
            update = update.condition_expression(conditions.join(" AND "));
        }
        let update = update
            .build()
            .map_err(|e| backend("describe a usage change")(Box::new(e)))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

/// A put of a new record, as a transaction item.
pub(super) fn put_new(
    table: &str,
    item: HashMap<String, AttributeValue>,
) -> Result<TransactWriteItem, RepoError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(id)")
        .build()
        .map_err(|e| backend("describe a new record")(Box::new(e)))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// Runs a transaction whose first items are record writes and whose last item, when `usage` is
/// true, is the usage change. A failed condition on a record is [`Reserved::Conflict`]; on the
/// usage item, [`Reserved::OverQuota`] with the usage read back.
pub(super) async fn transact(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    operation: &'static str,
    items: Vec<TransactWriteItem>,
    usage_of: Option<&OwnerId>,
) -> Result<Reserved, RepoError> {
    let last = items.len().saturating_sub(1);
    for attempt in 0..TRANSACTION_ATTEMPTS {
        let result = client
            .transact_write_items()
            .set_transact_items(Some(items.clone()))
            .send()
            .await;
        let e = match result {
            Ok(_) => return Ok(Reserved::Applied),
            Err(e) => e,
        };
        let reasons: Vec<String> = e
            .as_service_error()
            .and_then(|se| match se {
                aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => {
                    Some(c.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_owned()).collect())
                }
                _ => None,
            })
            .unwrap_or_default();
        let failed = |i: usize| {
            reasons
                .get(i)
                .is_some_and(|c| c == "ConditionalCheckFailed")
        };
        if let Some(owner) = usage_of.filter(|_| failed(last)) {
            return Ok(Reserved::OverQuota(read_usage(client, table, owner).await?));
        }
        if (0..reasons.len()).any(failed) {
            return Ok(Reserved::Conflict);
        }
        let conflicting = reasons.iter().any(|c| c == "TransactionConflict")
            || e.as_service_error()
                .and_then(|se| aws_sdk_dynamodb::error::ProvideErrorMetadata::code(se))
                == Some("TransactionConflictException");
        if conflicting && attempt + 1 < TRANSACTION_ATTEMPTS {
            // Another transaction held the owner's usage item: back off a little and try again.
            tokio::time::sleep(Duration::from_millis(5 << attempt.min(6))).await;
            continue;
        }
        return Err(backend(operation)(Box::new(e)));
    }
    Err(RepoError::Backend {
        operation,
        source: "too many conflicting transactions".into(),
    })
}

pub(super) async fn read_usage(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    owner: &OwnerId,
) -> Result<Usage, RepoError> {
    let out = client
        .get_item()
        .table_name(table)
        .key("id", usage_key(owner))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| backend("read an owner's usage")(Box::new(e)))?;
    let number = |name: &str| -> u64 {
        out.item()
            .and_then(|i| i.get(name))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
            // Never below zero, whatever an old record gave back.
            .map_or(0, |v| u64::try_from(v).unwrap_or(0))
    };
    Ok(Usage {
        files: number("files"),
        bytes: number("bytes"),
    })
}

pub(super) async fn count_request(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    owner: &OwnerId,
    window: OffsetDateTime,
    limit: u64,
) -> Result<bool, RepoError> {
    let ttl = (window + RATE_ITEM_TTL).unix_timestamp();
    let result = client
        .update_item()
        .table_name(table)
        .key("id", rate_key(owner, window))
        .update_expression("ADD #n :one SET #ttl = :ttl")
        .condition_expression("attribute_not_exists(#n) OR #n < :limit")
        .expression_attribute_names("#n", "requests")
        .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":ttl", AttributeValue::N(ttl.to_string()))
        .expression_attribute_values(":limit", n(limit))
        .send()
        .await;
    Ok(super::conditional("count a presign request", result)?
        == media_core::ports::Transition::Applied)
}

pub(super) async fn uncount_request(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    owner: &OwnerId,
    window: OffsetDateTime,
) -> Result<(), RepoError> {
    client
        .update_item()
        .table_name(table)
        .key("id", rate_key(owner, window))
        .update_expression("ADD #n :minus")
        .condition_expression("#n > :zero")
        .expression_attribute_names("#n", "requests")
        .expression_attribute_values(":minus", AttributeValue::N("-1".into()))
        .expression_attribute_values(":zero", n(0))
        .send()
        .await
        .map(|_| ())
        .or_else(|e| match e.as_service_error() {
            Some(se) if se.is_conditional_check_failed_exception() => Ok(()),
            _ => Err(backend("take back a presign request")(Box::new(e))),
        })
}
