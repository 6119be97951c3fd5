//! Converting a file's data set into another transfer syntax, frame by frame: the part
//! before Pixel Data is read into memory (its lengths checked first) and written in the
//! target syntax with the pixel module's attributes updated; then each frame is read,
//! decoded and encoded on its own (the [`codec`](crate::codec) table) and written out;
//! then the elements after Pixel Data. Memory holds the header, one frame (compressed and
//! native) and what the output buffers, whatever the object's size.
//!
//! Used when a peer refused a file's own syntax (C-STORE of `send`, of `serve`'s C-GET
//! and C-MOVE), when a file is sent with `--transfer-syntax`, and when received objects
//! are stored with `--store-as`.
//!
//! What changes with the pixel data (PS3.3 C.7.6.3, C.7.6.1.1.5, PS3.5 8.2):
//! - Photometric Interpretation: YBR_FULL(_422) decoded from JPEG becomes RGB, YBR_RCT and
//!   YBR_ICT decoded from JPEG 2000 become RGB; encoding RGB into JPEG 2000 gives YBR_RCT
//!   (YBR_ICT when lossy), into JPEG Baseline YBR_FULL_422. Planar Configuration becomes 0.
//! - Lossy Image Compression (0028,2110) stays "01" once data was lossy, and a Method
//!   (0028,2114) and Ratio (0028,2112) are added where missing; a new lossy encoding (only
//!   when allowed) adds its own.
//! - The Extended Offset Table (7FE0,0001-0003) goes; encapsulated output has an empty
//!   Basic Offset Table and one fragment per frame (PS3.5 A.4).
//! - A data set whose VR encoding contradicted its meta group is written in the encoding
//!   its syntax says, pixel data unchanged.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use dclient_proto::uids;
use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use super::prepare::{PixelPos, PreparedFile};
use crate::codec::{self, EncodeParams, ImageInfo};
use crate::dataset::{validate_dataset, DatasetEncoding};
use crate::names::describe_uid;

/// A deflated data set may inflate to at most this many bytes.
const MAX_INFLATED: u64 = 4 << 30;
/// The elements before (and after) Pixel Data are read into memory: at most this much.
const MAX_HEADER: u64 = 256 << 20;
/// Bytes copied at a time between native pixel data and the output.
const COPY_CHUNK: usize = 256 * 1024;

/// Why a data set could not be transcoded.
#[derive(Debug, thiserror::Error)]
pub enum TranscodeError {
    /// No codec of this build converts between the two syntaxes (a syntax we do not
    /// encode), or the conversion would be a new lossy encoding that was not allowed.
    #[error("cannot convert from {from} to {to}: {why}")]
    NoCodec {
        /// The file's syntax, described.
        from: String,
        /// The target syntax, described.
        to: String,
        /// Why.
        why: String,
    },
    /// The target syntax is not one we can write.
    #[error("cannot transcode into {0}")]
    Target(String),
    /// Reading the file (or writing the output) failed.
    #[error("cannot read the file: {0}")]
    Io(#[from] io::Error),
    /// The data set or a frame could not be decoded or encoded.
    #[error("converting from {from} to {to} failed: {detail}")]
    Codec {
        /// Source syntax.
        from: String,
        /// Target syntax.
        to: String,
        /// What went wrong, and where (which frame).
        detail: String,
    },
}

/// Whether `ts` is one of the four uncompressed syntaxes.
pub fn is_uncompressed(ts: &str) -> bool {
    uids::UNCOMPRESSED.contains(&ts)
}

/// How [`transcode_to`] encodes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TranscodeOptions {
    /// A new lossy encoding is allowed (JPEG Baseline; JPEG 2000 and JPEG-LS Near-Lossless
    /// with lossy settings). Lossless-only syntaxes are always encoded losslessly.
    pub lossy: bool,
    /// A folder for the encoders' scratch files (the JPEG 2000 encoder writes each
    /// codestream through a temporary file); default: the system's temporary folder.
    pub scratch_dir: Option<PathBuf>,
}

/// What [`transcode_to`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Transcoded {
    /// Data set bytes written.
    pub bytes: u64,
    /// Frames converted (0 without pixel data, or when pixel data was copied as it was).
    pub frames: u32,
}

/// Whether a data set in `from` can become one in `to` with this build's codecs, and
/// without a new lossy encoding unless `lossy`. `Err` says why not.
pub fn check_conversion(from: &str, to: &str, lossy: bool) -> Result<(), String> {
    if from == to || is_uncompressed(from) && is_uncompressed(to) {
        return Ok(());
    }
    if !codec::can_decode(from) {
        return Err(match codec::entry(from) {
            Some(e) => e.missing.to_owned(),
            None => format!("{} is a syntax this build does not decode", describe_uid(from)),
        });
    }
    if is_uncompressed(to) {
        return Ok(());
    }
    let Some(e) = codec::entry(to) else {
        return Err(format!("{} is a syntax this build does not write", describe_uid(to)));
    };
    if e.encode.is_none() {
        return Err(e.missing.to_owned());
    }
    if codec::always_lossy(to) && !lossy {
        return Err(format!(
            "{} is lossy, and a new lossy encoding needs --allow-lossy",
            describe_uid(to)
        ));
    }
    Ok(())
}

/// The data set of `file` encoded in transfer syntax `to`, in memory (default options).
pub fn transcode(file: &PreparedFile, to: &str) -> Result<Vec<u8>, TranscodeError> {
    let mut out = Vec::with_capacity(usize::try_from(file.data_len).unwrap_or(0) + 1024);
    transcode_to(file, to, &TranscodeOptions::default(), &mut out)?;
    Ok(out)
}

