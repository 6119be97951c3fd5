//! Synthetic DICOM data: realistic-looking Part 10 files for tests, demos and benchmarks.
//!
//! [`Synth`] makes patients, studies, series and CT/MR instances with plausible metadata
//! (names, IDs, dates, accession numbers, descriptions, geometry) and fresh UIDs under the
//! `2.25` root; [`write_instance`] writes one instance as a Part 10 file in any uncompressed
//! transfer syntax ([`Syntax`]: implicit LE, explicit LE, explicit BE, deflated). Pixel data
//! (a phantom: an ellipse of soft tissue with a bright insert, in air) is written to disk
//! frame by frame, so a 1 GiB multi-frame file needs one frame of memory, not 1 GiB.
//!
//! ```no_run
//! use dclient_synth::{DatasetSpec, Synth, Syntax};
//!
//! let mut synth = Synth::new(42);
//! let spec = DatasetSpec { studies: 2, series_per_study: 1, instances_per_series: 3,
//!                          syntax: Syntax::ExplicitLe, ..DatasetSpec::default() };
//! let files = synth.generate(std::path::Path::new("/tmp/synth"), &spec)?;
//! assert_eq!(files.len(), 6);
//! # Ok::<(), dclient_synth::SynthError>(())
//! ```

use std::fs::File;
use std::io::{self, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

use dclient_proto::uids;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

/// CT Image Storage.
pub const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
/// MR Image Storage.
pub const MR_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.4";
/// Multi-frame Grayscale Word Secondary Capture Image Storage (used for multi-frame files).
pub const MULTIFRAME_WORD_SC_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.7.3";

/// Why a synthetic file could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// Writing the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// dicom-object could not encode the header.
    #[error("encoding {what}: {detail}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// dicom-object's message.
        detail: String,
    },
    /// The requested image does not fit in one DICOM element (4 GiB - 2).
    #[error("pixel data of {0} bytes does not fit in one element (at most 4294967294)")]
    TooLarge(u64),
}

/// The uncompressed transfer syntaxes synthetic files can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Syntax {
    /// Implicit VR Little Endian (1.2.840.10008.1.2).
    ImplicitLe,
    /// Explicit VR Little Endian (1.2.840.10008.1.2.1).
    ExplicitLe,
    /// Explicit VR Big Endian (1.2.840.10008.1.2.2, retired).
    ExplicitBe,
    /// Deflated Explicit VR Little Endian (1.2.840.10008.1.2.1.99).
    Deflated,
}

impl Syntax {
    /// All four.
    pub const ALL: [Syntax; 4] =
        [Syntax::ImplicitLe, Syntax::ExplicitLe, Syntax::ExplicitBe, Syntax::Deflated];

    /// The transfer syntax UID.
    pub fn uid(self) -> &'static str {
        match self {
            Syntax::ImplicitLe => uids::IMPLICIT_VR_LE,
            Syntax::ExplicitLe => uids::EXPLICIT_VR_LE,
            Syntax::ExplicitBe => uids::EXPLICIT_VR_BE,
            Syntax::Deflated => uids::DEFLATED_EXPLICIT_VR_LE,
        }
    }

    /// The syntax the data set is encoded in before deflation (itself for the others).
    fn base(self) -> Syntax {
        if self == Syntax::Deflated {
            Syntax::ExplicitLe
        } else {
            self
        }
    }
}

/// A modality of synthetic images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Modality {
    /// Computed tomography (CT Image Storage, rescaled to Hounsfield units).
    Ct,
    /// Magnetic resonance (MR Image Storage).
    Mr,
}

impl Modality {
    /// The DICOM Modality code ("CT", "MR").
    pub fn code(self) -> &'static str {
        match self {
            Modality::Ct => "CT",
            Modality::Mr => "MR",
        }
    }

    /// The single-frame storage SOP class.
    pub fn sop_class(self) -> &'static str {
        match self {
            Modality::Ct => CT_IMAGE_STORAGE,
            Modality::Mr => MR_IMAGE_STORAGE,
        }
    }
}

