//! Test DICOM files, built by DCMTK's `dump2dcm` from a dump text.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

use crate::dcmtk::dcmtk;
use crate::process::{require_tool, run_bounded};

/// A fresh UID under the `2.25.` (UUID-derived) root, unique within this
/// process and, in practice, across processes.
pub fn unique_uid() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) as u128;
    let pid = std::process::id() as u128;
    // < 2^128: nanos (< 2^64 for centuries) in the high half, pid and counter below.
    let value =
        ((nanos & 0xFFFF_FFFF_FFFF_FFFF) << 64) | (pid << 32) | (n & 0xFFFF_FFFF) | 1 << 127;
    format!("2.25.{value}")
}

/// Runs `/usr/bin/dump2dcm [args] DUMP OUT` on `dump` (dcmdump's text
/// format, see `man dump2dcm`), bounded by 30 s. Without `-F` in `args`,
/// DCMTK writes a file with meta information (`+F`).
pub fn dump2dcm(dump: &str, out: &Path, args: &[&str]) -> Result<()> {
    require_tool("/usr/bin/dump2dcm")?;
    let dir = tempfile::tempdir()?;
    let dump_path = dir.path().join("in.dump");
    std::fs::write(&dump_path, dump)?;
    let mut cmd = dcmtk("dump2dcm");
    cmd.args(args).arg(&dump_path).arg(out);
    let output = run_bounded(&mut cmd, Duration::from_secs(30))?;
    if !output.status.success() || !out.exists() {
        bail!(
            "dump2dcm failed ({}):\n{}{}\ndump:\n{dump}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// A small uncompressed 16-bit MONOCHROME2 image with the attributes that
/// C-FIND/C-MOVE peers index (patient, study, series, instance levels).
#[derive(Debug, Clone)]
pub struct TestImage {
    /// SOP Class UID, default CT Image Storage.
    pub sop_class_uid: String,
    /// SOP Instance UID.
    pub sop_uid: String,
    /// Study Instance UID.
    pub study_uid: String,
    /// Series Instance UID.
    pub series_uid: String,
    /// Patient ID.
    pub patient_id: String,
    /// Patient's Name.
    pub patient_name: String,
    /// Modality, default `CT`.
    pub modality: String,
    /// Study Date (DA), default `20240101`.
    pub study_date: String,
    /// Accession Number.
    pub accession_number: String,
    /// Instance Number.
    pub instance_number: u32,
    /// Rows and Columns of the pixel data (16 bits per pixel).
    pub size: (u16, u16),
}

impl Default for TestImage {
    fn default() -> Self {
        Self {
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            sop_uid: unique_uid(),
            study_uid: unique_uid(),
            series_uid: unique_uid(),
            patient_id: "PID1".into(),
            patient_name: "Test^Patient".into(),
            modality: "CT".into(),
            study_date: "20240101".into(),
            accession_number: "ACC1".into(),
            instance_number: 1,
            size: (4, 4),
        }
    }
}

impl TestImage {
    /// The next image of the same series: new SOP Instance UID, instance
    /// number + 1.
    pub fn next_in_series(&self) -> Self {
        Self { sop_uid: unique_uid(), instance_number: self.instance_number + 1, ..self.clone() }
    }

    /// The dump text for `dump2dcm`, with the pixel data read from
    /// `pixel_file` (raw little-endian words).
    pub fn dump(&self, pixel_file: &Path) -> String {
        let (rows, cols) = self.size;
        format!(
            "(0008,0016) UI [{}]\n\
             (0008,0018) UI [{}]\n\
             (0008,0020) DA [{}]\n\
             (0008,0030) TM [120000]\n\
             (0008,0050) SH [{}]\n\
             (0008,0060) CS [{}]\n\
             (0010,0010) PN [{}]\n\
             (0010,0020) LO [{}]\n\
             (0010,0030) DA [19700101]\n\
             (0010,0040) CS [O]\n\
             (0020,000d) UI [{}]\n\
             (0020,000e) UI [{}]\n\
             (0020,0010) SH [1]\n\
             (0020,0011) IS [1]\n\
             (0020,0013) IS [{}]\n\
             (0028,0002) US 1\n\
             (0028,0004) CS [MONOCHROME2]\n\
             (0028,0010) US {rows}\n\
             (0028,0011) US {cols}\n\
             (0028,0100) US 16\n\
             (0028,0101) US 16\n\
             (0028,0102) US 15\n\
             (0028,0103) US 0\n\
             (7fe0,0010) OW ={}\n",
            self.sop_class_uid,
            self.sop_uid,
            self.study_date,
            self.accession_number,
            self.modality,
            self.patient_name,
            self.patient_id,
            self.study_uid,
            self.series_uid,
            self.instance_number,
            pixel_file.display(),
        )
    }

    /// Writes the image as a DICOM file (Explicit VR Little Endian, with
    /// meta information) with `dump2dcm +te`. Pixel value i is `i mod 4096`.
    pub fn write(&self, out: &Path) -> Result<()> {
        let (rows, cols) = self.size;
        let dir = tempfile::tempdir()?;
        let pixels = dir.path().join("pixels.raw");
        let data: Vec<u8> = (0..rows as usize * cols as usize)
            .flat_map(|i| ((i % 4096) as u16).to_le_bytes())
            .collect();
        std::fs::write(&pixels, data)?;
        dump2dcm(&self.dump(&pixels), out, &["+te"])
            .with_context(|| format!("writing test image {}", out.display()))
    }
}
