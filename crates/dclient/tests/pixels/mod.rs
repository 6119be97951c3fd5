//! Native pixel data of Part 10 files, compared sample by sample (masked to Bits Stored,
//! sign-extended for signed data), for the codec tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;

use dicom_dictionary_std::tags;
use dicom_object::open_file;

/// Native pixels and what they mean.
pub struct Pixels {
    pub bytes: Vec<u8>,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub signed: bool,
    pub samples: u16,
    pub photometric: String,
    pub planar: u16,
    pub frames: u32,
}

pub fn pixels(path: &Path) -> Pixels {
    let o = open_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let int = |t| o.element(t).ok().and_then(|e| e.to_int::<u16>().ok());
    Pixels {
        bytes: o.element(tags::PIXEL_DATA).unwrap().to_bytes().unwrap().to_vec(),
        bits_allocated: int(tags::BITS_ALLOCATED).unwrap(),
        bits_stored: int(tags::BITS_STORED).unwrap(),
        signed: int(tags::PIXEL_REPRESENTATION) == Some(1),
        samples: int(tags::SAMPLES_PER_PIXEL).unwrap_or(1),
        photometric: o
            .element(tags::PHOTOMETRIC_INTERPRETATION)
            .unwrap()
            .to_str()
            .unwrap()
            .trim()
            .to_owned(),
        planar: int(tags::PLANAR_CONFIGURATION).unwrap_or(0),
        frames: o
            .element(tags::NUMBER_OF_FRAMES)
            .ok()
            .and_then(|e| e.to_str().ok().and_then(|s| s.trim().parse().ok()))
            .unwrap_or(1),
    }
}

impl Pixels {
    pub fn samples_iter(&self) -> Vec<i32> {
        let bits = u32::from(self.bits_stored);
        let n = if self.bits_allocated == 16 { self.bytes.len() / 2 } else { self.bytes.len() };
        (0..n)
            .map(|i| {
                let v = if self.bits_allocated == 16 {
                    u32::from(u16::from_le_bytes([self.bytes[2 * i], self.bytes[2 * i + 1]]))
                } else {
                    u32::from(self.bytes[i])
                };
                let v = v & ((1u32 << bits) - 1);
                if self.signed && (v >> (bits - 1)) & 1 == 1 {
                    v as i32 - (1 << bits)
                } else {
                    v as i32
                }
            })
            .collect()
    }
}

/// The largest difference between two images' samples (interleaved both), or a mismatch.
pub fn max_diff(a: &Pixels, b: &Pixels) -> Result<i32, String> {
    if a.bits_allocated != b.bits_allocated || a.samples != b.samples || a.frames != b.frames {
        return Err(format!(
            "layout differs: {}/{}/{} vs {}/{}/{}",
            a.bits_allocated, a.samples, a.frames, b.bits_allocated, b.samples, b.frames
        ));
    }
    let (x, mut y) = (a.samples_iter(), b.samples_iter());
    if b.bits_stored > a.bits_stored {
        // GDCM's decoding of its lossy JPEG 2000 widens Bits Stored to the codestream's
        // precision; ours keeps the data set's and clamps: compare in ours.
        let bits = u32::from(a.bits_stored);
        let (lo, hi) = if a.signed {
            (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
        } else {
            (0, (1 << bits) - 1)
        };
        for v in &mut y {
            *v = (*v).clamp(lo, hi);
        }
    }
    let n = x.len().min(y.len());
    // One padding byte may differ in length.
    if x.len().abs_diff(y.len()) > 1 {
        return Err(format!("{} samples vs {}", x.len(), y.len()));
    }
    Ok((0..n).map(|i| (x[i] - y[i]).abs()).max().unwrap_or(0))
}

/// The file with the last fragment of its encapsulated pixel data cut to half (the item
/// length and the delimiter kept consistent: a stream cut short, not a truncated file).
pub fn cut_last_fragment(bytes: &[u8]) -> Option<Vec<u8>> {
    let hdr = [0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF];
    let start = bytes.windows(12).position(|w| w == hdr)? + 12;
    let mut at = start;
    let mut last = None;
    loop {
        let h = bytes.get(at..at + 8)?;
        let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
        if h[..4] == [0xFE, 0xFF, 0xDD, 0xE0] {
            break;
        }
        last = Some((at, len));
        at += 8 + len;
    }
    let (item, len) = last?;
    if item == start || len < 8 {
        return None; // only the offset table
    }
    let keep = (len / 2) & !1;
    let mut b = bytes[..item + 4].to_vec();
    b.extend_from_slice(&(keep as u32).to_le_bytes());
    b.extend_from_slice(&bytes[item + 8..item + 8 + keep]);
    b.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
    Some(b)
}