/// A patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patient {
    /// Patient ID (0010,0020), e.g. "PAT004217".
    pub id: String,
    /// Patient's Name (0010,0010), e.g. "Garcia^Maria^L".
    pub name: String,
    /// Patient's Birth Date (0010,0030), YYYYMMDD.
    pub birth_date: String,
    /// Patient's Sex (0010,0040): "F", "M" or "O".
    pub sex: String,
}

/// A study of a patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Study {
    /// Study Instance UID (0020,000D).
    pub uid: String,
    /// Study ID (0020,0010).
    pub id: String,
    /// Study Date (0008,0020), YYYYMMDD.
    pub date: String,
    /// Study Time (0008,0030), HHMMSS.
    pub time: String,
    /// Accession Number (0008,0050).
    pub accession_number: String,
    /// Study Description (0008,1030).
    pub description: String,
    /// Referring Physician's Name (0008,0090).
    pub referring_physician: String,
}

/// A series of a study.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    /// Series Instance UID (0020,000E).
    pub uid: String,
    /// Series Number (0020,0011).
    pub number: u32,
    /// The modality.
    pub modality: Modality,
    /// Series Description (0008,103E).
    pub description: String,
    /// Frame of Reference UID (0020,0052).
    pub frame_of_reference_uid: String,
}

/// The pixel matrix of an instance: 16-bit unsigned, MONOCHROME2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageSize {
    /// Rows (0028,0010).
    pub rows: u16,
    /// Columns (0028,0011).
    pub columns: u16,
    /// Number of Frames (0028,0008); more than 1 makes a multi-frame Secondary Capture.
    pub frames: u32,
}

impl ImageSize {
    /// One frame of `rows` x `columns`.
    pub fn single(rows: u16, columns: u16) -> ImageSize {
        ImageSize { rows, columns, frames: 1 }
    }

    /// The length of the pixel data in bytes (2 per pixel).
    pub fn pixel_bytes(&self) -> u64 {
        u64::from(self.rows) * u64::from(self.columns) * u64::from(self.frames.max(1)) * 2
    }
}

impl Default for ImageSize {
    fn default() -> Self {
        ImageSize::single(64, 64)
    }
}

/// Everything needed to write one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Its patient.
    pub patient: Patient,
    /// Its study.
    pub study: Study,
    /// Its series.
    pub series: Series,
    /// SOP Class UID: the modality's storage class, or multi-frame SC when frames > 1.
    pub sop_class_uid: String,
    /// SOP Instance UID.
    pub sop_instance_uid: String,
    /// Instance Number (0020,0013), from 1.
    pub number: u32,
    /// Pixel matrix.
    pub size: ImageSize,
}

/// What [`Synth::generate`] makes: how many of what, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetSpec {
    /// Number of patients (studies are dealt round-robin over them).
    pub patients: usize,
    /// Number of studies in all.
    pub studies: usize,
    /// Series per study.
    pub series_per_study: usize,
    /// Instances per series.
    pub instances_per_series: usize,
    /// Modality of all series.
    pub modality: Modality,
    /// Pixel matrix of every instance.
    pub size: ImageSize,
    /// Transfer syntax of every file.
    pub syntax: Syntax,
}

impl Default for DatasetSpec {
    /// One patient, one study, one series, one 64x64 CT image in explicit VR LE.
    fn default() -> Self {
        DatasetSpec {
            patients: 1,
            studies: 1,
            series_per_study: 1,
            instances_per_series: 1,
            modality: Modality::Ct,
            size: ImageSize::default(),
            syntax: Syntax::ExplicitLe,
        }
    }
}

/// A file written by [`Synth::generate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// Where it is.
    pub path: PathBuf,
    /// What it holds.
    pub instance: Instance,
    /// Its size in bytes.
    pub bytes: u64,
}

/// A deterministic generator of synthetic patients, studies, series and instances.
/// The same seed gives the same names, dates and UIDs.
#[derive(Debug, Clone)]
pub struct Synth {
    state: u64,
    /// 2.25 UIDs are 128-bit numbers; the high half is fixed per generator.
    uid_high: u64,
    counter: u64,
}