/// Writes the data set of `file` encoded in transfer syntax `to` into `out` (the data set
/// only, no meta group), frame by frame.
pub fn transcode_to(
    file: &PreparedFile,
    to: &str,
    opts: &TranscodeOptions,
    out: &mut dyn Write,
) -> Result<Transcoded, TranscodeError> {
    let from = file.transfer_syntax.as_str();
    if !is_uncompressed(to) && codec::entry(to).is_none() {
        return Err(TranscodeError::Target(describe_uid(to)));
    }
    let no_codec = |why: String| TranscodeError::NoCodec {
        from: describe_uid(from),
        to: describe_uid(to),
        why,
    };
    let fail = |detail: String| TranscodeError::Codec {
        from: describe_uid(from),
        to: describe_uid(to),
        detail,
    };
    let layout = file.layout().map_err(|e| fail(e.to_string()))?;
    // How the bytes are really encoded, and how the output is.
    let read_uid = file.encoding_mismatch.as_deref().unwrap_or(from);
    let read_enc = encoding_of(read_uid);
    let write_enc = encoding_of(to);

    let mut src = DataSource::open(file)?;
    let header_len = layout.pixel.map_or(layout.walked, |p| p.start);
    let header = read_part(&mut src, header_len, "the elements before Pixel Data")?;
    let mut obj = parse(&header, read_enc).map_err(&fail)?;
    drop(header);

    let mut w = Output::new(out, to == uids::DEFLATED_EXPLICIT_VR_LE);
    let mut frames = 0;
    match layout.pixel {
        None => write_object(&obj, write_enc, &mut w).map_err(&fail)?,
        Some(pos) => {
            let source_native = pos.len.is_some();
            let compressed_src = !is_uncompressed(from);
            if compressed_src && source_native {
                return Err(fail(format!(
                    "the meta group says {}, but Pixel Data is not encapsulated",
                    describe_uid(from)
                )));
            }
            let mut px = PixelStep { src: &mut src, pos, obj: &mut obj, out: &mut w, from, to };
            if from == to || (is_uncompressed(from) && is_uncompressed(to)) {
                // The pixel data as it is: copied (native, byte-swapped when the byte order
                // changes) or, for a data set re-encoded only (a VR mismatch), its items.
                px.copy(read_enc, write_enc).map_err(|e| e.context(&fail))?;
            } else {
                check_conversion(from, to, opts.lossy).map_err(no_codec)?;
                let scratch = opts.scratch_dir.clone().unwrap_or_else(std::env::temp_dir);
                let params = EncodeParams { lossy: opts.lossy };
                frames = px
                    .convert(read_enc, write_enc, params, &scratch, layout.walked)
                    .map_err(|e| e.context(&fail))?;
            }
            // The elements after Pixel Data (digital signatures, padding).
            let rest = layout.walked.saturating_sub(pos.end);
            if rest > 0 {
                let trailer = read_part(&mut src, rest, "the elements after Pixel Data")?;
                let t = parse(&trailer, read_enc).map_err(&fail)?;
                write_object(&t, write_enc, &mut w).map_err(&fail)?;
            }
        }
    }
    let bytes = w.finish()?;
    Ok(Transcoded { bytes, frames })
}

/// Writes `file` converted into transfer syntax `to` as a Part 10 file at `output`
/// (created or truncated; the caller names it and renames it into place). The file meta
/// group is the file's own with the new Transfer Syntax UID (a new one for a raw data set).
pub fn convert_file(
    file: &PreparedFile,
    to: &str,
    opts: &TranscodeOptions,
    output: &Path,
) -> Result<Transcoded, TranscodeError> {
    use dicom_object::meta::FileMetaTableBuilder;
    let own = if file.has_meta { read_meta(&file.path).ok().flatten() } else { None };
    let meta = match own {
        Some(mut m) => {
            m.media_storage_sop_class_uid = file.sop_class_uid.clone();
            m.media_storage_sop_instance_uid = file.sop_instance_uid.clone();
            m.transfer_syntax = to.to_owned();
            m.update_information_group_length();
            m
        }
        None => FileMetaTableBuilder::new()
            .media_storage_sop_class_uid(file.sop_class_uid.as_str())
            .media_storage_sop_instance_uid(file.sop_instance_uid.as_str())
            .transfer_syntax(to)
            .implementation_class_uid(uids::IMPLEMENTATION_CLASS_UID)
            .implementation_version_name(uids::IMPLEMENTATION_VERSION_NAME)
            .build()
            .map_err(|e| io::Error::other(format!("file meta group: {e}")))?,
    };
    let mut w = io::BufWriter::with_capacity(COPY_CHUNK, File::create(output)?);
    w.write_all(&[0u8; 128])?;
    w.write_all(b"DICM")?;
    meta.write(&mut w).map_err(|e| io::Error::other(format!("file meta group: {e}")))?;
    let t = transcode_to(file, to, opts, &mut w)?;
    w.into_inner().map_err(|e| e.into_error())?.sync_data()?;
    Ok(t)
}

/// The file meta group of a Part 10 file ("DICM" at 128, or at 0 without a preamble).
fn read_meta(path: &Path) -> io::Result<Option<dicom_object::meta::FileMetaTable>> {
    let mut f = BufReader::new(File::open(path)?);
    let mut head = [0u8; 132];
    let n = f.read(&mut head)?;
    let start = if n >= 132 && &head[128..132] == b"DICM" {
        128
    } else if head.starts_with(b"DICM") {
        0
    } else {
        return Ok(None);
    };
    f.seek(SeekFrom::Start(start))?;
    // FileMetaTable reads the "DICM" prefix itself.
    Ok(dicom_object::meta::FileMetaTable::from_reader(&mut f).ok())
}

