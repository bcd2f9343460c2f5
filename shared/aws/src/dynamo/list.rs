//! An owner's media, newest first: a Query of the `by-owner` index, or of `by-entity` when the
//! list is of one entity's media. Never a Scan.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use media_core::domain::{MediaId, OwnerId, format_time};
use media_core::ports::{ListPage, ListPosition, ListQuery, RepoError};

use super::item::{entity_key, from_item, s, status};
use super::{ENTITY_INDEX, OWNER_INDEX, backend};

/// Most index reads one list call makes. A filter that matches few records may leave a page
/// short (even empty); its `next` then goes on where the reads stopped.
const MAX_READS: usize = 8;
/// Items one read evaluates when a filter other than the status is set (the filter applies after
/// DynamoDB's `Limit`, so reading only `limit` items would leave most pages short).
const FILTERED_READ: usize = 200;

pub(super) async fn list(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    owner: &OwnerId,
    query: &ListQuery,
    start: Option<&ListPosition>,
    limit: usize,
) -> Result<ListPage, RepoError> {
    let (index, partition_attr, partition) = match &query.entity {
        Some(e) => (ENTITY_INDEX, "entityKey", entity_key(owner, e)),
        None => (OWNER_INDEX, "ownerId", owner.as_str().to_owned()),
    };
    let mut names: HashMap<String, String> =
        HashMap::from([("#s".to_owned(), "status".to_owned())]);
    let mut values: HashMap<String, AttributeValue> =
        HashMap::from([(":p".to_owned(), s(&partition))]);

    let mut key_condition = format!("{partition_attr} = :p");
    match (query.created_from, query.created_until) {
        (Some(from), Some(until)) => {
            key_condition.push_str(" AND createdAt BETWEEN :from AND :until");
            values.insert(":from".into(), s(format_time(from)));
            values.insert(":until".into(), s(format_time(until)));
        }
        (Some(from), None) => {
            key_condition.push_str(" AND createdAt >= :from");
            values.insert(":from".into(), s(format_time(from)));
        }
        (None, Some(until)) => {
            key_condition.push_str(" AND createdAt <= :until");
            values.insert(":until".into(), s(format_time(until)));
        }
        (None, None) => {}
    }

    let mut filters = Vec::new();
    let placeholders: Vec<String> = query
        .statuses
        .iter()
        .enumerate()
        .map(|(i, st)| {
            values.insert(format!(":s{i}"), status(*st));
            format!(":s{i}")
        })
        .collect();
    filters.push(format!("#s IN ({})", placeholders.join(", ")));
    if let Some(types) = &query.content_types {
        let placeholders: Vec<String> = types
            .iter()
            .enumerate()
            .map(|(i, t)| {
                values.insert(format!(":t{i}"), s(t.mime()));
                format!(":t{i}")
            })
            .collect();
        filters.push(format!("contentType IN ({})", placeholders.join(", ")));
    }
    if let Some(tag) = &query.tag {
        names.insert("#tags".into(), "tags".into());
        values.insert(":tag".into(), s(tag.as_str()));
        filters.push("contains(#tags, :tag)".into());
    }
    let filter = filters.join(" AND ");
    let narrowed =
        query.content_types.is_some() || query.tag.is_some() || query.statuses.len() == 1;

    let mut exclusive_start = start.map(|p| start_key(partition_attr, &partition, p));
    let mut items = Vec::new();
    for _ in 0..MAX_READS {
        let remaining = limit.saturating_sub(items.len());
        let read = if narrowed {
            remaining.max(FILTERED_READ)
        } else {
            // One more than needed tells whether another page follows.
            remaining + 1
        };
        let out = client
            .query()
            .table_name(table)
            .index_name(index)
            .key_condition_expression(&key_condition)
            .filter_expression(&filter)
            .set_expression_attribute_names(Some(names.clone()))
            .set_expression_attribute_values(Some(values.clone()))
            .scan_index_forward(false)
            .set_exclusive_start_key(exclusive_start.take())
            .limit(i32::try_from(read).unwrap_or(1000))
            .send()
            .await
            .map_err(|e| backend("list an owner's media")(Box::new(e)))?;
        for item in out.items() {
            let media = from_item(item)?;
            if items.len() == limit {
                // A full page, and at least one more record: go on after the last one returned.
                return Ok(ListPage {
                    next: items.last().map(position),
                    items,
                });
            }
            items.push(media);
        }
        match out.last_evaluated_key() {
            None => return Ok(ListPage { items, next: None }),
            // Full exactly at the end of a read: more may follow.
            Some(_) if items.len() == limit => {
                return Ok(ListPage {
                    next: items.last().map(position),
                    items,
                });
            }
            Some(key) => exclusive_start = Some(key.clone()),
        }
    }
    // The read budget ran out before the page filled: go on from where the reads stopped.
    let next = exclusive_start
        .as_ref()
        .and_then(position_of_key)
        .or_else(|| items.last().map(position));
    Ok(ListPage { items, next })
}

fn position(m: &media_core::domain::Media) -> ListPosition {
    ListPosition {
        created_at: format_time(m.created_at),
        id: m.id.clone(),
    }
}

/// The position of an index key DynamoDB returned (`LastEvaluatedKey`).
fn position_of_key(key: &HashMap<String, AttributeValue>) -> Option<ListPosition> {
    let text = |name: &str| key.get(name).and_then(|v| v.as_s().ok());
    Some(ListPosition {
        created_at: text("createdAt")?.clone(),
        id: MediaId::parse(text("id")?).ok()?,
    })
}

/// The `ExclusiveStartKey` of a position: the table's key and the index's.
fn start_key(
    partition_attr: &str,
    partition: &str,
    p: &ListPosition,
) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("id".to_owned(), s(p.id.as_str())),
        (partition_attr.to_owned(), s(partition)),
        ("createdAt".to_owned(), s(&p.created_at)),
    ])
}
