//! The core of the media upload backend: domain types, configuration, the ports the use cases talk
//! to (object storage, the media repository, an optional CDN cache, the image processor), one
//! module per use case, the error -> HTTP map and the service's metrics. No AWS SDK and no image
//! codecs: the adapters are in `media-aws`, the pipeline in `media-pipeline`, and only the
//! process function links the pipeline.
//!
//! Every Lambda function in `functions/` is a thin handler over [`service::MediaService`].

#![warn(missing_docs)]

pub mod api;
pub mod config;
pub mod describe;
pub mod domain;
pub mod events;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod ports;
pub mod scanning;
pub mod service;

pub mod cleanup;
pub mod confirm;
pub mod delete;
pub mod download;
pub mod get;
pub mod grants;
pub mod list;
pub mod multipart;
pub mod presign;
pub mod process;
pub mod restore;
pub mod server_upload;
pub mod update;
pub mod usage;

pub use config::Config;
pub use service::MediaService;
