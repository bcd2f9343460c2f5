//! Presigned POST policies (browser form uploads), signed with AWS Signature Version 4.
//!
//! The AWS SDK for Rust has no presigned POST (awslabs/aws-sdk-rust#863), so this builds the
//! policy document and its signature as the S3 documentation describes: the base64 of the policy
//! is the string to sign, with the SigV4 signing key of `<date>/<region>/s3/aws4_request`. The
//! unit tests reproduce the documentation's published example.

use std::collections::BTreeMap;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use time::OffsetDateTime;
use time::macros::format_description;

/// What the policy allows: one exact key, one exact content type, a size range, until `expires`.
#[derive(Debug, Clone)]
pub struct PostPolicy<'a> {
    /// The bucket.
    pub bucket: &'a str,
    /// The exact object key.
    pub key: &'a str,
    /// The exact `Content-Type` the form must send.
    pub content_type: &'a str,
    /// Smallest accepted body, bytes.
    pub min_length: u64,
    /// Largest accepted body, bytes.
    pub max_length: u64,
    /// When the policy stops working.
    pub expires: OffsetDateTime,
}

/// The credentials and scope that sign a policy.
#[derive(Debug, Clone)]
pub struct Signer<'a> {
    /// Access key id.
    pub access_key_id: &'a str,
    /// Secret access key.
    pub secret_access_key: &'a str,
    /// Session token of temporary credentials (a Lambda role's), if any.
    pub session_token: Option<&'a str>,
    /// The bucket's region.
    pub region: &'a str,
    /// The signing time.
    pub now: OffsetDateTime,
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length: new_from_slice cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The SigV4 signing key of `date` (`YYYYMMDD`), `region` and the `s3` service.
pub fn signing_key(secret_access_key: &str, date: &str, region: &str) -> Vec<u8> {
    let k_date = hmac(
        format!("AWS4{secret_access_key}").as_bytes(),
        date.as_bytes(),
    );
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, b"s3");
    hmac(&k_service, b"aws4_request")
}

/// The hex signature of a base64-encoded policy.
pub fn signature(secret_access_key: &str, date: &str, region: &str, policy_base64: &str) -> String {
    hex::encode(hmac(
        &signing_key(secret_access_key, date, region),
        policy_base64.as_bytes(),
    ))
}

