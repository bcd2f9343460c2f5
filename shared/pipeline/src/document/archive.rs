//! ZIP archives and the OOXML documents that are ZIPs: the central directory is read in memory and
//! checked before anything is inflated (entry count, declared sizes and ratios, names); only what
//! must be looked into is inflated, each bounded: `[Content_Types].xml` and nested archives.

use std::io::{Cursor, Read};

use media_core::domain::{ContentType, MediaMetadata, Rejection, RejectionCode};
use zip::ZipArchive;

use super::ooxml::{self, Ooxml};
use super::{DocumentOptions, Validated, reject};

/// Bounds on an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// Most entries (files and directories).
    pub max_entries: u64,
    /// Largest total uncompressed size, as declared.
    pub max_uncompressed: u64,
    /// Largest uncompressed:compressed ratio of an entry, or of the whole archive.
    pub max_ratio: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            max_uncompressed: 1 << 30,
            max_ratio: 100,
        }
    }
}

/// Below this many uncompressed bytes a ratio proves nothing (a small run of zeros compresses
/// 1000:1) and cannot hurt: ratios are checked for entries, and archives, at least this large.
const RATIO_FLOOR: u64 = 1 << 20;
/// Most bytes of a nested archive inflated to look into it.
const MAX_NESTED_BYTES: u64 = 64 << 20;
/// Bytes inflated from an entry to tell whether it is an archive itself.
const SNIFF_BYTES: u64 = 512;

/// What the central directory says about an archive, once checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Listing {
    /// File entries (directories not counted).
    pub files: u64,
    /// Declared uncompressed bytes of every entry.
    pub uncompressed: u64,
}

/// An archive read from memory.
type Zip<'a> = ZipArchive<Cursor<&'a [u8]>>;

pub(crate) fn open(bytes: &[u8]) -> Result<Zip<'_>, Rejection> {
    ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
        reject(
            RejectionCode::Corrupt,
            format!("the archive could not be read: {e}"),
        )
    })
}

/// The entry count the end-of-central-directory record declares (its ZIP64 record's, when the
/// classic one says 0xFFFF), read before the central directory is: the directory of an archive
/// with too many entries is never loaded (half a million empty entries fit in 50 MB, and reading
/// their directory would take over 100 MiB).
pub(crate) fn declared_entries(bytes: &[u8]) -> Option<u64> {
    let u16_at = |at: usize| Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?));
    let floor = bytes.len().saturating_sub((64 << 10) + 22);
    let eocd = (floor..bytes.len().saturating_sub(21))
        .rev()
        .find(|&i| bytes[i..].starts_with(b"PK\x05\x06"))?;
    let entries = u16_at(eocd + 10)?;
    if entries != u16::MAX {
        return Some(u64::from(entries));
    }
    // The ZIP64 locator sits just before the classic record and points at the ZIP64 record.
    let locator = eocd.checked_sub(20)?;
    if !bytes[locator..].starts_with(b"PK\x06\x07") {
        return Some(u64::from(entries));
    }
    let record = usize::try_from(u64_at(locator + 8)?).ok()?;
    bytes
        .get(record..)
        .filter(|r| r.starts_with(b"PK\x06\x06"))?;
    u64_at(record + 32)
}

/// Whether an entry's name could write outside the folder it is extracted to: `..` components,
/// absolute paths, drive letters and UNC paths, with `\` taken as a separator too (Windows tools
/// do), and NUL bytes that cut the name short in C code.
pub(crate) fn unsafe_name(name: &[u8]) -> bool {
    if name.is_empty() || name.contains(&0) {
        return true;
    }
    if matches!(name[0], b'/' | b'\\') {
        return true;
    }
    if name.len() >= 2 && name[0].is_ascii_alphabetic() && name[1] == b':' {
        return true;
    }
    name.split(|&b| b == b'/' || b == b'\\')
        .any(|part| part == b"..")
}

