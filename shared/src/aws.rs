//! The AWS adapters: [`S3ObjectStore`] and [`DynamoMediaRepository`], and the one place that builds
//! the SDK clients. `AWS_ENDPOINT_URL` (the SDK's own variable) points them at an emulator.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::presigning::PresigningConfig;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::config::Config;
use crate::domain::{
    ContentType, ImageMetadata, Media, MediaId, MediaStatus, ObjectKey, OwnerId, Rejection,
    StoredDerivative, format_time, parse_time,
};
use crate::ports::{
    CdnCache, CleanupQueue, Fetched, MediaRepository, ObjectInfo, ObjectStore, PresignedPost,
    PresignedRequest, RepoError, StoreError, Transition,
};
use crate::post_policy;

/// A presigned POST that could not be made (no credentials, no region).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct PostError(String);

/// Name of the index that lists an owner's media newest first.
pub const OWNER_INDEX: &str = "by-owner";
/// Name of the sparse index that holds cleanup's work lists.
pub const CLEANUP_INDEX: &str = "cleanup-due";
/// The table's TTL attribute (`TimeToLiveSpecification` in template.yaml): set on pending records.
pub const TTL_ATTRIBUTE: &str = "expiresAtEpoch";
const TTL_BACKSTOP: time::Duration = time::Duration::days(1);

/// The SDK clients, built once at cold start.
#[derive(Debug, Clone)]
pub struct AwsClients {
    /// S3.
    pub s3: aws_sdk_s3::Client,
    /// DynamoDB.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// CloudFront (cache invalidations of deleted derivatives).
    pub cloudfront: aws_sdk_cloudfront::Client,
    /// The shared SDK configuration (for other clients, such as SQS in the local runner).
    pub sdk_config: aws_config::SdkConfig,
}

impl AwsClients {
    /// Loads the SDK configuration from the environment and builds the clients.
    pub async fn from_config(config: &Config) -> Self {
        let loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        Self::with_loader(loader, config.s3_force_path_style).await
    }

    /// The clients for a local emulator at `endpoint`, with dummy credentials (an emulator accepts
    /// any) and path-style S3 URLs (a loopback address has no bucket subdomains), whatever the
    /// environment says: used by `media-dev` and the tests only.
    pub async fn for_emulator(endpoint: &str) -> Self {
        Self::for_local_server(endpoint, "test", "test").await
    }

    /// The clients for a local S3-compatible server at `endpoint` that checks signatures made
    /// with these (dummy) keys; path-style, region `us-east-1`. Tests only.
    pub async fn for_local_server(endpoint: &str, access_key: &str, secret_key: &str) -> Self {
        let loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                access_key, secret_key, None, None, "local",
            ));
        Self::with_loader(loader, true).await
    }

    async fn with_loader(loader: aws_config::ConfigLoader, force_path_style: bool) -> Self {
        // rustls on ring: no aws-lc C build, so the arm64 cross-build needs no cmake.
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let sdk_config = loader.http_client(http).load().await;
        let s3_config = aws_sdk_s3::config::Builder::from(&sdk_config)
            .force_path_style(force_path_style)
            // Without this, presigned PUT URLs carry a checksum of an empty body and uploads fail.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        Self {
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk_config),
            cloudfront: aws_sdk_cloudfront::Client::new(&sdk_config),
            sdk_config,
        }
    }
}

fn store_err(
    operation: &'static str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> StoreError {
    StoreError {
        operation,
        source: Box::new(e),
    }
}

/// [`CdnCache`] on an Amazon CloudFront distribution.
#[derive(Debug, Clone)]
pub struct CloudFrontCache {
    client: aws_sdk_cloudfront::Client,
    distribution_id: String,
}

impl CloudFrontCache {
    /// The cache of distribution `distribution_id`.
    pub fn new(client: aws_sdk_cloudfront::Client, distribution_id: impl Into<String>) -> Self {
        Self {
            client,
            distribution_id: distribution_id.into(),
        }
    }
}

/// CloudFront accepts at most 3,000 file paths in progress per distribution.
pub const MAX_INVALIDATION_PATHS: usize = 3000;

