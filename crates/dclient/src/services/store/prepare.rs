//! Getting a file ready to send without loading it: its file meta group (SOP class and
//! instance, transfer syntax, where the data set starts), read with a small bounded reader
//! of our own, and a walk over the data set's element headers that proves every declared
//! length fits in the file (a truncated file is found here, not halfway through sending it).
//!
//! Files without a meta group (raw data sets, as DCMTK's `storescu --read-dataset` sends)
//! are recognised by their content: a first element in group 0008, implicit or explicit
//! VR little endian (detected), with SOP Class and Instance UIDs in the data set.
//!
//! Nothing here allocates from a length read from the file before checking it against the
//! file's size and a fixed cap.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use dclient_proto::uids;

/// The file meta group may not be longer than this (real ones are a few hundred bytes).
const MAX_META_LEN: u64 = 1 << 20;
/// How much of the file is read at first to find the meta group.
const HEAD_LEN: u64 = 8192;
/// Sequences nest at most this deep.
const MAX_DEPTH: u32 = 64;
/// SOP Class / Instance UID values longer than this are not UIDs.
const MAX_UID_VALUE: u32 = 256;
/// Media Storage Directory Storage: a DICOMDIR, not something to store.
pub(crate) const MEDIA_STORAGE_DIRECTORY: &str = "1.2.840.10008.1.3.10";

/// A file ready to be stored: what it is, in which syntax, and where its data set lies.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PreparedFile {
    /// The file.
    pub path: PathBuf,
    /// SOP Class UID: the data set's (0008,0016), as DCMTK and pynetdicom send it; the
    /// meta group's when the data set has none (see [`warnings`](Self::warnings)).
    pub sop_class_uid: String,
    /// SOP Instance UID: the data set's (0008,0018), else the meta group's.
    pub sop_instance_uid: String,
    /// The transfer syntax of the data set bytes: the meta group's, except when the data
    /// set's VR encoding contradicts it and the bytes are a valid data set of another
    /// uncompressed syntax (an Implicit VR data set under an Explicit VR meta group is sent
    /// as Implicit VR Little Endian, unchanged).
    pub transfer_syntax: String,
    /// Byte offset of the data set (after the preamble and meta group; 0 for raw files).
    pub data_offset: u64,
    /// Length of the data set in bytes (to the end of the file).
    pub data_len: u64,
    /// False for a raw data set without a meta group.
    pub has_meta: bool,
    /// Bytes of the data set (inflated, for a deflated one) before its first top-level
    /// element past group 0020: the patient, study, series and instance attributes,
    /// without image description or pixel data. What an index needs to read.
    pub identifying_len: u64,
    /// When the data set's VR encoding contradicts a compressed syntax of the meta group
    /// (a known writer bug: an Implicit VR data set in a JPEG Baseline file), the syntax
    /// whose encoding the bytes really have. Such a data set cannot go on the wire as it
    /// is: it is rewritten in [`transfer_syntax`](Self::transfer_syntax), pixel data
    /// unchanged, before it is sent.
    pub encoding_mismatch: Option<String>,
    /// What was wrong with the file and tolerated, one line each (also logged as warnings
    /// when the file is prepared): a meta group whose UIDs differ from the data set's, a
    /// VR encoding that contradicts the meta group.
    pub warnings: Vec<String>,
}

/// Why a file cannot be sent.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The file could not be opened or read.
    #[error("cannot read the file: {0}")]
    Io(#[from] io::Error),
    /// Not DICOM at all (empty, text, another format).
    #[error("not a DICOM file: {0}")]
    NotDicom(String),
    /// DICOM, but damaged or incomplete.
    #[error("invalid DICOM file: {0}")]
    Invalid(String),
    /// A DICOMDIR (Media Storage Directory), which is not stored on a peer.
    #[error("a DICOMDIR (media storage directory), not an object to store")]
    Dicomdir,
}

impl PrepareError {
    /// True when the file is simply not something to send (not DICOM, a DICOMDIR), as
    /// opposed to a damaged or unreadable DICOM file.
    pub fn is_not_dicom(&self) -> bool {
        matches!(self, PrepareError::NotDicom(_) | PrepareError::Dicomdir)
    }
}

