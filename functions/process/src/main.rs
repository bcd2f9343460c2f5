use lambda_runtime::{Error, run, service_fn};
use media_core::Config;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let service = process::processing(media_aws::wire::publishing_service(&config).await, &config);
    run(service_fn(|event| {
        process::handler::handle(&service, event)
    }))
    .await
}
