//! Finding what to copy, so that nothing is missed.
//!
//! **A peer**: study-level C-FINDs with the selection keys. Archives cap their answers
//! silently (Orthanc's `LimitFindResults` returns exactly the cap, then FE00 "cancel"
//! though nobody cancelled; others end with success), so a query that comes back with as
//! many matches as `--query-cap`, or cut by the peer, is split and run again until every
//! part is under the cap: by Study Date range (bisected: before 1900, 1900 to today, after
//! today, then halves), within one day by Study Time range (halves of the day), and within
//! one second by Patient ID prefix (`0*` .. `9*`, `A*` .. `Z*`, `a*` .. `z*`, `-*`, `_*`,
//! `.*`). Each part is a row of the journal (pending, split, done), so a resumed inventory
//! goes on where it stopped; studies are keyed by Study Instance UID, so overlapping
//! answers never count one twice. Number of Study Related Instances, when the peer gives
//! it, is the study's expected count; otherwise it is worked out before the transfer
//! ([`crate::peer::count_study`]).
//!
//! Range matching never matches a study without a Study Date (or Study Time): such
//! studies are found only by a query that is not split. A part that cannot be split
//! further and is still at the cap is reported: the inventory is then incomplete and the
//! job cannot end verified.
//!
//! **A folder**: a walk (depth first, in directory order, never a whole listing in
//! memory) whose files go to the journal a few hundred at a time, read with the bounded
//! header reader of the built-in SCP's index. A resumed scan skips the files the journal
//! knows by path. It runs beside the transfer, so the first C-STORE does not wait for the
//! scan to end.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dclient::dataset::{Query, QueryValue};
use dclient::{FindRequest, QueryLevel};
use dicom_dictionary_std::tags;

use crate::error::{CopyError, Result};
use crate::event::{Event, Events};
use crate::journal::{Journal, NewInstance, StudyInfo};
use crate::peer::{count, find_each, text, PeerClient};
use crate::retry::{classify_error, RetryPolicy};
use crate::shard::Shard;

/// The default `--query-cap`: low enough to sit under the limits archives commonly set.
pub const DEFAULT_QUERY_CAP: u64 = 500;

// ------------------------------------------------------------------ dates and parts

/// A calendar day as a count of days since 1970-01-01 (proleptic Gregorian).
type Day = i64;

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> Day {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day.
fn civil_from_days(z: Day) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn parse_da(s: &str) -> Option<Day> {
    let s = s.trim();
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i64 = s[0..4].parse().ok()?;
    let m: i64 = s[4..6].parse().ok()?;
    let d: i64 = s[6..8].parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

fn da(day: Day) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}{m:02}{d:02}")
}

fn today() -> Day {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    (secs / 86_400) as Day
}

const Y1900: &str = "19000101";
/// 0001-01-01: open date ranges are not split below it.
const YEAR_1: Day = -719_162;
/// Patient ID prefixes are extended by at most this many characters.
const MAX_PID_SPLIT: usize = 2;
/// An inventory with more parts than this is stopped: the archive's answers do not
/// shrink as its queries narrow (it may ignore range matching).
const MAX_PARTS: u64 = 200_000;

/// Characters Patient ID prefixes are split on, in order.
const ID_CHARS: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_.";

/// One query of the inventory: the selection keys with the part's Study Date, Study Time
/// and Patient ID. Written in the journal as `date=A-B;time=C-D;pid=P`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Part {
    /// Study Date range (`None` ends are open); `None`: the selection's own key.
    pub date: Option<(Option<Day>, Option<Day>)>,
    /// Study Time range in seconds of the day, inclusive.
    pub time: Option<(u32, u32)>,
    /// Patient ID prefix (matched as `PREFIX*`).
    pub pid: Option<String>,
}

