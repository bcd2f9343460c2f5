//! Wiring: the service over S3, DynamoDB and (when configured) CloudFront, as the functions run
//! it. The image processor is not wired here: only the process function adds one.

use std::sync::Arc;

use media_core::metrics::Metrics;
use media_core::ports::CdnCache;
use media_core::{Config, MediaService};

use crate::{AwsClients, CloudFrontCache, DynamoMediaRepository, S3ObjectStore};

/// The service as a function runs it: clients from the environment, built once at cold start.
pub async fn service(config: &Config) -> MediaService {
    let clients = AwsClients::from_config(config).await;
    with_clients(config, &clients)
}

/// The service over already-built clients.
pub fn with_clients(config: &Config, clients: &AwsClients) -> MediaService {
    let cdn = config.cdn_distribution_id.as_ref().map(|id| {
        Arc::new(CloudFrontCache::new(clients.cloudfront.clone(), id)) as Arc<dyn CdnCache>
    });
    MediaService::with_parts(
        config.clone(),
        Arc::new(S3ObjectStore::new(clients, &config.bucket)),
        Arc::new(DynamoMediaRepository::new(
            clients.dynamodb.clone(),
            &config.table,
        )),
        cdn,
        Metrics::stdout(config.metrics_namespace.as_deref()),
    )
}