#[async_trait]
impl CdnCache for CloudFrontCache {
    async fn invalidate(&self, paths: &[String]) -> Result<(), StoreError> {
        use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};
        for chunk in paths.chunks(MAX_INVALIDATION_PATHS) {
            let items = Paths::builder()
                .quantity(i32::try_from(chunk.len()).unwrap_or(i32::MAX))
                .set_items(Some(chunk.to_vec()))
                .build()
                .map_err(|e| store_err("describe an invalidation", e))?;
            let batch = InvalidationBatch::builder()
                .paths(items)
                // Unique per request: a retry of the same call would be a new invalidation anyway.
                .caller_reference(uuid::Uuid::new_v4().to_string())
                .build()
                .map_err(|e| store_err("describe an invalidation", e))?;
            self.client
                .create_invalidation()
                .distribution_id(&self.distribution_id)
                .invalidation_batch(batch)
                .send()
                .await
                .map_err(|e| store_err("invalidate CDN paths", e))?;
        }
        Ok(())
    }
}

/// [`ObjectStore`] on Amazon S3.
#[derive(Debug, Clone)]
pub struct S3ObjectStore {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// Signs POST policies (the client's own config does not expose its credentials).
    credentials: Option<aws_sdk_s3::config::SharedCredentialsProvider>,
}

impl S3ObjectStore {
    /// The store for `bucket`, with the credentials of `clients` for POST policies.
    pub fn new(clients: &AwsClients, bucket: impl Into<String>) -> Self {
        Self {
            client: clients.s3.clone(),
            bucket: bucket.into(),
            credentials: clients.sdk_config.credentials_provider(),
        }
    }
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn presign_put(
        &self,
        key: &ObjectKey,
        content_type: ContentType,
        length: u64,
        sha256: Option<&str>,
        expires_in: Duration,
    ) -> Result<PresignedRequest, StoreError> {
        let presigning =
            PresigningConfig::expires_in(expires_in).map_err(|e| store_err("presign a PUT", e))?;
        let length = i64::try_from(length).map_err(|e| store_err("presign a PUT", e))?;
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .content_type(content_type.mime())
            .content_length(length)
            .set_checksum_sha256(sha256.map(str::to_owned))
            .presigned(presigning)
            .await
            .map_err(|e| store_err("presign a PUT", e))?;
        // The client must send these headers exactly; browsers set Content-Length themselves.
        let headers = req
            .headers()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("content-length"))
            .map(|(k, v)| (canonical_header(k), v.to_owned()))
            .collect();
        Ok(PresignedRequest {
            method: "PUT",
            url: req.uri().to_owned(),
            headers,
        })
    }

    async fn presign_post(
        &self,
        key: &ObjectKey,
        content_type: ContentType,
        max_length: u64,
        expires_in: Duration,
    ) -> Result<PresignedPost, StoreError> {
        use aws_sdk_s3::config::ProvideCredentials;
        let fail = |reason: &str| store_err("presign a POST", PostError(reason.to_owned()));
        let config = self.client.config();
        let provider = self
            .credentials
            .as_ref()
            .ok_or_else(|| fail("no credentials provider"))?;
        let creds = provider
            .provide_credentials()
            .await
            .map_err(|e| store_err("presign a POST", e))?;
        let region = config
            .region()
            .map(|r| r.as_ref().to_owned())
            .ok_or_else(|| fail("no region"))?;
        // The form's action is the bucket's URL as the client addresses it (virtual-hosted or
        // path-style, the configured endpoint): a presigned GET of the key, less the key and query.
        let get = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .presigned(
                PresigningConfig::expires_in(Duration::from_secs(60))
                    .map_err(|e| store_err("presign a POST", e))?,
            )
            .await
            .map_err(|e| store_err("presign a POST", e))?;
        let uri = get.uri();
        let without_query = uri.split('?').next().unwrap_or(uri);
        let url = without_query
            .strip_suffix(key.as_str())
            .ok_or_else(|| fail("unexpected object URL"))?
            .to_owned();
        let now = OffsetDateTime::now_utc();
        let fields = post_policy::form_fields(
            &post_policy::PostPolicy {
                bucket: &self.bucket,
                key: key.as_str(),
                content_type: content_type.mime(),
                min_length: 1,
                max_length,
                expires: now + expires_in,
            },
            &post_policy::Signer {
                access_key_id: creds.access_key_id(),
                secret_access_key: creds.secret_access_key(),
                session_token: creds.session_token(),
                region: &region,
                now,
            },
        );
        Ok(PresignedPost { url, fields })
    }

    async fn presign_get(
        &self,
        key: &ObjectKey,
        expires_in: Duration,
    ) -> Result<String, StoreError> {
        let presigning =
            PresigningConfig::expires_in(expires_in).map_err(|e| store_err("presign a GET", e))?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .presigned(presigning)
            .await
            .map_err(|e| store_err("presign a GET", e))?;
        Ok(req.uri().to_owned())
    }

    async fn head(&self, key: &ObjectKey) -> Result<Option<u64>, StoreError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
        {
            Ok(out) => Ok(Some(
                out.content_length()
                    .and_then(|l| u64::try_from(l).ok())
                    .unwrap_or(0),
            )),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            // S3 answers a HEAD of a missing key with 403, not 404, to a role without
            // s3:ListBucket, and only cleanup may list the bucket. The roles that call this hold
            // s3:GetObject on the key's prefix (tests/e2e/template.rs checks), so 403 means absent.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 403) => Ok(None),
            Err(e) => Err(store_err("read object metadata", e)),
        }
    }

    async fn fetch(&self, key: &ObjectKey, max_bytes: u64) -> Result<Fetched, StoreError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Ok(Fetched::Missing);
            }
            Err(e) => return Err(store_err("read an object", e)),
        };
        let size = out
            .content_length()
            .and_then(|l| u64::try_from(l).ok())
            .unwrap_or(0);
        if size > max_bytes {
            return Ok(Fetched::TooLarge(size));
        }
        // Chunk by chunk into one buffer of the announced size, hashing each chunk while the
        // next one is still on the wire (no second copy of the body, no hashing pass afterwards).
        let mut body = out.body;
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        let mut hasher = Sha256::new();
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| store_err("read an object body", e))?
        {
            let received = (bytes.len() + chunk.len()) as u64;
            if received > max_bytes {
                return Ok(Fetched::TooLarge(received));
            }
            hasher.update(&chunk);
            bytes.extend_from_slice(&chunk);
        }
        Ok(Fetched::Bytes {
            bytes,
            sha256: hasher.finalize().into(),
        })
    }

    async fn put(
        &self,
        key: &ObjectKey,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .content_type(content_type)
            // Derivatives never change under a key: let browsers and CDNs keep them.
            .cache_control("public, max-age=31536000, immutable")
            .body(bytes.into())
            .send()
            .await
            .map_err(|e| store_err("write an object", e))?;
        Ok(())
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map_err(|e| store_err("delete an object", e))?;
        Ok(())
    }

    async fn list(&self, prefix: &str, limit: usize) -> Result<Vec<ObjectInfo>, StoreError> {
        let mut found = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| store_err("list objects", e))?;
            for obj in page.contents() {
                if let Some(key) = obj.key() {
                    let size = obj.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
                    found.push(ObjectInfo {
                        key: ObjectKey::from_raw(key),
                        size,
                    });
                }
            }
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() || found.len() >= limit {
                found.truncate(limit);
                return Ok(found);
            }
        }
    }
}

