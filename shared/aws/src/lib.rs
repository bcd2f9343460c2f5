//! The AWS adapters of the core's ports: [`S3ObjectStore`], [`DynamoMediaRepository`] and
//! [`CloudFrontCache`] and [`EventBridgePublisher`]; [`AwsClients`], the one place that builds the SDK clients; and [`wire`],
//! the one module that plugs the adapters into the service.

#![warn(missing_docs)]

mod clamd;
mod clients;
mod cloudfront;
mod dynamo;
mod eventbridge;
pub mod post_policy;
mod s3;
mod s3_multipart;
mod s3_ranged;
mod scratch;
pub mod wire;

pub use clamd::ClamdScanner;
pub use clients::AwsClients;
pub use cloudfront::{CloudFrontCache, MAX_INVALIDATION_PATHS};
pub use dynamo::{
    CLEANUP_INDEX, DynamoGrantStore, DynamoMediaRepository, ENTITY_INDEX, GRANT_INDEX, OWNER_INDEX,
    TTL_ATTRIBUTE,
};
pub use eventbridge::EventBridgePublisher;
pub use s3::S3ObjectStore;

use media_core::ports::StoreError;

pub(crate) fn store_err(
    operation: &'static str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> StoreError {
    StoreError {
        operation,
        source: Box::new(e),
    }
}