const FAMILY: &[&str] = &[
    "Smith",
    "Garcia",
    "Nguyen",
    "Muller",
    "Rossi",
    "Kowalski",
    "Tanaka",
    "Okafor",
    "Johansson",
    "Dubois",
    "Silva",
    "Novak",
    "Haddad",
    "Kim",
    "Brown",
    "Fischer",
    "Moreau",
    "Ivanova",
];
const GIVEN: &[&str] = &[
    "Maria", "James", "Aiko", "Lars", "Fatima", "Chen", "Olivia", "Mateo", "Anna", "Kwame",
    "Sofia", "Pierre", "Elena", "Ravi", "Grace", "Tomasz", "Leila", "Noah",
];
const CT_STUDIES: &[&str] = &[
    "CT CHEST W/O CONTRAST",
    "CT ABDOMEN PELVIS W CONTRAST",
    "CT HEAD W/O CONTRAST",
    "CTA PULMONARY",
    "CT LUMBAR SPINE",
];
const MR_STUDIES: &[&str] =
    &["MR BRAIN W/WO CONTRAST", "MR KNEE LEFT", "MR LUMBAR SPINE", "MR CARDIAC FUNCTION"];
const CT_SERIES: &[&str] = &["AXIAL 5mm", "AXIAL 1.25mm", "CORONAL MPR", "SCOUT", "BONE 1mm"];
const MR_SERIES: &[&str] = &["T1 SAG", "T2 AX", "FLAIR AX", "DWI b1000", "T1 POST GAD"];
const PHYSICIANS: &[&str] = &["House^Gregory", "Grey^Meredith", "Quinn^Michaela", "Kildare^James"];

/// The series description `k` places after `first` in the list for `modality`.
fn description_after(modality: Modality, first: &str, k: usize) -> String {
    let descs = if modality == Modality::Ct { CT_SERIES } else { MR_SERIES };
    let i = descs.iter().position(|d| *d == first).unwrap_or(0);
    descs[(i + k) % descs.len()].to_owned()
}

impl Synth {
    /// A generator with this seed.
    pub fn new(seed: u64) -> Synth {
        let mut s = Synth { state: seed ^ 0x5DEE_CE66_D1CE_4E5B, uid_high: 0, counter: 0 };
        // Bit 63 set keeps every UID the same length and never zero.
        s.uid_high = s.next_u64() | 1 << 63;
        s
    }

    /// A generator seeded from the clock and the process ID (UIDs differ between runs).
    pub fn from_entropy() -> Synth {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Synth::new(nanos ^ (u64::from(std::process::id()) << 32))
    }