fn tm(secs: u32) -> String {
    format!("{:02}{:02}{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

impl Part {
    /// The journal's text of this part.
    pub fn spec(&self) -> String {
        let mut v = Vec::new();
        if let Some((lo, hi)) = self.date {
            v.push(format!(
                "date={}-{}",
                lo.map(da).unwrap_or_default(),
                hi.map(da).unwrap_or_default()
            ));
        }
        if let Some((a, b)) = self.time {
            v.push(format!("time={}-{}", tm(a), tm(b)));
        }
        if let Some(p) = &self.pid {
            v.push(format!("pid={p}"));
        }
        if v.is_empty() {
            "all".into()
        } else {
            v.join(";")
        }
    }

    /// A part from its journal text.
    pub fn parse(spec: &str) -> Option<Part> {
        let mut p = Part::default();
        if spec == "all" {
            return Some(p);
        }
        for item in spec.split(';') {
            let (k, v) = item.split_once('=')?;
            match k {
                "date" => {
                    let (a, b) = v.split_once('-')?;
                    let end =
                        |s: &str| if s.is_empty() { Some(None) } else { parse_da(s).map(Some) };
                    p.date = Some((end(a)?, end(b)?));
                }
                "time" => {
                    let (a, b) = v.split_once('-')?;
                    let secs = |s: &str| -> Option<u32> {
                        if s.len() != 6 {
                            return None;
                        }
                        let h: u32 = s[0..2].parse().ok()?;
                        let m: u32 = s[2..4].parse().ok()?;
                        let x: u32 = s[4..6].parse().ok()?;
                        Some(h * 3600 + m * 60 + x)
                    };
                    p.time = Some((secs(a)?, secs(b)?));
                }
                "pid" => p.pid = Some(v.to_owned()),
                _ => return None,
            }
        }
        Some(p)
    }

    /// The parts this one splits into when it came back at the cap, given what the
    /// selection allows; empty when it cannot be split further.
    pub fn split(&self, sel: &Selection) -> Vec<Part> {
        let with = |f: &dyn Fn(&mut Part)| {
            let mut c = self.clone();
            f(&mut c);
            c
        };
        if sel.date_splittable {
            let (lo, hi) = match self.date {
                Some(d) => d,
                None => sel.date.unwrap_or((None, None)),
            };
            let y1900 = parse_da(Y1900).unwrap_or(0);
            let t = today();
            let ranges: Vec<(Option<Day>, Option<Day>)> = match (lo, hi) {
                (None, None) => vec![(None, Some(y1900 - 1)), (Some(y1900), None)],
                (None, Some(h)) if h >= y1900 => {
                    vec![(None, Some(y1900 - 1)), (Some(y1900), Some(h))]
                }
                (None, Some(h)) if h > YEAR_1 => {
                    let cut = (h - 36_500).max(YEAR_1);
                    vec![(None, Some(cut)), (Some(cut + 1), Some(h))]
                }
                (None, Some(_)) => Vec::new(),
                (Some(l), None) if l <= t => vec![(Some(l), Some(t)), (Some(t + 1), None)],
                (Some(l), None) => vec![(Some(l), Some(l + 36_500)), (Some(l + 36_501), None)],
                (Some(l), Some(h)) if l < h => {
                    let mid = l + (h - l) / 2;
                    vec![(Some(l), Some(mid)), (Some(mid + 1), Some(h))]
                }
                (Some(_), Some(_)) => Vec::new(),
            };
            if !ranges.is_empty() {
                return ranges
                    .into_iter()
                    .map(|r| with(&|c: &mut Part| c.date = Some(r)))
                    .collect();
            }
        }
        if sel.time_splittable {
            let (a, b) = self.time.unwrap_or((0, 86_399));
            if a < b {
                let mid = a + (b - a) / 2;
                return [(a, mid), (mid + 1, b)]
                    .into_iter()
                    .map(|r| with(&|c: &mut Part| c.time = Some(r)))
                    .collect();
            }
        }
        if let Some(base) = &sel.pid_prefix {
            let cur = self.pid.clone().unwrap_or_else(|| base.clone());
            if cur.len() < base.len() + MAX_PID_SPLIT {
                return ID_CHARS
                    .chars()
                    .map(|ch| {
                        let p = format!("{cur}{ch}");
                        with(&|c: &mut Part| c.pid = Some(p.clone()))
                    })
                    .collect();
            }
        }
        Vec::new()
    }
}

/// The study-level selection (`-k KEY=VALUE`) and what it leaves free for splitting.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The keys as given.
    pub keys: Query,
    /// The Study Date range of the keys, when they give one.
    date: Option<(Option<Day>, Option<Day>)>,
    date_splittable: bool,
    time_splittable: bool,
    /// The Patient ID prefix parts extend (`""` when the keys give no Patient ID).
    pid_prefix: Option<String>,
}

impl Selection {
    /// The selection of `keys`. A Study Date that is not a date or a range of dates, a
    /// Study Time, or a Patient ID other than `PREFIX*` is matched as given, and that
    /// key is not used to split.
    pub fn new(keys: Query) -> Selection {
        let value = |t| match keys.get(t) {
            Some(QueryValue::Text(v)) => Some(v.trim().to_owned()),
            Some(QueryValue::Items(_)) => Some("(sequence)".into()),
            None => None,
        };
        let (date, date_splittable) = match value(tags::STUDY_DATE).filter(|v| !v.is_empty()) {
            None => (None, true),
            Some(v) => match v.split_once('-') {
                Some((a, b)) => {
                    let end =
                        |s: &str| if s.is_empty() { Some(None) } else { parse_da(s).map(Some) };
                    match (end(a), end(b)) {
                        (Some(a), Some(b)) => (Some((a, b)), true),
                        _ => (None, false),
                    }
                }
                None => match parse_da(&v) {
                    Some(d) => (Some((Some(d), Some(d))), true),
                    None => (None, false),
                },
            },
        };
        let time_splittable = value(tags::STUDY_TIME).is_none_or(|v| v.is_empty());
        let pid_prefix = match value(tags::PATIENT_ID) {
            None => Some(String::new()),
            Some(v) if v.is_empty() => Some(String::new()),
            Some(v) => {
                v.strip_suffix('*').filter(|p| !p.contains(['*', '?', '\\'])).map(str::to_owned)
            }
        };
        Selection { keys, date, date_splittable, time_splittable, pid_prefix }
    }

    /// The first part: the selection as given.
    pub fn root(&self) -> Part {
        Part::default()
    }

    /// The C-FIND of a part: the selection's keys, the part's overrides, and the return
    /// keys the journal records.
    pub fn request(&self, part: &Part) -> dclient::Result<FindRequest> {
        let mut q = self.keys.clone();
        for t in [
            tags::STUDY_INSTANCE_UID,
            tags::PATIENT_ID,
            tags::PATIENT_NAME,
            tags::STUDY_DATE,
            tags::ACCESSION_NUMBER,
            tags::MODALITIES_IN_STUDY,
            tags::NUMBER_OF_STUDY_RELATED_INSTANCES,
        ] {
            if q.get(t).is_none() {
                q.set_tag(t, "");
            }
        }
        if let Some((lo, hi)) = part.date {
            let v = match (lo, hi) {
                (Some(a), Some(b)) if a == b => da(a),
                (lo, hi) => {
                    format!("{}-{}", lo.map(da).unwrap_or_default(), hi.map(da).unwrap_or_default())
                }
            };
            q.set_tag(tags::STUDY_DATE, v);
        }
        if let Some((a, b)) = part.time {
            q.set_tag(tags::STUDY_TIME, format!("{}-{}", tm(a), tm(b)));
        }
        if let Some(p) = &part.pid {
            q.set_tag(tags::PATIENT_ID, format!("{p}*"));
        }
        FindRequest::new(QueryLevel::Study, q)
    }
}

/// What an inventory run found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InventoryReport {
    /// Parts that were at the cap and could not be split further (their studies are
    /// recorded, but more may exist).
    pub incomplete_parts: Vec<String>,
}