impl PreparedFile {
    /// Reads the meta group (or recognises a raw data set) and checks the data set's
    /// structure: every element fits in the file, sequences are closed, native pixel data
    /// is not encapsulated. Reads only the element headers and a few values; large values
    /// are skipped with a seek. Deflated data sets are inflated on the fly to check them.
    pub fn open(path: &Path) -> Result<PreparedFile, PrepareError> {
        let mut f = File::open(path)?;
        let file_len = f.metadata()?.len();
        if file_len == 0 {
            return Err(PrepareError::NotDicom("the file is empty".into()));
        }
        let mut head = vec![0u8; HEAD_LEN.min(file_len) as usize];
        f.read_exact(&mut head)?;

        let meta_start = if head.len() >= 132 && &head[128..132] == b"DICM" {
            Some(132)
        } else if head.starts_with(b"DICM") {
            Some(4)
        } else if head.len() >= 8 && head[0..2] == [2, 0] && is_vr(&head[4..6]) {
            Some(0)
        } else {
            None
        };
        let mut pf = match meta_start {
            Some(start) => read_meta(path, &mut f, &mut head, start, file_len)?,
            None => PreparedFile {
                path: path.to_owned(),
                sop_class_uid: String::new(),
                sop_instance_uid: String::new(),
                transfer_syntax: detect_raw(&head)?.to_owned(),
                data_offset: 0,
                data_len: file_len,
                has_meta: false,
                ..PreparedFile::default()
            },
        };
        if pf.sop_class_uid == MEDIA_STORAGE_DIRECTORY {
            return Err(PrepareError::Dicomdir);
        }
        if pf.has_meta {
            check_vr_encoding(&mut pf, &head);
        }

        // Walk the data set.
        let found = walk_data_set(&pf, f, head)?;
        let ts = pf.transfer_syntax.as_str();
        if pf.data_len % 2 == 1 && ts != uids::DEFLATED_EXPLICIT_VR_LE {
            return Err(PrepareError::Invalid(format!(
                "the data set has an odd length ({} bytes): an element is cut or padded wrongly",
                pf.data_len
            )));
        }
        if found.elements == 0 {
            return Err(PrepareError::Invalid("no data set after the file meta group".into()));
        }
        pf.identifying_len = found.identifying_len.unwrap_or(found.walked);
        let plausible = |u: Option<String>| u.filter(|u| uids::is_plausible_uid(u));
        let (sop_class, sop_instance) = (plausible(found.sop_class), plausible(found.sop_instance));
        if !pf.has_meta {
            let (Some(class), Some(inst)) = (sop_class, sop_instance) else {
                return Err(PrepareError::NotDicom(
                    "no file meta group, and no SOP Class and Instance UIDs in a data set".into(),
                ));
            };
            pf.sop_class_uid = class;
            pf.sop_instance_uid = inst;
            if pf.sop_class_uid == MEDIA_STORAGE_DIRECTORY {
                return Err(PrepareError::Dicomdir);
            }
        } else {
            // The C-STORE names what the data set is (DCMTK's storescu and pynetdicom take
            // the UIDs from it): anonymisers that rewrite the data set and not the meta
            // group leave them apart, and a peer then refuses the object (A900).
            for (name, meta, data) in [
                ("SOP Class", &mut pf.sop_class_uid, sop_class),
                ("SOP Instance", &mut pf.sop_instance_uid, sop_instance),
            ] {
                if let Some(d) = data.filter(|d| d != meta) {
                    let w = format!(
                        "the meta group's Media Storage {name} UID {meta} differs from the data \
                         set's {name} UID {d}: sending the data set's"
                    );
                    *meta = d;
                    pf.warnings.push(w);
                }
            }
        }
        for w in &pf.warnings {
            tracing::warn!("{}: {w}", path.display());
        }
        Ok(pf)
    }

    /// Where the pixel data lies in the data set (found by walking the element headers
    /// again), for the transcoder.
    pub(crate) fn layout(&self) -> Result<Layout, PrepareError> {
        let mut f = File::open(&self.path)?;
        f.seek(SeekFrom::Start(self.data_offset))?;
        let found = walk_data_set(self, f, Vec::new())?;
        Ok(Layout { pixel: found.pixel, walked: found.walked })
    }
}

/// Where a data set's pixel data is, as [`PreparedFile::layout`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// The top-level Pixel Data (7FE0,0010) element, if any.
    pub pixel: Option<PixelPos>,
    /// The data set's length (inflated, for a deflated one).
    pub walked: u64,
}

/// The top-level Pixel Data element: offsets in the data set (inflated, for a deflated one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PixelPos {
    /// Where its header starts.
    pub start: u64,
    /// Its header's length (8 or 12 bytes).
    pub header_len: u64,
    /// Its value length; `None` for undefined (encapsulated) pixel data.
    pub len: Option<u32>,
    /// Where it ends (after the sequence delimiter of encapsulated pixel data).
    pub end: u64,
}

/// Walks the data set of `pf` from `f`: `head` holds the file's first bytes (empty when
/// `f` is positioned at the data set) and `f` is positioned right after them.
fn walk_data_set(pf: &PreparedFile, f: File, head: Vec<u8>) -> Result<Found, PrepareError> {
    let native = uids::UNCOMPRESSED.contains(&pf.transfer_syntax.as_str());
    let mut found = Found::default();
    walk(pf, head_src(head, pf, f), &mut found, native, None).map_err(|e| match e {
        WalkError::Io(e) => PrepareError::Io(e),
        WalkError::Bad(why) if !pf.has_meta && found.elements == 0 => PrepareError::NotDicom(why),
        WalkError::Bad(why) => PrepareError::Invalid(why),
    })?;
    Ok(found)
}

