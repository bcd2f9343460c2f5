//! The one typed configuration, read from the environment at cold start.

use std::time::Duration;

use crate::domain::{ContentType, MediaKind};
use crate::scanning::MalwareScanner;

/// How hard libwebp works (`method`, 0-6). Method 4, libwebp's and libvips's default, spends
/// about 50 ms on one 800 px thumbnail here, more than decoding and resizing together, for
/// files a few percent smaller than method 2. Derivatives are written once and the time is
/// billed per millisecond, so the default is 2; `WEBP_METHOD` changes it.
pub const DEFAULT_WEBP_METHOD: u8 = 2;

/// The longest grace period: the bucket's lifecycle keeps a deleted media's old object versions
/// for 8 days (`template.yaml`), so a restore within 7 days always finds them.
pub const MAX_GRACE_PERIOD_HOURS: f64 = 168.0;

/// The largest object S3 accepts in one PUT (and the largest part of a multipart upload): 5 GiB.
pub const MAX_SINGLE_PUT: u64 = 5 * 1024 * 1024 * 1024;

/// The largest object a multipart upload can make: 10,000 parts of 5 GiB.
pub const MAX_MULTIPART_OBJECT: u64 = 10_000 * MAX_SINGLE_PUT;

/// A configuration variable that is missing or malformed, by name.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    /// A variable is set to a value that does not parse.
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Output format of derivatives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThumbnailFormat {
    /// Lossy WebP (default).
    Webp,
    /// Baseline JPEG.
    Jpeg,
    /// PNG.
    Png,
}

impl ThumbnailFormat {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Webp => "webp",
            Self::Jpeg => "jpg",
            Self::Png => "png",
        }
    }

    /// The MIME type.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Webp => "image/webp",
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
        }
    }
}

/// A named thumbnail size: the image is fitted inside `size`x`size`, never upscaled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThumbnailSize {
    /// Its name (`small`, `medium`, `large`).
    pub name: String,
    /// The bounding square's side in pixels.
    pub size: u32,
}