/// What [`inventory_peer`] needs.
#[derive(Debug)]
pub struct Inventory<'a> {
    /// The source.
    pub src: &'a PeerClient,
    /// The selection.
    pub sel: &'a Selection,
    /// Split a query answered with this many matches.
    pub cap: u64,
    /// Keep only this shard's studies.
    pub shard: Option<Shard>,
    /// Retries of failed queries.
    pub retry: &'a RetryPolicy,
    /// Progress and failures.
    pub events: &'a Events<'a>,
    /// Set to stop between two queries.
    pub stop: &'a AtomicBool,
}

/// Runs the pending parts of the inventory of `inv.src` into the journal.
pub fn inventory_peer(journal: &mut Journal, inv: &Inventory<'_>) -> Result<InventoryReport> {
    let Inventory { src, sel, cap, shard, retry, events, stop } = *inv;
    if journal.inventory_done()? {
        return Ok(InventoryReport::default());
    }
    journal.add_part(&sel.root().spec())?;
    let mut report = InventoryReport::default();
    let mut assoc: Option<dclient::Association> = None;
    let mut failures = 0u32;
    let mut found_total = 0u64;
    while let Some((id, spec)) = journal.next_part()? {
        if stop.load(Ordering::Relaxed) {
            return Ok(report);
        }
        let part = Part::parse(&spec).ok_or_else(|| {
            CopyError::Usage(format!("journal part {spec:?} is not one this dclient wrote"))
        })?;
        let req = sel.request(&part).map_err(|e| CopyError::Usage(e.to_string()))?;
        let a = match assoc.as_mut().filter(|a| a.is_open()) {
            Some(a) => a,
            None => match src.open_find() {
                Ok(a) => assoc.insert(a),
                Err(e) => {
                    failures += 1;
                    if retry.again(classify_error(&e), failures) {
                        std::thread::sleep(retry.delay(failures));
                        continue;
                    }
                    return Err(CopyError::Peer {
                        what: format!("inventory on {}", src.addr),
                        source: e,
                    });
                }
            },
        };
        let mut studies: Vec<StudyInfo> = Vec::new();
        let r = find_each(a, &req, Some(cap), &mut |m| {
            let uid = text(&m, tags::STUDY_INSTANCE_UID);
            if uid.is_empty() {
                return;
            }
            studies.push(StudyInfo {
                study_uid: uid,
                patient_id: text(&m, tags::PATIENT_ID),
                patient_name: text(&m, tags::PATIENT_NAME),
                study_date: text(&m, tags::STUDY_DATE),
                accession: text(&m, tags::ACCESSION_NUMBER),
                modalities: text(&m, tags::MODALITIES_IN_STUDY),
                expected: count(&m, tags::NUMBER_OF_STUDY_RELATED_INSTANCES),
            });
        });
        let end = match r {
            Ok(end) => {
                failures = 0;
                end
            }
            Err(e) => {
                assoc = None;
                failures += 1;
                if retry.again(classify_error(&e), failures) {
                    tracing::info!("inventory query {spec} failed ({e}); trying again");
                    std::thread::sleep(retry.delay(failures));
                    continue;
                }
                return Err(CopyError::Peer {
                    what: format!("inventory on {}", src.addr),
                    source: e,
                });
            }
        };
        let capped = end.cut_by_peer || end.matches >= cap;
        if capped && journal.part_count()? >= MAX_PARTS {
            return Err(CopyError::Usage(format!(
                "inventory on {}: {MAX_PARTS} queries and still at the cap: the archive's answers \
                 do not shrink as the queries narrow (does it match date ranges?); narrow the \
                 selection (-k)",
                src.addr
            )));
        }
        if capped {
            let children = part.split(sel);
            if !children.is_empty() {
                tracing::info!(
                    "inventory: {spec} gave {} matches{} (cap {cap}): split into {}",
                    end.matches,
                    if end.cut_by_peer { ", then the peer's 'cancel'" } else { "" },
                    children.len()
                );
                let specs: Vec<String> = children.iter().map(Part::spec).collect();
                journal.split_part(id, end.matches, &specs)?;
                continue;
            }
            let line = format!(
                "inventory: {spec} still gives {} matches (cap {cap}) and cannot be split further: \
                 studies may be missing; narrow the selection (-k) or raise --query-cap if the \
                 archive allows more",
                end.matches
            );
            events.emit(Event::Failure { line: &line });
            report.incomplete_parts.push(spec.clone());
        }
        studies.retain(|s| shard.is_none_or(|sh| sh.takes(&s.study_uid)));
        found_total += studies.len() as u64;
        journal.finish_part(id, end.matches, &studies)?;
        let (done, split, pending) = journal.part_counts()?;
        events.emit(Event::Inventory {
            studies: found_total,
            parts_done: done + split,
            parts_pending: pending,
            files: 0,
        });
    }
    if let Some(a) = assoc {
        let _ = a.release();
    }
    if report.incomplete_parts.is_empty() {
        journal.set_inventory_done()?;
    } else {
        journal.set_meta("inventory_incomplete", &report.incomplete_parts.join(" "))?;
        journal.set_inventory_done()?;
    }
    Ok(report)
}

