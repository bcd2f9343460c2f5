use lambda_runtime::{Error, run, service_fn};
use media_core::Config;

#[tokio::main]
async fn main() -> Result<(), Error> {
    media_core::logging::init();
    let config = Config::from_env()?;
    let service = process::processing(media_aws::wire::processing_service(&config).await, &config);
    run(service_fn(|event| {
        process::handler::handle(&service, event)
    }))
    .await
}
