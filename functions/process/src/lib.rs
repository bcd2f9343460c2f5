//! Lambda function `process`: the handler, wired to the runtime by `main.rs`, and the image
//! pipeline's options taken from the app's configuration (only this function links the pipeline).

pub mod guardduty;
pub mod handler;

use std::sync::Arc;

use media_core::Config;
use media_core::ports::ImageProcessor;
use media_pipeline::document::ArchiveLimits;
use media_pipeline::{DocumentOptions, Pipeline, PipelineOptions};

/// The pipeline's options from the configuration.
pub fn pipeline_options(config: &Config) -> PipelineOptions {
    PipelineOptions {
        allowed_types: config.allowed_types.clone(),
        max_pixels: config.max_image_pixels,
        max_side: config.max_image_side,
        max_bytes: config.max_file_size,
        max_frames: config.max_image_frames,
        max_metadata_bytes: config.max_metadata_bytes,
        sizes: config.thumbnail_sizes.clone(),
        format: config.thumbnail_format,
        quality: config.thumbnail_quality,
        webp_method: config.webp_method,
        convert_original_to_webp: config.convert_original_to_webp,
        documents: DocumentOptions {
            max_bytes: config.max_document_size,
            allow_active_content: config.allow_active_content,
            archive: ArchiveLimits {
                max_entries: config.max_archive_entries,
                max_uncompressed: config.max_archive_uncompressed,
                ..ArchiveLimits::default()
            },
            ..DocumentOptions::default()
        },
    }
}

/// The service as the process function runs it: `service` with the pipeline and, when
/// `MALWARE_SCANNER` names one this function streams to, the scanner.
pub fn processing(service: media_core::MediaService, config: &Config) -> media_core::MediaService {
    let service = service.with_processor(processor(config));
    match media_aws::wire::scanner(config) {
        Some(scanner) => service.with_scanner(scanner),
        None => service,
    }
}

/// The image processor the service uses, as configured.
pub fn processor(config: &Config) -> Arc<dyn ImageProcessor> {
    Arc::new(Pipeline::new(pipeline_options(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pipelines_defaults_are_the_configurations_defaults()
    -> Result<(), Box<dyn std::error::Error>> {
        let config = Config::from_lookup(|name| match name {
            "MEDIA_BUCKET" | "MEDIA_TABLE" => Some("unused".to_owned()),
            "MALWARE_SCANNER" => Some("none".to_owned()),
            _ => None,
        })?;
        assert_eq!(pipeline_options(&config), PipelineOptions::default());
        Ok(())
    }
}
