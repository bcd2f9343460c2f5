//! Wiring: the service over S3 and DynamoDB as the functions run it, and the CloudFront cache for
//! delete and cleanup when a distribution is configured. The image processor is not wired here: only the
//! process function adds one. Each function calls the one constructor it needs, so a binary links
//! only the adapters it uses (only delete and cleanup carry a CloudFront client).

use std::sync::Arc;

use media_core::metrics::Metrics;
use media_core::ports::{CdnCache, EventPublisher, Scanner};
use media_core::scanning::MalwareScanner;
use media_core::{Config, MediaService};

use crate::{
    AwsClients, ClamdScanner, CloudFrontCache, DynamoGrantStore, DynamoMediaRepository,
    EventBridgePublisher, S3ObjectStore,
};

/// The service as the presign, confirm and get functions run it: clients from the environment,
/// built once at cold start; no CDN cache (only delete and cleanup invalidate), no events (they
/// change no state that is announced).
pub async fn service(config: &Config) -> MediaService {
    let clients = AwsClients::from_config(config).await;
    without_cdn(config, &clients)
}

/// The service as the library and process functions run it: state changes are published to
/// EventBridge (`EVENT_BUS_NAME`).
pub async fn publishing_service(config: &Config) -> MediaService {
    let clients = AwsClients::from_config(config).await;
    with_events(without_cdn(config, &clients), config, &clients)
}

/// The service as the delete and cleanup functions run it: state changes published, and the
/// CloudFront cache when `CDN_DISTRIBUTION_ID` is set (both stop serving objects).
pub async fn service_with_cdn(config: &Config) -> MediaService {
    let clients = AwsClients::from_config(config).await;
    with_clients(config, &clients)
}

fn with_events(service: MediaService, config: &Config, clients: &AwsClients) -> MediaService {
    service.with_events(Arc::new(EventBridgePublisher::new(
        clients.eventbridge(),
        config.event_bus_name.clone(),
    )) as Arc<dyn EventPublisher>)
}

/// The service over already-built clients, with every adapter the configuration names (the
/// local runner and the tests, which run every use case on one service).
pub fn with_clients(config: &Config, clients: &AwsClients) -> MediaService {
    let service = with_events(without_cdn(config, clients), config, clients);
    match &config.cdn_distribution_id {
        Some(id) => {
            service.with_cdn(
                Arc::new(CloudFrontCache::new(clients.cloudfront(), id)) as Arc<dyn CdnCache>
            )
        }
        None => service,
    }
}

fn without_cdn(config: &Config, clients: &AwsClients) -> MediaService {
    let store = Arc::new(S3ObjectStore::new(clients, &config.bucket));
    MediaService::with_parts(
        config.clone(),
        store.clone(),
        Arc::new(DynamoMediaRepository::new(
            clients.dynamodb.clone(),
            &config.table,
        )),
        Arc::new(DynamoGrantStore::new(
            clients.dynamodb.clone(),
            &config.table,
        )),
        None,
        Metrics::stdout(config.metrics_namespace.as_deref()),
    )
    .with_multipart(store)
}

/// The malware scanner `MALWARE_SCANNER` names, when processing streams files to one (`clamd`).
/// Only the process function (and the local runner) adds it, so the API functions do not link it.
pub fn scanner(config: &Config) -> Option<Arc<dyn Scanner>> {
    match &config.malware_scanner {
        MalwareScanner::Clamd(settings) => {
            Some(Arc::new(ClamdScanner::new(settings.clone())) as Arc<dyn Scanner>)
        }
        MalwareScanner::None | MalwareScanner::GuardDuty { .. } => None,
    }
}
