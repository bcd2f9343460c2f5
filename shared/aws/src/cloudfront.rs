//! [`CloudFrontCache`]: the CDN cache port on Amazon CloudFront.

use async_trait::async_trait;
use media_core::ports::{CdnCache, StoreError};

use crate::store_err;

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
