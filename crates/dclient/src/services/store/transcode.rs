//! Transcoding a data set between the uncompressed transfer syntaxes (implicit VR LE,
//! explicit VR LE, explicit VR BE, deflated explicit VR LE), used only when a peer refused a
//! file's own syntax. Compressed (encapsulated) data sets are never transcoded: without a
//! decoder, their pixel data cannot go under an uncompressed syntax.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

use dclient_proto::uids;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use super::prepare::PreparedFile;
use crate::dataset::{validate_dataset, DatasetEncoding};
use crate::names::describe_uid;

/// A deflated data set may inflate to at most this many bytes.
const MAX_INFLATED: u64 = 2 << 30;

/// Why a data set could not be transcoded.
#[derive(Debug, thiserror::Error)]
pub enum TranscodeError {
    /// The file's syntax is compressed (or unknown), and no decoder is available.
    #[error(
        "the peer refused the file's transfer syntax {from}, and its compressed pixel data \
         cannot be sent under another syntax (no decoder)"
    )]
    Compressed {
        /// The file's syntax, described.
        from: String,
    },
    /// The target syntax is not one we can write.
    #[error("cannot transcode into {0}")]
    Target(String),
    /// Reading the file failed.
    #[error("cannot read the file: {0}")]
    Io(#[from] io::Error),
    /// dicom-object could not decode or encode the data set.
    #[error("transcoding from {from} to {to} failed: {detail}")]
    Codec {
        /// Source syntax.
        from: String,
        /// Target syntax.
        to: String,
        /// What dicom-object said.
        detail: String,
    },
}

/// Whether `ts` is one of the four uncompressed syntaxes we can transcode between.
pub fn is_uncompressed(ts: &str) -> bool {
    uids::UNCOMPRESSED.contains(&ts)
}

