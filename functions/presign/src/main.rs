use lambda_http::{Error, run, service_fn};
use media_core::Config;

#[tokio::main]
async fn main() -> Result<(), Error> {
    media_core::logging::init();
    let config = Config::from_env()?;
    let service = media_aws::wire::uploading_service(&config).await;
    run(service_fn(|req| presign::handler::handle(&service, req))).await
}
