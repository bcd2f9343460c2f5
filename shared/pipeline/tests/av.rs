//! The video and audio container probes on real files (`tests/av/`, each with its source and
//! licence in `MANIFEST.tsv`), on every truncation of them, and on files of gigabytes that exist
//! only as ranges: the probe reads their structure, never their media.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use media_pipeline::av::{self, AvError, AvInfo, Container, RangeSource, SliceSource};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/av")
}

struct Row {
    file: String,
    declared: String,
    expect: String,
    checks: BTreeMap<String, String>,
}

fn manifest() -> TestResult<Vec<Row>> {
    let text = std::fs::read_to_string(dir().join("MANIFEST.tsv"))?;
    let mut rows = Vec::new();
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() != 9 || cols[4].is_empty() || cols[7].is_empty() {
            return Err(
                format!("a manifest row needs 9 columns, a source and a licence: {line}").into(),
            );
        }
        let checks = cols[3]
            .split(';')
            .filter(|c| !c.is_empty())
            .filter_map(|c| c.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        rows.push(Row {
            file: cols[0].to_owned(),
            declared: cols[1].to_owned(),
            expect: cols[2].to_owned(),
            checks,
        });
    }
    Ok(rows)
}

fn container_name(c: Option<Container>) -> &'static str {
    match c {
        Some(Container::Mp4) => "mp4",
        Some(Container::Mov) => "mov",
        Some(Container::M4a) => "m4a",
        Some(Container::WebM) => "webm",
        Some(Container::Matroska) => "matroska",
        Some(Container::Mp3) => "mp3",
        Some(Container::Wav) => "wav",
        Some(Container::Ogg) => "ogg",
        Some(Container::Flac) => "flac",
        None => "none",
    }
}

fn check(file: &str, info: &AvInfo, key: &str, want: &str) -> TestResult {
    let close = |got: Option<f64>| -> TestResult {
        let want: f64 = want.parse()?;
        let got = got.ok_or_else(|| format!("{file}: no {key}"))?;
        if (got - want).abs() > 0.01 {
            return Err(format!("{file}: {key} {got}, expected {want}").into());
        }
        Ok(())
    };
    let same = |got: Option<String>| -> TestResult {
        if got.as_deref() != Some(want) {
            return Err(format!("{file}: {key} {got:?}, expected {want}").into());
        }
        Ok(())
    };
    match key {
        "container" => same(Some(container_name(info.container).to_owned())),
        "duration" => close(info.duration_seconds),
        "fps" => close(info.frame_rate),
        "width" => same(info.width.map(|v| v.to_string())),
        "height" => same(info.height.map(|v| v.to_string())),
        "video" => same(info.video_codec.clone()),
        "audio" => same(info.audio_codec.clone()),
        "rate" => same(info.sample_rate.map(|v| v.to_string())),
        "channels" => same(info.channels.map(|v| v.to_string())),
        other => Err(format!("{file}: unknown check {other}").into()),
    }
}

#[test]
fn every_file_of_the_corpus_reads_as_its_manifest_says() -> TestResult {
    let rows = manifest()?;
    assert!(rows.len() >= 19);
    for row in &rows {
        let bytes = std::fs::read(dir().join(&row.file))?;
        let result = av::probe(&mut SliceSource(&bytes));
        match (row.expect.as_str(), result) {
            ("accept", Ok(info)) => {
                let container = info.container.ok_or("no container")?;
                assert!(
                    av::matches_declared(&row.declared, container, info.has_video()),
                    "{}: {container:?} is not {}",
                    row.file,
                    row.declared
                );
                assert!(
                    info.bit_rate.is_some_and(|b| b > 0),
                    "{}: no bit rate",
                    row.file
                );
                for (k, v) in &row.checks {
                    check(&row.file, &info, k, v)?;
                }
            }
            ("type_mismatch", Ok(info)) => {
                let container = info.container.ok_or("no container")?;
                assert!(
                    !av::matches_declared(&row.declared, container, info.has_video()),
                    "{}: {container:?} passed as {}",
                    row.file,
                    row.declared
                );
                for (k, v) in &row.checks {
                    check(&row.file, &info, k, v)?;
                }
            }
            ("corrupt", Err(AvError::Corrupt(_))) => {}
            (expect, got) => {
                return Err(format!("{}: expected {expect}, got {got:?}", row.file).into());
            }
        }
    }
    // Every file in the folder is in the manifest.
    let listed: Vec<&str> = rows.iter().map(|r| r.file.as_str()).collect();
    for entry in std::fs::read_dir(dir())? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        assert!(
            name == "MANIFEST.tsv" || listed.contains(&name.as_str()),
            "{name} is not in the manifest"
        );
    }
    Ok(())
}

#[test]
fn every_truncation_of_every_file_is_an_answer_never_a_panic() -> TestResult {
    for row in manifest()? {
        let bytes = std::fs::read(dir().join(&row.file))?;
        // Every cut in the first 4 KiB (where the headers are), then 64 cuts spread over the rest.
        let step = (bytes.len() / 64).max(1);
        let cuts = (0..bytes.len().min(4096)).chain((4096..bytes.len()).step_by(step));
        for cut in cuts {
            let _ = av::probe(&mut SliceSource(&bytes[..cut]));
        }
    }
    Ok(())
}