/// The form fields a browser posts with the file (the file field comes last), in a stable order.
pub fn form_fields(policy: &PostPolicy<'_>, signer: &Signer<'_>) -> BTreeMap<String, String> {
    let date_fmt = format_description!("[year][month][day]");
    let stamp_fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
    let expiry_fmt =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    let utc = |t: OffsetDateTime| t.to_offset(time::UtcOffset::UTC);
    let date = utc(signer.now).format(&date_fmt).unwrap_or_default();
    let stamp = utc(signer.now).format(&stamp_fmt).unwrap_or_default();
    let expiration = utc(policy.expires).format(&expiry_fmt).unwrap_or_default();
    let credential = format!(
        "{}/{date}/{}/s3/aws4_request",
        signer.access_key_id, signer.region
    );

    let mut conditions: Vec<Value> = vec![
        json!({ "bucket": policy.bucket }),
        json!(["eq", "$key", policy.key]),
        json!(["eq", "$Content-Type", policy.content_type]),
        json!(["content-length-range", policy.min_length, policy.max_length]),
        json!({ "x-amz-algorithm": "AWS4-HMAC-SHA256" }),
        json!({ "x-amz-credential": credential }),
        json!({ "x-amz-date": stamp }),
    ];
    if let Some(token) = signer.session_token {
        conditions.push(json!({ "x-amz-security-token": token }));
    }
    let document = json!({ "expiration": expiration, "conditions": conditions });
    let encoded = base64::engine::general_purpose::STANDARD.encode(document.to_string());
    let sig = signature(signer.secret_access_key, &date, signer.region, &encoded);

    let mut fields = BTreeMap::from([
        ("key".to_owned(), policy.key.to_owned()),
        ("Content-Type".to_owned(), policy.content_type.to_owned()),
        ("x-amz-algorithm".to_owned(), "AWS4-HMAC-SHA256".to_owned()),
        ("x-amz-credential".to_owned(), credential),
        ("x-amz-date".to_owned(), stamp),
        ("policy".to_owned(), encoded),
        ("x-amz-signature".to_owned(), sig),
    ]);
    if let Some(token) = signer.session_token {
        fields.insert("x-amz-security-token".to_owned(), token.to_owned());
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    /// The policy of the S3 documentation's example "Browser-Based Upload using HTTP POST (Using
    /// AWS Signature Version 4)", as published (CRLF line ends), and its published signature.
    const EXAMPLE_POLICY: &str = "{ \"expiration\": \"2015-12-30T12:00:00.000Z\",\r\n  \"conditions\": [\r\n    {\"bucket\": \"sigv4examplebucket\"},\r\n    [\"starts-with\", \"$key\", \"user/user1/\"],\r\n    {\"acl\": \"public-read\"},\r\n    {\"success_action_redirect\": \"http://sigv4examplebucket.s3.amazonaws.com/successful_upload.html\"},\r\n    [\"starts-with\", \"$Content-Type\", \"image/\"],\r\n    {\"x-amz-meta-uuid\": \"14365123651274\"},\r\n    {\"x-amz-server-side-encryption\": \"AES256\"},\r\n    [\"starts-with\", \"$x-amz-meta-tag\", \"\"],\r\n\r\n    {\"x-amz-credential\": \"AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request\"},\r\n    {\"x-amz-algorithm\": \"AWS4-HMAC-SHA256\"},\r\n    {\"x-amz-date\": \"20151229T000000Z\" }\r\n  ]\r\n}";
    const EXAMPLE_SIGNATURE: &str =
        "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e";
    const EXAMPLE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    #[test]
    fn reproduces_the_published_aws_example() {
        let encoded = base64::engine::general_purpose::STANDARD.encode(EXAMPLE_POLICY);
        // The published base64 policy begins and ends so.
        assert!(
            encoded.starts_with("eyAiZXhwaXJhdGlvbiI6ICIyMDE1LTEyLTMwVDEyOjAwOjAwLjAwMFoiLA0K")
        );
        assert!(encoded.ends_with("ICBdDQp9"));
        assert_eq!(
            signature(EXAMPLE_SECRET, "20151229", "us-east-1", &encoded),
            EXAMPLE_SIGNATURE
        );
    }

    #[test]
    fn the_policy_pins_key_type_length_and_expiry() {
        let policy = PostPolicy {
            bucket: "media",
            key: "uploads/2026/11/22/abc/original.jpg",
            content_type: "image/jpeg",
            min_length: 1,
            max_length: 5_242_880,
            expires: datetime!(2026-11-22 12:15:00 UTC),
        };
        let signer = Signer {
            access_key_id: "AKIAIOSFODNN7EXAMPLE",
            secret_access_key: EXAMPLE_SECRET,
            session_token: Some("token"),
            region: "eu-west-1",
            now: datetime!(2026-11-22 12:00:00 UTC),
        };
        let fields = form_fields(&policy, &signer);
        assert_eq!(
            fields["x-amz-credential"],
            "AKIAIOSFODNN7EXAMPLE/20261122/eu-west-1/s3/aws4_request"
        );
        assert_eq!(fields["x-amz-date"], "20261122T120000Z");
        assert_eq!(fields["x-amz-security-token"], "token");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&fields["policy"])
            .unwrap();
        let doc: Value = serde_json::from_slice(&decoded).unwrap();
        assert_eq!(doc["expiration"], "2026-11-22T12:15:00.000Z");
        let conditions = doc["conditions"].as_array().unwrap();
        for expected in [
            json!({"bucket": "media"}),
            json!(["eq", "$key", "uploads/2026/11/22/abc/original.jpg"]),
            json!(["eq", "$Content-Type", "image/jpeg"]),
            json!(["content-length-range", 1, 5_242_880]),
            json!({"x-amz-security-token": "token"}),
        ] {
            assert!(conditions.contains(&expected), "{expected} in {doc}");
        }
        assert_eq!(
            fields["x-amz-signature"],
            signature(EXAMPLE_SECRET, "20261122", "eu-west-1", &fields["policy"])
        );
    }
}