/// Everything the functions and the local runner need, with the same variable names everywhere.
#[derive(Debug, Clone)]
pub struct Config {
    /// `MEDIA_BUCKET`: the bucket for originals and derivatives.
    pub bucket: String,
    /// `MEDIA_TABLE`: the DynamoDB table of media records.
    pub table: String,
    /// `UPLOAD_PREFIX` (default `uploads/`): where originals go; the process trigger's filter.
    pub upload_prefix: String,
    /// `DERIVATIVES_PREFIX` (default `derivatives/`): where thumbnails go, outside the trigger.
    pub derivatives_prefix: String,
    /// `MAX_FILE_SIZE` (default 5 MiB): the largest image upload in bytes.
    pub max_file_size: u64,
    /// `MAX_DOCUMENT_SIZE` (default 50 MiB): the largest document, spreadsheet, archive or text
    /// upload in bytes.
    pub max_document_size: u64,
    /// `MAX_VIDEO_SIZE` (default 5 GiB): the largest video upload in bytes. Over 5 GiB (S3's
    /// largest single PUT) a file must upload in parts.
    pub max_video_size: u64,
    /// `MAX_AUDIO_SIZE` (default 500 MiB): the largest audio upload in bytes.
    pub max_audio_size: u64,
    /// `ALLOW_ACTIVE_CONTENT` (default false): accept PDFs with JavaScript, launch actions or
    /// embedded files, and Office documents with macros.
    pub allow_active_content: bool,
    /// `MAX_ARCHIVE_ENTRIES` (default 10000): most entries in a ZIP or OOXML file.
    pub max_archive_entries: u64,
    /// `SERVER_UPLOAD_MAX_BYTES` (default 4 MiB): the largest body `POST /api/v1/upload`
    /// accepts (Lambda caps a request at 6 MB, and API Gateway base64-encodes binary bodies).
    pub server_upload_max_bytes: u64,
    /// `MAX_ARCHIVE_UNCOMPRESSED` (default 1 GiB): the largest total a ZIP or OOXML file's
    /// entries may declare.
    pub max_archive_uncompressed: u64,
    /// `MAX_TOTAL_SIZE` (default 20 MiB): the largest sum of sizes in one presign request of
    /// several files (one file alone is bounded by its kind's limit only).
    pub max_total_size: u64,
    /// `MAX_FILES_PER_REQUEST` (default 10).
    pub max_files_per_request: usize,
    /// `ALLOWED_TYPES` (default: every type the service checks, images and documents; a GIF's
    /// first frame is what the derivatives show).
    pub allowed_types: Vec<ContentType>,
    /// `PRESIGN_EXPIRY_SECONDS` (default 900): lifetime of upload URLs.
    pub presign_expiry: Duration,
    /// `PENDING_TTL_SECONDS` (default 3600, at least the presign expiry): how long a presigned
    /// upload may stay pending before cleanup expires it.
    pub pending_ttl: Duration,
    /// `MULTIPART_PENDING_TTL_SECONDS` (default 86400, at least the presign expiry): how long a
    /// multipart upload may stay pending before cleanup aborts it and expires its record.
    pub multipart_pending_ttl: Duration,
    /// `DOWNLOAD_URL_EXPIRY_SECONDS` (default 900): lifetime of presigned GET URLs.
    pub download_url_expiry: Duration,
    /// `CDN_BASE_URL` (optional): when set, URLs are `<CDN_BASE_URL>/<key>`.
    pub cdn_base_url: Option<String>,
    /// `CLEANUP_GRACE_PERIOD_HOURS` (default 24, fractions allowed, at most
    /// [`MAX_GRACE_PERIOD_HOURS`]): how long soft-deleted media stays restorable before cleanup
    /// removes it.
    pub cleanup_grace_period: Duration,
    /// `CLEANUP_BATCH_LIMIT` (default 1000): most media one cleanup run handles per work list.
    pub cleanup_batch_limit: usize,
    /// `MAX_IMAGE_PIXELS` (default 50,000,000): largest width x height accepted.
    pub max_image_pixels: u64,
    /// `MAX_IMAGE_SIDE` (default 16384): largest width or height accepted.
    pub max_image_side: u32,
    /// `MAX_IMAGE_FRAMES` (default 1000): most frames an animated GIF, PNG, WebP or AVIF may have.
    pub max_image_frames: u32,
    /// `MAX_METADATA_BYTES` (default 1 MiB): most bytes of embedded metadata (EXIF, XMP, ICC,
    /// comments, text chunks) a file may carry.
    pub max_metadata_bytes: u64,
    /// `THUMBNAIL_SIZES` (default `small:150,medium:400,large:800`).
    pub thumbnail_sizes: Vec<ThumbnailSize>,
    /// `THUMBNAIL_FORMAT` (default `webp`; `webp|jpeg|png`).
    pub thumbnail_format: ThumbnailFormat,
    /// `THUMBNAIL_QUALITY` (default 80): lossy encoder quality 1-100.
    pub thumbnail_quality: u8,
    /// `WEBP_METHOD` (default 2): libwebp's effort, 0 (fastest) to 6 (smallest files).
    pub webp_method: u8,
    /// `CONVERT_ORIGINAL_TO_WEBP` (default false): also store a WebP of the whole original and
    /// serve it instead when it is smaller. Slow: it needs a full-size decode and encode.
    pub convert_original_to_webp: bool,
    /// `CDN_DISTRIBUTION_ID` (optional): the CloudFront distribution serving `CDN_BASE_URL`; when
    /// set, cleanup invalidates the paths of the media it removes.
    pub cdn_distribution_id: Option<String>,
    /// `METRICS_NAMESPACE` (optional): when set, CloudWatch Embedded Metric Format lines are
    /// written to stdout under this namespace.
    pub metrics_namespace: Option<String>,
    /// `S3_FORCE_PATH_STYLE` (default false): path-style S3 URLs, for S3-compatible stores that need
    /// them (emulator clients always use them, see `AwsClients::for_emulator`).
    pub s3_force_path_style: bool,
    /// `QUOTA_FILES_PER_OWNER` (default 10000; 0 turns it off): most media an owner may hold
    /// (pending and ready ones count).
    pub quota_files: u64,
    /// `QUOTA_BYTES_PER_OWNER` (default 10 GiB, room for two videos at the default
    /// `MAX_VIDEO_SIZE`; 0 turns it off): most bytes an owner's media may hold, by their declared
    /// sizes.
    pub quota_bytes: u64,
    /// `PRESIGN_RATE_PER_MINUTE` (default 120; 0 turns it off): most presign requests per owner
    /// in one clock minute (a batch is one request).
    pub presign_rate_per_minute: u64,
    /// `EVENT_BUS_NAME` (optional): the EventBridge bus state changes are published to; unset,
    /// the account's default bus.
    pub event_bus_name: Option<String>,
    /// `MALWARE_SCANNER` and its settings (see [`crate::scanning`]).
    pub malware_scanner: MalwareScanner,
}