/// A failure while converting pixel data: reading (I/O) or the data itself.
enum StepError {
    Io(io::Error),
    Data(String),
}

impl StepError {
    fn context(self, fail: &impl Fn(String) -> TranscodeError) -> TranscodeError {
        match self {
            StepError::Io(e) => TranscodeError::Io(e),
            StepError::Data(s) => fail(s),
        }
    }
}

impl From<io::Error> for StepError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            StepError::Data("the file ends inside Pixel Data (truncated)".into())
        } else {
            StepError::Io(e)
        }
    }
}

impl From<String> for StepError {
    fn from(s: String) -> Self {
        StepError::Data(s)
    }
}

/// The encoding of the data set bytes of syntax `uid` (the compressed ones and deflate,
/// once inflated, are Explicit VR Little Endian).
fn encoding_of(uid: &str) -> DatasetEncoding {
    match uid {
        uids::IMPLICIT_VR_LE => DatasetEncoding::ImplicitLittle,
        uids::EXPLICIT_VR_BE => DatasetEncoding::ExplicitBig,
        _ => DatasetEncoding::ExplicitLittle,
    }
}

fn registry_uid(enc: DatasetEncoding) -> &'static str {
    match enc {
        DatasetEncoding::ImplicitLittle => uids::IMPLICIT_VR_LE,
        DatasetEncoding::ExplicitLittle => uids::EXPLICIT_VR_LE,
        DatasetEncoding::ExplicitBig => uids::EXPLICIT_VR_BE,
    }
}

/// Reads part of a data set into an object. dicom-parser allocates a value's declared
/// length before reading it, and a value of a length its VR cannot have (a UL of 2
/// bytes) makes it lose step and read a length from the middle of a value: a 400-byte file
/// asked for 256 MiB (found by the prepare_file fuzz target). Every length is checked
/// first, as for data sets from the network.
fn parse(bytes: &[u8], enc: DatasetEncoding) -> Result<InMemDicomObject, String> {
    if bytes.is_empty() {
        return Ok(InMemDicomObject::new_empty());
    }
    validate_dataset(bytes, enc, bytes.len()).map_err(|e| format!("malformed data set: {e}"))?;
    let uid = registry_uid(enc);
    let ts = TransferSyntaxRegistry.get(uid).ok_or_else(|| format!("{uid} is not registered"))?;
    InMemDicomObject::read_dataset_with_ts(bytes, ts).map_err(|e| e.to_string())
}

fn write_object(
    obj: &InMemDicomObject,
    enc: DatasetEncoding,
    w: &mut Output<'_>,
) -> Result<(), String> {
    let uid = registry_uid(enc);
    let ts = TransferSyntaxRegistry.get(uid).ok_or_else(|| format!("{uid} is not registered"))?;
    let mut buf = Vec::new();
    obj.write_dataset_with_ts(&mut buf, ts).map_err(|e| e.to_string())?;
    w.write_all(&buf).map_err(|e| e.to_string())
}

fn read_part(src: &mut DataSource, len: u64, what: &str) -> Result<Vec<u8>, TranscodeError> {
    if len > MAX_HEADER {
        return Err(TranscodeError::Codec {
            from: String::new(),
            to: String::new(),
            detail: format!("{what} take {len} bytes, more than the {MAX_HEADER} we hold"),
        });
    }
    let mut v = vec![0u8; len as usize];
    src.read_exact(&mut v)?;
    Ok(v)
}

/// The data set's bytes from the start, inflated for a deflated one.
enum DataSource {
    Plain(io::Take<BufReader<File>>),
    Inflated(io::Take<flate2::read::DeflateDecoder<BufReader<io::Take<File>>>>),
}

impl DataSource {
    fn open(file: &PreparedFile) -> io::Result<DataSource> {
        let mut f = File::open(&file.path)?;
        f.seek(SeekFrom::Start(file.data_offset))?;
        Ok(if file.transfer_syntax == uids::DEFLATED_EXPLICIT_VR_LE {
            let z = flate2::read::DeflateDecoder::new(BufReader::with_capacity(
                64 * 1024,
                f.take(file.data_len),
            ));
            DataSource::Inflated(z.take(MAX_INFLATED))
        } else {
            DataSource::Plain(BufReader::with_capacity(COPY_CHUNK, f).take(file.data_len))
        })
    }
}

impl Read for DataSource {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            DataSource::Plain(r) => r.read(buf),
            DataSource::Inflated(r) => r.read(buf),
        }
    }
}

/// The output: counts bytes, deflates for Deflated Explicit VR Little Endian (raw RFC 1951,
/// PS3.5 A.5, done here so the output is deflated whatever dicom-rs features are on), and
/// pads to an even length at the end.
struct Output<'a> {
    inner: Counting<'a>,
    deflate: Option<flate2::write::DeflateEncoder<Vec<u8>>>,
}

struct Counting<'a> {
    w: &'a mut dyn Write,
    n: u64,
}

impl Output<'_> {
    fn new(w: &mut dyn Write, deflate: bool) -> Output<'_> {
        Output {
            inner: Counting { w, n: 0 },
            deflate: deflate.then(|| {
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast())
            }),
        }
    }

    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match &mut self.deflate {
            None => {
                self.inner.w.write_all(b)?;
                self.inner.n += b.len() as u64;
            }
            Some(z) => {
                z.write_all(b)?;
                // Hand the compressed bytes on as they come.
                if z.get_ref().len() >= COPY_CHUNK {
                    let done = std::mem::take(z.get_mut());
                    self.inner.w.write_all(&done)?;
                    self.inner.n += done.len() as u64;
                }
            }
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<u64> {
        if let Some(z) = self.deflate.take() {
            let rest = z.finish()?;
            self.inner.w.write_all(&rest)?;
            self.inner.n += rest.len() as u64;
        }
        if self.inner.n % 2 == 1 {
            self.inner.w.write_all(&[0])?; // even length (PS3.5 A.5)
            self.inner.n += 1;
        }
        self.inner.w.flush()?;
        Ok(self.inner.n)
    }
}

