//! [`S3ObjectStore`]: the object storage port on Amazon S3.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::presigning::PresigningConfig;
use media_core::config::MAX_SINGLE_PUT;
use media_core::domain::{ContentType, ObjectKey};
use media_core::ports::{
    Fetched, ObjectReader, ObjectStat, ObjectStore, ObjectWriter, PresignedPost, PresignedRequest,
    Spooled, StoreError,
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::clients::AwsClients;
use crate::{post_policy, store_err};

/// A presigned POST that could not be made (no credentials, no region).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct PostError(String);

/// [`ObjectStore`] on Amazon S3.
#[derive(Debug, Clone)]
pub struct S3ObjectStore {
    pub(crate) client: aws_sdk_s3::Client,
    pub(crate) bucket: String,
    /// Signs POST policies (the client's own config does not expose its credentials).
    credentials: Option<aws_sdk_s3::config::SharedCredentialsProvider>,
    /// Objects larger than this are copied in parts (S3 copies at most 5 GiB in one request).
    pub(crate) single_copy_limit: u64,
}

/// Derivatives and served copies never change under a key: browsers and CDNs may keep them.
pub(crate) const IMMUTABLE: &str = "public, max-age=31536000, immutable";

impl S3ObjectStore {
    /// The store for `bucket`, with the credentials of `clients` for POST policies.
    pub fn new(clients: &AwsClients, bucket: impl Into<String>) -> Self {
        Self {
            client: clients.s3.clone(),
            bucket: bucket.into(),
            credentials: clients.sdk_config.credentials_provider(),
            single_copy_limit: MAX_SINGLE_PUT,
        }
    }

    /// Copies objects larger than `limit` in parts of at most `limit` (at least 5 MiB): the
    /// tests use it to copy in parts without making 5 GiB objects.
    pub fn with_single_copy_limit(mut self, limit: u64) -> Self {
        self.single_copy_limit = limit.clamp(5 * 1024 * 1024, MAX_SINGLE_PUT);
        self
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

    async fn presign_download(
        &self,
        key: &ObjectKey,
        content_disposition: &str,
        content_type: &str,
        expires_in: Duration,
    ) -> Result<String, StoreError> {
        let presigning = PresigningConfig::expires_in(expires_in)
            .map_err(|e| store_err("presign a download", e))?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .response_content_disposition(content_disposition)
            .response_content_type(content_type)
            .presigned(presigning)
            .await
            .map_err(|e| store_err("presign a download", e))?;
        Ok(req.uri().to_owned())
    }

    async fn stat(&self, key: &ObjectKey) -> Result<Option<ObjectStat>, StoreError> {
        self.stat_object(key).await
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

    async fn undelete(&self, keys: &[ObjectKey]) -> Result<Vec<ObjectKey>, StoreError> {
        let mut folders: Vec<&str> = keys.iter().map(ObjectKey::folder).collect();
        folders.sort_unstable();
        folders.dedup();
        let mut markers = Vec::new();
        let mut versioned = std::collections::BTreeSet::new();
        for folder in folders {
            // One listing per media folder (a handful of keys), every page of it.
            let (mut key_marker, mut version_marker) = (None, None);
            for _ in 0..MAX_VERSION_PAGES {
                let out = self
                    .client
                    .list_object_versions()
                    .bucket(&self.bucket)
                    .prefix(folder)
                    .set_key_marker(key_marker.take())
                    .set_version_id_marker(version_marker.take())
                    .send()
                    .await
                    .map_err(|e| store_err("list an object's versions", e))?;
                let wanted = |k: Option<&str>| keys.iter().any(|w| Some(w.as_str()) == k);
                for m in out.delete_markers() {
                    if let (true, Some(k), Some(v)) = (wanted(m.key()), m.key(), m.version_id()) {
                        markers.push((k.to_owned(), v.to_owned()));
                    }
                }
                for v in out.versions() {
                    if let (true, Some(k)) = (wanted(v.key()), v.key()) {
                        versioned.insert(k.to_owned());
                    }
                }
                if out.is_truncated() != Some(true) {
                    break;
                }
                key_marker = out.next_key_marker().map(str::to_owned);
                version_marker = out.next_version_id_marker().map(str::to_owned);
            }
        }
        let missing: Vec<ObjectKey> = keys
            .iter()
            .filter(|k| !versioned.contains(k.as_str()))
            .cloned()
            .collect();
        // Deleting a delete marker (by its version id) makes the version under it current again.
        futures_util::future::try_join_all(
            markers
                .iter()
                .filter(|(k, _)| versioned.contains(k))
                .map(|(key, version)| {
                    self.client
                        .delete_object()
                        .bucket(&self.bucket)
                        .key(key)
                        .version_id(version)
                        .send()
                }),
        )
        .await
        .map_err(|e| store_err("remove a delete marker", e))?;
        Ok(missing)
    }
}

#[async_trait]
impl ObjectReader for S3ObjectStore {
    async fn read_range(
        &self,
        key: &ObjectKey,
        etag: &str,
        offset: u64,
        len: usize,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.read_object_range(key, etag, offset, len).await
    }

    async fn digest(
        &self,
        key: &ObjectKey,
        etag: &str,
        size: u64,
    ) -> Result<Option<[u8; 32]>, StoreError> {
        self.digest_object(key, etag, size).await
    }

    async fn copy(
        &self,
        from: &ObjectKey,
        etag: &str,
        size: u64,
        to: &ObjectKey,
        content_type: &str,
    ) -> Result<bool, StoreError> {
        self.copy_object(from, etag, size, to, content_type).await
    }

    async fn spool(
        &self,
        key: &ObjectKey,
        etag: &str,
        size: u64,
    ) -> Result<Option<Spooled>, StoreError> {
        self.spool_object(key, etag, size).await
    }

    async fn fetch(
        &self,
        key: &ObjectKey,
        if_match: Option<&str>,
        max_bytes: u64,
    ) -> Result<Fetched, StoreError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .set_if_match(if_match.map(str::to_owned))
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if crate::s3_ranged::gone_or_changed(&e) => return Ok(Fetched::Missing),
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
}

#[async_trait]
impl ObjectWriter for S3ObjectStore {
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
            .cache_control(IMMUTABLE)
            .body(bytes.into())
            .send()
            .await
            .map_err(|e| store_err("write an object", e))?;
        Ok(())
    }
}

/// Most pages of versions read for one media folder (1,000 entries each; a media has a handful).
const MAX_VERSION_PAGES: usize = 10;

fn canonical_header(name: &str) -> String {
    match name.to_ascii_lowercase().as_str() {
        "content-type" => "Content-Type".to_owned(),
        other => other.to_owned(),
    }
}
