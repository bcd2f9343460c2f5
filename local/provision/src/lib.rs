//! Not production code: creates the bucket and table on a local emulator, shaped as
//! `template.yaml` shapes them in AWS, and the test kit. Used by `media-dev` and by the tests;
//! never by the deployed functions.

#![warn(missing_docs)]

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};

use media_aws::{AwsClients, CLEANUP_INDEX, ENTITY_INDEX, GRANT_INDEX, OWNER_INDEX, TTL_ATTRIBUTE};

/// A provisioning step that failed.
#[derive(Debug, thiserror::Error)]
#[error("could not {step}")]
pub struct ProvisionError {
    /// What was being done.
    pub step: String,
    /// Why it failed.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Wraps an error as the failure of `step` (for `map_err`).
pub fn failed(
    step: impl Into<String>,
) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> ProvisionError {
    let step = step.into();
    move |source| ProvisionError { step, source }
}

/// The emulator the local runner and the tests use: `AWS_ENDPOINT_URL`, or
/// `http://127.0.0.1:4566` when it is not set. Anything but a loopback address is refused: tests and
/// the local runner must never create resources in a real AWS account.
pub fn local_endpoint() -> Result<String, ProvisionError> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| "http://127.0.0.1:4566".to_owned());
    let local = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"];
    if local.iter().any(|p| endpoint.starts_with(p)) {
        Ok(endpoint)
    } else {
        Err(failed("provision")(
            format!("AWS_ENDPOINT_URL must point at a local emulator (http://127.0.0.1:PORT), not {endpoint:?}").into(),
        ))
    }
}

/// Creates the bucket if it does not exist.
pub async fn ensure_bucket(clients: &AwsClients, bucket: &str) -> Result<(), ProvisionError> {
    match clients.s3.create_bucket().bucket(bucket).send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error().is_some_and(|s| {
                s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists()
            }) => {}
        Err(e) => return Err(failed(format!("create bucket {bucket}"))(Box::new(e))),
    }
    // Versioned, as in template.yaml: a deleted media's objects stop serving at once and a
    // restore brings their versions back.
    clients
        .s3
        .put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .map_err(|e| failed(format!("enable versioning on {bucket}"))(Box::new(e)))?;
    Ok(())
}

/// Creates the EventBridge bus `name` if it does not exist (the emulator has the default bus
/// already).
pub async fn ensure_event_bus(clients: &AwsClients, name: &str) -> Result<(), ProvisionError> {
    let eb = clients.eventbridge();
    if eb.describe_event_bus().name(name).send().await.is_ok() {
        return Ok(());
    }
    eb.create_event_bus()
        .name(name)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| failed(format!("create event bus {name}"))(Box::new(e)))
}

/// Creates the media table with its three indexes if it does not exist.
pub async fn ensure_table(clients: &AwsClients, table: &str) -> Result<(), ProvisionError> {
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    let index = |name: &str,
                 hash: &str,
                 range: &str|
     -> Result<GlobalSecondaryIndex, ProvisionError> {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(
                key(hash, KeyType::Hash).map_err(|e| failed("describe an index")(Box::new(e)))?,
            )
            .key_schema(
                key(range, KeyType::Range).map_err(|e| failed("describe an index")(Box::new(e)))?,
            )
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(|e| failed("describe an index")(Box::new(e)))
    };
    let defs = [
        "id",
        "ownerId",
        "createdAt",
        "entityKey",
        "gcQueue",
        "gcDue",
        "grantMedia",
    ]
    .into_iter()
    .map(attr)
    .collect::<Result<Vec<_>, _>>()
    .map_err(|e| failed("describe the table")(Box::new(e)))?;
    let result = clients
        .dynamodb
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(defs))
        .key_schema(
            key("id", KeyType::Hash).map_err(|e| failed("describe the table")(Box::new(e)))?,
        )
        .global_secondary_indexes(index(OWNER_INDEX, "ownerId", "createdAt")?)
        .global_secondary_indexes(index(ENTITY_INDEX, "entityKey", "createdAt")?)
        .global_secondary_indexes(index(CLEANUP_INDEX, "gcQueue", "gcDue")?)
        .global_secondary_indexes(index(GRANT_INDEX, "grantMedia", "createdAt")?)
        .send()
        .await;
    match result {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            return Ok(());
        }
        Err(e) => return Err(failed(format!("create table {table}"))(Box::new(e))),
    }
    let ttl = TimeToLiveSpecification::builder()
        .attribute_name(TTL_ATTRIBUTE)
        .enabled(true)
        .build()
        .map_err(|e| failed("describe the TTL")(Box::new(e)))?;
    clients
        .dynamodb
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(ttl)
        .send()
        .await
        .map_err(|e| failed(format!("enable TTL on {table}"))(Box::new(e)))?;
    Ok(())
}

