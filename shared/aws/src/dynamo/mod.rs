//! [`DynamoMediaRepository`]: the media repository port on one DynamoDB table.

mod grants;
mod item;
mod list;
mod usage;

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use media_core::describe::Descriptive;
use media_core::domain::{
    Media, MediaId, MediaMetadata, MediaStatus, ObjectKey, OwnerId, Rejection, StoredDerivative,
    format_time,
};
use media_core::ports::{
    CleanupQueue, ListPage, ListPosition, ListQuery, MediaRepository, Quota, RepoError, Reserved,
    Transition, Usage,
};
use time::OffsetDateTime;
use usage::UsageChange;

pub use grants::{DynamoGrantStore, GRANT_INDEX};

use item::{PURGE_NOW, descriptive_attributes, from_item, json, n, s, status, to_item};

/// Name of the index that lists an owner's media newest first.
pub const OWNER_INDEX: &str = "by-owner";
/// Name of the sparse index that lists an owner's media linked to one entity, newest first.
pub const ENTITY_INDEX: &str = "by-entity";
/// Name of the sparse index that holds cleanup's work lists.
pub const CLEANUP_INDEX: &str = "cleanup-due";
/// The table's TTL attribute (`TimeToLiveSpecification` in template.yaml): set on pending records.
pub const TTL_ATTRIBUTE: &str = "expiresAtEpoch";

/// [`MediaRepository`] on one DynamoDB table: key `id`; index `by-owner` (`ownerId`, `createdAt`);
/// sparse index `by-entity` (`entityKey`, `createdAt`) of the records linked to an entity; sparse
/// index `cleanup-due` (`gcQueue`, `gcDue`) holding only records cleanup must act on.
///
/// Every change of a record adds one to its `version` (the ETag the API shows).
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

    /// Runs a conditional update of `id`, mapping a failed condition to [`Reserved::Conflict`].
    /// The update adds one to the record's version (`#v`, `:one`). With a usage change, the
    /// update and the change run as one transaction: both or neither.
    async fn transition(
        &self,
        operation: &'static str,
        id: &MediaId,
        update: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
        usage: Option<UsageChange>,
    ) -> Result<Reserved, RepoError> {
        let values: HashMap<String, AttributeValue> = values
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .chain(std::iter::once((":one".to_owned(), n(1))))
            .collect();
        let mut names = HashMap::from([
            ("#s".to_owned(), "status".to_owned()),
            ("#v".to_owned(), "version".to_owned()),
        ]);
        // `size` is a reserved word; DynamoDB refuses a name placeholder no expression uses.
        if update.contains("#z") || condition.contains("#z") {
            names.insert("#z".to_owned(), "size".to_owned());
        }
        let Some(usage) = usage else {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("id", s(id.as_str()))
                .update_expression(update)
                .condition_expression(condition)
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values))
                .send()
                .await;
            return Ok(match conditional(operation, result)? {
                Transition::Applied => Reserved::Applied,
                Transition::Conflict => Reserved::Conflict,
            });
        };
        if !usage.fits_alone() {
            let now = usage::read_usage(&self.client, &self.table, &usage.owner).await?;
            return Ok(Reserved::OverQuota(now));
        }
        let record = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .key("id", s(id.as_str()))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(|e| backend(operation)(Box::new(e)))?;
        let items = vec![
            TransactWriteItem::builder().update(record).build(),
            usage.item(&self.table)?,
        ];
        let owner = usage.quota.map(|_| &usage.owner);
        usage::transact(&self.client, &self.table, operation, items, owner).await
    }

    /// A transition that gives back `media`'s reservation when it holds one.
    async fn releasing(
        &self,
        operation: &'static str,
        media: &Media,
        update: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<Transition, RepoError> {
        let (update, usage) = if media.holds_quota {
            (
                with_removal(update, "holdsQuota"),
                Some(UsageChange {
                    owner: media.owner.clone(),
                    files: -1,
                    bytes: -i64::try_from(media.size).unwrap_or(i64::MAX),
                    quota: None,
                }),
            )
        } else {
            (update.to_owned(), None)
        };
        Ok(
            match self
                .transition(operation, &media.id, &update, condition, values, usage)
                .await?
            {
                Reserved::Applied => Transition::Applied,
                Reserved::Conflict | Reserved::OverQuota(_) => Transition::Conflict,
            },
        )
    }
}

/// `update` with `attribute` added to its REMOVE clause.
fn with_removal(update: &str, attribute: &str) -> String {
    if update.contains(" REMOVE ") {
        format!("{update}, {attribute}")
    } else {
        format!("{update} REMOVE {attribute}")
    }
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

/// The condition that a record is still at version `expected` (records written before versions
/// existed are at version 1 without the attribute). Uses `#v` and `:expected`.
fn version_is(expected: u64) -> &'static str {
    if expected == 1 {
        "(#v = :expected OR attribute_not_exists(#v))"
    } else {
        "#v = :expected"
    }
}

fn backend(
    operation: &'static str,
) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> RepoError {
    move |source| RepoError::Backend { operation, source }
}

