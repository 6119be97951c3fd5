//! A Modality Worklist from a folder of DICOM files (PS3.4 Annex K), the format DCMTK's
//! `wlmscpfs` reads: one worklist item per file, `*.wl` (Part 10 files, or raw data sets as
//! `dump2dcm -F` writes them), read again at every query so that files added or removed
//! by another program count at once. Other files, and `lockfile`, are left alone.
//!
//! Matching follows PS3.4 C.2.2.2 with the rules of [`matching`](crate::matching) (single
//! value, `*`/`?` wildcards, date and time ranges, UID lists, universal matching, any value
//! of a multi-valued attribute), and sequence matching (C.2.2.2.6): a key that is a
//! sequence with an item matches when one item of the worklist item's sequence matches
//! every key of that item; a sequence key without items (or whose item has only empty
//! keys) is universal. Each answer holds the requested keys only, with the item's values;
//! a sequence key with an item gets the matching items, each with the requested keys; one
//! without items gets the whole sequence. Combined date-time matching (Scheduled Procedure
//! Step Start Date with Start Time as one range, K.2.2.1.2) is not done: each key is
//! matched on its own, as for C-FIND.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use dclient::dataset::{read_dataset, DatasetEncoding};
use dclient::proto::dimse::status::Status;
use dclient::proto::uids;
use dclient::store::PreparedFile;
use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, Length, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::mem::InMemElement;
use dicom_object::InMemDicomObject;

use crate::archive::{Failure, FindAnswer};
use crate::matching::{Kind, MatchOptions, Matcher};

/// The largest worklist file read (real ones are a few kilobytes).
pub const MAX_ITEM_FILE: u64 = 1 << 20;
/// The most files a folder may hold for one query.
pub const MAX_ITEMS: usize = 100_000;

/// A folder of worklist items.
#[derive(Debug, Clone)]
pub struct WorklistFolder {
    dir: PathBuf,
    matching: MatchOptions,
}

impl WorklistFolder {
    /// The worklist in `dir` (which must be a folder we can read).
    pub fn open(dir: &Path, matching: MatchOptions) -> Result<WorklistFolder, std::io::Error> {
        std::fs::read_dir(dir)?;
        Ok(WorklistFolder { dir: dir.to_path_buf(), matching })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every readable item, in file name order; unreadable files are logged and left out.
    pub fn items(&self) -> Result<Vec<(PathBuf, InMemDicomObject)>, Failure> {
        let rd = std::fs::read_dir(&self.dir).map_err(|e| {
            Failure::new(Status::OUT_OF_RESOURCES, format!("cannot read the worklist folder: {e}"))
        })?;
        let mut paths: Vec<PathBuf> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.path())
            .filter(|p| {
                p.extension().and_then(|x| x.to_str()).is_some_and(|x| x.eq_ignore_ascii_case("wl"))
            })
            .take(MAX_ITEMS)
            .collect();
        paths.sort();
        let mut out = Vec::with_capacity(paths.len());
        for p in paths {
            match read_item(&p) {
                Ok(obj) => out.push((p, obj)),
                Err(why) => tracing::warn!("worklist file {} skipped: {why}", p.display()),
            }
        }
        Ok(out)
    }

    /// The answers to a worklist query, in file name order.
    pub fn find(&self, query: &InMemDicomObject) -> Result<Vec<InMemDicomObject>, Failure> {
        Ok(self
            .items()?
            .iter()
            .filter(|(_, item)| matches(query, item, self.matching))
            .map(|(_, item)| answer(query, item, self.matching))
            .collect())
    }

    /// The C-FIND answer of the SCP: [`find`](Self::find) as matches.
    pub fn find_answer(&self, query: &InMemDicomObject) -> Result<FindAnswer<'_>, Failure> {
        let found = self.find(query)?;
        Ok(FindAnswer {
            matches: Box::new(found.into_iter().map(Ok)),
            pending_status: Status::PENDING,
            description: "Modality Worklist".into(),
        })
    }
}

/// Reads one worklist file: a Part 10 file or a raw data set, at most [`MAX_ITEM_FILE`]
/// bytes, with the length checks of [`read_dataset`].
pub fn read_item(path: &Path) -> Result<InMemDicomObject, String> {
    let pf = PreparedFile::open(path).map_err(|e| e.to_string())?;
    if pf.data_len > MAX_ITEM_FILE {
        return Err(format!("{} bytes, more than the {MAX_ITEM_FILE} read", pf.data_len));
    }
    if pf.transfer_syntax == uids::DEFLATED_EXPLICIT_VR_LE {
        return Err("deflated worklist files are not read".into());
    }
    let enc = DatasetEncoding::from_uid(&pf.transfer_syntax).map_err(|e| e.to_string())?;
    let mut f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    f.seek(SeekFrom::Start(pf.data_offset)).map_err(|e| e.to_string())?;
    let mut buf = Vec::with_capacity(pf.data_len as usize);
    f.take(pf.data_len).read_to_end(&mut buf).map_err(|e| e.to_string())?;
    read_dataset(&buf, enc, MAX_ITEM_FILE as usize).map_err(|e| e.to_string())
}