#[test]
fn other_files_are_not_audio_or_video() {
    for bytes in [
        &b""[..],
        b"%PDF-1.7\n",
        b"PK\x03\x04",
        b"\xFF\xD8\xFF\xE0",
        b"hello, world",
    ] {
        assert_eq!(
            av::probe(&mut SliceSource(bytes)),
            Err(AvError::Unrecognised),
            "{bytes:?}"
        );
    }
}

#[test]
fn an_ogg_flac_header_cut_short_is_corrupt_not_a_panic() {
    // Found by the fuzzer: an Ogg page whose FLAC mapping header ends inside STREAMINFO.
    let mut page = b"OggS\0\x02".to_vec();
    page.extend([0u8; 20]);
    page.push(1); // one segment
    page.push(49);
    page.extend(b"\x7fFLAC\x01\x00\x00\x01fLaC\x00\x00\x00\x22");
    page.resize(page.len() + 32, 0x11);
    assert!(matches!(
        av::probe(&mut SliceSource(&page)),
        Err(AvError::Corrupt(_))
    ));
}

/// A file of `size` bytes that exists only as its parts: `parts` at their offsets, zeros
/// elsewhere. It counts the bytes read.
struct Sparse {
    size: u64,
    parts: Vec<(u64, Vec<u8>)>,
    read: u64,
}

impl RangeSource for Sparse {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, String> {
        let end = (offset + len as u64).min(self.size);
        let mut out =
            vec![0u8; usize::try_from(end.saturating_sub(offset)).map_err(|e| e.to_string())?];
        for (at, bytes) in &self.parts {
            let (start, stop) = (*at, at + bytes.len() as u64);
            let (from, to) = (start.max(offset), stop.min(end));
            if from < to {
                out[(from - offset) as usize..(to - offset) as usize]
                    .copy_from_slice(&bytes[(from - start) as usize..(to - start) as usize]);
            }
        }
        self.read += out.len() as u64;
        Ok(out)
    }
}

const GIB: u64 = 1024 * 1024 * 1024;

/// The top-level boxes of an MP4: (type, bytes).
fn boxes(file: &[u8]) -> Vec<([u8; 4], Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= file.len() {
        let size =
            u32::from_be_bytes([file[at], file[at + 1], file[at + 2], file[at + 3]]) as usize;
        let kind = [file[at + 4], file[at + 5], file[at + 6], file[at + 7]];
        out.push((kind, file[at..at + size].to_vec()));
        at += size;
    }
    out
}

#[test]
fn a_five_gib_movie_with_its_index_at_the_end_is_read_by_its_boxes_alone() -> TestResult {
    let white = std::fs::read(dir().join("mp4parse-white.mp4"))?;
    let parts = boxes(&white);
    let ftyp = parts
        .iter()
        .find(|(k, _)| k == b"ftyp")
        .ok_or("no ftyp")?
        .1
        .clone();
    let moov = parts
        .iter()
        .find(|(k, _)| k == b"moov")
        .ok_or("no moov")?
        .1
        .clone();
    // ftyp, a 5 GiB mdat (64-bit size), then the moov: the layout of a camera's recording.
    let mdat_len = 5 * GIB;
    let mut mdat_header = vec![0, 0, 0, 1];
    mdat_header.extend(b"mdat");
    mdat_header.extend((mdat_len).to_be_bytes());
    let moov_at = ftyp.len() as u64 + mdat_len;
    let mut file = Sparse {
        size: moov_at + moov.len() as u64,
        parts: vec![
            (0, ftyp.clone()),
            (ftyp.len() as u64, mdat_header),
            (moov_at, moov.clone()),
        ],
        read: 0,
    };
    let info = av::probe(&mut file)?;
    assert_eq!((info.width, info.height), (Some(320), Some(240)));
    assert_eq!(info.duration_seconds, Some(10.0));
    assert!(file.read < 64 * 1024, "read {} bytes", file.read);
    Ok(())
}

#[test]
fn long_audio_is_read_by_its_headers_and_its_end() -> TestResult {
    // A WAVE whose data chunk is 3 GiB: the fmt and data headers are all that is read.
    let wav = std::fs::read(dir().join("rodio-audacity16bit.wav"))?;
    let data_at = wav
        .windows(4)
        .position(|w| w == b"data")
        .ok_or("no data chunk")?;
    let mut head = wav[..data_at + 8].to_vec();
    let data_len = 3 * GIB;
    head[data_at + 4..data_at + 8].copy_from_slice(&u32::try_from(data_len)?.to_le_bytes());
    let riff = u32::try_from(data_len + data_at as u64)?;
    head[4..8].copy_from_slice(&riff.to_le_bytes());
    let mut file = Sparse {
        size: head.len() as u64 + data_len,
        parts: vec![(0, head)],
        read: 0,
    };
    let info = av::probe(&mut file)?;
    let expected = data_len as f64 / (44_100.0 * 2.0);
    assert!((info.duration_seconds.ok_or("no duration")? - expected).abs() < 0.01);
    assert!(file.read < 4 * 1024, "read {} bytes", file.read);

    // An Ogg stream of 2 GiB: its first page and its last 64 KiB.
    let ogg = std::fs::read(dir().join("rodio-beep3.ogg"))?;
    let size = 2 * GIB;
    let mut file = Sparse {
        size,
        parts: vec![
            (0, ogg[..4096].to_vec()),
            (size - ogg.len() as u64, ogg.clone()),
        ],
        read: 0,
    };
    let info = av::probe(&mut file)?;
    assert_eq!(info.duration_seconds, Some(10.0));
    assert!(file.read < 128 * 1024, "read {} bytes", file.read);
    Ok(())
}
