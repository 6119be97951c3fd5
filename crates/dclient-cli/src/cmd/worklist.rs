//! `dclient worklist HOST PORT [-k KEY=VALUE]... [--modality M] [--date RANGE]
//! [--station AE] [--format table|json|csv] [--limit N]`: Modality Worklist C-FIND, items
//! printed as they arrive.

use std::io::{self, BufWriter, Write};

use anyhow::Context;
use dclient::dataset::{display_value, tag_name, to_json, QueryValue, SPECIFIC_CHARACTER_SET};
use dclient::WorklistRequest;
use dicom_core::Tag;
use dicom_object::InMemDicomObject;

use crate::cmd::find::Format;
use crate::common::{write_csv_row, Common, Outcome};

/// Arguments of `dclient worklist`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The peer's host name or address.
    pub host: String,
    /// The peer's port.
    pub port: u16,
    /// A key: KEY=VALUE, or KEY alone to ask for it back; keys of the scheduled step are
    /// ScheduledProcedureStepSequence/Keyword. Repeatable; merged over the default return
    /// keys (patient, accession, requested procedure, study, and the step's modality,
    /// station AE title, start date and time, performing physician, ID and description).
    #[arg(short = 'k', long = "key", value_name = "KEY=VALUE")]
    pub keys: Vec<String>,
    /// Only steps for this modality.
    #[arg(long, value_name = "M")]
    pub modality: Option<String>,
    /// Only steps starting on these dates: YYYYMMDD, or a range A-B, A- or -B.
    #[arg(long, value_name = "RANGE")]
    pub date: Option<String>,
    /// Only steps scheduled for this station AE title.
    #[arg(long, value_name = "AE")]
    pub station: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Stop after N items (a C-CANCEL is sent to the peer).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    #[command(flatten)]
    pub common: Common,
}

/// A column: the path of tags to a value (into the first item of each sequence).
type Column = Vec<Tag>;

fn columns(q: &dclient::dataset::Query, prefix: &[Tag], out: &mut Vec<Column>) {
    for (tag, value) in q.iter() {
        if tag == SPECIFIC_CHARACTER_SET {
            continue;
        }
        let mut path = prefix.to_vec();
        path.push(tag);
        match value {
            QueryValue::Items(items) if items.len() == 1 => columns(&items[0], &path, out),
            _ => out.push(path),
        }
    }
}

fn cell(obj: &InMemDicomObject, path: &[Tag]) -> String {
    let Some((last, seqs)) = path.split_last() else { return String::new() };
    let mut o = obj;
    for t in seqs {
        match o.get(*t).and_then(|e| e.items()).and_then(|i| i.first()) {
            Some(item) => o = item,
            None => return String::new(),
        }
    }
    o.get(*last).map(display_value).unwrap_or_default()
}

/// Writes items in one of the formats (a table is sized on all its rows: worklists are
/// short).
struct Printer<W: Write> {
    format: Format,
    cols: Vec<Column>,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    n: usize,
    w: W,
}

impl<W: Write> Printer<W> {
    fn add(&mut self, item: &InMemDicomObject) -> io::Result<()> {
        self.n += 1;
        match self.format {
            Format::Json => {
                self.w.write_all(if self.n == 1 { b"[\n" } else { b",\n" })?;
                serde_json::to_writer(&mut self.w, &to_json(item))?;
            }
            Format::Csv => {
                if self.n == 1 {
                    write_csv_row(&mut self.w, &self.header)?;
                }
                let cells: Vec<String> = self.cols.iter().map(|c| cell(item, c)).collect();
                write_csv_row(&mut self.w, &cells)?;
            }
            Format::Table => self.rows.push(self.cols.iter().map(|c| cell(item, c)).collect()),
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<()> {
        match self.format {
            Format::Json => self.w.write_all(if self.n == 0 { b"[]\n" } else { b"\n]\n" })?,
            Format::Table if self.n > 0 => {
                let mut widths: Vec<usize> =
                    self.header.iter().map(|h| h.chars().count()).collect();
                for r in &self.rows {
                    for (w, c) in widths.iter_mut().zip(r) {
                        *w = (*w).max(c.chars().count());
                    }
                }
                for r in std::iter::once(&self.header).chain(self.rows.iter()) {
                    let mut line = String::new();
                    for (i, (c, w)) in r.iter().zip(&widths).enumerate() {
                        let c: String =
                            c.chars().map(|ch| if ch.is_control() { ' ' } else { ch }).collect();
                        line.push_str(&c);
                        if i + 1 < r.len() {
                            line.extend(std::iter::repeat_n(' ', w - c.chars().count() + 2));
                        }
                    }
                    writeln!(self.w, "{}", line.trim_end())?;
                }
            }
            _ => {}
        }
        self.w.flush()
    }
}

/// Builds the request (input errors before any traffic), runs the query, prints the items
/// (those that came before a failure too).
pub fn run(a: &Args) -> anyhow::Result<Outcome> {
    let query = crate::common::parse_keys(&a.keys)?;
    let mut req = WorklistRequest::new(query)?.with_limit(a.limit);
    if let Some(m) = &a.modality {
        req = req.modality(m)?;
    }
    if let Some(d) = &a.date {
        req = req.date(d)?;
    }
    if let Some(s) = &a.station {
        req = req.station(s)?;
    }
    req.identifier().to_object()?;
    let mut cols = Vec::new();
    columns(req.identifier(), &[], &mut cols);
    let header: Vec<String> =
        cols.iter().map(|p| p.last().map(|t| tag_name(*t)).unwrap_or_default()).collect();
    let client = a.common.client(&a.host, a.port)?;
    let mut stream = client.worklist_stream(&req)?;
    let stdout = io::stdout();
    let mut p = Printer {
        format: a.format,
        cols,
        header,
        rows: Vec::new(),
        n: 0,
        w: BufWriter::new(stdout.lock()),
    };
    let queried = loop {
        match stream.next_match() {
            Ok(Some(item)) => {
                if let Err(e) = p.add(&item) {
                    if e.kind() == io::ErrorKind::BrokenPipe {
                        return Ok(Outcome::Success);
                    }
                    return Err(e).context("writing the worklist");
                }
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    let n = p.n;
    match p.finish() {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(Outcome::Success),
        Err(e) => return Err(e).context("writing the worklist"),
        Ok(()) => {}
    }
    queried?;
    tracing::info!(
        "Modality Worklist at {}: {n} items",
        dclient::names::host_port(&a.host, a.port)
    );
    Ok(Outcome::Success)
}