/// Whether a query key takes part in matching (not the character set, not group 0000-0002).
fn is_key(tag: Tag) -> bool {
    tag.group() > 0x0002 && tag != tags::SPECIFIC_CHARACTER_SET
}

/// The VR a key is matched as: its own, or the item's when the query's is unknown (UN).
fn vr_of(key: &InMemElement, item: Option<&InMemElement>) -> VR {
    match key.header().vr {
        VR::UN => item.map_or(VR::UN, |e| e.header().vr),
        vr => vr,
    }
}

fn text(e: &InMemElement) -> String {
    e.to_str().map(|c| c.into_owned()).unwrap_or_default()
}

/// True when no key of `query` (nor of its sequences' items) has a value.
fn all_universal(query: &InMemDicomObject, opts: MatchOptions) -> bool {
    query.into_iter().filter(|e| is_key(e.header().tag)).all(|e| {
        if e.header().vr == VR::SQ {
            e.items().is_none_or(|items| items.iter().all(|i| all_universal(i, opts)))
        } else {
            Matcher::parse(Kind::of_vr(e.header().vr.to_string()), &text(e), opts)
                == Matcher::Universal
        }
    })
}

/// Whether `item` matches every key of `query` (PS3.4 C.2.2.2, sequences C.2.2.2.6).
pub fn matches(query: &InMemDicomObject, item: &InMemDicomObject, opts: MatchOptions) -> bool {
    query.into_iter().filter(|k| is_key(k.header().tag)).all(|key| {
        let tag = key.header().tag;
        let have = item.get(tag);
        if key.header().vr == VR::SQ {
            let Some(q) = key.items().and_then(|items| items.first()) else { return true };
            if all_universal(q, opts) {
                return true;
            }
            return have
                .and_then(|e| e.items())
                .is_some_and(|items| items.iter().any(|i| matches(q, i, opts)));
        }
        let kind = Kind::of_vr(vr_of(key, have).to_string());
        let m = Matcher::parse(kind, &text(key), opts);
        if m == Matcher::Universal {
            return true;
        }
        have.is_some_and(|e| m.matches(kind, &text(e), opts))
    })
}

/// The answer to `query` for a matching `item`: the requested keys with the item's values
/// (empty when the item lacks them); (0008,0005) of the item when it has non-ASCII text
/// or the query asks for it.
pub fn answer(
    query: &InMemDicomObject,
    item: &InMemDicomObject,
    opts: MatchOptions,
) -> InMemDicomObject {
    let mut out = build(query, item, opts);
    let charset = item.get(tags::SPECIFIC_CHARACTER_SET).map(text).unwrap_or_default();
    let asked = query.get(tags::SPECIFIC_CHARACTER_SET).is_some();
    let non_ascii = has_non_ascii(&out);
    if non_ascii {
        // Values were decoded by the item's character set; they go out as UTF-8.
        out.put(DataElement::new(
            tags::SPECIFIC_CHARACTER_SET,
            VR::CS,
            PrimitiveValue::from("ISO_IR 192"),
        ));
    } else if asked {
        let v = if charset.trim().is_empty() {
            PrimitiveValue::Empty
        } else {
            PrimitiveValue::from(charset.trim().to_owned())
        };
        out.put(DataElement::new(tags::SPECIFIC_CHARACTER_SET, VR::CS, v));
    }
    out
}

fn build(
    query: &InMemDicomObject,
    item: &InMemDicomObject,
    opts: MatchOptions,
) -> InMemDicomObject {
    let mut out = InMemDicomObject::new_empty();
    for key in query.into_iter().filter(|k| is_key(k.header().tag)) {
        let tag = key.header().tag;
        let have = item.get(tag);
        if key.header().vr == VR::SQ {
            let items: Vec<InMemDicomObject> = match (key.items().and_then(|i| i.first()), have) {
                (_, None) => Vec::new(),
                (None, Some(h)) => h.items().map(<[InMemDicomObject]>::to_vec).unwrap_or_default(),
                (Some(q), Some(h)) => h
                    .items()
                    .unwrap_or_default()
                    .iter()
                    .filter(|i| all_universal(q, opts) || matches(q, i, opts))
                    .map(|i| build(q, i, opts))
                    .collect(),
            };
            out.put(DataElement::new(tag, VR::SQ, DataSetSequence::new(items, Length::UNDEFINED)));
            continue;
        }
        match have {
            Some(e) if e.header().vr != VR::SQ => {
                out.put(e.clone());
            }
            _ => {
                let vr = if key.header().vr == VR::UN { VR::UN } else { key.header().vr };
                out.put(DataElement::new(tag, vr, PrimitiveValue::Empty));
            }
        }
    }
    out
}