#[async_trait]
impl MediaRepository for DynamoMediaRepository {
    async fn create(&self, media: &[Media], quota: &Quota) -> Result<Reserved, RepoError> {
        let Some(first) = media.first() else {
            return Ok(Reserved::Applied);
        };
        let change = UsageChange {
            owner: first.owner.clone(),
            files: i64::try_from(media.len()).unwrap_or(i64::MAX),
            bytes: media
                .iter()
                .map(|m| i64::try_from(m.size).unwrap_or(i64::MAX))
                .fold(0i64, i64::saturating_add),
            quota: Some(*quota),
        };
        if !change.fits_alone() {
            return Ok(Reserved::OverQuota(
                usage::read_usage(&self.client, &self.table, &change.owner).await?,
            ));
        }
        let mut items = media
            .iter()
            .map(|m| usage::put_new(&self.table, to_item(m)))
            .collect::<Result<Vec<_>, _>>()?;
        items.push(change.item(&self.table)?);
        usage::transact(
            &self.client,
            &self.table,
            "create media records",
            items,
            Some(&change.owner),
        )
        .await
    }

    async fn usage(&self, owner: &OwnerId) -> Result<Usage, RepoError> {
        usage::read_usage(&self.client, &self.table, owner).await
    }

    async fn count_request(
        &self,
        owner: &OwnerId,
        window: OffsetDateTime,
        limit: u64,
    ) -> Result<bool, RepoError> {
        usage::count_request(&self.client, &self.table, owner, window, limit).await
    }