/// The SOP Class and Instance UIDs, (0008,0016) and (0008,0018), of the data set of the Part
/// 10 file at `path` (not of its meta group), as written there (padding trimmed); `None`
/// for one the data set lacks. Reads the meta group and the data set's first elements only,
/// up to the end of group 0008.
pub(crate) fn data_set_sop_uids(
    path: &Path,
) -> Result<(Option<String>, Option<String>), PrepareError> {
    let mut f = File::open(path)?;
    let file_len = f.metadata()?.len();
    let mut head = vec![0u8; HEAD_LEN.min(file_len) as usize];
    f.read_exact(&mut head)?;
    if head.len() < 132 || &head[128..132] != b"DICM" {
        return Err(PrepareError::NotDicom("no Part 10 preamble and DICM prefix".into()));
    }
    let mut pf = read_meta(path, &mut f, &mut head, 132, file_len)?;
    check_vr_encoding(&mut pf, &head);
    let mut found = Found::default();
    walk(&pf, head_src(head, &pf, f), &mut found, false, Some((0x0008, 0x0018))).map_err(|e| {
        match e {
            WalkError::Io(e) => PrepareError::Io(e),
            WalkError::Bad(why) => PrepareError::Invalid(why),
        }
    })?;
    Ok((found.sop_class, found.sop_instance))
}

/// The file's first bytes (`head`, empty when the file is positioned at the data set),
/// then the rest of the file, which is positioned right after them: the walk of the data
/// set starts in the head and goes on in the file.
fn head_src(head: Vec<u8>, pf: &PreparedFile, f: File) -> HeadThenFile {
    let head_len = head.len();
    let at = if head.is_empty() { 0 } else { pf.data_offset.min(head_len as u64) as usize };
    HeadThenFile { head, at, file: BufReader::with_capacity(16 * 1024, f) }
}

/// Walks the data set of `pf` from `src` (inflating a deflated one; read in the encoding
/// the bytes really have), up to its end or to the first top-level element past
/// `stop_after`.
fn walk(
    pf: &PreparedFile,
    src: HeadThenFile,
    found: &mut Found,
    native: bool,
    stop_after: Option<(u16, u16)>,
) -> Result<(), WalkError> {
    let ts = pf.transfer_syntax.as_str();
    let enc = Encoding::of(pf.encoding_mismatch.as_deref().unwrap_or(ts));
    if ts == uids::DEFLATED_EXPLICIT_VR_LE {
        let z = flate2::read::DeflateDecoder::new(BufReader::with_capacity(64 * 1024, src));
        let mut w = Walker { src: Inflating(z), pos: 0, end: None, found, native, stop_after };
        w.walk_top(enc)
    } else {
        let mut w = Walker { src, pos: 0, end: Some(pf.data_len), found, native, stop_after };
        w.walk_top(enc)
    }
}

/// A data set whose VR encoding contradicts its meta group (PS3.5 A.1, A.2: the meta group
/// says how the data set is encoded). Known writer bugs write an Implicit VR data set
/// under an Explicit VR (or compressed) meta group and the other way round; pydicom reads
/// them with a warning, DCMTK refuses them. The first element tells: in Explicit VR its
/// bytes 4 and 5 are a VR. Deflated data sets are not looked into.
fn check_vr_encoding(pf: &mut PreparedFile, head: &[u8]) {
    let ts = pf.transfer_syntax.clone();
    if ts == uids::DEFLATED_EXPLICIT_VR_LE || ts == uids::EXPLICIT_VR_BE {
        return;
    }
    let at = pf.data_offset as usize;
    let Some(first) = head.get(at..at + 8) else { return };
    let group = u16::from_le_bytes([first[0], first[1]]);
    if !(0x0008..0xFFFE).contains(&group) {
        return; // not a data set we can judge; the walk reports what is wrong
    }
    let explicit_bytes = is_vr(&first[4..6]) && explicit_second_element_fits(head, at);
    let says_explicit = ts != uids::IMPLICIT_VR_LE;
    if says_explicit == explicit_bytes {
        return;
    }
    let (really, name) = if explicit_bytes {
        (uids::EXPLICIT_VR_LE, "Explicit VR Little Endian")
    } else {
        (uids::IMPLICIT_VR_LE, "Implicit VR Little Endian")
    };
    let compressed = !uids::UNCOMPRESSED.contains(&ts.as_str());
    let what = if compressed {
        "; it is rewritten in Explicit VR Little Endian, pixel data unchanged, before it is sent"
            .to_owned()
    } else {
        format!("; it is sent as {name}")
    };
    pf.warnings.push(format!(
        "the data set is encoded in {name}, but the meta group says {}{what}",
        crate::names::describe_uid(&ts)
    ));
    if compressed {
        pf.encoding_mismatch = Some(really.to_owned());
    } else {
        pf.transfer_syntax = really.to_owned();
    }
}

