//! C-FIND and retrieve identifiers against the folder archive's index: parsing an
//! identifier with the hierarchical rules of its model (PS3.4 C.4.1.2.1, C.4.2.2.1),
//! selecting the matching rows with the C.2.2.2 rules of [`matching`](crate::matching), and
//! building each match's identifier (the requested keys only).

use std::str::FromStr;

use dclient::proto::dimse::status::Status;
use dclient::{InformationModel, QueryLevel};
use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use crate::archive::Failure;
use crate::header;
use crate::index::{self, Narrow, Row};
use crate::matching::{Kind, MatchOptions, Matcher, Pattern};

fn fail(status: Status, comment: impl Into<String>) -> Failure {
    Failure::new(status, comment)
}

fn does_not_match(comment: impl Into<String>) -> Failure {
    fail(Status::DOES_NOT_MATCH_SOP_CLASS, comment)
}

/// One key of a query.
#[derive(Debug, Clone)]
pub struct Key {
    /// The tag.
    pub tag: Tag,
    /// The VR to answer with.
    pub vr: VR,
    /// How it is matched.
    pub kind: Kind,
    /// The parsed value.
    pub matcher: Matcher,
    /// The level of the index attribute (None: not in the index).
    pub level: Option<QueryLevel>,
    /// A sequence key (returned empty).
    pub sequence: bool,
}

/// A parsed C-FIND/C-GET/C-MOVE identifier.
#[derive(Debug, Clone)]
pub struct Query {
    /// Query/Retrieve QueryLevel.
    pub level: QueryLevel,
    /// Information model.
    pub model: InformationModel,
    /// The keys, in the order given.
    pub keys: Vec<Key>,
    /// A key we cannot match had a value (answered with 0xFF01).
    pub unsupported_matching: bool,
}

impl Query {
    fn key(&self, tag: Tag) -> Option<&Key> {
        self.keys.iter().find(|k| k.tag == tag)
    }

    /// The values of a unique key given as a single value or a list (None: absent,
    /// universal, or with wildcards).
    fn exact_values(&self, tag: Tag) -> Option<Vec<String>> {
        match &self.key(tag)?.matcher {
            Matcher::Uids(l) => Some(l.clone()),
            Matcher::Values(alts) => alts
                .iter()
                .map(|p| match p {
                    Pattern::Exact(s) => Some(s.clone()),
                    Pattern::Wildcard(_) => None,
                })
                .collect(),
            _ => None,
        }
    }

    pub(crate) fn narrow(&self) -> Narrow {
        Narrow {
            patient_ids: self.exact_values(tags::PATIENT_ID),
            study_uids: self.exact_values(tags::STUDY_INSTANCE_UID),
            series_uids: self.exact_values(tags::SERIES_INSTANCE_UID),
            sop_uids: self.exact_values(tags::SOP_INSTANCE_UID),
        }
    }
}

fn printable(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(24).collect()
}

