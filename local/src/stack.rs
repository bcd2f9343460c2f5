//! The local AWS stack on the emulator: the bucket and table, plus the SQS queue that receives the
//! bucket's `ObjectCreated` notifications for the upload prefix (what Lambda's S3 trigger does in AWS).

use std::time::Duration;

use aws_sdk_s3::types::{
    CorsConfiguration, CorsRule, Event, FilterRule, FilterRuleName, NotificationConfiguration,
    NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
};
use aws_sdk_sqs::types::QueueAttributeName;
use media_aws::AwsClients;
use media_core::Config;
use media_provision::{
    ProvisionError, ensure_bucket, ensure_event_bus, ensure_table, failed, local_endpoint,
};

/// The provisioned local stack.
#[derive(Debug, Clone)]
pub struct LocalStack {
    /// SDK clients.
    pub clients: AwsClients,
    /// SQS client.
    pub sqs: aws_sdk_sqs::Client,
    /// URL of the queue that carries S3 events.
    pub queue_url: String,
}

/// Waits (bounded) for the emulator (at `endpoint`, or `AWS_ENDPOINT_URL`), then creates
/// everything `config` names, with the bucket's CORS rules for `cors_origins` as template.yaml
/// sets them.
pub async fn provision(
    config: &Config,
    cors_origins: &[String],
    endpoint: Option<&str>,
) -> Result<LocalStack, ProvisionError> {
    let endpoint = match endpoint {
        Some(e) => e.to_owned(),
        None => local_endpoint()?,
    };
    let clients = AwsClients::for_emulator(&endpoint).await;
    let sqs = aws_sdk_sqs::Client::new(&clients.sdk_config);

    // Up to 30 s for the emulator to answer.
    let mut attempts = 0;
    loop {
        match clients.dynamodb.list_tables().limit(1).send().await {
            Ok(_) => break,
            Err(e) if attempts < 60 => {
                attempts += 1;
                tracing::debug!(error = %e, "waiting for the emulator at {endpoint}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(failed("reach the emulator")(Box::new(e))),
        }
    }

    ensure_bucket(&clients, &config.bucket).await?;
    ensure_table(&clients, &config.table).await?;
    // State changes go to EVENT_BUS_NAME, created here; unset, to the emulator's default bus.
    if let Some(bus) = &config.event_bus_name {
        ensure_event_bus(&clients, bus).await?;
    }

    let queue_name = format!("{}-events", config.bucket);
    let queue_url = sqs
        .create_queue()
        .queue_name(&queue_name)
        // A failed message comes back after 5 s, as Lambda retries a failed async invocation.
        .attributes(QueueAttributeName::VisibilityTimeout, "5")
        .send()
        .await
        .map_err(|e| failed("create the event queue")(Box::new(e)))?
        .queue_url()
        .unwrap_or_default()
        .to_owned();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| failed("read the queue ARN")(Box::new(e)))?;
    let queue_arn = attrs
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| failed("read the queue ARN")("no QueueArn attribute".into()))?;

    let build = |e: aws_sdk_s3::error::BuildError| failed("describe the notification")(Box::new(e));
    let prefix_rule = FilterRule::builder()
        .name(FilterRuleName::Prefix)
        .value(&config.upload_prefix)
        .build();
    let queue_config = QueueConfiguration::builder()
        .queue_arn(queue_arn)
        .events(Event::S3ObjectCreated)
        .filter(
            NotificationConfigurationFilter::builder()
                .key(S3KeyFilter::builder().filter_rules(prefix_rule).build())
                .build(),
        )
        .build()
        .map_err(build)?;
    clients
        .s3
        .put_bucket_notification_configuration()
        .bucket(&config.bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(queue_config)
                .build(),
        )
        .send()
        .await
        .map_err(|e| failed("connect the bucket to the queue")(Box::new(e)))?;

    // The bucket's CORS, as in template.yaml: browsers preflight every presigned PUT and POST.
    let rule = CorsRule::builder()
        .set_allowed_origins(Some(cors_origins.to_vec()))
        .allowed_methods("PUT")
        .allowed_methods("POST")
        .allowed_methods("GET")
        .allowed_methods("HEAD")
        .allowed_headers("*")
        .expose_headers("ETag")
        .expose_headers("Location")
        .max_age_seconds(3000)
        .build()
        .map_err(build)?;
    clients
        .s3
        .put_bucket_cors()
        .bucket(&config.bucket)
        .cors_configuration(
            CorsConfiguration::builder()
                .cors_rules(rule)
                .build()
                .map_err(build)?,
        )
        .send()
        .await
        .map_err(|e| failed("set the bucket's CORS rules")(Box::new(e)))?;

    Ok(LocalStack {
        clients,
        sqs,
        queue_url,
    })
}