    /// splitmix64.
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[self.below(list.len())]
    }

    /// A fresh UID under the 2.25 root (PS3.5 B.2): a 128-bit number, unique per
    /// generator and call.
    pub fn uid(&mut self) -> String {
        self.counter += 1;
        let low = self.next_u64() ^ self.counter;
        let value = (u128::from(self.uid_high) << 64) | u128::from(low);
        format!("2.25.{value}")
    }

    fn date(&mut self, from_year: u32, years: u32) -> String {
        let y = from_year + self.below(years as usize) as u32;
        let m = 1 + self.below(12) as u32;
        let d = 1 + self.below(28) as u32;
        format!("{y:04}{m:02}{d:02}")
    }

    /// A patient with a name, an ID, a birth date and a sex.
    pub fn patient(&mut self) -> Patient {
        let family = self.pick(FAMILY);
        let given = self.pick(GIVEN);
        let initial = (b'A' + self.below(26) as u8) as char;
        Patient {
            id: format!("PAT{:06}", self.below(1_000_000)),
            name: format!("{family}^{given}^{initial}"),
            birth_date: self.date(1935, 70),
            sex: ["F", "M", "O"][self.below(100).min(98) / 49].to_owned(),
        }
    }

    /// A study of `modality` with date, time, accession number and description.
    pub fn study(&mut self, modality: Modality) -> Study {
        let descs = if modality == Modality::Ct { CT_STUDIES } else { MR_STUDIES };
        Study {
            uid: self.uid(),
            id: format!("{}", 1 + self.below(9999)),
            date: self.date(2015, 10),
            time: format!("{:02}{:02}{:02}", 7 + self.below(12), self.below(60), self.below(60)),
            accession_number: format!("A{:09}", self.below(1_000_000_000)),
            description: self.pick(descs).to_owned(),
            referring_physician: self.pick(PHYSICIANS).to_owned(),
        }
    }

    /// Series number `number` of `modality`.
    pub fn series(&mut self, modality: Modality, number: u32) -> Series {
        let descs = if modality == Modality::Ct { CT_SERIES } else { MR_SERIES };
        Series {
            uid: self.uid(),
            number,
            modality,
            description: self.pick(descs).to_owned(),
            frame_of_reference_uid: self.uid(),
        }
    }

    /// Instance `number` of a series.
    pub fn instance(
        &mut self,
        patient: &Patient,
        study: &Study,
        series: &Series,
        number: u32,
        size: ImageSize,
    ) -> Instance {
        let sop_class_uid =
            if size.frames > 1 { MULTIFRAME_WORD_SC_STORAGE } else { series.modality.sop_class() };
        Instance {
            patient: patient.clone(),
            study: study.clone(),
            series: series.clone(),
            sop_class_uid: sop_class_uid.to_owned(),
            sop_instance_uid: self.uid(),
            number,
            size,
        }
    }

    /// Writes the files `spec` describes into `dir` (created if needed), one subfolder per
    /// study, named `IMG00001.dcm`, ... Returns them in order.
    pub fn generate(
        &mut self,
        dir: &Path,
        spec: &DatasetSpec,
    ) -> Result<Vec<GeneratedFile>, SynthError> {
        let patients: Vec<Patient> = (0..spec.patients.max(1)).map(|_| self.patient()).collect();
        let mut out = Vec::new();
        let mut n = 0u32;
        for s in 0..spec.studies {
            let patient = &patients[s % patients.len()];
            let study = self.study(spec.modality);
            let study_dir = dir.join(format!("study{:03}", s + 1));
            std::fs::create_dir_all(&study_dir)
                .map_err(|source| SynthError::Io { path: study_dir.clone(), source })?;
            let mut first_description = None;
            for se in 0..spec.series_per_study {
                let mut series = self.series(spec.modality, se as u32 + 1);
                // The series of one study get different descriptions (T1 SAG, then T2 AX...).
                match &first_description {
                    None => first_description = Some(series.description.clone()),
                    Some(first) => series.description = description_after(spec.modality, first, se),
                }
                for i in 0..spec.instances_per_series {
                    n += 1;
                    let inst = self.instance(patient, &study, &series, i as u32 + 1, spec.size);
                    let path = study_dir.join(format!("IMG{n:05}.dcm"));
                    let bytes = write_instance(&path, &inst, spec.syntax)?;
                    out.push(GeneratedFile { path, instance: inst, bytes });
                }
            }
        }
        Ok(out)
    }
}

