use lambda_runtime::{Error, run, service_fn};
use media_core::Config;

#[tokio::main]
async fn main() -> Result<(), Error> {
    media_core::logging::init();
    let config = Config::from_env()?;
    let service = media_aws::wire::cleanup_service(&config).await;
    run(service_fn(|event| {
        cleanup::handler::handle(&service, event)
    }))
    .await
}