/// The header of an element: tag, VR (explicit), length, in `enc`.
fn element_header(tag: Tag, vr: Option<&[u8; 2]>, len: u32, enc: DatasetEncoding) -> Vec<u8> {
    let be = enc == DatasetEncoding::ExplicitBig;
    let u16b = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let u32b = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut h = Vec::with_capacity(12);
    h.extend_from_slice(&u16b(tag.0));
    h.extend_from_slice(&u16b(tag.1));
    match (enc, vr) {
        (DatasetEncoding::ImplicitLittle, _) | (_, None) => h.extend_from_slice(&u32b(len)),
        (_, Some(vr)) => {
            h.extend_from_slice(vr);
            h.extend_from_slice(&[0, 0]);
            h.extend_from_slice(&u32b(len));
        }
    }
    h
}

const ITEM: Tag = Tag(0xFFFE, 0xE000);
const SEQ_END: Tag = Tag(0xFFFE, 0xE0DD);

/// The Pixel Data element and what surrounds it, being converted.
struct PixelStep<'s, 'o, 'w> {
    src: &'s mut DataSource,
    pos: PixelPos,
    obj: &'s mut InMemDicomObject,
    out: &'s mut Output<'o>,
    from: &'w str,
    to: &'w str,
}

impl PixelStep<'_, '_, '_> {
    /// Pixel data as it is: native values (byte-swapped between the byte orders) or the
    /// items of encapsulated pixel data.
    fn copy(
        &mut self,
        read_enc: DatasetEncoding,
        write_enc: DatasetEncoding,
    ) -> Result<(), StepError> {
        let mut hdr = vec![0u8; self.pos.header_len as usize];
        self.src.read_exact(&mut hdr)?;
        let vr: [u8; 2] = if read_enc == DatasetEncoding::ImplicitLittle {
            if self.pos.len.is_none() || bits_allocated(self.obj) > 8 {
                *b"OW"
            } else {
                *b"OB"
            }
        } else {
            [hdr[4], hdr[5]]
        };
        let swap = (read_enc == DatasetEncoding::ExplicitBig)
            != (write_enc == DatasetEncoding::ExplicitBig);
        write_object(self.obj, write_enc, self.out)?;
        match self.pos.len {
            Some(len) => {
                let ba = bits_allocated(self.obj);
                if swap && ba > 16 {
                    return Err(StepError::Data(format!(
                        "Bits Allocated {ba} pixel data cannot change byte order"
                    )));
                }
                let swap16 = swap && (vr == *b"OW" || ba == 16);
                self.out.write_all(&element_header(tags::PIXEL_DATA, Some(&vr), len, write_enc))?;
                let mut left = u64::from(len);
                let mut buf = vec![0u8; COPY_CHUNK];
                while left > 0 {
                    let n = left.min(COPY_CHUNK as u64) as usize;
                    self.src.read_exact(&mut buf[..n])?;
                    if swap16 {
                        for c in buf[..n].chunks_exact_mut(2) {
                            c.swap(0, 1);
                        }
                    }
                    self.out.write_all(&buf[..n])?;
                    left -= n as u64;
                }
            }
            None => {
                let ob = *b"OB";
                self.out.write_all(&element_header(
                    tags::PIXEL_DATA,
                    Some(&ob),
                    u32::MAX,
                    write_enc,
                ))?;
                let mut left = self.pos.end - self.pos.start - self.pos.header_len;
                let mut buf = vec![0u8; COPY_CHUNK];
                while left > 0 {
                    let n = left.min(COPY_CHUNK as u64) as usize;
                    self.src.read_exact(&mut buf[..n])?;
                    self.out.write_all(&buf[..n])?;
                    left -= n as u64;
                }
            }
        }
        Ok(())
    }

    /// Frame by frame: decode (unless native), encode (unless the target is native),
    /// write. Returns the number of frames.
    fn convert(
        &mut self,
        read_enc: DatasetEncoding,
        write_enc: DatasetEncoding,
        params: EncodeParams,
        scratch: &Path,
        walked: u64,
    ) -> Result<u32, StepError> {
        let info = image_info(self.obj)?;
        let frame_len = info.frame_len().ok_or_else(|| {
            format!(
                "Bits Allocated {} ({} x {}): frames of whole bytes only are converted",
                info.bits_allocated, info.rows, info.columns
            )
        })?;
        let src_native = is_uncompressed(self.from);
        let dst_native = is_uncompressed(self.to);
        let mut hdr = vec![0u8; self.pos.header_len as usize];
        self.src.read_exact(&mut hdr)?;
        let mut frames =
            Frames::new(&mut *self.src, self.pos, &info, self.from, read_enc, frame_len)?;
        let value_len = self.pos.end - self.pos.start - self.pos.header_len;
        let _ = walked;
        let (self_from, self_to) = (self.from, self.to);

        let mut native_info = info.clone();
        native_info.planar_configuration = 0;
        if !src_native {
            native_info.photometric = codec::photometric_after_decode(
                self.from,
                &info.photometric,
                info.samples_per_pixel,
            );
        }
        // One frame: decoded (unless native), interleaved, encoded (unless the target is
        // native). Pure, so that frames can be converted on several threads.
        let process =
            |index: u32, raw: Vec<u8>| -> Result<(Vec<u8>, Option<codec::Encoded>), String> {
                let native = if src_native {
                    if info.planar_configuration == 1 && info.samples_per_pixel > 1 {
                        codec::samples::planar_to_interleaved(
                            &raw,
                            usize::from(info.samples_per_pixel),
                            usize::from(info.bits_allocated / 8).max(1),
                        )
                    } else {
                        raw
                    }
                } else {
                    codec::decode_frame(self_from, &info, &raw)
                        .map_err(|e| format!("frame {}: {e}", index + 1))?
                };
                if dst_native {
                    return Ok((native, None));
                }
                let e = codec::encode_frame(self_to, &native_info, &native, params, scratch)
                    .map_err(|e| format!("frame {}: {e}", index + 1))?;
                Ok((Vec::new(), Some(e)))
            };
        let lossy_known = lossy_flag(self.obj);
        let mut index = 0u32;
        let mut lossy_src = lossy_known;
        // Frames convert on up to `workers` threads (the cores), at most twice as many in
        // flight, and are written in order.
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
        let parallel = info.frames > 1 && workers > 1;
        type Done = (u32, Result<(Vec<u8>, Option<codec::Encoded>), String>);
        let (job_tx, job_rx) = std::sync::mpsc::channel::<(u32, Vec<u8>)>();
        let (res_tx, res_rx) = std::sync::mpsc::channel::<Done>();
        let job_rx = std::sync::Mutex::new(job_rx);
        let (obj, out) = (&mut *self.obj, &mut *self.out);
        let result: Result<(), StepError> = std::thread::scope(|s| {
            // Moved in, dropped before the scope joins the workers (they stop on it).
            let job_tx = job_tx;
            if parallel {
                for _ in 0..workers {
                    let (job_rx, res_tx, process) = (&job_rx, res_tx.clone(), &process);
                    s.spawn(move || loop {
                        let job = job_rx.lock().ok().and_then(|rx| rx.recv().ok());
                        let Some((i, raw)) = job else { return };
                        if res_tx.send((i, process(i, raw))).is_err() {
                            return;
                        }
                    });
                }
            }
            drop(res_tx);
            let r = (|| -> Result<(), StepError> {
                let mut pending: std::collections::BTreeMap<
                    u32,
                    (Vec<u8>, Option<codec::Encoded>),
                > = std::collections::BTreeMap::new();
                let (mut read, mut in_flight) = (0u32, 0usize);
                let mut exhausted = false;
                loop {
                    // Keep the workers busy, within the bound.
                    while !exhausted && (!parallel || in_flight < 2 * workers) {
                        match frames.next()? {
                            None => exhausted = true,
                            Some(raw) => {
                                if read == 0 && !src_native {
                                    lossy_src =
                                        lossy_known || codec::is_lossy_stream(self_from, &raw);
                                }
                                if parallel {
                                    job_tx
                                        .send((read, raw))
                                        .map_err(|_| "a converting thread stopped".to_owned())?;
                                    in_flight += 1;
                                } else {
                                    pending.insert(read, process(read, raw)?);
                                }
                                read += 1;
                                if !parallel {
                                    break;
                                }
                            }
                        }
                    }
                    if parallel && in_flight > 0 && !pending.contains_key(&index) {
                        let (i, r) =
                            res_rx.recv().map_err(|_| "a converting thread stopped".to_owned())?;
                        in_flight -= 1;
                        pending.insert(i, r?);
                        continue;
                    }
                    let Some((native, encoded)) = pending.remove(&index) else {
                        if exhausted && in_flight == 0 {
                            return Ok(());
                        }
                        continue;
                    };
                    if index == 0 {
                        // The header goes out once the first frame has shown what it becomes.
                        write_header(
                            obj,
                            out,
                            self_from,
                            (&info, &native_info),
                            encoded.as_ref(),
                            (lossy_src, value_len),
                            write_enc,
                        )?;
                    }
                    match encoded {
                        None => {
                            if write_enc == DatasetEncoding::ExplicitBig
                                && info.bits_allocated == 16
                            {
                                let mut b = native;
                                for c in b.chunks_exact_mut(2) {
                                    c.swap(0, 1);
                                }
                                out.write_all(&b)?;
                            } else {
                                out.write_all(&native)?;
                            }
                        }
                        Some(e) => {
                            let len = u32::try_from(e.data.len())
                                .map_err(|_| "a fragment over 4 GiB".to_owned())?;
                            out.write_all(&element_header(ITEM, None, len, write_enc))?;
                            out.write_all(&e.data)?;
                        }
                    }
                    index += 1;
                }
            })();
            drop(job_tx);
            r
        });
        result?;
        if index != info.frames {
            return Err(StepError::Data(format!(
                "Pixel Data holds {index} frames, Number of Frames says {}",
                info.frames
            )));
        }
        if dst_native {
            let total = (frame_len as u64) * u64::from(info.frames);
            if total % 2 == 1 {
                self.out.write_all(&[0])?;
            }
        } else {
            self.out.write_all(&element_header(SEQ_END, None, 0, write_enc))?;
        }
        Ok(index)
    }
}

