//! The checks over compressed pixel data: `codec_decode` (the decode path of every
//! conversion: frame splitting, the codestream checks, the codecs) and `jpegls_decode`
//! (the JPEG-LS decoder of `dclient-jpegls` alone).

use std::path::Path;

use dclient::proto::uids;
use dclient::store::{transcode_to, PreparedFile, TranscodeOptions};
use dclient_jpegls::{decode_with_limit, encode, Interleave};

/// The syntaxes the first byte picks from.
pub const SYNTAXES: [&str; 9] = [
    uids::RLE_LOSSLESS,
    uids::JPEG_BASELINE,
    uids::JPEG_EXTENDED,
    "1.2.840.10008.1.2.4.57",
    uids::JPEG_LOSSLESS_SV1,
    uids::JPEG_LS_LOSSLESS,
    uids::JPEG_LS_NEAR_LOSSLESS,
    uids::JPEG_2000_LOSSLESS,
    uids::JPEG_2000,
];

/// The header bytes of a `codec_decode` input, then the fragments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Image {
    /// Index into [`SYNTAXES`].
    pub syntax: u8,
    /// 1 or 3.
    pub samples: u16,
    /// 8 or 16.
    pub bits_allocated: u16,
    /// 1 to Bits Allocated.
    pub bits_stored: u16,
    /// Two's complement samples.
    pub signed: bool,
    /// 1 to 4.
    pub frames: u16,
    /// 1 to 64.
    pub rows: u16,
    /// 1 to 64.
    pub columns: u16,
}

impl Image {
    /// Reads the 5 header bytes: syntax, flags (bit 0: 3 samples, bit 1: 16 bits, bit 2:
    /// signed, bits 3-4: frames - 1, bits 5-7: bits stored below allocated), rows,
    /// columns.
    pub fn parse(d: &[u8]) -> Option<(Image, &[u8])> {
        let (h, rest) = (d.get(..4)?, &d[4..]);
        let bits_allocated = if h[1] & 2 != 0 { 16 } else { 8 };
        Some((
            Image {
                syntax: h[0] % SYNTAXES.len() as u8,
                samples: if h[1] & 1 != 0 { 3 } else { 1 },
                bits_allocated,
                bits_stored: bits_allocated - u16::from(h[1] >> 5),
                signed: h[1] & 4 != 0,
                frames: u16::from((h[1] >> 3) & 3) + 1,
                rows: u16::from(h[2] % 64) + 1,
                columns: u16::from(h[3] % 64) + 1,
            },
            rest,
        ))
    }

    /// The header bytes that [`parse`](Image::parse) reads back.
    pub fn to_bytes(&self) -> [u8; 4] {
        let flags = u8::from(self.samples == 3)
            | u8::from(self.bits_allocated == 16) << 1
            | u8::from(self.signed) << 2
            | ((self.frames as u8 - 1) & 3) << 3
            | (((self.bits_allocated - self.bits_stored) as u8) & 7) << 5;
        [self.syntax, flags, (self.rows - 1) as u8, (self.columns - 1) as u8]
    }
}

fn element(out: &mut Vec<u8>, group: u16, elem: u16, vr: &[u8; 2], value: &[u8]) {
    out.extend_from_slice(&group.to_le_bytes());
    out.extend_from_slice(&elem.to_le_bytes());
    out.extend_from_slice(vr);
    if matches!(vr, b"OB" | b"OW" | b"UN" | b"SQ" | b"UT") {
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    } else {
        out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    }
    out.extend_from_slice(value);
}

fn padded(s: &str, pad: u8) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    if v.len() % 2 == 1 {
        v.push(pad);
    }
    v
}

