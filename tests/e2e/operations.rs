//! Operating the system: the metrics it emits, the CDN invalidations of cleanup, the TTL backstop
//! and what its logs say (and never say). Against the emulator, through the real SDK.

use std::sync::{Arc, Mutex};

use e2e::{TestResult, corpus};
use media_aws::{
    AwsClients, CloudFrontCache, DynamoGrantStore, DynamoMediaRepository, S3ObjectStore,
    TTL_ATTRIBUTE,
};
use media_core::cleanup::CleanupSummary;
use media_core::domain::{MediaId, ObjectKey, OwnerId};
use media_core::metrics::Metrics;
use media_core::ports::CdnCache;
use media_core::presign::PresignRequest;
use media_core::process::ProcessOutcome;
use media_core::{Config, MediaService};
use media_provision::testkit::test_config;
use media_provision::{ensure_bucket, ensure_table, local_endpoint};
use serde_json::Value;

/// A distribution on the emulator, as the template's optional CDN would be.
async fn distribution(clients: &AwsClients, bucket: &str) -> TestResult<String> {
    use aws_sdk_cloudfront::types::{
        DefaultCacheBehavior, DistributionConfig, Origin, Origins, S3OriginConfig,
        ViewerProtocolPolicy,
    };
    let origin = Origin::builder()
        .id("media")
        .domain_name(format!("{bucket}.s3.us-east-1.amazonaws.com"))
        .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
        .build()?;
    let config = DistributionConfig::builder()
        .caller_reference(bucket)
        .comment("e2e")
        .enabled(true)
        .origins(Origins::builder().quantity(1).items(origin).build()?)
        .default_cache_behavior(
            DefaultCacheBehavior::builder()
                .target_origin_id("media")
                .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
                .build()?,
        )
        .build()?;
    let out = clients
        .cloudfront()
        .create_distribution()
        .distribution_config(config)
        .send()
        .await?;
    Ok(out
        .distribution()
        .map(|d| d.id().to_owned())
        .ok_or("no distribution")?)
}

struct Ops {
    config: Config,
    clients: AwsClients,
    service: MediaService,
    lines: Arc<Mutex<Vec<String>>>,
}

/// A stack whose service writes its metrics into `lines`, with a CloudFront cache when asked.
async fn ops(overrides: &[(&str, &str)], cdn: bool) -> TestResult<Ops> {
    let config = test_config(overrides)?;
    let clients = AwsClients::for_emulator(&local_endpoint()?).await;
    ensure_bucket(&clients, &config.bucket).await?;
    ensure_table(&clients, &config.table).await?;
    let cache: Option<Arc<dyn CdnCache>> = if cdn {
        let id = distribution(&clients, &config.bucket).await?;
        Some(Arc::new(CloudFrontCache::new(clients.cloudfront(), id)))
    } else {
        None
    };
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let metrics = Metrics::with_sink(
        Some("MediaUpload/e2e"),
        Arc::new(move |l: &str| {
            if let Ok(mut v) = sink.lock() {
                v.push(l.to_owned());
            }
        }),
    );
    let service = MediaService::with_parts(
        config.clone(),
        Arc::new(S3ObjectStore::new(&clients, &config.bucket)),
        Arc::new(DynamoMediaRepository::new(
            clients.dynamodb.clone(),
            &config.table,
        )),
        Arc::new(DynamoGrantStore::new(
            clients.dynamodb.clone(),
            &config.table,
        )),
        cache,
        metrics,
    )
    .with_reader(Arc::new(S3ObjectStore::new(&clients, &config.bucket)))
    .with_writer(Arc::new(S3ObjectStore::new(&clients, &config.bucket)));
    let service = process::processing(service, &config);
    Ok(Ops {
        config,
        clients,
        service,
        lines,
    })
}