/// The elements before Pixel Data with the pixel module updated, and the Pixel Data
/// element's header (and the empty Basic Offset Table of encapsulated output).
fn write_header(
    obj: &mut InMemDicomObject,
    out: &mut Output<'_>,
    from: &str,
    (info, native_info): (&ImageInfo, &ImageInfo),
    encoded: Option<&codec::Encoded>,
    (lossy_src, value_len): (bool, u64),
    write_enc: DatasetEncoding,
) -> Result<(), StepError> {
    let src_native = is_uncompressed(from);
    if !src_native {
        decoded_attributes(obj, from, info, native_info, lossy_src, value_len);
    }
    if info.samples_per_pixel > 1 {
        put_us(obj, tags::PLANAR_CONFIGURATION, 0);
    }
    let frame_len = info.frame_len().unwrap_or(0);
    if let Some(e) = encoded {
        if let Some(pi) = e.photometric {
            put_cs(obj, tags::PHOTOMETRIC_INTERPRETATION, pi);
        }
        if let Some(method) = e.lossy_method {
            let ratio = frame_len as f64 / e.data.len().max(1) as f64;
            mark_lossy(obj, method, ratio);
        }
    }
    for t in [
        tags::EXTENDED_OFFSET_TABLE,
        tags::EXTENDED_OFFSET_TABLE_LENGTHS,
        tags::ENCAPSULATED_PIXEL_DATA_VALUE_TOTAL_LENGTH,
    ] {
        obj.remove_element(t);
    }
    write_object(obj, write_enc, out)?;
    if encoded.is_none() {
        let total = (frame_len as u64) * u64::from(info.frames);
        let padded = total + total % 2;
        let len = u32::try_from(padded)
            .map_err(|_| format!("{padded} bytes of native pixel data exceed 4 GiB"))?;
        let vr = if info.bits_allocated > 8 { *b"OW" } else { *b"OB" };
        out.write_all(&element_header(tags::PIXEL_DATA, Some(&vr), len, write_enc))?;
    } else {
        let ob = *b"OB";
        out.write_all(&element_header(tags::PIXEL_DATA, Some(&ob), u32::MAX, write_enc))?;
        out.write_all(&element_header(ITEM, None, 0, write_enc))?; // empty BOT
    }
    Ok(())
}

