//! Which malware scanner every upload goes through (`MALWARE_SCANNER`), and its settings.

use std::time::Duration;

use crate::config::ConfigError;

/// `MALWARE_SCANNER`: `clamd` (the default: nothing is served unscanned unless the operator says
/// so), `guardduty` or `none`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MalwareScanner {
    /// `none`: uploads are processed unscanned (only where the operator says so).
    None,
    /// `clamd`: this function streams each file to a clamd (`INSTREAM`).
    Clamd(ClamdSettings),
    /// `guardduty`: GuardDuty Malware Protection for S3 scans each upload; its verdict event
    /// starts processing.
    GuardDuty {
        /// `SCAN_UNSUPPORTED=allow`: a file GuardDuty cannot scan (`UNSUPPORTED`) is processed,
        /// marked `scan: "unsupported"`; by default it is rejected (`scan_unsupported`).
        allow_unsupported: bool,
    },
}

/// How to reach a clamd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClamdSettings {
    /// `CLAMAV_ADDRESS`: `host:port` of clamd's TCP socket.
    pub address: String,
    /// `CLAMAV_TIMEOUT_SECONDS` (default 60): the longest wait for a connection, a write or the
    /// verdict.
    pub timeout: Duration,
    /// `CLAMAV_STREAM_MAX_BYTES` (default 64 MiB, at most clamd's `StreamMaxLength`): the most
    /// bytes one `INSTREAM` carries. Images, documents, archives and text must fit one (their
    /// limits are checked against it); video and audio are scanned in overlapping windows.
    pub stream_max: u64,
}

impl MalwareScanner {
    /// Reads the scanner's variables through `get` (trimmed, empty as absent).
    pub(crate) fn read(get: impl Fn(&'static str) -> Option<String>) -> Result<Self, ConfigError> {
        let invalid = |name: &'static str, reason: String| ConfigError::Invalid { name, reason };
        let number = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            get(name).map_or(Ok(default), |v| {
                v.parse().map_err(|e| invalid(name, format!("{v:?}: {e}")))
            })
        };
        match get("MALWARE_SCANNER").as_deref().unwrap_or("clamd") {
            "none" => Ok(Self::None),
            "clamd" => {
                let address = get("CLAMAV_ADDRESS").ok_or(ConfigError::Invalid {
                    name: "CLAMAV_ADDRESS",
                    reason: "is required when MALWARE_SCANNER is clamd (the default); set \
                             MALWARE_SCANNER=none to process uploads unscanned"
                        .into(),
                })?;
                if !address.rsplit_once(':').is_some_and(|(host, port)| {
                    !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
                }) {
                    return Err(invalid(
                        "CLAMAV_ADDRESS",
                        format!("{address:?} is not host:port"),
                    ));
                }
                let timeout = number("CLAMAV_TIMEOUT_SECONDS", 60)?;
                if timeout == 0 {
                    return Err(invalid("CLAMAV_TIMEOUT_SECONDS", "must be positive".into()));
                }
                let stream_max = number("CLAMAV_STREAM_MAX_BYTES", 64 * 1024 * 1024)?;
                // Windows overlap by a mebibyte: each must hold more than that.
                if stream_max < 4 * 1024 * 1024 {
                    return Err(invalid(
                        "CLAMAV_STREAM_MAX_BYTES",
                        "must be at least 4 MiB".into(),
                    ));
                }
                Ok(Self::Clamd(ClamdSettings {
                    address,
                    timeout: Duration::from_secs(timeout),
                    stream_max,
                }))
            }
            "guardduty" => Ok(Self::GuardDuty {
                allow_unsupported: match get("SCAN_UNSUPPORTED").as_deref() {
                    None | Some("reject") => false,
                    Some("allow") => true,
                    Some(other) => {
                        return Err(invalid(
                            "SCAN_UNSUPPORTED",
                            format!("{other:?} is not reject or allow"),
                        ));
                    }
                },
            }),
            other => Err(invalid(
                "MALWARE_SCANNER",
                format!("{other:?} is not clamd, guardduty or none"),
            )),
        }
    }

    /// The name used in logs and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Clamd(_) => "clamd",
            Self::GuardDuty { .. } => "guardduty",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<MalwareScanner, ConfigError> {
        let map: std::collections::HashMap<&str, &str> = pairs.iter().copied().collect();
        MalwareScanner::read(|k| map.get(k).map(|v| (*v).to_owned()))
    }

    #[test]
    fn scanning_is_the_default_and_none_must_be_asked_for() {
        assert!(matches!(
            read(&[]),
            Err(ConfigError::Invalid {
                name: "CLAMAV_ADDRESS",
                ..
            })
        ));
        assert_eq!(
            read(&[("MALWARE_SCANNER", "none")]).ok(),
            Some(MalwareScanner::None)
        );
        let clamd = read(&[("CLAMAV_ADDRESS", "127.0.0.1:3310")]).ok();
        assert_eq!(
            clamd,
            Some(MalwareScanner::Clamd(ClamdSettings {
                address: "127.0.0.1:3310".into(),
                timeout: Duration::from_secs(60),
                stream_max: 64 * 1024 * 1024,
            }))
        );
        for bad in ["3310", "clamd:", ":3310", "clamd:0", "clamd:x"] {
            assert!(read(&[("CLAMAV_ADDRESS", bad)]).is_err(), "{bad}");
        }
        assert!(
            read(&[
                ("CLAMAV_ADDRESS", "c:1"),
                ("CLAMAV_STREAM_MAX_BYTES", "1000")
            ])
            .is_err()
        );
        assert_eq!(
            read(&[
                ("MALWARE_SCANNER", "guardduty"),
                ("SCAN_UNSUPPORTED", "allow")
            ])
            .ok(),
            Some(MalwareScanner::GuardDuty {
                allow_unsupported: true
            })
        );
        assert!(
            read(&[
                ("MALWARE_SCANNER", "guardduty"),
                ("SCAN_UNSUPPORTED", "yes")
            ])
            .is_err()
        );
        assert!(read(&[("MALWARE_SCANNER", "clamav")]).is_err());
    }
}