/// Whether reading the data set at `at` as Explicit VR LE gives a second element with a
/// valid VR and a larger tag (an Implicit VR data set whose first length happens to look
/// like a VR fails here).
fn explicit_second_element_fits(head: &[u8], at: usize) -> bool {
    let Some(b) = head.get(at..at + 8) else { return false };
    let next = if long_vr(&b[4..6]) {
        let Some(l) = head.get(at + 8..at + 12) else { return true };
        at + 12 + u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize
    } else {
        at + 8 + usize::from(u16::from_le_bytes([b[6], b[7]]))
    };
    let Some(n) = head.get(next..next + 8) else { return true };
    let tag = |x: &[u8]| (u16::from_le_bytes([x[0], x[1]]), u16::from_le_bytes([x[2], x[3]]));
    is_vr(&n[4..6]) && tag(n) > tag(b)
}

fn is_vr(b: &[u8]) -> bool {
    const VRS: &[&[u8; 2]] = &[
        b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"OB",
        b"OD", b"OF", b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST", b"SV", b"TM",
        b"UC", b"UI", b"UL", b"UN", b"UR", b"US", b"UT", b"UV",
    ];
    b.len() == 2 && VRS.iter().any(|v| v[..] == *b)
}

/// VRs with a 2-byte reserved field and a 4-byte length in explicit VR (PS3.5 7.1.2).
fn long_vr(b: &[u8]) -> bool {
    matches!(
        b,
        b"OB"
            | b"OD"
            | b"OF"
            | b"OL"
            | b"OV"
            | b"OW"
            | b"SQ"
            | b"SV"
            | b"UC"
            | b"UN"
            | b"UR"
            | b"UT"
            | b"UV"
    )
}

fn uid_value(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).trim_end_matches(['\0', ' ']).trim_start().to_owned()
}

/// Reads group 0002 (always explicit VR little endian) starting at `start`.
fn read_meta(
    path: &Path,
    f: &mut File,
    head: &mut Vec<u8>,
    start: usize,
    file_len: u64,
) -> Result<PreparedFile, PrepareError> {
    let bad = |s: String| PrepareError::Invalid(format!("file meta group: {s}"));
    let mut pos = start;
    let (mut class, mut inst, mut ts) = (None, None, None);
    loop {
        ensure(f, head, pos + 12, file_len)?;
        if head.len() < pos + 8 {
            // End of file inside or right after the meta group.
            break;
        }
        let group = u16::from_le_bytes([head[pos], head[pos + 1]]);
        if group != 0x0002 {
            break;
        }
        let elem = u16::from_le_bytes([head[pos + 2], head[pos + 3]]);
        let vr = [head[pos + 4], head[pos + 5]];
        if !is_vr(&vr) {
            return Err(bad(format!("element (0002,{elem:04X}) has no valid VR")));
        }
        let (hdr, len) = if long_vr(&vr) {
            if head.len() < pos + 12 {
                return Err(bad("cut short".into()));
            }
            (12, u32::from_le_bytes([head[pos + 8], head[pos + 9], head[pos + 10], head[pos + 11]]))
        } else {
            (8, u32::from(u16::from_le_bytes([head[pos + 6], head[pos + 7]])))
        };
        if len == u32::MAX {
            return Err(bad(format!("element (0002,{elem:04X}) has an undefined length")));
        }
        let end = (pos as u64) + hdr + u64::from(len);
        if end > file_len {
            return Err(bad(format!(
                "element (0002,{elem:04X}) declares {len} bytes, past the end of the file"
            )));
        }
        if end > MAX_META_LEN {
            return Err(bad(format!("longer than {MAX_META_LEN} bytes")));
        }
        let end = end as usize;
        ensure(f, head, end, file_len)?;
        let value = &head[pos + hdr as usize..end];
        match elem {
            0x0002 => class = Some(uid_value(value)),
            0x0003 => inst = Some(uid_value(value)),
            0x0010 => ts = Some(uid_value(value)),
            _ => {}
        }
        pos = end;
    }
    let check = |v: Option<String>, name: &str| -> Result<String, PrepareError> {
        match v {
            None => Err(bad(format!("no {name}"))),
            Some(u) if !uids::is_plausible_uid(&u) => Err(bad(format!(
                "{name} {:?} is not a valid UID",
                u.chars().take(70).collect::<String>()
            ))),
            Some(u) => Ok(u),
        }
    };
    let transfer_syntax = check(ts, "Transfer Syntax UID (0002,0010)")?;
    let sop_class_uid = check(class, "Media Storage SOP Class UID (0002,0002)")?;
    let sop_instance_uid = check(inst, "Media Storage SOP Instance UID (0002,0003)")?;
    Ok(PreparedFile {
        path: path.to_owned(),
        sop_class_uid,
        sop_instance_uid,
        transfer_syntax,
        data_offset: pos as u64,
        data_len: file_len - pos as u64,
        has_meta: true,
        ..PreparedFile::default()
    })
}

