//! Plain text and CSV: UTF-8 (a BOM allowed) without NUL bytes; CSV records counted with RFC 4180
//! quoting, and the cells a spreadsheet would run as formulas reported.

use media_core::domain::{MediaMetadata, Rejection, RejectionCode};

use super::{Validated, reject};

/// The text without its BOM, or why it is not text.
fn utf8(bytes: &[u8]) -> Result<&str, Rejection> {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(body).map_err(|e| {
        reject(
            RejectionCode::Corrupt,
            format!("the text is not valid UTF-8 (at byte {})", e.valid_up_to()),
        )
    })?;
    if let Some(at) = text.bytes().position(|b| b == 0) {
        return Err(reject(
            RejectionCode::Corrupt,
            format!("the text has a NUL byte at byte {at}"),
        ));
    }
    Ok(text)
}

/// A text file: its lines (a last line without a newline counts).
pub(super) fn validate_text(bytes: &[u8]) -> Result<Validated, Rejection> {
    let text = utf8(bytes)?;
    let newlines = text.bytes().filter(|&b| b == b'\n').count() as u64;
    let lines = newlines + u64::from(!text.is_empty() && !text.ends_with('\n'));
    Ok(Validated {
        metadata: MediaMetadata {
            lines: Some(lines),
            ..MediaMetadata::default()
        },
        first_page: None,
        render: std::time::Duration::ZERO,
    })
}

/// What a CSV file holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CsvShape {
    /// Records, the header included.
    pub rows: u64,
    /// The widest record's fields.
    pub columns: u64,
    /// Cells whose content starts with `=`, `+`, `-` or `@`.
    pub formula_cells: u64,
}

/// Reads CSV records: fields split by commas, records by LF or CRLF, double-quoted fields may hold
/// commas, line breaks and `""`. A quote inside an unquoted field is taken literally (as
/// spreadsheets do); a quoted field still open at the end of the file is not CSV.
pub(crate) fn shape(text: &str) -> Result<CsvShape, Rejection> {
    #[derive(PartialEq)]
    enum State {
        /// At the start of a field.
        FieldStart,
        /// In an unquoted field.
        Unquoted,
        /// In a quoted field.
        Quoted,
        /// Just after a quote inside a quoted field: `"` escapes, anything else closes it.
        QuoteInQuoted,
    }
    let mut shape = CsvShape::default();
    let mut state = State::FieldStart;
    let mut fields = 0u64;
    let mut in_record = false;
    let end_record = |fields: &mut u64, shape: &mut CsvShape| {
        shape.rows += 1;
        shape.columns = shape.columns.max(*fields);
        *fields = 0;
    };
    let formula = |b: u8| matches!(b, b'=' | b'+' | b'-' | b'@');
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match state {
            State::FieldStart | State::Unquoted if b == b',' => {
                fields += 1;
                in_record = true;
                state = State::FieldStart;
            }
            State::FieldStart | State::Unquoted if b == b'\n' || b == b'\r' => {
                if b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                if in_record || state == State::Unquoted {
                    fields += 1;
                    end_record(&mut fields, &mut shape);
                } else {
                    // A blank line is not a record.
                }
                in_record = false;
                state = State::FieldStart;
            }
            State::FieldStart if b == b'"' => {
                in_record = true;
                state = State::Quoted;
                if bytes.get(i + 1).copied().is_some_and(formula) {
                    shape.formula_cells += 1;
                }
            }
            State::FieldStart => {
                in_record = true;
                if formula(b) {
                    shape.formula_cells += 1;
                }
                state = State::Unquoted;
            }
            State::Unquoted => {}
            State::Quoted if b == b'"' => state = State::QuoteInQuoted,
            State::Quoted => {}
            State::QuoteInQuoted if b == b'"' => state = State::Quoted,
            State::QuoteInQuoted => {
                // The quoted field ended; whatever follows up to the separator is kept with it.
                state = State::Unquoted;
                continue;
            }
        }
        i += 1;
    }
    match state {
        State::Quoted => {
            return Err(reject(
                RejectionCode::Corrupt,
                "a quoted CSV field is never closed",
            ));
        }
        State::Unquoted | State::QuoteInQuoted => {
            fields += 1;
            end_record(&mut fields, &mut shape);
        }
        State::FieldStart if in_record => {
            fields += 1;
            end_record(&mut fields, &mut shape);
        }
        State::FieldStart => {}
    }
    Ok(shape)
}

/// A CSV file: its records, widest record and formula-like cells.
pub(super) fn validate_csv(bytes: &[u8]) -> Result<Validated, Rejection> {
    let shape = shape(utf8(bytes)?)?;
    Ok(Validated {
        metadata: MediaMetadata {
            rows: Some(shape.rows),
            columns: Some(shape.columns),
            formula_cells: Some(shape.formula_cells),
            ..MediaMetadata::default()
        },
        first_page: None,
        render: std::time::Duration::ZERO,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str) -> (u64, u64, u64) {
        let s = shape(text).expect("csv");
        (s.rows, s.columns, s.formula_cells)
    }

    #[test]
    fn records_follow_rfc_4180_quoting() {
        assert_eq!(csv("a,b,c\r\n1,2,3\r\n"), (2, 3, 0));
        assert_eq!(csv("a,b\n1,2"), (2, 2, 0));
        assert_eq!(csv("a,\"b,\nstill b\",c\n"), (1, 3, 0));
        assert_eq!(csv("\"say \"\"hi\"\"\",x\n"), (1, 2, 0));
        assert_eq!(csv("a\n\n\nb\n"), (2, 1, 0));
        assert_eq!(csv("a,b,c,d\n1\n"), (2, 4, 0));
        assert_eq!(csv(",\n"), (1, 2, 0));
        assert_eq!(csv("\"\"\n"), (1, 1, 0));
        assert_eq!(csv(""), (0, 0, 0));
        assert_eq!(csv("5\"6,x\n"), (1, 2, 0));
    }

    #[test]
    fn formula_cells_are_counted_quoted_or_not() {
        assert_eq!(
            csv("=1+1,\"=HYPERLINK(\"\"x\"\")\",+A1,-2,@SUM(A1),a=b\n"),
            (1, 6, 5)
        );
    }

    #[test]
    fn unterminated_quotes_and_bad_text_are_corrupt() {
        assert!(shape("a,\"b\n").is_err());
        assert!(validate_csv(b"a,b\xff\n").is_err());
        assert!(validate_csv(b"a,\0b\n").is_err());
        assert!(validate_csv(b"\xEF\xBB\xBFa,b\n").is_ok());
    }

    #[test]
    fn text_lines_count_a_last_line_without_newline() {
        let lines = |t: &[u8]| validate_text(t).map(|v| v.metadata.lines);
        assert_eq!(lines(b"one\ntwo\n"), Ok(Some(2)));
        assert_eq!(lines(b"one\ntwo"), Ok(Some(2)));
        assert_eq!(lines(b"x"), Ok(Some(1)));
        assert_eq!(lines(b"\xEF\xBB\xBF"), Ok(Some(0)));
        assert!(validate_text(b"caf\xe9").is_err());
    }
}