/// The data set of `inst` without its pixel data, as a dicom-object object.
pub fn header_object(inst: &Instance) -> InMemDicomObject {
    let mut o = InMemDicomObject::new_empty();
    let mut put = |tag: Tag, vr: VR, v: PrimitiveValue| {
        o.put(DataElement::new(tag, vr, v));
    };
    let s = |x: &str| PrimitiveValue::from(x.to_owned());
    let ct = inst.series.modality == Modality::Ct;
    let size = inst.size;
    put(tags::SPECIFIC_CHARACTER_SET, VR::CS, s("ISO_IR 100"));
    put(
        tags::IMAGE_TYPE,
        VR::CS,
        PrimitiveValue::Strs(
            ["ORIGINAL", "PRIMARY", "AXIAL"].map(String::from).into_iter().collect(),
        ),
    );
    put(tags::SOP_CLASS_UID, VR::UI, s(&inst.sop_class_uid));
    put(tags::SOP_INSTANCE_UID, VR::UI, s(&inst.sop_instance_uid));
    put(tags::STUDY_DATE, VR::DA, s(&inst.study.date));
    put(tags::SERIES_DATE, VR::DA, s(&inst.study.date));
    put(tags::CONTENT_DATE, VR::DA, s(&inst.study.date));
    put(tags::STUDY_TIME, VR::TM, s(&inst.study.time));
    put(tags::ACCESSION_NUMBER, VR::SH, s(&inst.study.accession_number));
    put(tags::MODALITY, VR::CS, s(inst.series.modality.code()));
    put(tags::MANUFACTURER, VR::LO, s("DCLIENT SYNTH"));
    put(tags::INSTITUTION_NAME, VR::LO, s("Synthetic General Hospital"));
    put(tags::REFERRING_PHYSICIAN_NAME, VR::PN, s(&inst.study.referring_physician));
    put(tags::STUDY_DESCRIPTION, VR::LO, s(&inst.study.description));
    put(tags::SERIES_DESCRIPTION, VR::LO, s(&inst.series.description));
    put(tags::PATIENT_NAME, VR::PN, s(&inst.patient.name));
    put(tags::PATIENT_ID, VR::LO, s(&inst.patient.id));
    put(tags::PATIENT_BIRTH_DATE, VR::DA, s(&inst.patient.birth_date));
    put(tags::PATIENT_SEX, VR::CS, s(&inst.patient.sex));
    if ct {
        put(tags::KVP, VR::DS, s("120"));
        put(tags::SLICE_THICKNESS, VR::DS, s("5"));
    } else {
        put(tags::SLICE_THICKNESS, VR::DS, s("3"));
        put(tags::MAGNETIC_FIELD_STRENGTH, VR::DS, s("1.5"));
        put(tags::ECHO_TIME, VR::DS, s("12"));
        put(tags::REPETITION_TIME, VR::DS, s("500"));
    }
    put(tags::STUDY_INSTANCE_UID, VR::UI, s(&inst.study.uid));
    put(tags::SERIES_INSTANCE_UID, VR::UI, s(&inst.series.uid));
    put(tags::STUDY_ID, VR::SH, s(&inst.study.id));
    put(tags::SERIES_NUMBER, VR::IS, s(&inst.series.number.to_string()));
    put(tags::INSTANCE_NUMBER, VR::IS, s(&inst.number.to_string()));
    let z = format!("{:.1}", -100.0 + 5.0 * f64::from(inst.number));
    put(
        tags::IMAGE_POSITION_PATIENT,
        VR::DS,
        PrimitiveValue::Strs(
            ["-250".to_owned(), "-250".to_owned(), z.clone()].into_iter().collect(),
        ),
    );
    put(
        tags::IMAGE_ORIENTATION_PATIENT,
        VR::DS,
        PrimitiveValue::Strs(
            ["1", "0", "0", "0", "1", "0"].map(String::from).into_iter().collect(),
        ),
    );
    put(tags::FRAME_OF_REFERENCE_UID, VR::UI, s(&inst.series.frame_of_reference_uid));
    put(tags::SLICE_LOCATION, VR::DS, s(&z));
    put(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(1u16));
    put(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, s("MONOCHROME2"));
    if size.frames > 1 {
        put(tags::NUMBER_OF_FRAMES, VR::IS, s(&size.frames.to_string()));
    }
    put(tags::ROWS, VR::US, PrimitiveValue::from(size.rows));
    put(tags::COLUMNS, VR::US, PrimitiveValue::from(size.columns));
    put(
        tags::PIXEL_SPACING,
        VR::DS,
        PrimitiveValue::Strs(["0.9765625", "0.9765625"].map(String::from).into_iter().collect()),
    );
    put(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(16u16));
    put(tags::BITS_STORED, VR::US, PrimitiveValue::from(12u16));
    put(tags::HIGH_BIT, VR::US, PrimitiveValue::from(11u16));
    put(tags::PIXEL_REPRESENTATION, VR::US, PrimitiveValue::from(0u16));
    if ct {
        put(tags::WINDOW_CENTER, VR::DS, s("40"));
        put(tags::WINDOW_WIDTH, VR::DS, s("400"));
        put(tags::RESCALE_INTERCEPT, VR::DS, s("-1024"));
        put(tags::RESCALE_SLOPE, VR::DS, s("1"));
    }
    o
}

