//! Tolerant parsing of the events that feed the process function: S3 event notifications as real S3
//! sends them, as the emulator sends them (fields missing, keys over-encoded), and wrapped in SQS.

use percent_encoding::percent_decode_str;
use serde_json::Value;

use crate::domain::ObjectKey;

/// One object-created notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectCreated {
    /// The bucket.
    pub bucket: String,
    /// The object key, decoded.
    pub key: ObjectKey,
}

/// Decodes a key as S3 event notifications encode it (form encoding: `+` is a space).
pub fn decode_key(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

/// Every `ObjectCreated` record in `event`. Anything else (test events, other event types, records
/// without a key) is skipped, never an error.
pub fn object_created(event: &Value) -> Vec<ObjectCreated> {
    let mut found = Vec::new();
    collect(event, &mut found, 0);
    found
}

fn collect(event: &Value, found: &mut Vec<ObjectCreated>, depth: u8) {
    if depth > 3 {
        return;
    }
    // EventBridge "Object Created" events carry one unencoded key in `detail`.
    if event.get("detail-type").and_then(Value::as_str) == Some("Object Created") {
        let detail = &event["detail"];
        if let (Some(bucket), Some(key)) = (
            detail["bucket"]["name"].as_str(),
            detail["object"]["key"].as_str(),
        ) {
            found.push(ObjectCreated {
                bucket: bucket.to_owned(),
                key: ObjectKey::from_raw(key),
            });
        }
        return;
    }
    let Some(records) = event.get("Records").and_then(Value::as_array) else {
        return;
    };
    for record in records {
        // An SQS message whose body is an S3 notification.
        if let Some(body) = record.get("body").and_then(Value::as_str) {
            if let Ok(inner) = serde_json::from_str::<Value>(body) {
                collect(&inner, found, depth + 1);
            }
            continue;
        }
        let name = record
            .get("eventName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !(name.starts_with("ObjectCreated:") || name.starts_with("s3:ObjectCreated:")) {
            continue;
        }
        let s3 = &record["s3"];
        if let (Some(bucket), Some(key)) =
            (s3["bucket"]["name"].as_str(), s3["object"]["key"].as_str())
        {
            found.push(ObjectCreated {
                bucket: bucket.to_owned(),
                key: ObjectKey::from_raw(decode_key(key)),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn emulator_events_with_missing_fields_and_encoded_keys_parse() {
        let event = json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "b"}, "object": {"key": "uploads%2F2026%2Fa+b%2Foriginal.jpg", "size": 3}}
        }]});
        let got = object_created(&event);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].key.as_str(), "uploads/2026/a b/original.jpg");
        assert_eq!(got[0].bucket, "b");
    }

    #[test]
    fn test_events_and_removals_are_skipped() {
        assert!(
            object_created(&json!({"Service": "Amazon S3", "Event": "s3:TestEvent"})).is_empty()
        );
        let removed = json!({"Records": [{"eventName": "ObjectRemoved:Delete", "s3": {"bucket": {"name": "b"}, "object": {"key": "k"}}}]});
        assert!(object_created(&removed).is_empty());
        assert!(
            object_created(&json!({"Records": [{"eventName": "ObjectCreated:Put"}]})).is_empty()
        );
        assert!(object_created(&json!("garbage")).is_empty());
    }

    #[test]
    fn sqs_wrapped_notifications_parse() {
        let inner = json!({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": {"key": "k%2Fx"}}}]});
        let event = json!({"Records": [{"eventSource": "aws:sqs", "body": inner.to_string()}]});
        assert_eq!(object_created(&event)[0].key.as_str(), "k/x");
    }
}