/// Parses an identifier (already checked) and applies the hierarchical rules of the model
/// (PS3.4 C.4.1.2.1 for C-FIND, C.4.2.2.1 for retrieval).
pub fn parse_query(
    obj: &InMemDicomObject,
    model: InformationModel,
    opts: MatchOptions,
    retrieve: bool,
) -> Result<Query, Failure> {
    let level_text = header::text(obj, tags::QUERY_RETRIEVE_LEVEL);
    if level_text.is_empty() {
        return Err(does_not_match("no Query/Retrieve QueryLevel (0008,0052)"));
    }
    let level = QueryLevel::parse(&level_text).ok_or_else(|| {
        does_not_match(format!("unknown Query/Retrieve QueryLevel {:?}", printable(&level_text)))
    })?;
    if level < model.top_level() {
        return Err(does_not_match(format!(
            "{} level is not part of the {} model",
            level.as_str(),
            model.name()
        )));
    }
    let mut q = Query { level, model, keys: Vec::new(), unsupported_matching: false };
    for elem in obj {
        let tag = elem.header().tag;
        if tag.group() <= 0x0002
            || tag == tags::QUERY_RETRIEVE_LEVEL
            || tag == tags::SPECIFIC_CHARACTER_SET
        {
            continue;
        }
        let vr = elem.header().vr;
        if vr == VR::SQ {
            q.keys.push(Key {
                tag,
                vr,
                kind: Kind::Other,
                matcher: Matcher::Universal,
                level: None,
                sequence: true,
            });
            continue;
        }
        let value = elem.to_str().map(|c| c.into_owned()).unwrap_or_default();
        let known = index::attr(tag);
        let (kind, vr) = match known {
            Some(a) => (Kind::of_vr(a.vr), VR::from_str(a.vr).unwrap_or(vr)),
            None => (Kind::of_vr(vr.to_string()), vr),
        };
        let matcher = Matcher::parse(kind, &value, opts);
        let attr_level = known.map(|a| a.level);
        if matcher != Matcher::Universal && attr_level.is_none_or(|l| l > level) {
            // Not in the index, or below the query level: ignored for matching.
            if !matches!(tag, t if t == tags::RETRIEVE_AE_TITLE || t == tags::INSTANCE_AVAILABILITY)
            {
                q.unsupported_matching = true;
            }
        }
        q.keys.push(Key { tag, vr, kind, matcher, level: attr_level, sequence: false });
    }
    if retrieve {
        let unique = level.unique_key();
        if q.exact_values(unique).is_none_or(|v| v.is_empty()) {
            return Err(does_not_match(format!(
                "{} level retrieval needs {} ({:04X},{:04X})",
                level.as_str(),
                key_name(unique),
                unique.group(),
                unique.element()
            )));
        }
    } else {
        // Each level above the query level needs its unique key as a single value.
        for upper in [QueryLevel::Patient, QueryLevel::Study, QueryLevel::Series] {
            if upper < model.top_level() || upper >= level {
                continue;
            }
            let unique = upper.unique_key();
            if q.exact_values(unique).is_none_or(|v| v.len() != 1) {
                return Err(does_not_match(format!(
                    "{} query in {} needs one {} ({:04X},{:04X})",
                    level.as_str(),
                    model.name(),
                    key_name(unique),
                    unique.group(),
                    unique.element()
                )));
            }
        }
    }
    Ok(q)
}

fn key_name(tag: Tag) -> &'static str {
    match tag {
        t if t == tags::PATIENT_ID => "PatientID",
        t if t == tags::STUDY_INSTANCE_UID => "StudyInstanceUID",
        t if t == tags::SERIES_INSTANCE_UID => "SeriesInstanceUID",
        _ => "SOPInstanceUID",
    }
}

/// The rows of the index that match `q`.
pub fn select(
    idx: &index::Index,
    q: &Query,
    opts: MatchOptions,
) -> Result<Vec<Row>, index::IndexError> {
    let rows = idx.rows(q.level, &q.narrow())?;
    Ok(rows
        .into_iter()
        .filter(|row| {
            q.keys.iter().all(|k| match k.level {
                Some(l) if l <= q.level && !k.sequence => {
                    let v = row.values.get(&k.tag).map(String::as_str).unwrap_or("");
                    k.matcher.matches(k.kind, v, opts)
                }
                _ => true,
            })
        })
        .collect())
}

/// The identifier of one C-FIND match: the requested keys (only those), the level, and
/// the Specific Character Set (ISO_IR 192 when a value is not ASCII).
pub fn identifier_for(q: &Query, row: &Row, our_ae: &str) -> InMemDicomObject {
    let mut obj = InMemDicomObject::new_empty();
    obj.put(DataElement::new(
        tags::QUERY_RETRIEVE_LEVEL,
        VR::CS,
        PrimitiveValue::from(q.level.as_str()),
    ));
    let mut non_ascii = false;
    for k in &q.keys {
        if k.sequence {
            obj.put(DataElement::new(k.tag, VR::SQ, DataSetSequence::<InMemDicomObject>::empty()));
            continue;
        }
        let value: String = match k.level {
            Some(l) if l <= q.level => row.values.get(&k.tag).cloned().unwrap_or_default(),
            _ if k.tag == tags::RETRIEVE_AE_TITLE => our_ae.to_owned(),
            _ if k.tag == tags::INSTANCE_AVAILABILITY => "ONLINE".to_owned(),
            _ => String::new(),
        };
        non_ascii |= !value.is_ascii();
        let v = if value.is_empty() {
            PrimitiveValue::Empty
        } else if k.vr == VR::UI {
            ui_value(value)
        } else {
            PrimitiveValue::from(value)
        };
        obj.put(DataElement::new(k.tag, k.vr, v));
    }
    let charset = if non_ascii { "ISO_IR 192" } else { "" };
    let v = if charset.is_empty() { PrimitiveValue::Empty } else { PrimitiveValue::from(charset) };
    obj.put(DataElement::new(tags::SPECIFIC_CHARACTER_SET, VR::CS, v));
    obj
}