/// The attributes a decoding changes: Photometric Interpretation, and the lossy
/// compression history when the source was lossy (PS3.3 C.7.6.1.1.5).
fn decoded_attributes(
    obj: &mut InMemDicomObject,
    from: &str,
    info: &ImageInfo,
    native: &ImageInfo,
    lossy: bool,
    encoded_len: u64,
) {
    if native.photometric != info.photometric {
        put_cs(obj, tags::PHOTOMETRIC_INTERPRETATION, &native.photometric);
    }
    if !lossy {
        return;
    }
    let has_method = obj.element_opt(tags::LOSSY_IMAGE_COMPRESSION_METHOD).ok().flatten().is_some();
    if has_method {
        put_cs(obj, tags::LOSSY_IMAGE_COMPRESSION, "01");
    } else {
        let native_total = info.frame_len().unwrap_or(0) as f64 * f64::from(info.frames);
        let ratio = native_total / encoded_len.max(1) as f64;
        let method = codec::entry(from).map_or("", |e| e.lossy_method_name());
        mark_lossy(obj, method, ratio);
    }
}

/// Reads the pixel module's attributes from the header.
fn image_info(obj: &InMemDicomObject) -> Result<ImageInfo, String> {
    let int = |tag: Tag, name: &str| -> Result<u16, String> {
        obj.element_opt(tag)
            .ok()
            .flatten()
            .ok_or_else(|| format!("no {name} {tag} in the data set"))?
            .to_int::<u16>()
            .map_err(|e| format!("{name} {tag}: {e}"))
    };
    let opt = |tag: Tag| obj.element_opt(tag).ok().flatten().and_then(|e| e.to_int::<u16>().ok());
    let frames = match obj.element_opt(tags::NUMBER_OF_FRAMES).ok().flatten() {
        None => 1,
        Some(e) => {
            let s = e.to_str().map_err(|e| format!("Number of Frames: {e}"))?;
            let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
            if s.is_empty() {
                1
            } else {
                s.parse::<u32>().map_err(|_| format!("Number of Frames {s:?} is not a number"))?
            }
        }
    };
    if frames == 0 {
        return Err("Number of Frames is 0".into());
    }
    let photometric = obj
        .element_opt(tags::PHOTOMETRIC_INTERPRETATION)
        .ok()
        .flatten()
        .and_then(|e| {
            e.to_str().ok().map(|s| s.trim_matches(|c: char| c == '\0' || c == ' ').to_owned())
        })
        .unwrap_or_else(|| "MONOCHROME2".to_owned());
    Ok(ImageInfo {
        rows: int(tags::ROWS, "Rows")?,
        columns: int(tags::COLUMNS, "Columns")?,
        samples_per_pixel: opt(tags::SAMPLES_PER_PIXEL).unwrap_or(1),
        bits_allocated: int(tags::BITS_ALLOCATED, "Bits Allocated")?,
        bits_stored: opt(tags::BITS_STORED)
            .unwrap_or_else(|| opt(tags::BITS_ALLOCATED).unwrap_or(8)),
        pixel_representation: opt(tags::PIXEL_REPRESENTATION).unwrap_or(0),
        photometric,
        planar_configuration: opt(tags::PLANAR_CONFIGURATION).unwrap_or(0),
        frames,
    })
}

fn bits_allocated(obj: &InMemDicomObject) -> u16 {
    obj.element_opt(tags::BITS_ALLOCATED)
        .ok()
        .flatten()
        .and_then(|e| e.to_int::<u16>().ok())
        .unwrap_or(16)
}

/// Whether the data set says its pixel data was lossy compressed once.
fn lossy_flag(obj: &InMemDicomObject) -> bool {
    obj.element_opt(tags::LOSSY_IMAGE_COMPRESSION)
        .ok()
        .flatten()
        .and_then(|e| e.to_str().ok().map(|s| s.trim() == "01"))
        .unwrap_or(false)
}

