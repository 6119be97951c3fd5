//! The DICOM JSON model (PS3.18 F.2) of a data set, and plain-text renderings of values
//! for tables and CSV.

use base64::Engine as _;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_core::VR;
use dicom_object::mem::InMemElement;
use dicom_object::InMemDicomObject;
use serde_json::{json, Map, Number, Value as Json};

/// The DICOM JSON object of a data set (PS3.18 F.2):
/// `{"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Smith^John"}]}}`. Keys are eight
/// upper-case hex digits in tag order; IS, DS and the binary numbers are JSON numbers (DS
/// and FL/FD values that are not finite numbers stay strings), AT values are `"GGGGEEEE"`
/// strings, sequences are arrays of objects, empty values have no `"Value"` (an empty value
/// among several is `null`), and OB/OW/OF/OD/OL/OV/UN values are `"InlineBinary"` base64
/// (little endian).
pub fn to_json(obj: &InMemDicomObject) -> Json {
    let mut m = Map::new();
    for e in obj.iter() {
        let t = e.header().tag;
        m.insert(format!("{:04X}{:04X}", t.group(), t.element()), element_json(e));
    }
    Json::Object(m)
}

fn element_json(e: &InMemElement) -> Json {
    let vr = e.vr();
    let mut m = Map::new();
    m.insert("vr".into(), Json::String(vr.to_string().to_owned()));
    match e.value() {
        Value::Sequence(seq) => {
            if !seq.items().is_empty() {
                m.insert("Value".into(), Json::Array(seq.items().iter().map(to_json).collect()));
            }
        }
        Value::PixelSequence(ps) => {
            let bytes: Vec<u8> = ps.fragments().iter().flatten().copied().collect();
            m.insert("InlineBinary".into(), Json::String(b64(&bytes)));
        }
        Value::Primitive(p) => {
            if let Some((key, v)) = primitive_json(vr, p) {
                m.insert(key.into(), v);
            }
        }
    }
    Json::Object(m)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The `"Value"` (or `"InlineBinary"`) member of a primitive value, or `None` when empty.
fn primitive_json(vr: VR, p: &PrimitiveValue) -> Option<(&'static str, Json)> {
    if matches!(p, PrimitiveValue::Empty) {
        return None;
    }
    if matches!(vr, VR::OB | VR::OW | VR::OF | VR::OD | VR::OL | VR::OV | VR::UN) {
        return Some(("InlineBinary", Json::String(b64(&le_bytes(p)))));
    }
    let values: Vec<Json> = match p {
        PrimitiveValue::Strs(s) => s.iter().map(|s| text_json(vr, s)).collect(),
        PrimitiveValue::Str(s) => vec![text_json(vr, s)],
        PrimitiveValue::Tags(t) => t
            .iter()
            .map(|t| Json::String(format!("{:04X}{:04X}", t.group(), t.element())))
            .collect(),
        PrimitiveValue::U8(v) => v.iter().map(|&x| json!(x)).collect(),
        PrimitiveValue::I16(v) => v.iter().map(|&x| json!(x)).collect(),
        PrimitiveValue::U16(v) => v.iter().map(|&x| json!(x)).collect(),
        PrimitiveValue::I32(v) => v.iter().map(|&x| json!(x)).collect(),
        PrimitiveValue::U32(v) => v.iter().map(|&x| json!(x)).collect(),
        PrimitiveValue::I64(v) => v.iter().map(|&x| big_int(x as i128)).collect(),
        PrimitiveValue::U64(v) => v.iter().map(|&x| big_int(x as i128)).collect(),
        PrimitiveValue::F32(v) => v.iter().map(|&x| float(f64::from(x))).collect(),
        PrimitiveValue::F64(v) => v.iter().map(|&x| float(x)).collect(),
        other => vec![text_json(vr, &other.to_str())],
    };
    if values.iter().all(Json::is_null) {
        return None;
    }
    Some(("Value", Json::Array(values)))
}

/// 64-bit integers beyond 2^53 are strings (PS3.18 F.2.3.1).
fn big_int(x: i128) -> Json {
    const MAX_SAFE: i128 = (1 << 53) - 1;
    if (-MAX_SAFE..=MAX_SAFE).contains(&x) {
        json!(x as i64)
    } else {
        Json::String(x.to_string())
    }
}

fn float(x: f64) -> Json {
    match Number::from_f64(x) {
        Some(n) => Json::Number(n),
        None if x.is_nan() => Json::String("NaN".into()),
        None if x > 0.0 => Json::String("Infinity".into()),
        None => Json::String("-Infinity".into()),
    }
}

fn text_json(vr: VR, s: &str) -> Json {
    if s.is_empty() {
        return Json::Null;
    }
    match vr {
        VR::PN => {
            let mut m = Map::new();
            for (name, part) in ["Alphabetic", "Ideographic", "Phonetic"].iter().zip(s.split('=')) {
                if !part.is_empty() {
                    m.insert((*name).into(), Json::String(part.to_owned()));
                }
            }
            Json::Object(m)
        }
        VR::IS => match s.trim().parse::<i64>() {
            Ok(i) => big_int(i128::from(i)),
            Err(_) => match s.trim().parse::<f64>() {
                Ok(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => json!(f as i64),
                _ => Json::String(s.to_owned()),
            },
        },
        VR::DS => match s.trim().parse::<f64>() {
            Ok(f) => float(f),
            Err(_) => Json::String(s.to_owned()),
        },
        _ => Json::String(s.to_owned()),
    }
}

/// The little-endian bytes of a binary value.
fn le_bytes(p: &PrimitiveValue) -> Vec<u8> {
    match p {
        PrimitiveValue::U8(v) => v.to_vec(),
        PrimitiveValue::I16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        PrimitiveValue::U16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        PrimitiveValue::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        PrimitiveValue::U32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        PrimitiveValue::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        PrimitiveValue::U64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        PrimitiveValue::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        PrimitiveValue::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        other => other.to_str().into_owned().into_bytes(),
    }
}

/// A value as one line of text for tables and CSV: multiple values joined by `\`,
/// sequences as `(N items)`, bulk binary as `(N bytes)`.
pub fn display_value(e: &InMemElement) -> String {
    match e.value() {
        Value::Sequence(seq) => match seq.items().len() {
            1 => "(1 item)".to_owned(),
            n => format!("({n} items)"),
        },
        Value::PixelSequence(ps) => {
            format!("({} bytes)", ps.fragments().iter().map(Vec::len).sum::<usize>())
        }
        Value::Primitive(p) => match e.vr() {
            VR::OB | VR::OW | VR::OF | VR::OD | VR::OL | VR::OV | VR::UN => {
                format!("({} bytes)", le_bytes(p).len())
            }
            _ => match p {
                PrimitiveValue::Empty => String::new(),
                PrimitiveValue::Str(s) => s.clone(),
                PrimitiveValue::Strs(s) if s.len() == 1 => s[0].clone(),
                PrimitiveValue::Tags(t) => t
                    .iter()
                    .map(|t| format!("({:04X},{:04X})", t.group(), t.element()))
                    .collect::<Vec<_>>()
                    .join("\\"),
                other => other.to_str().into_owned(),
            },
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::dataset::{read_dataset, DatasetEncoding, Query};

    #[test]
    fn json_model() {
        let mut q = Query::from_pairs([
            ("PatientName", "Yamada^Tarou=山田^太郎=やまだ^たろう"),
            ("PatientID", ""),
            ("InstanceNumber", "7"),
            ("SliceThickness", "1.50"),
            ("Rows", "512"),
            ("FrameIncrementPointer", "0018,1063"),
            ("ModalitiesInStudy", "CT\\\\MR"),
            ("ReferencedStudySequence/ReferencedSOPInstanceUID", "1.2.3"),
        ])
        .unwrap();
        q.set("ReferencedSeriesSequence", "").unwrap();
        let bytes = q.encode(DatasetEncoding::ExplicitLittle).unwrap();
        let o = read_dataset(&bytes, DatasetEncoding::ExplicitLittle, 1 << 20).unwrap();
        let j = to_json(&o);
        assert_eq!(
            j["00100010"],
            json!({"vr": "PN", "Value": [{"Alphabetic": "Yamada^Tarou", "Ideographic": "山田^太郎", "Phonetic": "やまだ^たろう"}]})
        );
        assert_eq!(j["00100020"], json!({"vr": "LO"}));
        assert_eq!(j["00200013"], json!({"vr": "IS", "Value": [7]}));
        assert_eq!(j["00180050"], json!({"vr": "DS", "Value": [1.5]}));
        assert_eq!(j["00280010"], json!({"vr": "US", "Value": [512]}));
        assert_eq!(j["00280009"], json!({"vr": "AT", "Value": ["00181063"]}));
        assert_eq!(j["00080061"], json!({"vr": "CS", "Value": ["CT", null, "MR"]}));
        assert_eq!(j["00081110"]["Value"][0]["00081155"], json!({"vr": "UI", "Value": ["1.2.3"]}));
        assert_eq!(j["00081115"], json!({"vr": "SQ"}));
        assert_eq!(j["00080005"], json!({"vr": "CS", "Value": ["ISO_IR 192"]}));
    }
}