impl Ops {
    /// The paths of every invalidation of the distribution, one list per invalidation.
    async fn invalidations(&self, distribution: &str) -> TestResult<Vec<Vec<String>>> {
        let cf = self.clients.cloudfront();
        let list = cf
            .list_invalidations()
            .distribution_id(distribution)
            .send()
            .await?;
        let mut out = Vec::new();
        for summary in list
            .invalidation_list()
            .map(|l| l.items().to_vec())
            .unwrap_or_default()
        {
            let inv = cf
                .get_invalidation()
                .distribution_id(distribution)
                .id(summary.id())
                .send()
                .await?;
            out.push(
                inv.invalidation()
                    .and_then(|i| i.invalidation_batch())
                    .and_then(|b| b.paths())
                    .map(|p| p.items().to_vec())
                    .unwrap_or_default(),
            );
        }
        Ok(out)
    }

    /// Presigns and PUTs `bytes` as `owner`, then runs processing as the S3 event would.
    async fn upload_and_process(&self, owner: &OwnerId, bytes: &[u8]) -> TestResult<MediaId> {
        let presigned = self
            .service
            .presign_upload(
                owner,
                PresignRequest {
                    filename: Some("photo.jpg".into()),
                    content_type: Some("image/jpeg".into()),
                    size: Some(i64::try_from(bytes.len())?),
                    ..Default::default()
                },
            )
            .await?;
        let item = self.item(presigned.media_id.as_str()).await?;
        let ttl: i64 = item[TTL_ATTRIBUTE]["N"]
            .as_str()
            .ok_or("a pending record has no TTL attribute")?
            .parse()?;
        let expected = e2e::time_now() + 3600 + 86_400;
        assert!(
            (ttl - expected).abs() < 120,
            "TTL {ttl}, expected about {expected}"
        );

        self.clients
            .s3
            .put_object()
            .bucket(&self.config.bucket)
            .key(&presigned.key)
            .content_type("image/jpeg")
            .body(bytes.to_vec().into())
            .send()
            .await?;
        let outcome = self
            .service
            .process_upload(&ObjectKey::from_raw(&presigned.key))
            .await?;
        assert_eq!(
            outcome,
            ProcessOutcome::Ready {
                media_id: presigned.media_id.clone()
            }
        );
        let item = self.item(presigned.media_id.as_str()).await?;
        assert!(
            item.get(TTL_ATTRIBUTE).is_none(),
            "a ready record keeps its TTL"
        );
        Ok(presigned.media_id)
    }

    /// The raw DynamoDB item, attribute -> `{"S": ..}` / `{"N": ..}`.
    async fn item(&self, id: &str) -> TestResult<Value> {
        let out = self
            .clients
            .dynamodb
            .get_item()
            .table_name(&self.config.table)
            .key(
                "id",
                aws_sdk_dynamodb::types::AttributeValue::S(id.to_owned()),
            )
            .send()
            .await?;
        let mut v = serde_json::Map::new();
        for (k, a) in out.item().ok_or("no item")? {
            let typed = match a {
                aws_sdk_dynamodb::types::AttributeValue::S(s) => serde_json::json!({ "S": s }),
                aws_sdk_dynamodb::types::AttributeValue::N(n) => serde_json::json!({ "N": n }),
                _ => serde_json::json!({}),
            };
            v.insert(k.clone(), typed);
        }
        Ok(Value::Object(v))
    }

