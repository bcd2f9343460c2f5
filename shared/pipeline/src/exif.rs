//! The EXIF fields the service reports, read defensively: broken or hostile EXIF never rejects a
//! good image, and every text field is sanitised.

use std::io::Cursor;

use media_core::domain::ExifData;

use crate::meta;

/// Reads the EXIF fields the service reports. Broken EXIF never rejects an image: whatever parses
/// is kept, the rest is dropped.
///
/// A WebP's `EXIF` chunk is read in both forms writers use (bare TIFF header, or JPEG's
/// `Exif\0\0` first). When there is no EXIF orientation, a WebP's or PNG's XMP
/// `tiff:Orientation` gives it: EXIF wins when both are present.
pub fn read_exif(bytes: &[u8]) -> ExifData {
    let mut data = read_exif_fields(bytes);
    if data.orientation.is_none() {
        data.orientation = meta::xmp_orientation(bytes);
    }
    data
}

fn read_exif_fields(bytes: &[u8]) -> ExifData {
    let parsed = match meta::webp_exif(bytes) {
        Some(tiff) => exif::Reader::new().read_raw(tiff.to_vec()),
        None => exif::Reader::new().read_from_container(&mut Cursor::new(bytes)),
    };
    match parsed {
        Ok(exif) => fields(&exif),
        Err(_) => ExifData::default(),
    }
}

/// The fields of a bare TIFF structure (a HEIF file's `Exif` item).
pub(crate) fn exif_from_tiff(tiff: &[u8]) -> ExifData {
    match exif::Reader::new().read_raw(tiff.to_vec()) {
        Ok(exif) => fields(&exif),
        Err(_) => ExifData::default(),
    }
}

fn fields(exif: &exif::Exif) -> ExifData {
    use exif::{In, Tag, Value};
    let field = |tag| exif.get_field(tag, In::PRIMARY).map(|f| &f.value);
    let text = |tag| match field(tag) {
        Some(Value::Ascii(parts)) => parts.first().and_then(|p| clean_text(p)),
        _ => None,
    };
    let rational = |tag| match field(tag) {
        Some(Value::Rational(v)) => v.first().filter(|r| r.denom != 0).copied(),
        _ => None,
    };
    let coordinate = |tag, ref_tag, negative: &[u8]| -> Option<f64> {
        // The standard says RATIONAL; some phones (HMD/Nokia) write SRATIONAL.
        let dms: Vec<f64> = match field(tag)? {
            Value::Rational(v) => v
                .iter()
                .take(3)
                .filter(|r| r.denom != 0)
                .map(|r| r.to_f64())
                .collect(),
            Value::SRational(v) => v
                .iter()
                .take(3)
                .filter(|r| r.denom != 0)
                .map(|r| r.to_f64().abs())
                .collect(),
            _ => return None,
        };
        let [d, m, s] = dms[..] else {
            return None;
        };
        let deg = d + m / 60.0 + s / 3600.0;
        let sign = match field(ref_tag) {
            Some(Value::Ascii(r))
                if r.first()
                    .is_some_and(|r| r.first().is_some_and(|c| negative.contains(c))) =>
            {
                -1.0
            }
            _ => 1.0,
        };
        Some(((sign * deg) * 1e6).round() / 1e6).filter(|v| v.is_finite())
    };
    let latitude =
        coordinate(Tag::GPSLatitude, Tag::GPSLatitudeRef, b"Ss").filter(|v| v.abs() <= 90.0);
    let longitude =
        coordinate(Tag::GPSLongitude, Tag::GPSLongitudeRef, b"Ww").filter(|v| v.abs() <= 180.0);
    let (gps_latitude, gps_longitude) = match (latitude, longitude) {
        (Some(a), Some(b)) => (Some(a), Some(b)),
        _ => (None, None),
    };
    let orientation = field(Tag::Orientation)
        .and_then(|v| v.get_uint(0))
        .map(|o| match o {
            1..=8 => o as u8,
            _ => 1, // 0 or garbage counts as "no transform"
        });
    ExifData {
        date_time: text(Tag::DateTimeOriginal).or_else(|| text(Tag::DateTime)),
        make: text(Tag::Make),
        model: text(Tag::Model),
        gps_latitude,
        gps_longitude,
        orientation,
        f_number: rational(Tag::FNumber).map(|r| (r.to_f64() * 100.0).round() / 100.0),
        exposure_time: rational(Tag::ExposureTime).map(|r| {
            if r.num == 1 || r.num == 0 {
                format!("{}/{}", r.num, r.denom)
            } else {
                format!("{}", (r.to_f64() * 1e4).round() / 1e4)
            }
        }),
        iso: field(Tag::PhotographicSensitivity).and_then(|v| v.get_uint(0)),
    }
}

/// Printable text only, trimmed, at most 128 characters.
fn clean_text(raw: &[u8]) -> Option<String> {
    let s: String = String::from_utf8_lossy(raw)
        .chars()
        .filter(|c| !c.is_control())
        .take(128)
        .collect();
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}