/// Writes `inst` as a Part 10 file in `syntax` and returns its size in bytes. The pixel
/// data go to disk one frame at a time.
pub fn write_instance(path: &Path, inst: &Instance, syntax: Syntax) -> Result<u64, SynthError> {
    let io_err = |source| SynthError::Io { path: path.to_owned(), source };
    let pixel_len = inst.size.pixel_bytes();
    if pixel_len > 0xFFFF_FFFE {
        return Err(SynthError::TooLarge(pixel_len));
    }
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(inst.sop_class_uid.as_str())
        .media_storage_sop_instance_uid(inst.sop_instance_uid.as_str())
        .transfer_syntax(syntax.uid())
        .implementation_class_uid(uids::IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(uids::IMPLEMENTATION_VERSION_NAME)
        .build()
        .map_err(|e| SynthError::Encode { what: "the file meta group", detail: e.to_string() })?;
    let ts = TransferSyntaxRegistry.get(syntax.base().uid()).ok_or(SynthError::Encode {
        what: "the data set",
        detail: format!("transfer syntax {} is not in the registry", syntax.uid()),
    })?;
    let mut header = Vec::with_capacity(2048);
    header_object(inst)
        .write_dataset_with_ts(&mut header, ts)
        .map_err(|e| SynthError::Encode { what: "the data set", detail: e.to_string() })?;
    // (7FE0,0010) OW, defined length.
    let len = pixel_len as u32;
    match syntax.base() {
        Syntax::ImplicitLe => {
            header.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00]);
            header.extend_from_slice(&len.to_le_bytes());
        }
        Syntax::ExplicitBe => {
            header.extend_from_slice(&[0x7F, 0xE0, 0x00, 0x10, b'O', b'W', 0, 0]);
            header.extend_from_slice(&len.to_be_bytes());
        }
        _ => {
            header.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00, b'O', b'W', 0, 0]);
            header.extend_from_slice(&len.to_le_bytes());
        }
    }

    let file = File::create(path).map_err(io_err)?;
    let mut w = BufWriter::with_capacity(256 * 1024, file);
    w.write_all(&[0u8; 128]).and_then(|_| w.write_all(b"DICM")).map_err(io_err)?;
    meta.write(&mut w)
        .map_err(|e| SynthError::Encode { what: "the file meta group", detail: e.to_string() })?;
    let big_endian = syntax == Syntax::ExplicitBe;
    if syntax == Syntax::Deflated {
        let mut z = flate2::write::DeflateEncoder::new(w, flate2::Compression::fast());
        z.write_all(&header).map_err(io_err)?;
        write_pixels(&mut z, inst.size, big_endian).map_err(io_err)?;
        w = z.finish().map_err(io_err)?;
        // The meta group ends at an even offset, so the file's parity is the data set's.
        if w.stream_position().map_err(io_err)? % 2 == 1 {
            // The deflated stream is padded to an even length (PS3.5 A.5).
            w.write_all(&[0]).map_err(io_err)?;
        }
    } else {
        w.write_all(&header).map_err(io_err)?;
        write_pixels(&mut w, inst.size, big_endian).map_err(io_err)?;
    }
    let file = w.into_inner().map_err(|e| io_err(e.into_error()))?;
    file.sync_data().ok();
    let bytes = file.metadata().map_err(io_err)?.len();
    Ok(bytes)
}

/// The phantom's value at (x, y) in frame `f`: air around an ellipse of soft tissue with a
/// bright round insert and a little deterministic texture; 12-bit, CT-like stored values.
fn phantom(x: u32, y: u32, f: u32, w: u32, h: u32) -> u16 {
    let (cx, cy) = (w as i64 / 2, h as i64 / 2);
    let (dx, dy) = (x as i64 - cx, y as i64 - cy);
    let (a, b) = ((w as i64 * 2 / 5).max(1), (h as i64 * 3 / 10).max(1));
    let texture = ((x.wrapping_mul(7) ^ y.wrapping_mul(13) ^ f.wrapping_mul(3)) & 31) as u16;
    if dx * dx * b * b + dy * dy * a * a > a * a * b * b {
        return 24 + (texture & 7); // air: -1000 HU
    }
    let r = (a.min(b) / 4).max(1);
    let (ix, iy) = (dx - a / 3, dy);
    if ix * ix + iy * iy < r * r {
        return 2000 + texture; // bone-like insert
    }
    1064 + texture // soft tissue: about 40 HU
}