fn put_cs(obj: &mut InMemDicomObject, tag: Tag, v: &str) {
    obj.put(DataElement::new(tag, VR::CS, PrimitiveValue::from(v)));
}

fn put_us(obj: &mut InMemDicomObject, tag: Tag, v: u16) {
    obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
}

/// Lossy Image Compression "01", and one more value in its Ratio and Method lists.
fn mark_lossy(obj: &mut InMemDicomObject, method: &str, ratio: f64) {
    put_cs(obj, tags::LOSSY_IMAGE_COMPRESSION, "01");
    let values = |tag: Tag| -> Vec<String> {
        obj.element_opt(tag)
            .ok()
            .flatten()
            .and_then(|e| {
                e.to_multi_str().ok().map(|v| v.iter().map(|s| s.trim().to_owned()).collect())
            })
            .unwrap_or_default()
    };
    let mut ratios = values(tags::LOSSY_IMAGE_COMPRESSION_RATIO);
    let mut methods = values(tags::LOSSY_IMAGE_COMPRESSION_METHOD);
    ratios.push(format!("{:.2}", ratio.clamp(0.01, 9_999_999.0)));
    if !method.is_empty() {
        methods.push(method.to_owned());
    }
    obj.put(DataElement::new(
        tags::LOSSY_IMAGE_COMPRESSION_RATIO,
        VR::DS,
        PrimitiveValue::Strs(ratios.into_iter().collect()),
    ));
    if !methods.is_empty() {
        obj.put(DataElement::new(
            tags::LOSSY_IMAGE_COMPRESSION_METHOD,
            VR::CS,
            PrimitiveValue::Strs(methods.into_iter().collect()),
        ));
    }
}

/// The frames of the pixel data, one at a time: native frames of `frame_len` bytes, or
/// encapsulated frames (their fragments concatenated), grouped as PS3.5 A.4 allows: one
/// frame, one fragment per frame (always for RLE), by the Basic Offset Table, or else by
/// where a codestream starts (JPEG's SOI, JPEG 2000's SOC and SIZ).
struct Frames<'a> {
    src: &'a mut DataSource,
    native: bool,
    swap16: bool,
    frame_len: usize,
    frames: u32,
    /// Bytes of the pixel data value left to read.
    left: u64,
    given: u32,
    rle: bool,
    bot: Vec<u32>,
    /// The next fragment, read ahead, and its offset from the first fragment's item.
    pending: Option<(u64, Vec<u8>)>,
    next_offset: u64,
    ended: bool,
    /// A frame larger than this is refused (a bound on memory).
    max_frame: usize,
}