/// Makes `head` hold the file's bytes up to `upto` (or to its end), reading more as needed.
fn ensure(f: &mut File, head: &mut Vec<u8>, upto: usize, file_len: u64) -> io::Result<()> {
    let want = (upto as u64).min(file_len).min(MAX_META_LEN + 12);
    if (head.len() as u64) < want {
        let more = want - head.len() as u64;
        f.seek(SeekFrom::Start(head.len() as u64))?;
        f.take(more).read_to_end(head)?;
    }
    Ok(())
}

/// The transfer syntax of a raw data set (no meta group): its first element must be in
/// group 0008; explicit VR when a VR follows the tag, implicit otherwise.
fn detect_raw(head: &[u8]) -> Result<&'static str, PrepareError> {
    if head.len() < 8 {
        return Err(PrepareError::NotDicom(format!("only {} bytes", head.len())));
    }
    let group = u16::from_le_bytes([head[0], head[1]]);
    if group != 0x0008 {
        return Err(PrepareError::NotDicom(
            "no DICM prefix, and it does not start like a data set (group 0008)".into(),
        ));
    }
    Ok(if is_vr(&head[4..6]) { uids::EXPLICIT_VR_LE } else { uids::IMPLICIT_VR_LE })
}

/// How a data set is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Encoding {
    explicit: bool,
    big_endian: bool,
}

impl Encoding {
    /// Everything but implicit VR LE and explicit VR BE is explicit VR LE (the compressed
    /// syntaxes and deflate, once inflated, included).
    fn of(ts: &str) -> Encoding {
        match ts {
            uids::IMPLICIT_VR_LE => Encoding { explicit: false, big_endian: false },
            uids::EXPLICIT_VR_BE => Encoding { explicit: true, big_endian: true },
            _ => Encoding { explicit: true, big_endian: false },
        }
    }
    const IMPLICIT: Encoding = Encoding { explicit: false, big_endian: false };

    fn u16(self, b: [u8; 2]) -> u16 {
        if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    }
    fn u32(self, b: [u8; 4]) -> u32 {
        if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }
}

/// What the walk picked up on the way.
#[derive(Debug, Default)]
struct Found {
    elements: u64,
    /// Where the first top-level element past group 0020 starts.
    identifying_len: Option<u64>,
    /// Bytes walked (the whole data set, inflated, once the walk is done).
    walked: u64,
    sop_class: Option<String>,
    sop_instance: Option<String>,
    /// The top-level Pixel Data element.
    pixel: Option<PixelPos>,
}

enum WalkError {
    Io(io::Error),
    Bad(String),
}

impl From<io::Error> for WalkError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            WalkError::Bad("the file ends in the middle of an element (truncated)".into())
        } else {
            WalkError::Io(e)
        }
    }
}

/// A byte source the walker can skip forward in.
trait Source: Read {
    fn skip(&mut self, n: u64) -> io::Result<()>;
}

/// The bytes already read (from `at` on), then the rest of the file, skipped with seeks.
struct HeadThenFile {
    head: Vec<u8>,
    at: usize,
    file: BufReader<File>,
}
impl Read for HeadThenFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at < self.head.len() {
            let n = buf.len().min(self.head.len() - self.at);
            buf[..n].copy_from_slice(&self.head[self.at..self.at + n]);
            self.at += n;
            return Ok(n);
        }
        self.file.read(buf)
    }
}
impl Source for HeadThenFile {
    fn skip(&mut self, n: u64) -> io::Result<()> {
        let in_head = (self.head.len() - self.at.min(self.head.len())) as u64;
        if n <= in_head {
            self.at += n as usize;
            return Ok(());
        }
        self.at = self.head.len();
        // The walker has checked `n` against the file size.
        self.file.seek_relative((n - in_head) as i64)
    }
}