/// A UI value padded to even length with NUL, as PS3.5 6.2 wants for UIDs (the writer
/// would pad with a space).
pub(crate) fn ui_value(mut s: String) -> PrimitiveValue {
    if s.len() % 2 == 1 {
        s.push('\0');
    }
    PrimitiveValue::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qr::encode;
    use dclient::proto::uids;

    fn obj(pairs: &[(Tag, VR, &str)]) -> InMemDicomObject {
        let mut o = InMemDicomObject::new_empty();
        for (t, vr, v) in pairs {
            let val = if v.is_empty() { PrimitiveValue::Empty } else { PrimitiveValue::from(*v) };
            o.put(DataElement::new(*t, *vr, val));
        }
        o
    }

    #[test]
    fn hierarchical_rules_of_both_models() {
        let o = MatchOptions::default();
        let series = obj(&[(tags::QUERY_RETRIEVE_LEVEL, VR::CS, "SERIES")]);
        let f =
            parse_query(&series, InformationModel::StudyRoot, o, false).expect_err("needs study");
        assert_eq!(f.status, Status::DOES_NOT_MATCH_SOP_CLASS);
        assert!(f.comment.contains("StudyInstanceUID"), "{}", f.comment);
        let ok = obj(&[
            (tags::QUERY_RETRIEVE_LEVEL, VR::CS, "SERIES"),
            (tags::STUDY_INSTANCE_UID, VR::UI, "1.2.3"),
            (tags::MODALITY, VR::CS, ""),
        ]);
        assert!(parse_query(&ok, InformationModel::StudyRoot, o, false).is_ok());
        // Patient root also wants the patient.
        let f =
            parse_query(&ok, InformationModel::PatientRoot, o, false).expect_err("needs patient");
        assert!(f.comment.contains("PatientID"), "{}", f.comment);
        let patient = obj(&[(tags::QUERY_RETRIEVE_LEVEL, VR::CS, "PATIENT")]);
        assert!(parse_query(&patient, InformationModel::StudyRoot, o, false).is_err());
        assert!(parse_query(&patient, InformationModel::PatientRoot, o, false).is_ok());
        let wild =
            obj(&[(tags::QUERY_RETRIEVE_LEVEL, VR::CS, "STUDY"), (tags::PATIENT_ID, VR::LO, "P*")]);
        assert!(parse_query(&wild, InformationModel::PatientRoot, o, false).is_err());
        let none = obj(&[(tags::PATIENT_ID, VR::LO, "P1")]);
        assert!(parse_query(&none, InformationModel::PatientRoot, o, false).is_err());
        let bad = obj(&[(tags::QUERY_RETRIEVE_LEVEL, VR::CS, "FRAME")]);
        assert!(parse_query(&bad, InformationModel::StudyRoot, o, false).is_err());
        // Retrieval needs the level's unique key.
        let study = obj(&[(tags::QUERY_RETRIEVE_LEVEL, VR::CS, "STUDY")]);
        assert!(parse_query(&study, InformationModel::StudyRoot, o, true).is_err());
    }

    #[test]
    fn answers_carry_only_the_requested_keys() {
        let o = MatchOptions::default();
        let q = parse_query(
            &obj(&[
                (tags::QUERY_RETRIEVE_LEVEL, VR::CS, "STUDY"),
                (tags::PATIENT_NAME, VR::PN, ""),
                (tags::STUDY_INSTANCE_UID, VR::UI, ""),
                (tags::SERIES_DESCRIPTION, VR::LO, ""),
                (Tag(0x0009, 0x0010), VR::LO, ""),
            ]),
            InformationModel::StudyRoot,
            o,
            false,
        )
        .expect("query");
        let mut row = Row { values: Default::default(), charset: String::new(), file: None };
        row.values.insert(tags::PATIENT_NAME, "Müller^Jörg".into());
        row.values.insert(tags::STUDY_INSTANCE_UID, "1.2.3".into());
        row.values.insert(tags::STUDY_DATE, "20240101".into());
        let id = identifier_for(&q, &row, "ANY-SCP");
        assert_eq!(header::text(&id, tags::PATIENT_NAME), "Müller^Jörg");
        assert_eq!(header::text(&id, tags::SPECIFIC_CHARACTER_SET), "ISO_IR 192");
        assert!(id.element_opt(tags::STUDY_DATE).ok().flatten().is_none(), "not requested");
        assert_eq!(header::text(&id, tags::SERIES_DESCRIPTION), "", "below the level: empty");
        let bytes = encode(&id, uids::IMPLICIT_VR_LE).expect("encode");
        let back = header::parse_dataset(&bytes, uids::IMPLICIT_VR_LE).expect("decode");
        assert_eq!(header::text(&back, tags::PATIENT_NAME), "Müller^Jörg");
    }
}