impl<'a> Frames<'a> {
    fn new(
        src: &'a mut DataSource,
        pos: PixelPos,
        info: &ImageInfo,
        from: &str,
        read_enc: DatasetEncoding,
        frame_len: usize,
    ) -> Result<Frames<'a>, StepError> {
        let value = pos.end - pos.start - pos.header_len;
        let mut f = Frames {
            src,
            native: pos.len.is_some(),
            swap16: read_enc == DatasetEncoding::ExplicitBig && info.bits_allocated == 16,
            frame_len,
            frames: info.frames,
            left: value,
            given: 0,
            rle: from == uids::RLE_LOSSLESS,
            bot: Vec::new(),
            pending: None,
            next_offset: 0,
            ended: false,
            max_frame: frame_len.saturating_mul(4).saturating_add(16 << 20),
        };
        if f.native {
            let need = frame_len as u64 * u64::from(info.frames);
            if value < need {
                return Err(StepError::Data(format!(
                    "native Pixel Data holds {value} bytes, {} frames of {frame_len} need {need}",
                    info.frames
                )));
            }
        } else {
            // The Basic Offset Table (the first item).
            match f.item()? {
                Some(bot) if bot.len() % 4 == 0 => {
                    f.bot = bot
                        .chunks_exact(4)
                        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect();
                    f.next_offset = 0;
                }
                Some(_) => {
                    return Err(StepError::Data(
                        "the Basic Offset Table's length is not a multiple of 4".into(),
                    ))
                }
                None => {
                    return Err(StepError::Data("encapsulated Pixel Data without any item".into()))
                }
            }
            if f.bot.len() != info.frames as usize || f.bot.first() != Some(&0) {
                f.bot.clear(); // empty or unusable: fall back to the other rules
            }
        }
        Ok(f)
    }

    /// The next item of encapsulated pixel data; `None` at the sequence delimiter.
    fn item(&mut self) -> Result<Option<Vec<u8>>, StepError> {
        if self.ended {
            return Ok(None);
        }
        if self.left < 8 {
            return Err(StepError::Data(
                "encapsulated Pixel Data ends without its delimiter".into(),
            ));
        }
        let mut h = [0u8; 8];
        self.src.read_exact(&mut h)?;
        self.left -= 8;
        let tag = Tag(u16::from_le_bytes([h[0], h[1]]), u16::from_le_bytes([h[2], h[3]]));
        let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        if tag == SEQ_END {
            self.ended = true;
            return Ok(None);
        }
        if tag != ITEM {
            return Err(StepError::Data(format!("{tag} where a pixel data item was expected")));
        }
        if u64::from(len) > self.left || len as usize > self.max_frame {
            return Err(StepError::Data(format!(
                "a pixel data fragment declares {len} bytes, {} remain",
                self.left
            )));
        }
        let mut v = vec![0u8; len as usize];
        self.src.read_exact(&mut v)?;
        self.left -= u64::from(len);
        Ok(Some(v))
    }

    /// The next fragment with its BOT offset (from the first fragment's item header).
    fn fragment(&mut self) -> Result<Option<(u64, Vec<u8>)>, StepError> {
        if let Some(p) = self.pending.take() {
            return Ok(Some(p));
        }
        let off = self.next_offset;
        Ok(self.item()?.map(|v| {
            self.next_offset += 8 + v.len() as u64;
            (off, v)
        }))
    }

    fn starts_frame(&self, offset: u64, frag: &[u8]) -> bool {
        if self.frames == 1 {
            return false;
        }
        if self.rle {
            return true;
        }
        if !self.bot.is_empty() {
            return self.bot.iter().any(|&o| u64::from(o) == offset);
        }
        frag.starts_with(&[0xFF, 0xD8])
            || frag.starts_with(&[0xFF, 0x4F, 0xFF, 0x51])
            || frag.get(4..8) == Some(b"jP  ")
    }

    fn next(&mut self) -> Result<Option<Vec<u8>>, StepError> {
        if self.native {
            if self.given == self.frames {
                // Skip the padding byte, if any, so the trailer reads from its start.
                let mut pad = vec![0u8; self.left as usize];
                self.src.read_exact(&mut pad)?;
                self.left = 0;
                return Ok(None);
            }
            let mut v = vec![0u8; self.frame_len];
            self.src.read_exact(&mut v)?;
            self.left -= self.frame_len as u64;
            if self.swap16 {
                for c in v.chunks_exact_mut(2) {
                    c.swap(0, 1);
                }
            }
            self.given += 1;
            return Ok(Some(v));
        }
        let Some((_, mut frame)) = self.fragment()? else {
            if self.left > 0 {
                return Err(StepError::Data("data after the pixel data delimiter".into()));
            }
            return Ok(None);
        };
        if self.given >= self.frames {
            return Err(StepError::Data(format!(
                "more fragments than the {} frames of Number of Frames",
                self.frames
            )));
        }
        loop {
            match self.fragment()? {
                None => break,
                Some((off, f)) if self.starts_frame(off, &f) => {
                    self.pending = Some((off, f));
                    break;
                }
                Some((_, f)) => {
                    if frame.len() + f.len() > self.max_frame {
                        return Err(StepError::Data(format!(
                            "frame {} spans more than {} bytes of fragments",
                            self.given + 1,
                            self.max_frame
                        )));
                    }
                    frame.extend_from_slice(&f);
                }
            }
        }
        self.given += 1;
        Ok(Some(frame))
    }
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

    /// Uncompressed to RLE and JPEG 2000 and back: the same pixels (a multi-frame image).
    #[test]
    fn compressed_round_trips_are_lossless() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut s = Synth::new(6);
        let p = s.patient();
        let st = s.study(Modality::Ct);
        let se = s.series(Modality::Ct, 1);
        let inst = s.instance(&p, &st, &se, 1, ImageSize { rows: 24, columns: 20, frames: 3 });
        let path = dir.path().join("a.dcm");
        write_instance(&path, &inst, Syntax::ExplicitLe).expect("write");
        let pf = PreparedFile::open(&path).expect("prepare");
        let reference = dicom_object::open_file(&path).expect("open");
        let ref_px =
            reference.element(tags::PIXEL_DATA).expect("px").to_bytes().expect("bytes").to_vec();
        for ts in [uids::RLE_LOSSLESS, uids::JPEG_2000_LOSSLESS, uids::JPEG_2000] {
            let data = transcode(&pf, ts).expect("encode");
            let c = dir.path().join("c.dcm");
            write_part10(&c, &pf, ts, &data);
            let cf = PreparedFile::open(&c).expect("prepare compressed");
            let back = transcode(&cf, uids::EXPLICIT_VR_LE).expect("decode");
            let t = TransferSyntaxRegistry.get(uids::EXPLICIT_VR_LE).expect("ts");
            let obj = InMemDicomObject::read_dataset_with_ts(&back[..], t).expect("read");
            let px = obj.element(tags::PIXEL_DATA).expect("px").to_bytes().expect("b").to_vec();
            assert_eq!(px, ref_px, "{ts}");
            assert_eq!(
                obj.element(tags::NUMBER_OF_FRAMES).expect("n").to_int::<u32>().ok(),
                Some(3)
            );
        }
    }

    fn write_part10(path: &Path, pf: &PreparedFile, ts: &str, data: &[u8]) {
        let meta = dicom_object::meta::FileMetaTableBuilder::new()
            .media_storage_sop_class_uid(pf.sop_class_uid.as_str())
            .media_storage_sop_instance_uid(pf.sop_instance_uid.as_str())
            .transfer_syntax(ts)
            .build()
            .expect("meta");
        let mut f = std::fs::File::create(path).expect("create");
        f.write_all(&[0u8; 128]).expect("w");
        f.write_all(b"DICM").expect("w");
        meta.write(&mut f).expect("meta");
        f.write_all(data).expect("data");
    }

    #[test]
    fn lossy_encoding_needs_permission() {
        let e =
            check_conversion(uids::EXPLICIT_VR_LE, uids::JPEG_BASELINE, false).expect_err("lossy");
        assert!(e.contains("--allow-lossy"), "{e}");
        assert!(check_conversion(uids::EXPLICIT_VR_LE, uids::JPEG_BASELINE, true).is_ok());
        assert!(check_conversion(uids::JPEG_BASELINE, uids::EXPLICIT_VR_LE, false).is_ok());
        let e = check_conversion(uids::EXPLICIT_VR_LE, uids::JPEG_LOSSLESS_SV1, true)
            .expect_err("no enc");
        assert!(e.contains("no encoder"), "{e}");
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