/// Checks the central directory: entry count, names, declared sizes and ratios.
pub(crate) fn list(
    archive: &mut ZipArchive<Cursor<&[u8]>>,
    archive_bytes: u64,
    limits: &ArchiveLimits,
) -> Result<Listing, Rejection> {
    let count = archive.len() as u64;
    if count > limits.max_entries {
        return Err(reject(
            RejectionCode::ArchiveTooLarge,
            format!(
                "the archive has {count} entries; the limit is {}",
                limits.max_entries
            ),
        ));
    }
    let mut listing = Listing::default();
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(|e| {
            reject(
                RejectionCode::Corrupt,
                format!("entry {i} could not be read: {e}"),
            )
        })?;
        let name = entry.name_raw();
        if unsafe_name(name) {
            return Err(reject(
                RejectionCode::UnsafeArchive,
                format!(
                    "the entry {:?} would be extracted outside the archive's folder",
                    String::from_utf8_lossy(name)
                ),
            ));
        }
        if entry
            .unix_mode()
            .is_some_and(|mode| mode & 0o170_000 == 0o120_000)
        {
            return Err(reject(
                RejectionCode::UnsafeArchive,
                format!(
                    "the entry {:?} is a symbolic link, which extracts to a path outside the archive",
                    String::from_utf8_lossy(name)
                ),
            ));
        }
        let (size, packed) = (entry.size(), entry.compressed_size());
        if size >= RATIO_FLOOR && size / packed.max(1) >= limits.max_ratio {
            return Err(reject(
                RejectionCode::ArchiveTooLarge,
                format!(
                    "the entry {:?} inflates {size} bytes from {packed} (over {}:1)",
                    String::from_utf8_lossy(name),
                    limits.max_ratio
                ),
            ));
        }
        listing.uncompressed = listing.uncompressed.saturating_add(size);
        if !entry.is_dir() {
            listing.files += 1;
        }
    }
    if listing.uncompressed > limits.max_uncompressed {
        return Err(reject(
            RejectionCode::ArchiveTooLarge,
            format!(
                "the archive inflates to {} bytes; the limit is {}",
                listing.uncompressed, limits.max_uncompressed
            ),
        ));
    }
    if listing.uncompressed >= RATIO_FLOOR
        && listing.uncompressed / archive_bytes.max(1) >= limits.max_ratio
    {
        return Err(reject(
            RejectionCode::ArchiveTooLarge,
            format!(
                "the archive inflates {} bytes from {archive_bytes} (over {}:1)",
                listing.uncompressed, limits.max_ratio
            ),
        ));
    }
    Ok(listing)
}

/// Opens an archive and checks its central directory ([`list`]); an archive whose end record
/// declares too many entries is refused before its directory is even read.
fn open_and_list<'a>(
    bytes: &'a [u8],
    limits: &ArchiveLimits,
) -> Result<(Zip<'a>, Listing), Rejection> {
    if let Some(count) = declared_entries(bytes)
        && count > limits.max_entries
    {
        return Err(reject(
            RejectionCode::ArchiveTooLarge,
            format!(
                "the archive declares {count} entries; the limit is {}",
                limits.max_entries
            ),
        ));
    }
    let mut archive = open(bytes)?;
    let listing = list(&mut archive, bytes.len() as u64, limits)?;
    Ok((archive, listing))
}

/// Inflates at most `limit` bytes of entry `i`; more than the entry declares is corrupt.
pub(crate) fn inflate(
    archive: &mut ZipArchive<Cursor<&[u8]>>,
    i: usize,
    limit: u64,
) -> Result<Vec<u8>, Rejection> {
    let corrupt = |e: &dyn std::fmt::Display| {
        reject(
            RejectionCode::Corrupt,
            format!("entry {i} could not be inflated: {e}"),
        )
    };
    let entry = archive.by_index(i).map_err(|e| corrupt(&e))?;
    let declared = entry.size();
    let cap = declared.min(limit);
    let mut out = Vec::with_capacity(usize::try_from(cap.min(1 << 20)).unwrap_or(0));
    entry
        .take(cap.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| corrupt(&e))?;
    if out.len() as u64 > declared {
        return Err(corrupt(&"it inflates past its declared size"));
    }
    Ok(out)
}

/// Whether these first bytes of an entry are an archive of any kind.
fn is_archive(head: &[u8]) -> bool {
    head.starts_with(b"PK\x03\x04")
        || head.starts_with(b"PK\x05\x06")
        || infer::get(head).is_some_and(|k| k.matcher_type() == infer::MatcherType::Archive)
}

/// The entries of an archive that are archives themselves, by their first bytes.
/// Each as its index and whether it is a ZIP (the one nested format that can be looked into).
fn nested_archives(
    archive: &mut ZipArchive<Cursor<&[u8]>>,
) -> Result<Vec<(usize, bool)>, Rejection> {
    let mut nested = Vec::new();
    for i in 0..archive.len() {
        let file = archive
            .by_index_raw(i)
            .map(|e| !e.is_dir() && e.size() > 0)
            .unwrap_or(false);
        if !file {
            continue;
        }
        let head = inflate_head(archive, i)?;
        if is_archive(&head) {
            let zip = head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06");
            nested.push((i, zip));
        }
    }
    Ok(nested)
}

/// The first bytes of entry `i`, inflated (an encrypted entry reads as nothing).
fn inflate_head(archive: &mut ZipArchive<Cursor<&[u8]>>, i: usize) -> Result<Vec<u8>, Rejection> {
    let encrypted = archive.by_index_raw(i).is_ok_and(|e| e.encrypted());
    if encrypted {
        return Ok(Vec::new());
    }
    let mut entry = archive.by_index(i).map_err(|e| {
        reject(
            RejectionCode::Corrupt,
            format!("entry {i} could not be read: {e}"),
        )
    })?;
    let mut head = [0u8; SNIFF_BYTES as usize];
    let mut got = 0;
    while got < head.len() {
        match entry.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => {
                return Err(reject(
                    RejectionCode::Corrupt,
                    format!("entry {i} could not be inflated: {e}"),
                ));
            }
        }
    }
    Ok(head[..got].to_vec())
}