impl Config {
    /// The largest upload of this kind: `MAX_FILE_SIZE` for images, `MAX_VIDEO_SIZE` for video,
    /// `MAX_AUDIO_SIZE` for audio, `MAX_DOCUMENT_SIZE` for the rest.
    pub fn max_size(&self, kind: MediaKind) -> u64 {
        match kind {
            MediaKind::Image => self.max_file_size,
            MediaKind::Video => self.max_video_size,
            MediaKind::Audio => self.max_audio_size,
            MediaKind::Document | MediaKind::Spreadsheet | MediaKind::Archive | MediaKind::Text => {
                self.max_document_size
            }
        }
    }
}

fn flag(v: Option<&str>) -> bool {
    matches!(
        v.map(str::to_ascii_lowercase).as_deref(),
        Some("1" | "true" | "yes" | "on")
    )
}

fn invalid_now<T>(name: &'static str, reason: &str) -> Result<T, ConfigError> {
    Err(ConfigError::Invalid {
        name,
        reason: reason.into(),
    })
}

impl Config {
    /// Every variable `from_env` reads: the template sets each of them (checked by a test).
    pub const VARIABLES: &'static [&'static str] = &[
        "MEDIA_BUCKET",
        "MEDIA_TABLE",
        "UPLOAD_PREFIX",
        "DERIVATIVES_PREFIX",
        "ALLOWED_TYPES",
        "MAX_FILE_SIZE",
        "MAX_DOCUMENT_SIZE",
        "MAX_VIDEO_SIZE",
        "MAX_AUDIO_SIZE",
        "ALLOW_ACTIVE_CONTENT",
        "MAX_ARCHIVE_ENTRIES",
        "MAX_ARCHIVE_UNCOMPRESSED",
        "SERVER_UPLOAD_MAX_BYTES",
        "MAX_TOTAL_SIZE",
        "MAX_FILES_PER_REQUEST",
        "MAX_IMAGE_PIXELS",
        "MAX_IMAGE_SIDE",
        "MAX_IMAGE_FRAMES",
        "MAX_METADATA_BYTES",
        "PRESIGN_EXPIRY_SECONDS",
        "PENDING_TTL_SECONDS",
        "MULTIPART_PENDING_TTL_SECONDS",
        "DOWNLOAD_URL_EXPIRY_SECONDS",
        "CDN_BASE_URL",
        "CDN_DISTRIBUTION_ID",
        "THUMBNAIL_SIZES",
        "THUMBNAIL_FORMAT",
        "THUMBNAIL_QUALITY",
        "WEBP_METHOD",
        "CONVERT_ORIGINAL_TO_WEBP",
        "CLEANUP_GRACE_PERIOD_HOURS",
        "CLEANUP_BATCH_LIMIT",
        "METRICS_NAMESPACE",
        "S3_FORCE_PATH_STYLE",
        "QUOTA_FILES_PER_OWNER",
        "QUOTA_BYTES_PER_OWNER",
        "PRESIGN_RATE_PER_MINUTE",
        "EVENT_BUS_NAME",
        "MALWARE_SCANNER",
        "CLAMAV_ADDRESS",
        "CLAMAV_TIMEOUT_SECONDS",
        "CLAMAV_STREAM_MAX_BYTES",
        "SCAN_UNSUPPORTED",
    ];

    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));
        let number = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            get(name).map_or(Ok(default), |v| {
                v.parse().map_err(|e| ConfigError::Invalid {
                    name,
                    reason: format!("{v:?}: {e}"),
                })
            })
        };
        let seconds =
            |name: &'static str, default: u64| number(name, default).map(Duration::from_secs);
        let prefix = |name: &'static str, default: &str| -> Result<String, ConfigError> {
            let p = get(name).unwrap_or_else(|| default.to_owned());
            if p.starts_with('/') || !p.ends_with('/') {
                return Err(ConfigError::Invalid {
                    name,
                    reason: "must end with '/' and not start with it".into(),
                });
            }
            Ok(p)
        };

        let allowed_types = match get("ALLOWED_TYPES") {
            None => ContentType::ALL.to_vec(),
            Some(v) => v
                .split(',')
                .map(|t| {
                    ContentType::parse(t).map_err(|e| ConfigError::Invalid {
                        name: "ALLOWED_TYPES",
                        reason: e.to_string(),
                    })
                })
                .collect::<Result<_, _>>()?,
        };

        let grace_hours = match get("CLEANUP_GRACE_PERIOD_HOURS") {
            None => 24.0,
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|h| h.is_finite() && (0.0..=MAX_GRACE_PERIOD_HOURS).contains(h))
                .ok_or(ConfigError::Invalid {
                    name: "CLEANUP_GRACE_PERIOD_HOURS",
                    reason: format!(
                        "{v:?} is not a number of hours from 0 to {MAX_GRACE_PERIOD_HOURS}"
                    ),
                })?,
        };

        let thumbnail_format = match get("THUMBNAIL_FORMAT")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("webp") => ThumbnailFormat::Webp,
            Some("jpeg" | "jpg") => ThumbnailFormat::Jpeg,
            Some("png") => ThumbnailFormat::Png,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "THUMBNAIL_FORMAT",
                    reason: format!("{other:?} is not webp, jpeg or png"),
                });
            }
        };

        let config = Self {
            bucket: required("MEDIA_BUCKET")?,
            table: required("MEDIA_TABLE")?,
            upload_prefix: prefix("UPLOAD_PREFIX", "uploads/")?,
            derivatives_prefix: prefix("DERIVATIVES_PREFIX", "derivatives/")?,
            max_file_size: number("MAX_FILE_SIZE", 5 * 1024 * 1024)?,
            max_document_size: number("MAX_DOCUMENT_SIZE", 50 * 1024 * 1024)?,
            max_video_size: number("MAX_VIDEO_SIZE", 5 * 1024 * 1024 * 1024)?,
            max_audio_size: number("MAX_AUDIO_SIZE", 500 * 1024 * 1024)?,
            allow_active_content: flag(get("ALLOW_ACTIVE_CONTENT").as_deref()),
            max_archive_entries: number("MAX_ARCHIVE_ENTRIES", 10_000)?,
            max_archive_uncompressed: number("MAX_ARCHIVE_UNCOMPRESSED", 1024 * 1024 * 1024)?,
            server_upload_max_bytes: number("SERVER_UPLOAD_MAX_BYTES", 4 * 1024 * 1024)?,
            max_total_size: number("MAX_TOTAL_SIZE", 20 * 1024 * 1024)?,
            max_files_per_request: usize::try_from(number("MAX_FILES_PER_REQUEST", 10)?)
                .unwrap_or(usize::MAX),
            allowed_types,
            presign_expiry: seconds("PRESIGN_EXPIRY_SECONDS", 900)?,
            pending_ttl: seconds("PENDING_TTL_SECONDS", 3600)?,
            multipart_pending_ttl: seconds("MULTIPART_PENDING_TTL_SECONDS", 86_400)?,
            download_url_expiry: seconds("DOWNLOAD_URL_EXPIRY_SECONDS", 900)?,
            cdn_base_url: get("CDN_BASE_URL").map(|u| u.trim_end_matches('/').to_owned()),
            cleanup_grace_period: Duration::from_secs_f64(grace_hours * 3600.0),
            cleanup_batch_limit: usize::try_from(number("CLEANUP_BATCH_LIMIT", 1000)?)
                .unwrap_or(usize::MAX),
            max_image_pixels: number("MAX_IMAGE_PIXELS", 50_000_000)?,
            max_image_side: u32::try_from(number("MAX_IMAGE_SIDE", 16384)?).unwrap_or(u32::MAX),
            max_image_frames: u32::try_from(number("MAX_IMAGE_FRAMES", 1000)?).unwrap_or(u32::MAX),
            max_metadata_bytes: number("MAX_METADATA_BYTES", 1024 * 1024)?,
            thumbnail_sizes: parse_sizes(
                get("THUMBNAIL_SIZES")
                    .as_deref()
                    .unwrap_or("small:150,medium:400,large:800"),
            )?,
            thumbnail_format,
            thumbnail_quality: u8::try_from(number("THUMBNAIL_QUALITY", 80)?.clamp(1, 100))
                .unwrap_or(80),
            webp_method: match number("WEBP_METHOD", u64::from(DEFAULT_WEBP_METHOD))? {
                m @ 0..=6 => m as u8,
                _ => return invalid_now("WEBP_METHOD", "must be 0 to 6"),
            },
            convert_original_to_webp: flag(get("CONVERT_ORIGINAL_TO_WEBP").as_deref()),
            cdn_distribution_id: get("CDN_DISTRIBUTION_ID"),
            metrics_namespace: get("METRICS_NAMESPACE"),
            s3_force_path_style: flag(get("S3_FORCE_PATH_STYLE").as_deref()),
            quota_files: number("QUOTA_FILES_PER_OWNER", 10_000)?,
            quota_bytes: number("QUOTA_BYTES_PER_OWNER", 10 * 1024 * 1024 * 1024)?,
            presign_rate_per_minute: number("PRESIGN_RATE_PER_MINUTE", 120)?,
            event_bus_name: get("EVENT_BUS_NAME"),
            malware_scanner: MalwareScanner::read(get)?,
        };
        config.check()
    }

    fn check(self) -> Result<Self, ConfigError> {
        if self.max_image_frames == 0 {
            return invalid_now("MAX_IMAGE_FRAMES", "must be positive");
        }
        let invalid = |name, reason: &str| {
            Err(ConfigError::Invalid {
                name,
                reason: reason.into(),
            })
        };
        if self.upload_prefix.starts_with(&self.derivatives_prefix)
            || self.derivatives_prefix.starts_with(&self.upload_prefix)
        {
            // Derivatives inside the trigger's prefix would make the process function trigger itself.
            return invalid("DERIVATIVES_PREFIX", "must not overlap UPLOAD_PREFIX");
        }
        if self.max_file_size == 0 {
            return invalid("MAX_FILE_SIZE", "must be positive");
        }
        if self.max_document_size == 0 {
            return invalid("MAX_DOCUMENT_SIZE", "must be positive");
        }
        for (name, size) in [
            ("MAX_VIDEO_SIZE", self.max_video_size),
            ("MAX_AUDIO_SIZE", self.max_audio_size),
        ] {
            // 10,000 parts of at most 5 GiB: the largest object a multipart upload can make.
            if size == 0 || size > MAX_MULTIPART_OBJECT {
                return invalid(
                    name,
                    "must be between 1 and 48.8 TiB (10,000 parts of 5 GiB)",
                );
            }
        }
        if self.presign_expiry.is_zero() || self.presign_expiry > Duration::from_secs(7 * 24 * 3600)
        {
            return invalid(
                "PRESIGN_EXPIRY_SECONDS",
                "must be between 1 and 604800 (S3's limit)",
            );
        }
        if self.download_url_expiry.is_zero()
            || self.download_url_expiry > Duration::from_secs(7 * 24 * 3600)
        {
            return invalid(
                "DOWNLOAD_URL_EXPIRY_SECONDS",
                "must be between 1 and 604800 (S3's limit)",
            );
        }
        if self.pending_ttl < self.presign_expiry {
            // Otherwise cleanup could expire a record whose upload URL still works.
            return invalid(
                "PENDING_TTL_SECONDS",
                "must be at least PRESIGN_EXPIRY_SECONDS",
            );
        }
        if self.multipart_pending_ttl < self.presign_expiry {
            // A part URL handed out must not outlive its upload.
            return invalid(
                "MULTIPART_PENDING_TTL_SECONDS",
                "must be at least PRESIGN_EXPIRY_SECONDS",
            );
        }
        if self.allowed_types.is_empty() {
            return invalid("ALLOWED_TYPES", "must name at least one type");
        }
        if let MalwareScanner::Clamd(clamd) = &self.malware_scanner {
            // Everything but video and audio is scanned in one stream, archives unpacked whole.
            for (name, size) in [
                ("MAX_FILE_SIZE", self.max_file_size),
                ("MAX_DOCUMENT_SIZE", self.max_document_size),
            ] {
                if size > clamd.stream_max {
                    return invalid(
                        name,
                        "must be at most CLAMAV_STREAM_MAX_BYTES (such files are scanned whole)",
                    );
                }
            }
        }
        Ok(self)
    }
}