    fn metrics(&self) -> Vec<Value> {
        self.lines
            .lock()
            .map(|l| {
                l.iter()
                    .filter_map(|line| serde_json::from_str(line).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The value of `name` summed over every EMF line whose dimensions include `dims`.
    fn metric(&self, name: &str, dims: &[(&str, &str)]) -> f64 {
        self.metrics()
            .iter()
            .filter(|d| dims.iter().all(|(k, v)| d[*k] == *v))
            .filter_map(|d| match &d[name] {
                Value::Number(n) => n.as_f64(),
                Value::Array(a) => Some(a.iter().filter_map(Value::as_f64).sum()),
                _ => None,
            })
            .sum()
    }
}

#[tokio::test]
async fn cleanup_invalidates_the_cdn_paths_of_purged_media_in_one_batch() -> TestResult {
    let t = ops(
        &[
            ("CLEANUP_GRACE_PERIOD_HOURS", "0"),
            ("CDN_BASE_URL", "https://cdn.example.com"),
        ],
        true,
    )
    .await?;
    let owner = OwnerId::parse("alice")?;
    let photo = corpus("Landscape_1.jpg")?;
    let first = t.upload_and_process(&owner, &photo).await?;
    let second = t.upload_and_process(&owner, &photo).await?;
    let kept = t.upload_and_process(&owner, &photo).await?;
    let view = t.service.get_media(&owner, &first).await?;
    assert!(
        view.thumbnails
            .values()
            .all(|u| u.starts_with("https://cdn.example.com/derivatives/")),
        "{:?}",
        view.thumbnails
    );
    t.service.delete_media(&owner, &first).await?;
    t.service.delete_media(&owner, &second).await?;
    let dist = t
        .clients
        .cloudfront()
        .list_distributions()
        .send()
        .await?
        .distribution_list()
        .and_then(|l| l.items().iter().find(|d| d.comment() == "e2e").cloned())
        .ok_or("no distribution")?;
    // Each delete invalidates its media's served objects at once, by exact path (CloudFront
    // allows only 15 wildcard paths in progress per distribution, and 3,000 exact ones).
    let after_deletes = t.invalidations(dist.id()).await?;
    assert_eq!(after_deletes.len(), 2, "{after_deletes:?}");
    for paths in &after_deletes {
        assert_eq!(paths.len(), 4, "{paths:?}");
        let folder = paths[0]
            .rsplit_once('/')
            .map(|(f, _)| f)
            .unwrap_or_default();
        assert!(
            [first.as_str(), second.as_str()]
                .iter()
                .any(|id| folder == format!("/derivatives/{id}")),
            "{paths:?}"
        );
        assert!(
            paths
                .iter()
                .all(|p| p.starts_with(folder) && !p.contains('*')),
            "{paths:?}"
        );
    }

    let summary = t.service.run_cleanup().await?;
    assert_eq!(
        (
            summary.purged,
            summary.failures,
            summary.objects_deleted,
            summary.invalidated_paths
        ),
        (2, 0, 8, 8),
        "{summary:?}"
    );

    // Cleanup adds one invalidation, naming exactly the deleted derivatives of the two purged
    // media (a backstop, should a delete's invalidation have failed).
    let all = t.invalidations(dist.id()).await?;
    assert_eq!(all.len(), 3, "{all:?}");
    let mut paths = all
        .into_iter()
        .find(|p| p.len() == 8)
        .ok_or("no invalidation from cleanup")?;
    paths.sort();
    assert_eq!(paths.len(), 8, "{paths:?}");
    for p in &paths {
        assert!(
            p.starts_with(&format!("/derivatives/{first}/"))
                || p.starts_with(&format!("/derivatives/{second}/")),
            "{p}"
        );
    }
    assert!(paths.iter().all(|p| !p.contains(kept.as_str())));

    // A run with nothing to purge makes no invalidation.
    let again = t.service.run_cleanup().await?;
    assert_eq!(again.invalidated_paths, 0);
    assert_eq!(t.invalidations(dist.id()).await?.len(), 3);

    assert_eq!(t.metric("cleanup_purged_total", &[]), 2.0);
    assert_eq!(t.metric("cleanup_invalidated_paths_total", &[]), 8.0);
    assert!(t.metric("cleanup_bytes_reclaimed_total", &[]) > 0.0);
    Ok(())
}

#[tokio::test]
async fn every_use_case_emits_the_seed_metrics_as_emf() -> TestResult {
    let t = ops(&[], false).await?;
    let owner = OwnerId::parse("bob")?;
    let photo = corpus("Landscape_3.jpg")?;
    let id = t.upload_and_process(&owner, &photo).await?;
    let jpeg = [("type", "image/jpeg")];
    assert_eq!(
        t.metric("upload_total", &[("status", "presigned"), jpeg[0]]),
        1.0
    );
    assert_eq!(
        t.metric("upload_total", &[("status", "ready"), jpeg[0]]),
        1.0
    );
    assert!(t.metric("upload_duration_seconds", &jpeg) > 0.0);
    assert_eq!(t.metric("upload_size_bytes", &jpeg), photo.len() as f64);
    // Presign, the GET of the upload, four derivative PUTs, the delete of the upload.
    let ok = |op: &str| {
        t.metric(
            "storage_operations_total",
            &[("operation", op), ("status", "success")],
        )
    };
    assert_eq!(
        (ok("presign_put"), ok("get"), ok("put"), ok("delete")),
        (1.0, 1.0, 4.0, 1.0)
    );

    // A rejection is counted by reason.
    let text = b"this is not an image at all".to_vec();
    let presigned = t
        .service
        .presign_upload(
            &owner,
            PresignRequest {
                filename: Some("fake.jpg".into()),
                content_type: Some("image/jpeg".into()),
                size: Some(i64::try_from(text.len())?),
                ..Default::default()
            },
        )
        .await?;
    t.clients
        .s3
        .put_object()
        .bucket(&t.config.bucket)
        .key(&presigned.key)
        .body(text.into())
        .send()
        .await?;
    t.service
        .process_upload(&ObjectKey::from_raw(&presigned.key))
        .await?;
    assert_eq!(
        t.metric("upload_total", &[("status", "rejected"), jpeg[0]]),
        1.0
    );
    assert_eq!(
        t.metric("upload_rejected_total", &[("reason", "not_an_image")]),
        1.0
    );

    // Every line is a valid EMF document: namespace, dimensions present as keys, metrics defined.
    for doc in t.metrics() {
        let cw = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "MediaUpload/e2e");
        for dim in cw["Dimensions"][0].as_array().ok_or("dimensions")? {
            let dim = dim.as_str().ok_or("dimension name")?;
            assert!(doc[dim].is_string(), "{doc}");
        }
        for m in cw["Metrics"].as_array().ok_or("metrics")? {
            let name = m["Name"].as_str().ok_or("metric name")?;
            assert!(doc[name].is_number() || doc[name].is_array(), "{doc}");
        }
    }
    let _ = t.service.get_media(&owner, &id).await?;
    let _: CleanupSummary = t.service.run_cleanup().await?;
    Ok(())
}

/// A writer into a shared buffer, for a tracing subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every log line of this test binary from now on, as on Lambda with `AWS_LAMBDA_LOG_FORMAT=JSON`
/// at the INFO level. (A global subscriber: a scoped one misses events whose callsites another
/// test thread registered first.)
fn captured_logs() -> Captured {
    static LOGS: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        captured
    })
    .clone()
}

#[tokio::test]
async fn logs_say_one_json_line_per_outcome_and_nothing_secret() -> TestResult {
    let captured = captured_logs();
    let t = ops(&[], false).await?;
    let owner = OwnerId::parse("carol")?;
    let id = t
        .upload_and_process(&owner, &corpus("Landscape_5.jpg")?)
        .await?;
    t.service.confirm_upload(&owner, &id).await?;
    let view = t.service.get_media(&owner, &id).await?;
    assert!(
        view.thumbnails
            .values()
            .all(|u| u.contains("X-Amz-Signature")),
        "the test needs presigned URLs to look for"
    );
    t.service.delete_media(&owner, &id).await?;

    let text = String::from_utf8(captured.0.lock().map_err(|e| e.to_string())?.clone())?;
    let lines: Vec<Value> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let outcome = |message: &str| {
        lines
            .iter()
            .find(|l| l["fields"]["message"] == message && l["fields"]["media_id"] == id.as_str())
            .cloned()
            .ok_or(format!("no {message:?} line in {text}"))
    };
    let presigned = outcome("presigned upload")?;
    assert_eq!(presigned["fields"]["owner"], "carol");
    assert_eq!(presigned["fields"]["status"], "pending");
    let processed = outcome("processed upload")?;
    for field in [
        "owner",
        "status",
        "elapsed_ms",
        "decode_ms",
        "resize_ms",
        "encode_ms",
        "key",
    ] {
        assert!(
            !processed["fields"][field].is_null(),
            "{field} in {processed}"
        );
    }
    assert_eq!(processed["fields"]["status"], "ready");
    assert_eq!(
        outcome("soft-deleted media")?["fields"]["status"],
        "deleted"
    );
    for secret in [
        "X-Amz-Signature",
        "X-Amz-Credential",
        "x-amz-security-token",
        "Bearer ",
    ] {
        assert!(!text.contains(secret), "the logs contain {secret}: {text}");
    }
    Ok(())
}