/// Test helpers: every test gets its own bucket and table on the emulator.
pub mod testkit {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::{ProvisionError, ensure_bucket, ensure_table, local_endpoint};
    use media_aws::AwsClients;
    use media_core::config::{Config, ConfigError};
    use media_core::domain::OwnerId;
    use media_core::presign::{PresignRequest, PresignResponse};
    use media_core::service::MediaService;

    /// A bucket and table of one test's own, with a service over them.
    pub struct TestStack {
        /// The configuration (bucket and table names filled in).
        pub config: Config,
        /// The SDK clients.
        pub clients: AwsClients,
        /// The service.
        pub service: MediaService,
    }

    /// A name no other test in any process uses.
    pub fn unique_name(prefix: &str) -> String {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        format!(
            "{prefix}-{}-{n}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        )
    }

    /// A configuration for a fresh bucket and table, with `overrides` on top of the environment.
    pub fn test_config(overrides: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let names = HashMap::from([
            ("MEDIA_BUCKET".to_owned(), unique_name("media")),
            ("MEDIA_TABLE".to_owned(), unique_name("media")),
        ]);
        let overrides: HashMap<String, String> = overrides
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|k| {
            overrides
                .get(k)
                .or_else(|| names.get(k))
                .cloned()
                .or_else(|| std::env::var(k).ok())
        })
    }

    impl TestStack {
        /// Creates the bucket and table for `config` and builds the service.
        pub async fn with_config(config: Config) -> Result<Self, ProvisionError> {
            let clients = AwsClients::for_emulator(&local_endpoint()?).await;
            ensure_bucket(&clients, &config.bucket).await?;
            ensure_table(&clients, &config.table).await?;
            let service = service_for(&config, &clients);
            Ok(Self {
                config,
                clients,
                service,
            })
        }

        /// A stack with the default configuration plus `overrides`.
        pub async fn new(overrides: &[(&str, &str)]) -> Result<Self, Box<dyn std::error::Error>> {
            Ok(Self::with_config(test_config(overrides)?).await?)
        }

        /// Presigns an upload for `owner` and, when `bytes` are given, stores them at its key as
        /// the client's PUT would.
        pub async fn upload(
            &self,
            owner: &str,
            content_type: &str,
            bytes: &[u8],
            put: bool,
        ) -> Result<PresignResponse, Box<dyn std::error::Error>> {
            let request = PresignRequest {
                filename: Some("photo".to_owned()),
                content_type: Some(content_type.to_owned()),
                size: Some(i64::try_from(bytes.len())?),
                ..Default::default()
            };
            let presigned = self
                .service
                .presign_upload(&OwnerId::parse(owner)?, request)
                .await?;
            if put {
                self.clients
                    .s3
                    .put_object()
                    .bucket(&self.config.bucket)
                    .key(&presigned.key)
                    .content_type(content_type)
                    .body(bytes.to_vec().into())
                    .send()
                    .await?;
            }
            Ok(presigned)
        }

        /// The keys of every object in the bucket.
        pub async fn object_keys(&self) -> Result<Vec<String>, Box<dyn std::error::Error>> {
            object_keys(&self.clients, &self.config.bucket).await
        }
    }

    /// The service the API functions run over these clients (no image processor: the process
    /// function's tests add theirs with `with_processor`).
    pub fn service_for(config: &Config, clients: &AwsClients) -> MediaService {
        media_aws::wire::with_clients(config, clients)
    }

    /// The keys of every object in `bucket` (tests keep buckets small: one page is all of it).
    pub async fn object_keys(
        clients: &AwsClients,
        bucket: &str,
    ) -> Result<Vec<String>, Box<dyn std::error::Error>> {
        let out = clients.s3.list_objects_v2().bucket(bucket).send().await?;
        Ok(out
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect())
    }

    /// The media id used in the sample events under `events/`.
    pub const SAMPLE_MEDIA_ID: &str = "019aa7c1e2f37b8c9d0e1f2a3b4c5d6e";

    /// The owner (`sub`) in the sample API events.
    pub const SAMPLE_OWNER: &str = "user-123";

    /// A sample event from `events/<function>/<file>`, with the sample media id replaced.
    pub fn sample_event(
        function: &str,
        file: &str,
        media_id: &str,
    ) -> Result<String, std::io::Error> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../events")
            .join(function)
            .join(file);
        Ok(std::fs::read_to_string(path)?.replace(SAMPLE_MEDIA_ID, media_id))
    }

    /// A file of the shared test corpus (`../shared/corpus` beside the repository, or
    /// `MEDIA_CORPUS_DIR`).
    pub fn corpus_file(name: &str) -> Result<Vec<u8>, std::io::Error> {
        let dir = std::env::var("MEDIA_CORPUS_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
            });
        std::fs::read(dir.join(name))
    }
}
