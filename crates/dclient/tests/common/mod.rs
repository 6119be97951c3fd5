//! Test data for the C-FIND interop tests: small CT instances written with dicom-object
//! (no pixel data beyond 2x2), with the attributes peers index.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;

/// One instance to generate.
#[derive(Debug, Clone)]
pub struct Instance {
    pub patient_name: String,
    pub patient_id: String,
    pub study_uid: String,
    pub study_date: String,
    pub accession: String,
    pub study_id: String,
    pub series_uid: String,
    pub series_number: u32,
    pub modality: String,
    pub sop_uid: String,
    pub instance_number: u32,
    /// (0008,0005), if any: the name is encoded in it.
    pub charset: Option<String>,
}

pub const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";

fn put(o: &mut InMemDicomObject, g: u16, e: u16, vr: VR, v: &str) {
    o.put(DataElement::new(Tag(g, e), vr, PrimitiveValue::from(v)));
}

impl Instance {
    /// The Part 10 file (Explicit VR Little Endian).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut o = InMemDicomObject::new_empty();
        if let Some(cs) = &self.charset {
            put(&mut o, 0x0008, 0x0005, VR::CS, cs);
        }
        put(&mut o, 0x0008, 0x0016, VR::UI, CT_IMAGE_STORAGE);
        put(&mut o, 0x0008, 0x0018, VR::UI, &self.sop_uid);
        put(&mut o, 0x0008, 0x0020, VR::DA, &self.study_date);
        put(&mut o, 0x0008, 0x0030, VR::TM, "101500");
        put(&mut o, 0x0008, 0x0050, VR::SH, &self.accession);
        put(&mut o, 0x0008, 0x0060, VR::CS, &self.modality);
        put(&mut o, 0x0010, 0x0010, VR::PN, &self.patient_name);
        put(&mut o, 0x0010, 0x0020, VR::LO, &self.patient_id);
        put(&mut o, 0x0010, 0x0030, VR::DA, "19700101");
        put(&mut o, 0x0010, 0x0040, VR::CS, "O");
        put(&mut o, 0x0020, 0x000D, VR::UI, &self.study_uid);
        put(&mut o, 0x0020, 0x000E, VR::UI, &self.series_uid);
        put(&mut o, 0x0020, 0x0010, VR::SH, &self.study_id);
        put(&mut o, 0x0020, 0x0011, VR::IS, &self.series_number.to_string());
        put(&mut o, 0x0020, 0x0013, VR::IS, &self.instance_number.to_string());
        o.put(DataElement::new(Tag(0x0028, 0x0002), VR::US, PrimitiveValue::from(1u16)));
        put(&mut o, 0x0028, 0x0004, VR::CS, "MONOCHROME2");
        for (e, v) in
            [(0x0010u16, 2u16), (0x0011, 2), (0x0100, 16), (0x0101, 16), (0x0102, 15), (0x0103, 0)]
        {
            o.put(DataElement::new(Tag(0x0028, e), VR::US, PrimitiveValue::from(v)));
        }
        o.put(DataElement::new(
            Tag(0x7FE0, 0x0010),
            VR::OW,
            PrimitiveValue::U16(dicom_core::value::C::from_slice(&[1u16, 2, 3, 4])),
        ));
        let meta = FileMetaTableBuilder::new()
            .transfer_syntax("1.2.840.10008.1.2.1")
            .media_storage_sop_class_uid(CT_IMAGE_STORAGE)
            .media_storage_sop_instance_uid(self.sop_uid.as_str());
        let file = o.with_meta(meta).unwrap();
        let mut out = Vec::new();
        file.write_all(&mut out).unwrap();
        out
    }

    /// Writes the file into `dir` and returns its path.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let p = dir.join(format!("{}.dcm", self.sop_uid));
        std::fs::write(&p, self.to_bytes()).unwrap();
        p
    }
}

/// A fresh UID.
pub fn uid() -> String {
    dclient_testkit::unique_uid()
}