fn parse_sizes(spec: &str) -> Result<Vec<ThumbnailSize>, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        name: "THUMBNAIL_SIZES",
        reason,
    };
    let mut sizes = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, size) = part
            .split_once(':')
            .ok_or_else(|| invalid(format!("{part:?} is not name:size")))?;
        let name = name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(invalid(format!("bad name {name:?}")));
        }
        let size: u32 = size
            .trim()
            .parse()
            .map_err(|_| invalid(format!("bad size in {part:?}")))?;
        if !(1..=4096).contains(&size) {
            return Err(invalid(format!("size {size} is not within 1..=4096")));
        }
        if sizes.iter().any(|s: &ThumbnailSize| s.name == name) {
            return Err(invalid(format!("duplicate name {name:?}")));
        }
        sizes.push(ThumbnailSize {
            name: name.to_owned(),
            size,
        });
    }
    if sizes.is_empty() {
        return Err(invalid("no sizes".into()));
    }
    Ok(sizes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A configuration of these variables, and a clamd address when none is given.
    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map.entry("CLAMAV_ADDRESS".into())
            .or_insert_with(|| "127.0.0.1:3310".into());
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_follow_the_seed() -> Result<(), ConfigError> {
        let c = config(&[("MEDIA_BUCKET", "b"), ("MEDIA_TABLE", "t")])?;
        assert_eq!(c.max_file_size, 5 * 1024 * 1024);
        assert_eq!(c.presign_expiry, Duration::from_secs(900));
        assert_eq!(c.cleanup_grace_period, Duration::from_secs(24 * 3600));
        let sizes: Vec<_> = c
            .thumbnail_sizes
            .iter()
            .map(|s| (s.name.as_str(), s.size))
            .collect();
        assert_eq!(sizes, [("small", 150), ("medium", 400), ("large", 800)]);
        assert_eq!(c.thumbnail_format, ThumbnailFormat::Webp);
        Ok(())
    }

    #[test]
    fn missing_and_invalid_variables_are_named() {
        let err = config(&[("MEDIA_TABLE", "t")]).map(|_| ()).unwrap_err();
        assert!(err.to_string().contains("MEDIA_BUCKET"), "{err}");
        let err = config(&[
            ("MEDIA_BUCKET", "b"),
            ("MEDIA_TABLE", "t"),
            ("CLEANUP_GRACE_PERIOD_HOURS", "-1"),
        ])
        .map(|_| ())
        .unwrap_err();
        assert!(
            err.to_string().contains("CLEANUP_GRACE_PERIOD_HOURS"),
            "{err}"
        );
        // Past what the bucket keeps of a deleted media's objects.
        assert!(
            config(&[
                ("MEDIA_BUCKET", "b"),
                ("MEDIA_TABLE", "t"),
                ("CLEANUP_GRACE_PERIOD_HOURS", "168.5"),
            ])
            .is_err()
        );
        let err = config(&[
            ("MEDIA_BUCKET", "b"),
            ("MEDIA_TABLE", "t"),
            ("DERIVATIVES_PREFIX", "uploads/thumbs/"),
        ])
        .map(|_| ())
        .unwrap_err();
        assert!(err.to_string().contains("DERIVATIVES_PREFIX"), "{err}");
    }

    #[test]
    fn variables_lists_exactly_what_is_read() -> Result<(), ConfigError> {
        let read = std::cell::RefCell::new(std::collections::BTreeSet::new());
        // Each scanner reads its own settings: read the union.
        for scanner in ["clamd", "guardduty"] {
            Config::from_lookup(|k| {
                read.borrow_mut().insert(k.to_owned());
                match k {
                    "MEDIA_BUCKET" | "MEDIA_TABLE" => Some("x".into()),
                    "MALWARE_SCANNER" => Some(scanner.into()),
                    "CLAMAV_ADDRESS" => Some("clamd:3310".into()),
                    _ => None,
                }
            })?;
        }
        let listed: std::collections::BTreeSet<String> =
            Config::VARIABLES.iter().map(|v| v.to_string()).collect();
        assert_eq!(read.into_inner(), listed);
        Ok(())
    }

    #[test]
    fn fractional_grace_periods_are_allowed() -> Result<(), ConfigError> {
        let c = config(&[
            ("MEDIA_BUCKET", "b"),
            ("MEDIA_TABLE", "t"),
            ("CLEANUP_GRACE_PERIOD_HOURS", "0.5"),
        ])?;
        assert_eq!(c.cleanup_grace_period, Duration::from_secs(1800));
        Ok(())
    }
}