fn canonical_header(name: &str) -> String {
    match name.to_ascii_lowercase().as_str() {
        "content-type" => "Content-Type".to_owned(),
        other => other.to_owned(),
    }
}

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
            item.insert("gcQueue".to_owned(), s(CleanupQueue::Pending.as_str()));
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
    async fn create(&self, media: &Media) -> Result<(), RepoError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(media)))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await
            .map_err(|e| backend("create a media record")(Box::new(e)))?;
        Ok(())
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
        metadata: &ImageMetadata,
        derivatives: &BTreeMap<String, StoredDerivative>,
        now: OffsetDateTime,
    ) -> Result<Transition, RepoError> {
        self.transition(
            "mark media ready",
            id,
            "SET #s = :ready, servedKey = :k, metadata = :m, derivatives = :d, updatedAt = :now REMOVE gcQueue, gcDue, expiresAt, expiresAtEpoch",
            "#s = :pending",
            vec![
                (":ready", status(MediaStatus::Ready)),
                (":pending", status(MediaStatus::Pending)),
                (":k", s(served_original.as_str())),
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
                (":purge", s(CleanupQueue::Purge.as_str())),
                (":now", s(format_time(now))),
            ],
        )
        .await
    }

    async fn expire(&self, id: &MediaId, now: OffsetDateTime) -> Result<Transition, RepoError> {
        self.transition(
            "expire a pending upload",
            id,
            "SET #s = :expired, updatedAt = :now, gcQueue = :purge, gcDue = :due",
            "#s = :pending",
            vec![
                (":expired", status(MediaStatus::Expired)),
                (":pending", status(MediaStatus::Pending)),
                (":purge", s(CleanupQueue::Purge.as_str())),
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
        queue: CleanupQueue,
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
                .expression_attribute_values(":q", s(queue.as_str()))
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