// ------------------------------------------------------------------ folder scan

/// Folders are walked at most this deep.
const MAX_DEPTH: usize = 64;
/// Files per journal transaction of the scan.
const SCAN_BATCH: usize = 256;
/// ... or at least this often, so that the transfer can start at once.
const SCAN_FLUSH: Duration = Duration::from_millis(100);

/// Walks `dir` into the journal: every DICOM file (of our shard) as a pending instance,
/// every other file as skipped. Stops early when `stop` is set.
pub fn scan_folder(
    journal: &mut Journal,
    dir: &Path,
    shard: Option<Shard>,
    events: &Events<'_>,
    stop: &AtomicBool,
) -> Result<u64> {
    if journal.inventory_done()? {
        return Ok(0);
    }
    let mut stack: Vec<std::fs::ReadDir> =
        vec![std::fs::read_dir(dir)
            .map_err(|e| CopyError::File { path: dir.to_owned(), source: e })?];
    let mut found: Vec<NewInstance> = Vec::with_capacity(SCAN_BATCH);
    let mut skipped: Vec<(PathBuf, String)> = Vec::new();
    let mut files = 0u64;
    let mut last_flush = Instant::now();
    let flush = |journal: &mut Journal,
                 found: &mut Vec<NewInstance>,
                 skipped: &mut Vec<(PathBuf, String)>,
                 files: u64|
     -> Result<()> {
        if found.is_empty() && skipped.is_empty() {
            return Ok(());
        }
        let dupes = journal.add_instances(found, skipped)?;
        for (p, other) in dupes {
            tracing::warn!(
                "{}: the same SOP Instance UID as {}; sent once, from the first",
                p.display(),
                other.display()
            );
        }
        found.clear();
        skipped.clear();
        events.emit(Event::Inventory { studies: 0, parts_done: 0, parts_pending: 0, files });
        Ok(())
    };
    while let Some(top) = stack.last_mut() {
        if stop.load(Ordering::Relaxed) {
            flush(journal, &mut found, &mut skipped, files)?;
            return Ok(files);
        }
        let Some(entry) = top.next() else {
            stack.pop();
            continue;
        };
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!("{}: cannot read the folder: {e}", dir.display());
                continue;
            }
        };
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') || name.eq_ignore_ascii_case("DICOMDIR") {
            continue;
        }
        let Ok(ft) = entry.file_type() else { continue };
        let is_file = if ft.is_symlink() {
            match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => true,
                _ => continue, // links to folders are not followed (they could loop)
            }
        } else if ft.is_dir() {
            if stack.len() > MAX_DEPTH {
                tracing::warn!(
                    "{}: folders nested deeper than {MAX_DEPTH}, not entered",
                    path.display()
                );
                continue;
            }
            match std::fs::read_dir(&path) {
                Ok(rd) => stack.push(rd),
                Err(e) => tracing::warn!("{}: cannot read the folder: {e}", path.display()),
            }
            continue;
        } else {
            ft.is_file()
        };
        if !is_file {
            continue;
        }
        files += 1;
        if journal.knows_path(&path)? {
            continue;
        }
        match dclient_scp::header::read_instance(&path) {
            Ok(r) => {
                if r.study_uid.is_empty() || r.sop_instance_uid.is_empty() {
                    skipped.push((path, "no Study or SOP Instance UID".into()));
                } else if shard.is_none_or(|s| s.takes(&r.study_uid)) {
                    found.push(NewInstance {
                        sop_uid: r.sop_instance_uid,
                        sop_class: r.sop_class_uid,
                        series_uid: r.series_uid,
                        transfer_syntax: r.transfer_syntax,
                        path,
                        bytes: r.file_size,
                        study: StudyInfo {
                            study_uid: r.study_uid,
                            patient_id: r.patient_id,
                            patient_name: r.patient_name,
                            study_date: r.study_date,
                            accession: r.accession_number,
                            modalities: r.modality,
                            expected: None,
                        },
                    });
                }
            }
            Err(e) => {
                tracing::debug!("{}: skipped: {e}", path.display());
                skipped.push((path, e.to_string()));
            }
        }
        if found.len() + skipped.len() >= SCAN_BATCH || last_flush.elapsed() >= SCAN_FLUSH {
            flush(journal, &mut found, &mut skipped, files)?;
            last_flush = Instant::now();
        }
    }
    flush(journal, &mut found, &mut skipped, files)?;
    journal.set_inventory_done()?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip() {
        for s in ["19700101", "19000101", "20240229", "20991231", "00010101", "18991231"] {
            assert_eq!(da(parse_da(s).expect(s)), s);
        }
        assert_eq!(parse_da("19700101"), Some(0));
        assert_eq!(parse_da("2024-01-01"), None);
        assert_eq!(parse_da("20241301"), None);
    }

    #[test]
    fn parts_round_trip_through_the_journal_text() {
        let p = Part {
            date: Some((Some(parse_da("20200101").expect("d")), None)),
            time: Some((0, 43_199)),
            pid: Some("A7".into()),
        };
        assert_eq!(p.spec(), "date=20200101-;time=000000-115959;pid=A7");
        assert_eq!(Part::parse(&p.spec()), Some(p));
        assert_eq!(Part::parse("all"), Some(Part::default()));
        assert_eq!(Part::parse("date=x-y"), None);
    }

    #[test]
    fn a_capped_universal_query_splits_by_date_then_time_then_patient_id() {
        let sel = Selection::new(Query::new());
        let root = sel.root();
        let kids = root.split(&sel);
        assert_eq!(
            kids.iter().map(Part::spec).collect::<Vec<_>>(),
            ["date=-18991231", "date=19000101-"]
        );
        let recent = kids[1].split(&sel);
        assert_eq!(recent[0].spec(), format!("date=19000101-{}", da(today())));
        // Down to one day, then the time, then the Patient ID.
        let mut p = recent[0].clone();
        while p.date.is_some_and(|(a, b)| a != b) {
            p = p.split(&sel).remove(0);
        }
        assert_eq!(p.spec(), "date=19000101-19000101");
        let t = p.split(&sel);
        assert_eq!(t[1].spec(), "date=19000101-19000101;time=120000-235959");
        let mut q = t[0].clone();
        while q.time.is_some_and(|(a, b)| a != b) {
            q = q.split(&sel).remove(0);
        }
        let ids = q.split(&sel);
        assert_eq!(ids.len(), ID_CHARS.len());
        assert_eq!(ids[10].pid.as_deref(), Some("A"));
        let req = sel.request(&ids[10]).expect("req");
        let v = |t| match req.identifier().get(t) {
            Some(QueryValue::Text(v)) => v.clone(),
            _ => String::new(),
        };
        assert_eq!(v(tags::STUDY_DATE), "19000101");
        assert_eq!(v(tags::STUDY_TIME), "000000-000000");
        assert_eq!(v(tags::PATIENT_ID), "A*");
        assert_eq!(v(tags::NUMBER_OF_STUDY_RELATED_INSTANCES), "");
    }

    #[test]
    fn the_selection_limits_what_may_split() {
        let q = Query::from_pairs([("StudyDate", "20240101-20240131"), ("PatientID", "PID1")])
            .expect("q");
        let sel = Selection::new(q);
        let kids = sel.root().split(&sel);
        assert_eq!(
            kids.iter().map(Part::spec).collect::<Vec<_>>(),
            ["date=20240101-20240116", "date=20240117-20240131"]
        );
        // A fixed patient, one day, one second: nothing left to split.
        let p = Part {
            date: Some((parse_da("20240101"), parse_da("20240101"))),
            time: Some((5, 5)),
            pid: None,
        };
        assert!(p.split(&sel).is_empty());
        // A date that is not a range is not split on.
        let sel = Selection::new(Query::from_pairs([("StudyDate", "2024*")]).expect("q"));
        assert!(sel.root().split(&sel)[0].date.is_none());
    }
}