fn has_non_ascii(obj: &InMemDicomObject) -> bool {
    obj.into_iter().any(|e| match e.items() {
        Some(items) => items.iter().any(has_non_ascii),
        None => e.header().vr != VR::OB && e.header().vr != VR::UN && !text(e).is_ascii(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(pairs: &[(Tag, VR, &str)]) -> InMemDicomObject {
        let mut o = InMemDicomObject::new_empty();
        for (t, vr, v) in pairs {
            let val = if v.is_empty() {
                PrimitiveValue::Empty
            } else if v.contains('\\') {
                PrimitiveValue::Strs(v.split('\\').map(str::to_owned).collect())
            } else {
                PrimitiveValue::from(*v)
            };
            o.put(DataElement::new(*t, *vr, val));
        }
        o
    }

    fn with_steps(mut o: InMemDicomObject, steps: Vec<InMemDicomObject>) -> InMemDicomObject {
        o.put(DataElement::new(
            tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
            VR::SQ,
            DataSetSequence::new(steps, Length::UNDEFINED),
        ));
        o
    }

    fn item() -> InMemDicomObject {
        with_steps(
            obj(&[
                (tags::PATIENT_NAME, VR::PN, "VIVALDI^ANTONIO"),
                (tags::PATIENT_ID, VR::LO, "AV35674"),
            ]),
            vec![obj(&[
                (tags::MODALITY, VR::CS, "MR"),
                (tags::SCHEDULED_STATION_AE_TITLE, VR::AE, "AA32\\AA33"),
                (tags::SCHEDULED_PROCEDURE_STEP_START_DATE, VR::DA, "19951015"),
                (tags::SCHEDULED_PROCEDURE_STEP_ID, VR::SH, "SPD3445"),
            ])],
        )
    }

    fn query(step: &[(Tag, VR, &str)]) -> InMemDicomObject {
        with_steps(
            obj(&[(tags::PATIENT_NAME, VR::PN, ""), (tags::PATIENT_ID, VR::LO, "")]),
            vec![obj(step)],
        )
    }

    #[test]
    fn sequence_matching_and_multi_valued_station_ae_titles() {
        let o = MatchOptions::default();
        let i = item();
        assert!(matches(&query(&[(tags::MODALITY, VR::CS, "MR")]), &i, o));
        assert!(!matches(&query(&[(tags::MODALITY, VR::CS, "CT")]), &i, o));
        assert!(matches(&query(&[(tags::SCHEDULED_STATION_AE_TITLE, VR::AE, "AA33")]), &i, o));
        assert!(matches(
            &query(&[(tags::SCHEDULED_PROCEDURE_STEP_START_DATE, VR::DA, "19950101-19951231")]),
            &i,
            o
        ));
        assert!(!matches(
            &query(&[(tags::SCHEDULED_PROCEDURE_STEP_START_DATE, VR::DA, "19960101-")]),
            &i,
            o
        ));
        // Universal keys in the step item, or no item: everything matches.
        assert!(matches(&query(&[(tags::MODALITY, VR::CS, "")]), &i, o));
        assert!(matches(&with_steps(InMemDicomObject::new_empty(), vec![]), &i, o));
        // A key with a value that the item lacks does not match.
        let q = obj(&[(tags::ACCESSION_NUMBER, VR::SH, "00000")]);
        assert!(!matches(&q, &i, o));
        // Top level wildcards.
        let q = obj(&[(tags::PATIENT_NAME, VR::PN, "vivaldi*")]);
        assert!(matches(&q, &i, o));
    }

    #[test]
    fn answers_hold_the_requested_keys_only() {
        let o = MatchOptions::default();
        let q = query(&[
            (tags::MODALITY, VR::CS, "MR"),
            (tags::SCHEDULED_PROCEDURE_STEP_DESCRIPTION, VR::LO, ""),
        ]);
        let a = answer(&q, &item(), o);
        assert_eq!(a.get(tags::PATIENT_NAME).map(text).as_deref(), Some("VIVALDI^ANTONIO"));
        let steps =
            a.get(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE).and_then(|e| e.items()).expect("steps");
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].get(tags::MODALITY).map(text).as_deref(), Some("MR"));
        assert!(steps[0].get(tags::SCHEDULED_PROCEDURE_STEP_DESCRIPTION).is_some(), "asked, empty");
        assert!(steps[0].get(tags::SCHEDULED_PROCEDURE_STEP_ID).is_none(), "not asked");
        assert!(a.get(tags::SPECIFIC_CHARACTER_SET).is_none());
        // A step sequence asked for without an item comes back whole.
        let q = with_steps(InMemDicomObject::new_empty(), vec![]);
        let a = answer(&q, &item(), o);
        let steps =
            a.get(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE).and_then(|e| e.items()).expect("steps");
        assert_eq!(
            steps[0].get(tags::SCHEDULED_PROCEDURE_STEP_ID).map(text).as_deref(),
            Some("SPD3445")
        );
    }
}