/// A Part 10 file of `img` whose encapsulated pixel data holds `fragments` (one item each,
/// padded to even length, after an empty Basic Offset Table).
pub fn part10(img: &Image, fragments: &[&[u8]]) -> Vec<u8> {
    let ts = SYNTAXES[usize::from(img.syntax) % SYNTAXES.len()];
    let class = "1.2.840.10008.5.1.4.1.1.7";
    let inst = "1.2.826.0.1.3680043.9.7433.12.1";
    let mut meta = Vec::new();
    element(&mut meta, 2, 1, b"OB", &[0, 1]);
    element(&mut meta, 2, 2, b"UI", &padded(class, 0));
    element(&mut meta, 2, 3, b"UI", &padded(inst, 0));
    element(&mut meta, 2, 0x10, b"UI", &padded(ts, 0));
    let mut f = vec![0u8; 128];
    f.extend_from_slice(b"DICM");
    element(&mut f, 2, 0, b"UL", &(meta.len() as u32).to_le_bytes());
    f.extend_from_slice(&meta);
    element(&mut f, 8, 0x16, b"UI", &padded(class, 0));
    element(&mut f, 8, 0x18, b"UI", &padded(inst, 0));
    let pi = if img.samples == 3 { "RGB" } else { "MONOCHROME2" };
    element(&mut f, 0x28, 2, b"US", &img.samples.to_le_bytes());
    element(&mut f, 0x28, 4, b"CS", &padded(pi, b' '));
    element(&mut f, 0x28, 8, b"IS", &padded(&img.frames.to_string(), b' '));
    element(&mut f, 0x28, 0x10, b"US", &img.rows.to_le_bytes());
    element(&mut f, 0x28, 0x11, b"US", &img.columns.to_le_bytes());
    element(&mut f, 0x28, 0x100, b"US", &img.bits_allocated.to_le_bytes());
    element(&mut f, 0x28, 0x101, b"US", &img.bits_stored.to_le_bytes());
    element(&mut f, 0x28, 0x102, b"US", &(img.bits_stored - 1).to_le_bytes());
    element(&mut f, 0x28, 0x103, b"US", &u16::from(img.signed).to_le_bytes());
    f.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
    f.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0]);
    for frag in fragments {
        let mut v = frag.to_vec();
        if v.len() % 2 == 1 {
            v.push(0);
        }
        f.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0]);
        f.extend_from_slice(&(v.len() as u32).to_le_bytes());
        f.extend_from_slice(&v);
    }
    f.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
    f
}

/// `codec_decode`: 4 header bytes describe an image (syntax, samples, bits, frames, size,
/// see [`Image::parse`]); the rest, cut into one fragment per frame, is its encapsulated
/// pixel data. The file is converted to Explicit VR Little Endian: no panic (a codec that
/// panics is caught and reported as one, which fails the check), and a failure is one line.
/// Memory stays bounded (images of at most 64 x 64): decoders never allocate from a
/// codestream's own claims before they are checked against the data set.
pub fn codec_decode(scratch: &Path, data: &[u8]) {
    let Some((img, rest)) = Image::parse(data) else { return };
    let n = usize::from(img.frames);
    let step = rest.len().div_ceil(n).max(1);
    let fragments: Vec<&[u8]> = rest.chunks(step).collect();
    std::fs::write(scratch, part10(&img, &fragments)).expect("the scratch file can be written");
    let file = PreparedFile::open(scratch).expect("a well-formed file");
    let r = transcode_to(
        &file,
        uids::EXPLICIT_VR_LE,
        &TranscodeOptions::default(),
        &mut std::io::sink(),
    );
    if let Err(e) = r {
        let line = e.to_string();
        assert!(!line.contains("failed unexpectedly"), "a codec panicked: {line}");
        assert!(!line.contains('\n'), "{line}");
    }
}

/// The decoded-frame limit of the target: inputs are at most 4 KB, so anything above
/// this is a header that lies, which must be refused before allocating.
pub const JPEGLS_LIMIT: usize = 1 << 24;

/// `jpegls_decode`: `decode_with_limit` on arbitrary bytes never panics and stays within
/// the limit; a frame it returns has the size its header declares, and re-encoding it
/// losslessly and decoding that gives the same samples back.
pub fn jpegls_decode(data: &[u8]) {
    let Ok((info, pixels)) = decode_with_limit(data, JPEGLS_LIMIT) else { return };
    assert_eq!(Some(pixels.len()), info.frame_bytes(), "{info:?}");
    assert!(pixels.len() <= JPEGLS_LIMIT);
    if info.width > 65535 || info.height > 65535 {
        // (LSE type 4 sizes: our encoder writes SOF55 sizes only.)
        return;
    }
    let mut again = info;
    if info.components > 1 && info.interleave == Interleave::None {
        again.interleave = Interleave::Line;
    }
    let cs = encode(&pixels, &again, 0).expect("decoded samples re-encode");
    let (info2, pixels2) = decode_with_limit(&cs, JPEGLS_LIMIT).expect("our own stream decodes");
    assert_eq!(
        (info2.width, info2.height, info2.components),
        (info.width, info.height, info.components)
    );
    assert!(pixels2 == pixels, "{info:?}: the lossless round trip changed samples");
}