    async fn uncount_request(
        &self,
        owner: &OwnerId,
        window: OffsetDateTime,
    ) -> Result<(), RepoError> {
        usage::uncount_request(&self.client, &self.table, owner, window).await
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

    async fn list(
        &self,
        owner: &OwnerId,
        query: &ListQuery,
        start: Option<&ListPosition>,
        limit: usize,
    ) -> Result<ListPage, RepoError> {
        list::list(&self.client, &self.table, owner, query, start, limit).await
    }

    async fn describe(
        &self,
        id: &MediaId,
        owner: &OwnerId,
        expected: u64,
        fields: &Descriptive,
        now: OffsetDateTime,
    ) -> Result<Transition, RepoError> {
        let (set, unset) = descriptive_attributes(owner, fields);
        let mut update = String::from("SET #v = :next, updatedAt = :now");
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(id.as_str()))
            .expression_attribute_names("#s", "status")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":next", n(expected.saturating_add(1)))
            .expression_attribute_values(":expected", n(expected))
            .expression_attribute_values(":now", s(format_time(now)))
            .expression_attribute_values(":owner", s(owner.as_str()))
            .expression_attribute_values(":pending", status(MediaStatus::Pending))
            .expression_attribute_values(":ready", status(MediaStatus::Ready))
            .expression_attribute_values(":rejected", status(MediaStatus::Rejected));
        // Attribute names are placeholders too: `description` and others are reserved words.
        for (i, (name, value)) in set.into_iter().enumerate() {
            update.push_str(&format!(", #a{i} = :a{i}"));
            req = req
                .expression_attribute_names(format!("#a{i}"), name)
                .expression_attribute_values(format!(":a{i}"), value);
        }
        if !unset.is_empty() {
            update.push_str(" REMOVE ");
            for (i, name) in unset.into_iter().enumerate() {
                if i > 0 {
                    update.push_str(", ");
                }
                update.push_str(&format!("#r{i}"));
                req = req.expression_attribute_names(format!("#r{i}"), name);
            }
        }
        let condition = format!(
            "ownerId = :owner AND #s IN (:pending, :ready, :rejected) AND {}",
            version_is(expected)
        );
        let result = req
            .update_expression(update)
            .condition_expression(condition)
            .send()
            .await;
        conditional("describe media", result)
    }

    async fn mark_ready(
        &self,
        id: &MediaId,
        served_original: &ObjectKey,
        served_size: u64,
        metadata: &MediaMetadata,
        derivatives: &BTreeMap<String, StoredDerivative>,
        now: OffsetDateTime,
    ) -> Result<Transition, RepoError> {
        self.transition(
            "mark media ready",
            id,
            "SET #v = if_not_exists(#v, :one) + :one, #s = :ready, servedKey = :k, servedSize = :n, metadata = :m, derivatives = :d, updatedAt = :now REMOVE gcQueue, gcDue, expiresAt, expiresAtEpoch",
            "#s = :pending",
            vec![
                (":ready", status(MediaStatus::Ready)),
                (":pending", status(MediaStatus::Pending)),
                (":k", s(served_original.as_str())),
                (":n", n(served_size)),
                (":m", json(metadata)),
                (":d", json(derivatives)),
                (":now", s(format_time(now))),
            ],
            None,
        )
        .await
        .map(|r| match r {
            Reserved::Applied => Transition::Applied,
            _ => Transition::Conflict,
        })
    }

    async fn mark_rejected(
        &self,
        media: &Media,
        rejection: &Rejection,
        now: OffsetDateTime,
    ) -> Result<Transition, RepoError> {
        self.releasing(
            "mark media rejected",
            media,
            "SET #v = if_not_exists(#v, :one) + :one, #s = :rejected, rejection = :r, updatedAt = :now REMOVE gcQueue, gcDue, expiresAt, expiresAtEpoch",
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
        media: &Media,
        now: OffsetDateTime,
    ) -> Result<Transition, RepoError> {
        let queue = CleanupQueue::Purge.partition(&media.id);
        let condition = format!(
            "ownerId = :owner AND #s = :prior AND {}",
            version_is(media.version)
        );
        self.releasing(
            "soft-delete media",
            media,
            // The pending expiry stays (a restore of a pending upload queues it again); the TTL
            // backstop goes, so that DynamoDB never drops a record before cleanup purges it.
            "SET deletedFrom = :prior, #v = if_not_exists(#v, :one) + :one, #s = :deleted, deletedAt = :now, updatedAt = :now, gcQueue = :purge, gcDue = :now REMOVE expiresAtEpoch",
            &condition,
            vec![
                (":deleted", status(MediaStatus::Deleted)),
                (":prior", status(media.status)),
                (":owner", s(media.owner.as_str())),
                (":expected", n(media.version)),
                (":purge", s(queue)),
                (":now", s(format_time(now))),
            ],
        )
        .await
    }

    async fn restore(
        &self,
        media: &Media,
        to: MediaStatus,
        quota: &Quota,
        now: OffsetDateTime,
    ) -> Result<Reserved, RepoError> {
        let condition = format!(
            "ownerId = :owner AND #s = :deleted AND {}",
            version_is(media.version)
        );
        let mut values = vec![
            (":deleted", status(MediaStatus::Deleted)),
            (":to", status(to)),
            (":owner", s(media.owner.as_str())),
            (":expected", n(media.version)),
            (":now", s(format_time(now))),
        ];
        let update = if to == MediaStatus::Pending {
            // Back in the pending list, due at its original expiry (at once if that has passed).
            let due = media.expires_at.unwrap_or(now);
            values.push((":queue", s(CleanupQueue::Pending.partition(&media.id))));
            values.push((":due", s(format_time(due))));
            values.push((":exp", s(format_time(due))));
            values.push((":ttl", item::ttl_backstop(due)));
            "SET #s = :to, #v = if_not_exists(#v, :one) + :one, updatedAt = :now, gcQueue = :queue, gcDue = :due, expiresAt = :exp, expiresAtEpoch = :ttl REMOVE deletedAt, deletedFrom"
        } else {
            "SET #s = :to, #v = if_not_exists(#v, :one) + :one, updatedAt = :now REMOVE deletedAt, deletedFrom, gcQueue, gcDue"
        };
        // A pending or ready media counts again, within the quota.
        let (update, usage) = if matches!(to, MediaStatus::Pending | MediaStatus::Ready) {
            values.push((":held", AttributeValue::Bool(true)));
            (
                update.replacen("SET ", "SET holdsQuota = :held, ", 1),
                Some(UsageChange {
                    owner: media.owner.clone(),
                    files: 1,
                    bytes: i64::try_from(media.size).unwrap_or(i64::MAX),
                    quota: Some(*quota),
                }),
            )
        } else {
            (update.to_owned(), None)
        };
        self.transition(
            "restore media",
            &media.id,
            &update,
            &condition,
            values,
            usage,
        )
        .await
    }

    async fn expire(&self, media: &Media, now: OffsetDateTime) -> Result<Transition, RepoError> {
        let queue = CleanupQueue::Purge.partition(&media.id);
        self.releasing(
            "expire a pending upload",
            media,
            "SET #v = if_not_exists(#v, :one) + :one, #s = :expired, updatedAt = :now, gcQueue = :purge, gcDue = :due",
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

    async fn settle_size(
        &self,
        media: &Media,
        size: u64,
        quota: &Quota,
    ) -> Result<Reserved, RepoError> {
        let upload_id = media.upload_id.as_deref().unwrap_or_default();
        let values = vec![
            (":pending", status(MediaStatus::Pending)),
            (":owner", s(media.owner.as_str())),
            (":upload", s(upload_id)),
            (":old", n(media.size)),
            (":size", n(size)),
            (":now", s(format_time(OffsetDateTime::now_utc()))),
        ];
        let delta = i64::try_from(size)
            .unwrap_or(i64::MAX)
            .saturating_sub(i64::try_from(media.size).unwrap_or(i64::MAX));
        let usage = (media.holds_quota && delta != 0).then(|| UsageChange {
            owner: media.owner.clone(),
            files: 0,
            bytes: delta,
            quota: (delta > 0).then_some(*quota),
        });
        self.transition(
            "settle a multipart upload's size",
            &media.id,
            "SET #z = :size, #v = if_not_exists(#v, :one) + :one, updatedAt = :now",
            "ownerId = :owner AND #s = :pending AND uploadId = :upload AND #z = :old",
            values,
            usage,
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