/// One level of nesting is allowed (a ZIP of ZIPs): each nested ZIP is inflated (bounded) and
/// checked like the outer one, and must hold no archive itself. Other nested archive formats
/// (gzip, 7z, ...) cannot be looked into, so they may only sit at the first level too.
fn check_nesting(
    archive: &mut ZipArchive<Cursor<&[u8]>>,
    limits: &ArchiveLimits,
) -> Result<(), Rejection> {
    for (i, zip) in nested_archives(archive)? {
        if !zip {
            continue;
        }
        let (name, size) = archive
            .by_index_raw(i)
            .map(|e| (String::from_utf8_lossy(e.name_raw()).into_owned(), e.size()))
            .unwrap_or_default();
        if size > MAX_NESTED_BYTES {
            return Err(reject(
                RejectionCode::ArchiveTooLarge,
                format!(
                    "the nested archive {name:?} is {size} bytes; nested archives are inspected up to {MAX_NESTED_BYTES}"
                ),
            ));
        }
        let inner_bytes = inflate(archive, i, MAX_NESTED_BYTES)?;
        let (mut inner, _) = open_and_list(&inner_bytes, limits).map_err(|r| {
            reject(
                r.code,
                format!("the nested archive {name:?}: {}", r.message),
            )
        })?;
        if !nested_archives(&mut inner)?.is_empty() {
            return Err(reject(
                RejectionCode::UnsafeArchive,
                format!(
                    "the nested archive {name:?} holds archives too: archives may nest one level deep"
                ),
            ));
        }
    }
    Ok(())
}

/// Validates a ZIP, or an OOXML document, declared as `declared`.
pub(super) fn validate(
    bytes: &[u8],
    declared: ContentType,
    opts: &DocumentOptions,
) -> Result<Validated, Rejection> {
    let (mut archive, listing) = open_and_list(bytes, &opts.archive)?;
    let found = ooxml::identify(&mut archive)?;
    if let Some(Ooxml {
        macros: Some(why), ..
    }) = &found
        && !opts.allow_active_content
    {
        return Err(reject(RejectionCode::ActiveContent, why.clone()));
    }
    let detected = match &found {
        Some(doc) => doc.content_type.ok_or_else(|| {
            reject(
                RejectionCode::TypeMismatch,
                format!(
                    "declared {declared} but the content is an Office document of another type ({})",
                    doc.main
                ),
            )
        })?,
        None => ContentType::Zip,
    };
    if detected != declared {
        let what = match detected {
            ContentType::Zip => "a ZIP archive",
            ContentType::Docx => "a Word document",
            ContentType::Xlsx => "an Excel workbook",
            _ => "a PowerPoint presentation",
        };
        return Err(reject(
            RejectionCode::TypeMismatch,
            format!("declared {declared} but the content is {what}"),
        ));
    }
    check_nesting(&mut archive, &opts.archive)?;
    Ok(Validated {
        metadata: MediaMetadata {
            entries: Some(listing.files),
            uncompressed_bytes: Some(listing.uncompressed),
            ..MediaMetadata::default()
        },
        first_page: None,
        render: std::time::Duration::ZERO,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_count_is_read_from_the_end_record_before_the_directory() {
        let mut zip = b"PK\x05\x06\0\0\0\0".to_vec();
        zip.extend(7u16.to_le_bytes()); // entries on this disk
        zip.extend(7u16.to_le_bytes()); // entries in total
        zip.extend([0u8; 10]);
        assert_eq!(declared_entries(&zip), Some(7));
        assert_eq!(
            declared_entries(b"not a zip at all, no end record here"),
            None
        );
        // ZIP64: the classic record says 0xFFFF; the ZIP64 record has the real count.
        let mut z64 = b"PK\x06\x06".to_vec();
        z64.extend([0u8; 28]);
        z64.extend(70_000u64.to_le_bytes()); // total entries, at offset 32
        z64.extend([0u8; 16]);
        let mut locator = b"PK\x06\x07\0\0\0\0".to_vec();
        locator.extend(0u64.to_le_bytes()); // the ZIP64 record is at offset 0
        locator.extend(1u32.to_le_bytes());
        z64.extend(locator);
        z64.extend(b"PK\x05\x06\0\0\0\0\xff\xff\xff\xff");
        z64.extend([0u8; 10]);
        assert_eq!(declared_entries(&z64), Some(70_000));
    }

    #[test]
    fn names_that_escape_are_unsafe() {
        for bad in [
            &b"../evil"[..],
            b"a/../../evil",
            b"/etc/passwd",
            b"\\server\\share",
            b"..\\..\\evil.exe",
            b"a\\..\\b",
            b"C:evil",
            b"c:/windows/evil",
            b"a\0.txt",
            b"",
        ] {
            assert!(unsafe_name(bad), "{}", String::from_utf8_lossy(bad));
        }
        for good in [
            &b"a/b/c.txt"[..],
            b"..a/b..",
            b"dir/",
            b"word/document.xml",
            b"a b:c",
        ] {
            assert!(!unsafe_name(good), "{}", String::from_utf8_lossy(good));
        }
    }
}
