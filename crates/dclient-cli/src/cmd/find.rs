//! `dclient find LEVEL HOST PORT [-k KEY=VALUE]... [--model patient|study]
//! [--format table|json|csv] [--limit N]`: C-FIND, matches printed as they arrive.

use std::io::{self, BufWriter, Write};
use std::ops::ControlFlow;

use anyhow::Context;
use dclient::dataset::QUERY_RETRIEVE_LEVEL;
use dclient::dataset::{display_value, tag_name, to_json, SPECIFIC_CHARACTER_SET};
use dclient::{FindRequest, InformationModel, QueryLevel};
use dicom_core::Tag;
use dicom_object::InMemDicomObject;

use crate::common::{write_csv_row, Common, Outcome};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns named by keyword.
    Table,
    /// The DICOM JSON model (PS3.18 F.2): one array, one object per match.
    Json,
    /// Comma-separated values with a header of keywords.
    Csv,
}

/// Information models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Model {
    /// Patient Root.
    Patient,
    /// Study Root (default except at the patient level).
    Study,
}

/// Arguments of `dclient find`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Query level: patient, study, series or image.
    #[arg(value_parser = parse_level)]
    pub level: QueryLevel,
    /// The peer's host name or address.
    pub host: String,
    /// The peer's port.
    pub port: u16,
    /// A query key: KEY=VALUE, or KEY alone to ask for it back. KEY is 'GGGG,EEEE' or a
    /// keyword (PatientName); Sequence/Keyword puts a key inside a sequence's item.
    /// Repeatable; merged over the level's default keys.
    #[arg(short = 'k', long = "key", value_name = "KEY=VALUE")]
    pub keys: Vec<String>,
    /// Information model (default: patient at the patient level, study otherwise).
    #[arg(long, value_enum)]
    pub model: Option<Model>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Stop after N matches (a C-CANCEL is sent to the peer).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    #[command(flatten)]
    pub common: Common,
}

fn parse_level(s: &str) -> Result<QueryLevel, String> {
    s.parse().map_err(|e: dclient::Error| e.to_string())
}

/// Rows buffered to size the table's columns before the first line is printed; later
/// rows use the same widths, so memory stays flat for any number of matches.
const TABLE_SIZING_ROWS: usize = 1000;

/// Builds the request (all input errors happen here, before any network traffic), runs
/// the C-FIND and prints the matches as they arrive.
pub fn run(a: &Args) -> anyhow::Result<Outcome> {
    let query = crate::common::parse_keys(&a.keys)?;
    let mut req = FindRequest::new(a.level, query)?.with_limit(a.limit);
    if let Some(m) = a.model {
        req = req.with_model(match m {
            Model::Patient => InformationModel::PatientRoot,
            Model::Study => InformationModel::StudyRoot,
        })?;
    }
    // Check that the identifier encodes before connecting (a value that does not fit its
    // VR is bad input, exit 2).
    req.identifier().to_object()?;
    let columns: Vec<Tag> = req
        .identifier()
        .tags()
        .filter(|t| *t != QUERY_RETRIEVE_LEVEL && *t != SPECIFIC_CHARACTER_SET)
        .collect();

    let mut client = a.common.client(&a.host, a.port)?;
    let stdout = io::stdout();
    let mut out =
        Printer::new(a.format, columns, BufWriter::with_capacity(64 * 1024, stdout.lock()));
    let summary = client.find_each(&req, |m| match out.add(&m) {
        Ok(()) => ControlFlow::Continue(()),
        Err(_) => ControlFlow::Break(()),
    })?;
    let written = out.finish();
    match written {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(Outcome::Success),
        Err(e) => return Err(e).context("writing the matches"),
        Ok(()) => {}
    }
    if summary.cancelled {
        tracing::info!("stopped after {} matches (C-CANCEL sent)", summary.matches);
    }
    tracing::info!(
        "C-FIND {} at {}: {} matches, final status {}",
        req.level(),
        dclient::names::host_port(&a.host, a.port),
        summary.matches,
        summary.status
    );
    Ok(Outcome::Success)
}