/// The data set of `file` encoded in transfer syntax `to`, in memory.
pub fn transcode(file: &PreparedFile, to: &str) -> Result<Vec<u8>, TranscodeError> {
    let from = file.transfer_syntax.as_str();
    if !is_uncompressed(from) {
        return Err(TranscodeError::Compressed { from: describe_uid(from) });
    }
    if !is_uncompressed(to) {
        return Err(TranscodeError::Target(describe_uid(to)));
    }
    let codec = |detail: String| TranscodeError::Codec {
        from: describe_uid(from),
        to: describe_uid(to),
        detail,
    };
    // The data set's length is the file's size less the meta group: bounded by the disk.
    let mut f = File::open(&file.path)?;
    f.seek(SeekFrom::Start(file.data_offset))?;
    let mut raw = Vec::new();
    f.take(file.data_len).read_to_end(&mut raw)?;
    let (bytes, read_ts) = if from == uids::DEFLATED_EXPLICIT_VR_LE {
        let mut out = Vec::new();
        flate2::read::DeflateDecoder::new(&raw[..]).take(MAX_INFLATED + 1).read_to_end(&mut out)?;
        if out.len() as u64 > MAX_INFLATED {
            return Err(codec(format!(
                "the deflated data set inflates to more than {MAX_INFLATED} bytes"
            )));
        }
        (out, uids::EXPLICIT_VR_LE)
    } else {
        (raw, from)
    };
    // dicom-parser allocates a value's declared length before reading it, and a value of a
    // length its VR cannot have (a UL of 2 bytes) makes it lose step and read a length from
    // the middle of a value: a 400-byte file asked for 256 MiB (found by the prepare_file
    // fuzz target). Every length is checked first, as for data sets from the network.
    let enc = DatasetEncoding::from_uid(read_ts).map_err(|e| codec(e.to_string()))?;
    validate_dataset(&bytes, enc, bytes.len())
        .map_err(|e| codec(format!("malformed data set: {e}")))?;
    let read_ts = TransferSyntaxRegistry
        .get(read_ts)
        .ok_or_else(|| codec(format!("{read_ts} is not in the transfer syntax registry")))?;
    let obj = InMemDicomObject::read_dataset_with_ts(&bytes[..], read_ts)
        .map_err(|e| codec(e.to_string()))?;
    drop(bytes);
    let write_uid = if to == uids::DEFLATED_EXPLICIT_VR_LE { uids::EXPLICIT_VR_LE } else { to };
    let write_ts = TransferSyntaxRegistry
        .get(write_uid)
        .ok_or_else(|| codec(format!("{write_uid} is not in the transfer syntax registry")))?;
    let mut out = Vec::with_capacity(file.data_len as usize + 1024);
    obj.write_dataset_with_ts(&mut out, write_ts).map_err(|e| codec(e.to_string()))?;
    if to == uids::DEFLATED_EXPLICIT_VR_LE {
        // Deflate ourselves (raw RFC 1951, as PS3.5 A.5 asks), not through dicom-rs's
        // adapter, so the output is deflated whatever features are enabled.
        let mut z = flate2::write::DeflateEncoder::new(
            Vec::with_capacity(out.len() / 2),
            flate2::Compression::fast(),
        );
        z.write_all(&out)?;
        out = z.finish()?;
        if out.len() % 2 == 1 {
            out.push(0); // even length (PS3.5 A.5)
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dclient_synth::{write_instance, ImageSize, Modality, Syntax, Synth};
    use dicom_dictionary_std::tags;

    /// Every pair of uncompressed syntaxes: the output parses in the target syntax with the
    /// same values, and deflated output really is deflated.
    #[test]
    fn between_every_pair_of_uncompressed_syntaxes() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut s = Synth::new(5);
        let p = s.patient();
        let st = s.study(Modality::Ct);
        let se = s.series(Modality::Ct, 1);
        let inst = s.instance(&p, &st, &se, 1, ImageSize::single(32, 32));
        for from in Syntax::ALL {
            let path = dir.path().join(format!("{from:?}.dcm"));
            write_instance(&path, &inst, from).expect("write");
            let pf = PreparedFile::open(&path).expect("prepare");
            let reference = dicom_object::open_file(&path).expect("open");
            let ref_px = reference.element(tags::PIXEL_DATA).expect("px").to_multi_int::<u16>();
            for to in Syntax::ALL {
                let out = transcode(&pf, to.uid()).expect("transcode");
                assert_eq!(out.len() % 2, 0, "{from:?} -> {to:?}: odd length");
                let (bytes, ts) = if to == Syntax::Deflated {
                    let mut v = Vec::new();
                    flate2::read::DeflateDecoder::new(&out[..])
                        .read_to_end(&mut v)
                        .expect("really deflated");
                    assert!(out.len() < v.len() / 2, "deflate did not compress");
                    (v, uids::EXPLICIT_VR_LE)
                } else {
                    (out, to.uid())
                };
                let ts = TransferSyntaxRegistry.get(ts).expect("ts");
                let obj = InMemDicomObject::read_dataset_with_ts(&bytes[..], ts)
                    .unwrap_or_else(|e| panic!("{from:?} -> {to:?}: {e}"));
                let name = obj.element(tags::PATIENT_NAME).expect("name").to_str().expect("s");
                assert_eq!(name, p.name, "{from:?} -> {to:?}");
                let px = obj.element(tags::PIXEL_DATA).expect("px").to_multi_int::<u16>();
                assert_eq!(px.ok(), ref_px.as_ref().ok().cloned(), "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn compressed_files_are_not_transcoded() {
        let pf = PreparedFile {
            path: "x.dcm".into(),
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            sop_instance_uid: "1.2.3".into(),
            transfer_syntax: uids::JPEG_BASELINE.into(),
            data_offset: 0,
            data_len: 0,
            has_meta: true,
            identifying_len: 0,
        };
        let e = transcode(&pf, uids::EXPLICIT_VR_LE).expect_err("compressed");
        assert!(e.to_string().contains("JPEG Baseline"), "{e}");
        assert!(e.to_string().contains("no decoder"), "{e}");
    }

    /// Found by the prepare_file fuzz target (as peak memory, not a crash): a 396-byte raw
    /// data set whose HighBit (0028,0102) is a UL of 2 bytes. dicom-parser lost step on it
    /// and allocated 256 MiB for a "length" read from the middle of a value. The lengths
    /// are now checked first, and the file fails with one line naming the element.
    #[test]
    fn regression_a_value_length_its_vr_cannot_have_is_refused_before_parsing() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("in.dcm");
        std::fs::write(&path, include_bytes!("testdata/ul-of-two-bytes.raw")).expect("write");
        let pf = PreparedFile::open(&path).expect("its header reads");
        for to in [uids::IMPLICIT_VR_LE, uids::EXPLICIT_VR_BE] {
            let e = transcode(&pf, to).expect_err("malformed").to_string();
            assert!(e.contains("malformed data set"), "{e}");
            assert!(e.contains("(0028,0102)"), "{e}");
        }
        // The input libFuzzer then stopped on (out of memory at 2 GB): 202 bytes of implicit
        // VR data set with an FD of 44 bytes.
        std::fs::write(&path, include_bytes!("testdata/oom-202-bytes.raw")).expect("write");
        let pf = PreparedFile::open(&path).expect("its header reads");
        let e = transcode(&pf, uids::EXPLICIT_VR_LE).expect_err("malformed").to_string();
        assert!(e.contains("malformed data set: element (0022,000F) (FD)"), "{e}");
    }
}