struct Inflating<R: Read>(flate2::read::DeflateDecoder<R>);
impl<R: Read> Read for Inflating<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}
impl<R: Read> Source for Inflating<R> {
    fn skip(&mut self, n: u64) -> io::Result<()> {
        let got = io::copy(&mut (&mut self.0).take(n), &mut io::sink())?;
        if got < n {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
}

struct Walker<'a, S: Source> {
    src: S,
    pos: u64,
    /// The data set's length, when known (not for a deflated stream).
    end: Option<u64>,
    found: &'a mut Found,
    /// Native (uncompressed) syntax: pixel data must have a defined length.
    native: bool,
    /// Stop at the first top-level element past this tag.
    stop_after: Option<(u16, u16)>,
}

const ITEM: (u16, u16) = (0xFFFE, 0xE000);
const ITEM_END: (u16, u16) = (0xFFFE, 0xE00D);
const SEQ_END: (u16, u16) = (0xFFFE, 0xE0DD);

struct Header {
    tag: (u16, u16),
    vr: Option<[u8; 2]>,
    len: u32,
}

impl<S: Source> Walker<'_, S> {
    fn left(&self) -> Option<u64> {
        self.end.map(|e| e.saturating_sub(self.pos))
    }

    /// Reads exactly `buf.len()` bytes; `Ok(false)` on a clean end of data before the first.
    fn read_or_end(&mut self, buf: &mut [u8]) -> Result<bool, WalkError> {
        if self.left() == Some(0) {
            return Ok(false);
        }
        let mut got = 0;
        while got < buf.len() {
            match self.src.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.pos += got as u64;
        if got == 0 {
            return Ok(false);
        }
        if got < buf.len() {
            return Err(WalkError::Bad(format!(
                "the file ends inside an element header ({got} of {} bytes; truncated)",
                buf.len()
            )));
        }
        Ok(true)
    }

    fn header(&mut self, enc: Encoding) -> Result<Option<Header>, WalkError> {
        let mut b = [0u8; 8];
        if !self.read_or_end(&mut b)? {
            return Ok(None);
        }
        let tag = (enc.u16([b[0], b[1]]), enc.u16([b[2], b[3]]));
        // Item and delimitation tags have no VR, in every encoding.
        if tag.0 == 0xFFFE || !enc.explicit {
            return Ok(Some(Header { tag, vr: None, len: enc.u32([b[4], b[5], b[6], b[7]]) }));
        }
        let vr = [b[4], b[5]];
        if !is_vr(&vr) {
            return Err(WalkError::Bad(format!(
                "element ({:04X},{:04X}) at data set offset {} has no valid VR",
                tag.0,
                tag.1,
                self.pos - 8
            )));
        }
        let len = if long_vr(&vr) {
            let mut l = [0u8; 4];
            if !self.read_or_end(&mut l)? {
                return Err(WalkError::Bad("the file ends inside an element header".into()));
            }
            enc.u32(l)
        } else {
            u32::from(enc.u16([b[6], b[7]]))
        };
        Ok(Some(Header { tag, vr: Some(vr), len }))
    }

    fn skip(&mut self, tag: (u16, u16), len: u32) -> Result<(), WalkError> {
        if let Some(left) = self.left() {
            if u64::from(len) > left {
                return Err(WalkError::Bad(format!(
                    "element ({:04X},{:04X}) declares {len} bytes but only {left} remain \
                     (truncated)",
                    tag.0, tag.1
                )));
            }
        }
        self.src.skip(u64::from(len)).map_err(WalkError::from)?;
        self.pos += u64::from(len);
        Ok(())
    }

    fn walk_top(&mut self, enc: Encoding) -> Result<(), WalkError> {
        self.walk_items_of(enc, 0, None)?;
        self.found.walked = self.pos;
        Ok(())
    }

    /// Walks elements until the end of data (top level), or until an item delimiter when
    /// `item_end` is set, or until the item's defined end.
    fn walk_items_of(
        &mut self,
        enc: Encoding,
        depth: u32,
        item_end: Option<Option<u64>>,
    ) -> Result<(), WalkError> {
        if depth > MAX_DEPTH {
            return Err(WalkError::Bad(format!("sequences nested deeper than {MAX_DEPTH}")));
        }
        let mut last_tag = (0u16, 0u16);
        loop {
            if let Some(Some(end)) = item_end {
                if self.pos == end {
                    return Ok(());
                }
                if self.pos > end {
                    return Err(WalkError::Bad("an element runs past the end of its item".into()));
                }
            }
            let element_start = self.pos;
            let Some(h) = self.header(enc)? else {
                return match item_end {
                    None => Ok(()),
                    Some(_) => Err(WalkError::Bad(
                        "the file ends inside a sequence item (truncated)".into(),
                    )),
                };
            };
            if h.tag == ITEM_END && matches!(item_end, Some(None)) {
                return Ok(());
            }
            if h.tag.0 == 0xFFFE {
                return Err(WalkError::Bad(format!(
                    "unexpected item tag (FFFE,{:04X}) among elements",
                    h.tag.1
                )));
            }
            if depth == 0 && h.tag <= last_tag && self.found.elements > 0 {
                return Err(WalkError::Bad(format!(
                    "element ({:04X},{:04X}) out of order after ({:04X},{:04X})",
                    h.tag.0, h.tag.1, last_tag.0, last_tag.1
                )));
            }
            last_tag = h.tag;
            if depth == 0 && self.stop_after.is_some_and(|t| h.tag > t) {
                return Ok(());
            }
            if depth == 0 {
                self.found.elements += 1;
                if h.tag.0 > 0x0020 && self.found.identifying_len.is_none() {
                    self.found.identifying_len = Some(element_start);
                }
            }
            let pixel_here = depth == 0 && h.tag == (0x7FE0, 0x0010);
            let header_len = self.pos - element_start;
            if h.len == u32::MAX {
                let is_pixel = h.tag == (0x7FE0, 0x0010);
                if is_pixel && self.native && depth == 0 {
                    return Err(WalkError::Bad(
                        "encapsulated (compressed) pixel data under an uncompressed transfer \
                         syntax"
                            .into(),
                    ));
                }
                // Encapsulated pixel data: items are fragments (bytes), not data sets.
                let fragments = is_pixel || matches!(h.vr.as_ref(), Some(b"OB" | b"OW"));
                let inner = if h.vr == Some(*b"UN") { Encoding::IMPLICIT } else { enc };
                self.walk_sequence(enc, inner, fragments, depth + 1)?;
                if pixel_here {
                    let end = self.pos;
                    self.found.pixel =
                        Some(PixelPos { start: element_start, header_len, len: None, end });
                }
                continue;
            }
            if depth == 0 && h.tag.0 == 0x0008 && (h.tag.1 == 0x0016 || h.tag.1 == 0x0018) {
                if h.len > MAX_UID_VALUE {
                    return Err(WalkError::Bad(format!(
                        "(0008,{:04X}) is {} bytes long, too long for a UID",
                        h.tag.1, h.len
                    )));
                }
                if let Some(left) = self.left() {
                    if u64::from(h.len) > left {
                        return Err(WalkError::Bad("the SOP UIDs run past the end".into()));
                    }
                }
                let mut v = vec![0u8; h.len as usize];
                if !v.is_empty() && !self.read_or_end(&mut v)? {
                    return Err(WalkError::Bad("the file ends inside a UID".into()));
                }
                let u = uid_value(&v);
                if h.tag.1 == 0x0016 {
                    self.found.sop_class = Some(u);
                } else {
                    self.found.sop_instance = Some(u);
                }
                continue;
            }
            if h.vr == Some(*b"SQ") && h.len > 0 {
                // A defined-length sequence: walk its items too.
                let end = self.pos + u64::from(h.len);
                if let Some(left) = self.left() {
                    if u64::from(h.len) > left {
                        return Err(WalkError::Bad(format!(
                            "sequence ({:04X},{:04X}) declares {} bytes but only {left} remain \
                             (truncated)",
                            h.tag.0, h.tag.1, h.len
                        )));
                    }
                }
                self.walk_defined_sequence(enc, end, depth + 1)?;
                continue;
            }
            self.skip(h.tag, h.len)?;
            if pixel_here {
                let end = self.pos;
                self.found.pixel =
                    Some(PixelPos { start: element_start, header_len, len: Some(h.len), end });
            }
        }
    }

    /// Items until the sequence delimiter (undefined-length sequence or encapsulated pixel
    /// data, whose fragments are items of defined length).
    fn walk_sequence(
        &mut self,
        enc: Encoding,
        inner: Encoding,
        fragments: bool,
        depth: u32,
    ) -> Result<(), WalkError> {
        loop {
            let Some(h) = self.header(enc)? else {
                return Err(WalkError::Bad(
                    "the file ends inside a sequence or pixel data (truncated)".into(),
                ));
            };
            match h.tag {
                SEQ_END => return Ok(()),
                ITEM if fragments => {
                    if h.len == u32::MAX {
                        return Err(WalkError::Bad(
                            "a pixel data fragment has an undefined length".into(),
                        ));
                    }
                    self.skip(h.tag, h.len)?;
                }
                ITEM => self.walk_item(inner, h.len, depth)?,
                t => {
                    return Err(WalkError::Bad(format!(
                        "({:04X},{:04X}) where a sequence item was expected",
                        t.0, t.1
                    )))
                }
            }
        }
    }

    fn walk_defined_sequence(
        &mut self,
        enc: Encoding,
        end: u64,
        depth: u32,
    ) -> Result<(), WalkError> {
        while self.pos < end {
            let Some(h) = self.header(enc)? else {
                return Err(WalkError::Bad("the file ends inside a sequence (truncated)".into()));
            };
            if h.tag != ITEM {
                return Err(WalkError::Bad(format!(
                    "({:04X},{:04X}) where a sequence item was expected",
                    h.tag.0, h.tag.1
                )));
            }
            self.walk_item(enc, h.len, depth)?;
        }
        if self.pos != end {
            return Err(WalkError::Bad("a sequence item runs past the end of its sequence".into()));
        }
        Ok(())
    }

    fn walk_item(&mut self, enc: Encoding, len: u32, depth: u32) -> Result<(), WalkError> {
        if len == u32::MAX {
            return self.walk_items_of(enc, depth, Some(None));
        }
        if let Some(left) = self.left() {
            if u64::from(len) > left {
                return Err(WalkError::Bad(format!(
                    "a sequence item declares {len} bytes but only {left} remain (truncated)"
                )));
            }
        }
        let end = self.pos + u64::from(len);
        self.walk_items_of(enc, depth, Some(Some(end)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dclient_synth::{write_instance, ImageSize, Modality, Syntax, Synth};

    fn one(dir: &Path, syntax: Syntax, name: &str) -> (PathBuf, dclient_synth::Instance) {
        let mut s = Synth::new(3);
        let p = s.patient();
        let st = s.study(Modality::Ct);
        let se = s.series(Modality::Ct, 1);
        let inst = s.instance(&p, &st, &se, 1, ImageSize::single(16, 16));
        let path = dir.join(name);
        write_instance(&path, &inst, syntax).expect("write");
        (path, inst)
    }

    #[test]
    fn reads_meta_of_every_syntax() {
        let dir = tempfile::tempdir().expect("tmp");
        for syntax in Syntax::ALL {
            let (path, inst) = one(dir.path(), syntax, "a.dcm");
            let pf = PreparedFile::open(&path).expect("prepare");
            assert_eq!(pf.transfer_syntax, syntax.uid());
            assert_eq!(pf.sop_instance_uid, inst.sop_instance_uid);
            assert_eq!(pf.sop_class_uid, inst.sop_class_uid);
            assert!(pf.has_meta);
            let len = std::fs::metadata(&path).expect("meta").len();
            assert_eq!(pf.data_offset + pf.data_len, len);
        }
    }

    #[test]
    fn raw_data_sets_are_recognised() {
        let dir = tempfile::tempdir().expect("tmp");
        for syntax in [Syntax::ImplicitLe, Syntax::ExplicitLe] {
            let (path, inst) = one(dir.path(), syntax, "a.dcm");
            let pf = PreparedFile::open(&path).expect("prepare");
            let bytes = std::fs::read(&path).expect("read");
            let raw = dir.path().join("raw");
            std::fs::write(&raw, &bytes[pf.data_offset as usize..]).expect("write");
            let r = PreparedFile::open(&raw).expect("raw");
            assert!(!r.has_meta);
            assert_eq!(r.transfer_syntax, syntax.uid());
            assert_eq!(r.sop_instance_uid, inst.sop_instance_uid);
            assert_eq!(r.data_offset, 0);
        }
    }

    #[test]
    fn bad_files_are_named_not_panicked_on() {
        let dir = tempfile::tempdir().expect("tmp");
        let (path, _) = one(dir.path(), Syntax::ExplicitLe, "a.dcm");
        let bytes = std::fs::read(&path).expect("read");
        let cases: Vec<(&str, Vec<u8>, bool)> = vec![
            ("empty", vec![], true),
            ("text", b"hello, this is not DICOM at all\n".to_vec(), true),
            ("truncated", bytes[..bytes.len() - 100].to_vec(), false),
            ("meta only", bytes[..200].to_vec(), false),
            ("preamble", bytes[..130].to_vec(), true),
        ];
        for (name, data, not_dicom) in cases {
            let p = dir.path().join(name);
            std::fs::write(&p, &data).expect("write");
            let e = PreparedFile::open(&p).expect_err(name);
            assert_eq!(e.is_not_dicom(), not_dicom, "{name}: {e}");
        }
        // Every prefix and a few corruptions: an error or a file, never a panic.
        for cut in (0..bytes.len()).step_by(7) {
            let p = dir.path().join("cut");
            std::fs::write(&p, &bytes[..cut]).expect("write");
            let _ = PreparedFile::open(&p);
        }
        for i in (0..600.min(bytes.len())).step_by(3) {
            let mut b = bytes.clone();
            b[i] ^= 0xFF;
            let p = dir.path().join("flip");
            std::fs::write(&p, &b).expect("write");
            let _ = PreparedFile::open(&p);
        }
    }

    #[test]
    fn huge_declared_lengths_are_refused_before_allocating() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut b = vec![0u8; 128];
        b.extend_from_slice(b"DICM");
        // (0002,0001) OB, length 0xFFFFFFF0
        b.extend_from_slice(&[2, 0, 1, 0, b'O', b'B', 0, 0, 0xF0, 0xFF, 0xFF, 0xFF]);
        let p = dir.path().join("huge");
        std::fs::write(&p, &b).expect("write");
        let e = PreparedFile::open(&p).expect_err("huge");
        assert!(e.to_string().contains("past the end"), "{e}");
    }
}
