//! `--report FILE`: every study of the job with its counts and outcome, as CSV (RFC 4180)
//! or JSON (one array of objects), by the file's extension. Written from the journals at
//! the end of a run (or by `--status`), a thousand rows at a time.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use dclient::dataset::write_csv_row;
use serde_json::json;

use crate::error::{CopyError, Result};
use crate::journal::{Journal, StudyRow};

/// The report's columns.
pub const COLUMNS: [&str; 15] = [
    "study_instance_uid",
    "patient_id",
    "patient_name",
    "study_date",
    "accession_number",
    "modalities",
    "expected",
    "transferred",
    "at_destination",
    "bytes",
    "outcome",
    "attempts",
    "status",
    "error_comment",
    "reason",
];

/// The format a report file's name asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.csv`.
    Csv,
    /// `.json`.
    Json,
}

impl Format {
    /// The format of `path` by its extension; anything but `.csv` and `.json` is
    /// [`CopyError::Usage`].
    pub fn of(path: &Path) -> Result<Format> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("csv") => Ok(Format::Csv),
            Some("json") => Ok(Format::Json),
            _ => Err(CopyError::Usage(format!(
                "--report {}: the name must end in .csv or .json",
                path.display()
            ))),
        }
    }
}

fn cells(r: &StudyRow) -> [String; 15] {
    let opt = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
    let f = r.failure.as_ref();
    [
        r.info.study_uid.clone(),
        r.info.patient_id.clone(),
        r.info.patient_name.clone(),
        r.info.study_date.clone(),
        r.info.accession.clone(),
        r.info.modalities.clone(),
        opt(r.info.expected),
        r.transferred.to_string(),
        opt(r.at_dest),
        r.bytes.to_string(),
        r.state.as_str().to_owned(),
        r.attempts.to_string(),
        f.and_then(|f| f.status).map(|s| format!("{s:04X}")).unwrap_or_default(),
        f.and_then(|f| f.comment.clone()).unwrap_or_default(),
        f.map(|f| f.reason.clone()).unwrap_or_default(),
    ]
}

/// Writes the report of `journals` (their studies one after the other) to `path`.
/// Returns the number of rows.
pub fn write_report(journals: &[&Journal], path: &Path) -> Result<u64> {
    let format = Format::of(path)?;
    let ioerr = |e: std::io::Error| CopyError::File { path: path.to_owned(), source: e };
    let mut w = BufWriter::new(File::create(path).map_err(ioerr)?);
    let mut rows = 0u64;
    match format {
        Format::Csv => write_csv_row(&mut w, &COLUMNS.map(String::from)).map_err(ioerr)?,
        Format::Json => w.write_all(b"[").map_err(ioerr)?,
    }
    for j in journals {
        let mut after = 0i64;
        loop {
            let batch = j.study_rows(after, 1000)?;
            let Some(&(last, _)) = batch.last() else { break };
            after = last;
            for (_, r) in &batch {
                let c = cells(r);
                match format {
                    Format::Csv => write_csv_row(&mut w, &c).map_err(ioerr)?,
                    Format::Json => {
                        let mut o = serde_json::Map::new();
                        for (k, v) in COLUMNS.iter().zip(c) {
                            let v = match *k {
                                "expected" | "transferred" | "at_destination" | "bytes"
                                | "attempts" => {
                                    v.parse::<u64>().map(|n| json!(n)).unwrap_or(json!(null))
                                }
                                _ if v.is_empty() => json!(null),
                                _ => json!(v),
                            };
                            o.insert((*k).to_owned(), v);
                        }
                        if rows > 0 {
                            w.write_all(b",").map_err(ioerr)?;
                        }
                        w.write_all(b"\n  ").map_err(ioerr)?;
                        serde_json::to_writer(&mut w, &o).map_err(|e| ioerr(e.into()))?;
                    }
                }
                rows += 1;
            }
        }
    }
    if format == Format::Json {
        w.write_all(b"\n]\n").map_err(ioerr)?;
    }
    w.flush().map_err(ioerr)?;
    Ok(rows)
}
