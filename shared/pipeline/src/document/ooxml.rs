//! Office Open XML (`.docx`, `.xlsx`, `.pptx`): a ZIP whose `[Content_Types].xml` names the main
//! part's type, which says what the document is and whether it carries macros.

use std::io::Cursor;

use media_core::domain::{ContentType, Rejection};
use zip::ZipArchive;

use super::archive::inflate;

/// Most bytes of `[Content_Types].xml` read (real ones are a few KiB).
const MAX_CONTENT_TYPES: u64 = 1 << 20;

/// An OOXML package, as its content types describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ooxml {
    /// The accepted type its main part makes it, if it is one of them.
    pub content_type: Option<ContentType>,
    /// The main part's content type (or a note that none was found).
    pub main: String,
    /// Why it counts as carrying macros, if it does.
    pub macros: Option<String>,
}

const MAIN_TYPES: [(&str, ContentType); 3] = [
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
        ContentType::Docx,
    ),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
        ContentType::Xlsx,
    ),
    (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
        ContentType::Pptx,
    ),
];

/// The main part types of every OOXML document family, macro-enabled ones and templates
/// included: any of them makes the ZIP an Office document rather than a plain archive.
fn is_main_type(t: &str) -> bool {
    let t = t.to_ascii_lowercase();
    let family = [
        "application/vnd.openxmlformats-officedocument.",
        "application/vnd.ms-word.",
        "application/vnd.ms-excel.",
        "application/vnd.ms-powerpoint.",
    ];
    family.iter().any(|f| t.starts_with(f)) && (t.ends_with(".main+xml") || t.ends_with(".main"))
}

/// The `ContentType` attributes of the `Default` and `Override` elements of a content types
/// part: a small scanner, not an XML parser (the part is a flat list of empty elements).
pub(crate) fn content_types(xml: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        let end = rest.find('>').unwrap_or(rest.len());
        let tag = &rest[..end];
        rest = &rest[end..];
        let name_end = tag
            .find(|c: char| c.is_whitespace() || c == '/')
            .unwrap_or(tag.len());
        let local = tag[..name_end].rsplit(':').next().unwrap_or_default();
        if local != "Default" && local != "Override" {
            continue;
        }
        let mut attrs = &tag[name_end..];
        while let Some(eq) = attrs.find('=') {
            let key = attrs[..eq].trim();
            let after = attrs[eq + 1..].trim_start();
            let Some(quote) = after.chars().next().filter(|c| *c == '"' || *c == '\'') else {
                break;
            };
            let value_and_rest = &after[1..];
            let Some(close) = value_and_rest.find(quote) else {
                break;
            };
            if key == "ContentType" {
                out.push(value_and_rest[..close].trim().to_owned());
            }
            attrs = &value_and_rest[close + 1..];
        }
    }
    out
}

/// Reads the package's content types, if the ZIP has them (`None`: a plain archive).
pub(crate) fn identify(
    archive: &mut ZipArchive<Cursor<&[u8]>>,
) -> Result<Option<Ooxml>, Rejection> {
    let mut types_at = None;
    let mut vba = None;
    for i in 0..archive.len() {
        let Ok(entry) = archive.by_index_raw(i) else {
            continue;
        };
        let name = entry.name_raw();
        if name.eq_ignore_ascii_case(b"[Content_Types].xml") {
            types_at = Some(i);
        }
        let file = name.rsplit(|&b| b == b'/').next().unwrap_or_default();
        if file.eq_ignore_ascii_case(b"vbaProject.bin") {
            vba = Some(String::from_utf8_lossy(name).into_owned());
        }
    }
    let Some(at) = types_at else {
        return Ok(None);
    };
    let xml = inflate(archive, at, MAX_CONTENT_TYPES)?;
    let xml = String::from_utf8_lossy(&xml);
    let types = content_types(&xml);
    let main = types.iter().find(|t| is_main_type(t));
    let macro_type = types.iter().find(|t| {
        let t = t.to_ascii_lowercase();
        t.contains("macroenabled") || t == "application/vnd.ms-office.vbaproject"
    });
    let macros = match (macro_type, vba) {
        (Some(t), _) => Some(format!("the document carries macros (content type {t})")),
        (None, Some(part)) => Some(format!("the document carries macros ({part})")),
        (None, None) => None,
    };
    let Some(main) = main else {
        // Content types without an Office main part: a package of some other kind, not a
        // document this service accepts; a ZIP that merely holds such a file is still a ZIP.
        return Ok(macros.map(|m| Ooxml {
            content_type: None,
            main: "no main document part".to_owned(),
            macros: Some(m),
        }));
    };
    let content_type = MAIN_TYPES
        .iter()
        .find(|(t, _)| t.eq_ignore_ascii_case(main))
        .map(|(_, ct)| *ct);
    Ok(Some(Ooxml {
        content_type,
        main: main.clone(),
        macros,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_are_read_in_either_quote_style_and_any_prefix() {
        let xml = r#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Override PartName='/word/document.xml' ContentType='application/vnd.ms-word.document.macroEnabled.main+xml'/><ct:Override ContentType = "x/y" PartName="/a"/><Other ContentType="no"/></Types>"#;
        assert_eq!(
            content_types(xml),
            [
                "application/vnd.openxmlformats-package.relationships+xml",
                "application/vnd.ms-word.document.macroEnabled.main+xml",
                "x/y"
            ]
        );
        assert!(is_main_type(
            "application/vnd.ms-word.document.macroEnabled.main+xml"
        ));
        assert!(is_main_type(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
        ));
        assert!(!is_main_type(
            "application/vnd.openxmlformats-officedocument.theme+xml"
        ));
        assert!(!is_main_type(
            "application/vnd.ms-excel.controlproperties+xml"
        ));
    }
}