fn write_pixels(w: &mut impl Write, size: ImageSize, big_endian: bool) -> io::Result<()> {
    let (cols, rows) = (u32::from(size.columns), u32::from(size.rows));
    let mut frame = Vec::with_capacity(cols as usize * rows as usize * 2);
    for f in 0..size.frames.max(1) {
        frame.clear();
        for y in 0..rows {
            for x in 0..cols {
                let v = phantom(x, y, f, cols, rows);
                frame.extend_from_slice(&if big_endian {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                });
            }
        }
        w.write_all(&frame)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_valid_and_distinct() {
        let mut s = Synth::new(1);
        let a = s.uid();
        let b = s.uid();
        assert_ne!(a, b);
        assert!(uids::is_valid_uid(&a), "{a}");
        assert!(a.starts_with("2.25."));
        assert_eq!(Synth::new(1).uid(), a, "deterministic per seed");
    }

    #[test]
    fn the_series_of_a_study_have_different_descriptions() {
        let dir = tempfile::tempdir().expect("tmp");
        for modality in [Modality::Ct, Modality::Mr] {
            let spec = DatasetSpec {
                studies: 2,
                series_per_study: 4,
                instances_per_series: 1,
                modality,
                size: ImageSize::single(4, 4),
                ..DatasetSpec::default()
            };
            let files = Synth::new(3).generate(&dir.path().join(format!("{modality:?}")), &spec);
            let files = files.expect("generated");
            for study in files.chunks(4) {
                let mut d: Vec<&str> =
                    study.iter().map(|f| f.instance.series.description.as_str()).collect();
                d.sort_unstable();
                d.dedup();
                assert_eq!(d.len(), 4, "{modality:?}: {d:?}");
            }
        }
    }

    #[test]
    fn every_syntax_reads_back_with_dicom_object() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Synth::new(7);
        let p = s.patient();
        let st = s.study(Modality::Mr);
        let se = s.series(Modality::Mr, 1);
        for syntax in Syntax::ALL {
            let inst = s.instance(&p, &st, &se, 1, ImageSize::single(8, 6));
            let path = dir.path().join(format!("{syntax:?}.dcm"));
            write_instance(&path, &inst, syntax).expect("write");
            let obj = dicom_object::open_file(&path).expect("read back");
            assert_eq!(obj.meta().transfer_syntax().trim_end_matches('\0'), syntax.uid());
            let name = obj.element(tags::PATIENT_NAME).expect("name").to_str().expect("str");
            assert_eq!(name, p.name);
            let px = obj.element(tags::PIXEL_DATA).expect("pixels");
            let words = px.value().to_multi_int::<u16>().expect("words");
            assert_eq!(words.len(), 48);
            assert_eq!(words[0], phantom(0, 0, 0, 6, 8), "{syntax:?}");
            assert_eq!(words[3 * 6 + 2], phantom(2, 3, 0, 6, 8), "{syntax:?}");
        }
    }

    #[test]
    fn deflated_files_really_are_deflated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Synth::new(9);
        let p = s.patient();
        let st = s.study(Modality::Ct);
        let se = s.series(Modality::Ct, 1);
        let inst = s.instance(&p, &st, &se, 1, ImageSize::single(64, 64));
        let a = dir.path().join("a.dcm");
        let b = dir.path().join("b.dcm");
        let la = write_instance(&a, &inst, Syntax::ExplicitLe).expect("write");
        let lb = write_instance(&b, &inst, Syntax::Deflated).expect("write");
        assert!(lb < la / 2, "deflated {lb} bytes vs {la}");
    }
}
