//! Wiring: the service over S3 and DynamoDB as each function runs it. A function calls the one
//! constructor it needs, and links only the adapters (and the SDK operations behind them) that
//! constructor names: a port wired is a vtable, and every method of it stays in the binary whether
//! called or not. So only process reads objects' bytes, only process and presign write objects,
//! only presign and cleanup carry the multipart adapter, only the functions that change state the
//! EventBridge client, only delete and cleanup the CloudFront client. The image processor and the
//! scanner are not wired here: only the process function adds them.

use std::sync::Arc;

use media_core::metrics::Metrics;
use media_core::ports::{
    CdnCache, EventPublisher, MultipartStore, ObjectReader, ObjectWriter, Scanner,
};
use media_core::scanning::MalwareScanner;
use media_core::{Config, MediaService};

use crate::{
    AwsClients, ClamdScanner, CloudFrontCache, DynamoGrantStore, DynamoMediaRepository,
    EventBridgePublisher, S3ObjectStore,
};

/// The service as the confirm and get functions run it: clients from the environment, built once
/// at cold start; no multipart uploads, no CDN cache, no events (they change no state that is
/// announced).
pub async fn service(config: &Config) -> MediaService {
    let clients = AwsClients::from_config(config).await;
    base(config, &clients)
}

/// The service as the presign function runs it: with S3 multipart uploads (the Companion routes)
/// and objects written (the server-side upload route).
pub async fn uploading_service(config: &Config) -> MediaService {
    let clients = AwsClients::from_config(config).await;
    let service = with_multipart(base(config, &clients), config, &clients);
    service.with_writer(Arc::new(S3ObjectStore::new(&clients, &config.bucket)) as Arc<dyn ObjectWriter>)
}

/// The service as the library function runs it: state changes are published to EventBridge
/// (`EVENT_BUS_NAME`).
pub async fn publishing_service(config: &Config) -> MediaService {
    let clients = AwsClients::from_config(config).await;
    publishing(config, &clients)
}

/// The service as the process function runs it: as library's, and objects read, copied and
/// written. (The image processor and the scanner are the process function's to add.)
pub async fn processing_service(config: &Config) -> MediaService {
    let clients = AwsClients::from_config(config).await;
    with_bytes(publishing(config, &clients), config, &clients)
}

/// The service as the delete function runs it: state changes published, and the CloudFront cache
/// when `CDN_DISTRIBUTION_ID` is set (a deleted media stops serving at once).
pub async fn service_with_cdn(config: &Config) -> MediaService {
    let clients = AwsClients::from_config(config).await;
    deleting(config, &clients)
}

/// The service as the cleanup function runs it: as delete's, and with multipart uploads (a purge
/// aborts an upload in parts that was never completed).
pub async fn cleanup_service(config: &Config) -> MediaService {
    let clients = AwsClients::from_config(config).await;
    with_multipart(deleting(config, &clients), config, &clients)
}

/// The service over already-built clients, with every adapter the configuration names (the
/// local runner and the tests, which run every use case on one service).
pub fn with_clients(config: &Config, clients: &AwsClients) -> MediaService {
    let service = with_multipart(deleting(config, clients), config, clients);
    with_bytes(service, config, clients)
}

fn publishing(config: &Config, clients: &AwsClients) -> MediaService {
    with_events(base(config, clients), config, clients)
}

fn deleting(config: &Config, clients: &AwsClients) -> MediaService {
    with_cdn(publishing(config, clients), config, clients)
}

fn with_bytes(service: MediaService, config: &Config, clients: &AwsClients) -> MediaService {
    let store = Arc::new(S3ObjectStore::new(clients, &config.bucket));
    service
        .with_reader(store.clone() as Arc<dyn ObjectReader>)
        .with_writer(store as Arc<dyn ObjectWriter>)
}

fn with_multipart(service: MediaService, config: &Config, clients: &AwsClients) -> MediaService {
    service.with_multipart(
        Arc::new(S3ObjectStore::new(clients, &config.bucket)) as Arc<dyn MultipartStore>
    )
}

fn with_cdn(service: MediaService, config: &Config, clients: &AwsClients) -> MediaService {
    match &config.cdn_distribution_id {
        Some(id) => {
            service.with_cdn(
                Arc::new(CloudFrontCache::new(clients.cloudfront(), id)) as Arc<dyn CdnCache>
            )
        }
        None => service,
    }
}

fn with_events(service: MediaService, config: &Config, clients: &AwsClients) -> MediaService {
    service.with_events(Arc::new(EventBridgePublisher::new(
        clients.eventbridge(),
        config.event_bus_name.clone(),
    )) as Arc<dyn EventPublisher>)
}

fn base(config: &Config, clients: &AwsClients) -> MediaService {
    MediaService::with_parts(
        config.clone(),
        Arc::new(S3ObjectStore::new(clients, &config.bucket)),
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