/// Writes matches in one of the formats, streaming.
struct Printer<W: Write> {
    format: Format,
    columns: Vec<Tag>,
    w: W,
    count: usize,
    /// Table rows held back while the column widths are being measured.
    pending: Vec<Vec<String>>,
    widths: Option<Vec<usize>>,
    /// The first write error; nothing more is written after it.
    error: Option<io::Error>,
}

impl<W: Write> Printer<W> {
    fn new(format: Format, columns: Vec<Tag>, w: W) -> Self {
        Printer { format, columns, w, count: 0, pending: Vec::new(), widths: None, error: None }
    }

    fn add(&mut self, m: &InMemDicomObject) -> io::Result<()> {
        if self.error.is_some() {
            return Err(io::Error::other("output failed"));
        }
        let r = self.write_match(m);
        if let Err(e) = r {
            let kind = e.kind();
            self.error = Some(e);
            return Err(io::Error::new(kind, "output failed"));
        }
        Ok(())
    }

    fn cells(&self, m: &InMemDicomObject) -> Vec<String> {
        self.columns.iter().map(|t| m.get(*t).map(display_value).unwrap_or_default()).collect()
    }

    fn write_match(&mut self, m: &InMemDicomObject) -> io::Result<()> {
        self.count += 1;
        match self.format {
            Format::Json => {
                self.w.write_all(if self.count == 1 { b"[\n" } else { b",\n" })?;
                serde_json::to_writer(&mut self.w, &to_json(m))?;
            }
            Format::Csv => {
                if self.count == 1 {
                    let header: Vec<String> = self.columns.iter().map(|t| tag_name(*t)).collect();
                    write_csv_row(&mut self.w, &header)?;
                }
                let cells = self.cells(m);
                write_csv_row(&mut self.w, &cells)?;
            }
            Format::Table => {
                let cells = self.cells(m);
                match &self.widths {
                    Some(w) => write_table_row(&mut self.w, w, &cells)?,
                    None => {
                        self.pending.push(cells);
                        if self.pending.len() >= TABLE_SIZING_ROWS {
                            self.flush_table()?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn flush_table(&mut self) -> io::Result<()> {
        let header: Vec<String> = self.columns.iter().map(|t| tag_name(*t)).collect();
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in &self.pending {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        write_table_row(&mut self.w, &widths, &header)?;
        for row in std::mem::take(&mut self.pending) {
            write_table_row(&mut self.w, &widths, &row)?;
        }
        self.widths = Some(widths);
        Ok(())
    }

    /// Closes the output (JSON's closing bracket, a table shorter than the sizing window).
    fn finish(mut self) -> io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        match self.format {
            Format::Json => {
                self.w.write_all(if self.count == 0 { b"[]\n" } else { b"\n]\n" })?;
            }
            Format::Table if self.widths.is_none() && self.count > 0 => self.flush_table()?,
            _ => {}
        }
        self.w.flush()
    }
}

fn write_table_row<W: Write>(w: &mut W, widths: &[usize], cells: &[String]) -> io::Result<()> {
    let mut line = String::with_capacity(128);
    for (i, (c, width)) in cells.iter().zip(widths).enumerate() {
        // Control characters from the peer must not reach the terminal.
        let c: String = c.chars().map(|ch| if ch.is_control() { ' ' } else { ch }).collect();
        if i + 1 == cells.len() {
            line.push_str(&c);
        } else {
            let pad = width.saturating_sub(c.chars().count());
            line.push_str(&c);
            line.extend(std::iter::repeat_n(' ', pad + 2));
        }
    }
    line.truncate(line.trim_end().len());
    line.push('\n');
    w.write_all(line.as_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn table_alignment() {
        let mut v = Vec::new();
        write_table_row(&mut v, &[5, 3], &["ab".into(), "x".into()]).unwrap();
        write_table_row(&mut v, &[5, 3], &["Jérôme".into(), "\u{1b}[2J".into()]).unwrap();
        assert_eq!(String::from_utf8(v).unwrap(), "ab     x\nJérôme   [2J\n");
    }
}