/// The series of a study: (series UID, modality, number of instances).
pub struct StudySpec<'a> {
    pub name: &'a str,
    pub pid: &'a str,
    pub date: &'a str,
    pub charset: Option<&'a str>,
    pub series: &'a [(&'a str, usize)],
}

/// The instances of a study.
pub fn study(spec: &StudySpec) -> Vec<Instance> {
    let study_uid = uid();
    let mut v = Vec::new();
    for (n, (modality, count)) in spec.series.iter().enumerate() {
        let series_uid = uid();
        for i in 0..*count {
            v.push(Instance {
                patient_name: spec.name.into(),
                patient_id: spec.pid.into(),
                study_uid: study_uid.clone(),
                study_date: spec.date.into(),
                accession: format!("A{}", &spec.pid[1..]),
                study_id: "1".into(),
                series_uid: series_uid.clone(),
                series_number: n as u32 + 1,
                modality: (*modality).into(),
                sop_uid: uid(),
                instance_number: i as u32 + 1,
                charset: spec.charset.map(str::to_owned),
            });
        }
    }
    v
}

/// The data set every interop test loads: five patients, one study each.
pub struct Archive {
    pub instances: Vec<Instance>,
}

pub const MULLER: &str = "Müller^Jörg";
pub const WANG: &str = "Wang^XiaoDong=王^小東";

impl Archive {
    pub fn new() -> Archive {
        let mut instances = Vec::new();
        for spec in [
            StudySpec {
                name: "Smith^John",
                pid: "PSMITH",
                date: "20090315",
                charset: None,
                series: &[("CT", 3), ("MR", 2)],
            },
            StudySpec {
                name: "Smithers^Anna",
                pid: "PSMITHERS",
                date: "20091120",
                charset: None,
                series: &[("CT", 2)],
            },
            StudySpec {
                name: "Jones^Bob",
                pid: "PJONES",
                date: "20100101",
                charset: None,
                series: &[("CT", 25)],
            },
            StudySpec {
                name: MULLER,
                pid: "PMULLER",
                date: "20080101",
                charset: Some("ISO_IR 100"),
                series: &[("CT", 1)],
            },
            StudySpec {
                name: WANG,
                pid: "PWANG",
                date: "20080102",
                charset: Some("ISO_IR 192"),
                series: &[("CT", 1)],
            },
        ] {
            instances.extend(study(&spec));
        }
        Archive { instances }
    }

    pub fn of_patient(&self, pid: &str) -> Vec<&Instance> {
        self.instances.iter().filter(|i| i.patient_id == pid).collect()
    }

    /// Writes every file into `dir`.
    pub fn write(&self, dir: &Path) -> Vec<PathBuf> {
        self.instances.iter().map(|i| i.write(dir)).collect()
    }
}

/// `n` instances in `studies` studies (one series each) of one patient per study.
pub fn many(n: usize, studies: usize) -> Vec<Instance> {
    let mut v = Vec::with_capacity(n);
    let per = n.div_ceil(studies);
    for s in 0..studies {
        let count = per.min(n - v.len());
        let pid = format!("PBULK{s:03}");
        v.extend(study(&StudySpec {
            name: &format!("Bulk^Patient{s:03}"),
            pid: &pid,
            date: "20200101",
            charset: None,
            series: &[("CT", count)],
        }));
    }
    v
}

/// Uploads instances to Orthanc over its REST API with a few parallel connections.
pub fn upload_parallel(peer: &dclient_testkit::Peer, instances: &[Instance]) {
    const THREADS: usize = 4;
    let chunk = instances.len().div_ceil(THREADS).max(1);
    std::thread::scope(|s| {
        for part in instances.chunks(chunk) {
            s.spawn(move || {
                for i in part {
                    let (status, body) =
                        dclient_testkit::orthanc_request(peer, "POST", "/instances", &i.to_bytes())
                            .unwrap();
                    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                }
            });
        }
    });
}
